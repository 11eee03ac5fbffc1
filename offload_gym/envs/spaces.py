"""A Text space that holds real prompts and responses."""

from __future__ import annotations

import string
from typing import Any

from gymnasium.spaces import Text

PROMPT_CHARSET = string.printable + "×÷−±≤≥≠√πθ∞°²³·…–—’“”"
"""Characters `PromptText.sample` draws from. Membership accepts any character."""


class PromptText(Text):
    """`gymnasium.spaces.Text` for natural-language and code: any ``str`` of length in
    ``[min_length, max_length]`` belongs to it, whatever its characters (spaces, newlines,
    LaTeX, unicode). Gymnasium's default charset (alphanumerics only) rejects real prompts.
    `sample` draws from `PROMPT_CHARSET`.
    """

    def __init__(self, max_length: int, *, min_length: int = 0, seed: Any = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=PROMPT_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"PromptText({self.min_length}, {self.max_length})"
