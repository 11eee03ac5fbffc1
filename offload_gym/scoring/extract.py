"""Final-answer extraction from a free-form response."""

from __future__ import annotations

import re

from offload_gym.scoring.forms import WORDS

_OPEN_TAG = re.compile(r"<answer>", re.IGNORECASE)
_CLOSE_TAG = re.compile(r"</answer>", re.IGNORECASE)
_HASHES = re.compile(r"####\s*([^\n]*)")
_THE_ANSWER = re.compile(
    r"(?:final answer|the answer)\s*(?:is|:|=)?\s*:?\s*([^\n]+)", re.IGNORECASE
)
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?|[-+]?\.\d+")
_BOX_CMDS = ("\\boxed", "\\fbox")
_DOLLAR = re.compile(r"(?<![\\$])\$([^$]+)\$")
_DELIMITED = (("\\[", "\\]"), ("$$", "$$"), ("\\(", "\\)"))
_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{2,}")
_BARE_MAX = 200


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced.

    >>> last_boxed(r"so \\boxed{\\frac{1}{2}} and that is it")
    '\\\\frac{1}{2}'
    >>> last_boxed("no box here") is None
    True
    """
    start = max(text.rfind(cmd) for cmd in _BOX_CMDS)
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        # `\boxed 5` form
        rest = text[start:].split(None, 1)
        return rest[1].split("$")[0].strip() if len(rest) == 2 else None
    depth = 0
    for j in range(i, len(text)):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The last match of ``pattern`` in ``text`` (one linear pass)."""
    found = None
    for found in pattern.finditer(text):  # noqa: B007 (the loop keeps the last)
        pass
    return found


def _last_tag(text: str) -> str | None:
    """The content of the last ``<answer>...</answer>`` (the closing tag that comes last, and
    the opening tag nearest before it), found in linear time (a regex ``<answer>(.*?)</answer>``
    rescans the rest of the text from every unclosed opening tag: quadratic)."""
    close = _last(_CLOSE_TAG, text)
    if close is None:
        return None
    opening = _last(_OPEN_TAG, text[: close.start()])
    return None if opening is None else text[opening.end() : close.start()]


def _last_span(text: str) -> str | None:
    """The content of the math span that ends last: ``\\[...\\]``, ``$$...$$``,
    ``\\(...\\)`` (the last closing delimiter and the nearest opening one before it) or
    ``$...$``; linear in ``len(text)``."""
    best: tuple[int, str] | None = None
    for opening, closing in _DELIMITED:
        end = text.rfind(closing)
        start = text.rfind(opening, 0, end) if end > 0 else -1  # wholly before the closing
        if start >= 0:
            content = text[start + len(opening) : end]
            if content.strip() and (best is None or end > best[0]):
                best = (end, content)
    single = _last(_DOLLAR, text)
    if single is not None and (best is None or single.end() > best[0]):
        best = (single.end(), single.group(1))
    return None if best is None else best[1]


def extract_answer(response: str) -> str | None:
    """The final answer stated in ``response``, or ``None`` when there is none (see
    `extract_with_source` for where it is looked for).

    >>> extract_answer("... so the total is 12. The answer is <answer>12</answer>.")
    '12'
    >>> extract_answer("no idea") is None
    True
    """
    return extract_with_source(response)[0]


EXPLICIT_SOURCES = frozenset({"tag", "boxed", "hashes", "stated", "bare"})
"""Where an answer is stated explicitly (an answer tag, a box, a ``####`` line, "the answer
is", the whole response): a negative verdict on it is final. An answer found by a heuristic
(the last math span, number word or number) may be the wrong candidate, and is checked again."""


def extract_with_source(response: str) -> tuple[str | None, str]:
    """The final answer stated in ``response`` (``None`` when there is none) and where it was
    found: ``"tag"``, ``"boxed"``, ``"hashes"``, ``"stated"``, ``"bare"``, ``"span"``,
    ``"word"``, ``"number"`` or ``"none"``.

    Looked for in this order (the last occurrence of each wins): the project's own
    ``<answer>...</answer>`` tag (a ``\\boxed{}`` inside it unwrapped), ``\\boxed{...}``, a
    GSM8K ``#### n`` line, "the answer is ..." / "final answer: ...", the whole response when it
    is a bare expression (no words outside LaTeX commands), the last math span (``\\[...\\]``,
    ``$$...$$``, ``\\(...\\)``, ``$...$``), a number word, and finally the last number.

    >>> extract_answer("... so the total is 12. The answer is <answer>12</answer>.")
    '12'
    >>> extract_answer(r"Hence $\\boxed{\\frac{3}{4}}$.")
    '\\\\frac{3}{4}'
    >>> extract_answer("Natalia sold 48 + 24 = 72 clips.\\n#### 72")
    '72'
    >>> extract_answer("The answer is $1,200.")
    '$1,200'
    >>> extract_answer("I think it's about 7 or so")
    '7'
    >>> extract_answer(r"Thus \\[\\frac{10}{9}\\]")
    '\\\\frac{10}{9}'
    >>> extract_answer(r"\\tfrac34")
    '\\\\tfrac34'
    >>> extract_with_source("I think it's about 7 or so")
    ('7', 'number')
    """
    if not isinstance(response, str) or not response:
        return None, "none"
    tag = _last_tag(response)
    if tag is not None:
        boxed = last_boxed(tag)  # <answer>\boxed{5}</answer>
        return (boxed if boxed is not None else tag.strip()), "tag"
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed, "boxed"
    hashes = _HASHES.findall(response)
    if hashes and hashes[-1].strip():
        return hashes[-1].strip(), "hashes"
    stated = _THE_ANSWER.findall(response)
    if stated:
        ans = stated[-1].strip()
        ans = re.split(r"\.(?:\s|$)", ans, maxsplit=1)[0].strip()  # stop at a full stop
        if ans:
            return ans, "stated"
    text = response.strip()
    if len(text) <= _BARE_MAX and not _WORD.search(_COMMAND.sub(" ", text)):
        return text, "bare"  # the whole response is an expression: \dfrac{10}{9}, 50%
    span = _last_span(response)
    if span is not None:  # the last \[...\], $$...$$, \(...\) or $...$ span
        return span.strip(), "span"
    if text.rstrip(".").lower() in WORDS:
        return text.rstrip("."), "word"
    numbers = _NUMBER.findall(response)
    if numbers:
        return numbers[-1].strip(), "number"
    return None, "none"
