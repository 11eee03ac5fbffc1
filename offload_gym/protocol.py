"""The text view's help protocol, defined once: how a local model's response asks the cloud.

A response that contains the offload marker asks the cloud; what comes before the marker is
the local partial answer the cloud may continue. GAPG's template writes the whole request as
`HELP_REQUEST`. The environments take the marker from ``EnvConfig.offload_marker`` (this
module's `OFFLOAD_MARKER` by default); the skilled-SLM kit makes the marker and the closing tag
single tokens, and the trainer and the LM evaluation check a model against the environment's
marker with `check_marker`.

>>> asks_cloud("x = 2, so <unknown> I need external assistance </unknown>")
(True, 'x = 2, so ')
>>> asks_cloud("<answer>4</answer>")
(False, None)
"""

from __future__ import annotations

from typing import Any

OFFLOAD_MARKER = "<unknown>"
"""A text-view response containing this asks the cloud."""
OFFLOAD_CLOSE = "</unknown>"
"""The closing tag of a help request (a response ends there)."""
HELP_REQUEST = f"{OFFLOAD_MARKER} I need external assistance {OFFLOAD_CLOSE}"
"""What the local model writes to ask the cloud (GAPG's template)."""
SPECIAL_TOKENS = (OFFLOAD_MARKER, OFFLOAD_CLOSE)
"""The tags a tokenizer should keep whole."""


def asks_cloud(response: str, marker: str = OFFLOAD_MARKER) -> tuple[bool, str | None]:
    """Whether ``response`` asks the cloud, and the local partial before the marker."""
    k = response.find(marker)
    return (True, response[:k]) if k >= 0 else (False, None)


def help_request(marker: str = OFFLOAD_MARKER) -> str:
    """The help request under ``marker`` (`HELP_REQUEST` for the default one).

    >>> help_request("[HELP]")
    '[HELP] I need external assistance </unknown>'
    """
    return HELP_REQUEST.replace(OFFLOAD_MARKER, marker, 1)


def check_marker(tokenizer: Any, marker: str) -> None:
    """Raise ValueError when a model's tokenizer was built for another marker than the
    environment's: it keeps this protocol's tags as single tokens (the skilled-SLM kit's
    tokenizers do) while the environment listens for ``marker``, so the model's help requests
    would never reach the cloud. Tokenizers without the tags (any pretrained model) pass: such
    a model writes the marker as text."""
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    if marker != OFFLOAD_MARKER and OFFLOAD_MARKER in vocab and marker not in vocab:
        raise ValueError(
            f"the model's tokenizer keeps the help request's marker {OFFLOAD_MARKER!r} as a token, "
            f"but the environment's offload_marker is {marker!r}: the model's help requests "
            f"would never ask the cloud; use offload_marker={OFFLOAD_MARKER!r} or a model built "
            "for the other marker"
        )


__all__ = [
    "HELP_REQUEST",
    "OFFLOAD_CLOSE",
    "OFFLOAD_MARKER",
    "SPECIAL_TOKENS",
    "asks_cloud",
    "check_marker",
    "help_request",
]
