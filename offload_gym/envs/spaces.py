"""A Text space that holds real prompts and responses."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.spaces import Text
from gymnasium.vector.utils import read_from_shared_memory

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


class SharedTexts(Sequence[str]):
    """The strings of a `PromptText` in an ``AsyncVectorEnv``'s shared memory, decoded when read.

    Gymnasium reads a ``Text`` space's shared memory once, when the vector env is built, into a
    tuple of strings, so every later observation repeats that first read (all ``"0"``: the
    buffer's zeros). This view decodes the buffer on access instead, as a NumPy view does for a
    ``Box``; a deep copy (what the vector env hands out with ``copy=True``, the default) is the
    tuple of the current strings.
    """

    def __init__(self, space: PromptText, shared_memory: Any, n: int) -> None:
        self._space, self._n = space, n
        self._data = np.frombuffer(shared_memory.get_obj(), dtype=np.int32).reshape(
            (n, space.max_length)
        )

    def _decode(self, row: np.ndarray) -> str:
        chars, size = self._space.character_list, len(self._space.character_set)
        return "".join(chars[v] for v in row if v < size)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(self._decode(r) for r in self._data[i])
        return self._decode(self._data[i])

    def __len__(self) -> int:
        return self._n

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self)!r})"


@read_from_shared_memory.register(PromptText)
def _read_prompt_text(space: PromptText, shared_memory: Any, n: int = 1) -> SharedTexts:
    return SharedTexts(space, shared_memory, n)
