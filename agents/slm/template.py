"""The prompt template of the local language model and its offload marker."""

from __future__ import annotations

HELP_REQUEST = "<unknown> I need external assistance </unknown>"
"""What the local model writes to ask the cloud (GAPG's template); the environments detect its
first tag, ``<unknown>``."""

SPECIAL_TOKENS = ("<unknown>", "</unknown>")


def format_prompt(prompt: str) -> str:
    """The text the local model continues for a task's prompt.

    >>> format_prompt("Compute 1 + 1.").endswith("Answer:\\n")
    True
    """
    return f"Question: {prompt}\nIf you cannot solve it, reply {HELP_REQUEST}\nAnswer:\n"
