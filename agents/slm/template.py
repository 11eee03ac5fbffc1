"""The prompt template of the local language model (the help request and its marker come from
`offload_gym.protocol`)."""

from __future__ import annotations

import re

from offload_gym.protocol import HELP_REQUEST, SPECIAL_TOKENS

_CODE_INSTRUCTIONS = re.compile(
    r"\n*Answer with the complete function in a ```python code block[^\n]*"
)
_DOCSTRING = re.compile(r'\n    """.*?"""', re.DOTALL)
_LEAD = re.compile(r"^Write a Python function `\w+`\. ")
_FENCE = re.compile(r"```python\n(.*?)\n```", re.DOTALL)


def compact_prompt(prompt: str) -> str:
    """``prompt`` without the code tasks' boilerplate: the opening "Write a Python function
    `name`." (the signature names it), the code fence, the closing instruction and the stub's
    docstring, which repeats the description (a tiny model pays one token per character).

    >>> stub = "```python\\ndef f(x: int) -> int:\\n    " + '"' * 3 + "Add 1." + '"' * 3 + "\\n```"
    >>> end = "Answer with the complete function in a ```python code block."
    >>> compact_prompt("Write a Python function `f`. Add 1.\\n\\n" + stub + "\\n\\n" + end)
    'Add 1.\\ndef f(x: int) -> int:'
    """
    text = _DOCSTRING.sub("", _CODE_INSTRUCTIONS.sub("", prompt)).strip()
    if _LEAD.match(text) and _FENCE.search(text):
        text = _FENCE.sub(lambda m: m.group(1), _LEAD.sub("", text)).replace("\n\n", "\n")
    return text


def format_prompt(prompt: str) -> str:
    """The text the local model continues for a task's prompt (compacted by `compact_prompt`).

    There is no instruction about the help request in it (a tiny model pays one token per
    character and learns when to ask from its warm-start targets); models that need one can be
    given it through the task prompts.

    >>> format_prompt("Compute 1 + 1.")
    'Question: Compute 1 + 1.\\nAnswer:\\n'
    """
    return f"Question: {compact_prompt(prompt)}\nAnswer:\n"


__all__ = ["HELP_REQUEST", "SPECIAL_TOKENS", "compact_prompt", "format_prompt"]
