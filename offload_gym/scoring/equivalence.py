"""Math answer equivalence: exact, then numeric, then expression, then sympy under a time limit.

`compare` never raises on garbage input and never hangs: the only potentially slow step (sympy)
runs in a helper process that is killed when it overruns its time limit.
"""

from __future__ import annotations

import functools
import re
import time
from typing import NamedTuple

from offload_gym.scoring import forms
from offload_gym.scoring._expressions import expression_verdict
from offload_gym.scoring.latex import to_expression
from offload_gym.scoring.numbers import Number, numbers_match, parse_number

DEFAULT_TIMEOUT_S = 2.0
"""Wall-clock limit of the sympy steps of one comparison, all of them together (a list's items
share it)."""

MAX_ANSWER_CHARS = 1000
"""Longer answers are compared as strings only."""


class Verdict(NamedTuple):
    """The outcome of one comparison.

    Attributes:
        equivalent: Whether the prediction matches the reference.
        method: Which stage decided: ``"exact"``, ``"numeric"``, ``"list"``, ``"expression"``,
            ``"symbolic"``, ``"invalid"`` (a side that is not a number, such as ``nan``), or,
            for a negative verdict nothing could decide, ``"empty"`` (no prediction),
            ``"unparsed"``, ``"error"`` or ``"timeout"``.
    """

    equivalent: bool
    method: str


# --------------------------------------------------------------------------- normalisation
_WRAPPERS = (("$$", "$$"), ("$", "$"), (r"\(", r"\)"), (r"\[", r"\]"))
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox|mathbf|operatorname)\s*\{([^{}]*)\}")
_ASSIGN = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?!=)")
_SPACES = re.compile(r"\s+")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°")
_PLAIN = re.compile(r"[-+]?[\w.,/]*\Z", re.ASCII)


@functools.lru_cache(maxsize=8192)
def normalize(answer: str) -> str:
    r"""Canonical surface form: math delimiters, spacing macros, ``\text{}``, degree signs,
    a leading ``x =`` and a trailing full stop removed; ``\dfrac``/``\tfrac`` -> ``\frac``.

    >>> normalize(r" $x = \dfrac{1}{2}$. ")
    '\\frac{1}{2}'
    """
    s = answer.strip().rstrip(".").strip()
    if _PLAIN.match(s):  # fast path: nothing to normalise beyond spacing (or a number word)
        return forms.rewrite(s) if s[:1].isalpha() else s
    for left, right in _WRAPPERS:
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            s = s[len(left) : len(s) - len(right)].strip()
            break
    s = _unbox(s.rstrip(".").strip())
    s = s.replace(r"\dfrac", r"\frac").replace(r"\tfrac", r"\frac")
    for macro in (r"\left", r"\right", r"\!", r"\,", r"\;", r"\:", r"\displaystyle"):
        s = s.replace(macro, "")
    s = _TEXT_CMD.sub(lambda m: " " + m.group(1).strip(), s)
    s = _DEGREES.sub("", s)
    s = _ASSIGN.sub("", s)
    s = s.replace("\\$", "$").replace("\\%", "%")
    return forms.rewrite(_SPACES.sub(" ", s).strip())


def _unbox(s: str) -> str:
    r"""The content of a ``\boxed{...}`` (or ``\fbox{...}``) that wraps the whole answer."""
    for command in (r"\boxed", r"\fbox"):
        if not s.startswith(command):
            continue
        rest = s[len(command) :].lstrip()
        if not (rest.startswith("{") and rest.endswith("}")):
            return s
        depth = 0
        for ch in rest[1:-1]:
            depth += (ch == "{") - (ch == "}")
            if depth < 0:  # \boxed{a} + \boxed{b}: not one wrapper
                return s
        return rest[1:-1].strip() if depth == 0 else s
    return s


# --------------------------------------------------------------------------- lists
_LIST_SEP = re.compile(r"\s*(?:;|,|\bor\b|\band\b)\s*")


def split_candidates(text: str) -> tuple[list[str], bool] | None:
    """Split a list answer at top-level separators (``,`` ``;`` "or" "and").

    Returns ``(items, ordered)`` (ordered for tuples written in parentheses), or ``None`` when the
    answer is a single item. Thousands separators (``1,234``) are not list separators.
    """
    s = text.strip()
    ordered = False
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _top_level_has_sep(s[1:-1]):
        s, ordered = s[1:-1], True
    elif s.startswith("\\{") and s.endswith("\\}"):
        s = s[2:-2]
    if not _top_level_has_sep(s):
        return None
    items, depth, start = [], 0, 0
    i = 0
    while i < len(s):
        ch = s[i]
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif depth == 0:
            m = _LIST_SEP.match(s, i)
            if m and m.end() > i and not _is_thousands(s, i):
                items.append(s[start:i].strip())
                start = i = m.end()
                continue
        i += 1
    items.append(s[start:].strip())
    items = [it for it in items if it]
    return (items, ordered) if len(items) > 1 else None


def _is_thousands(s: str, i: int) -> bool:
    return (
        s[i] == ","
        and i > 0
        and s[i - 1].isdigit()
        and re.match(r",\d{3}(?!\d)", s[i:]) is not None
        and re.search(r"(?:^|[^\d.])\d{1,3}(?:,\d{3})*$", s[:i]) is not None
    )


def _top_level_has_sep(s: str) -> bool:
    depth = 0
    for i, ch in enumerate(s):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif depth == 0 and ch in ",;" and not _is_thousands(s, i):
            return True
    return depth == 0 and re.search(r"\s(?:or|and)\s", s) is not None


# --------------------------------------------------------------------------- entry points
def compare(pred: str | None, gold: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> Verdict:
    """Compare a predicted final answer with the reference answer.

    >>> compare("1,000", "1000")
    Verdict(equivalent=True, method='numeric')
    >>> compare(r"\\frac{1}{\\sqrt{2}}", r"\\frac{\\sqrt{2}}{2}").equivalent
    True
    >>> compare("3, 5", "3")
    Verdict(equivalent=False, method='list')
    """
    if not isinstance(gold, str):
        raise TypeError(f"gold must be a string, got {type(gold).__name__}")
    return _verdict(pred, gold, time.monotonic() + timeout)


def _verdict(pred: str | None, gold: str, deadline: float) -> Verdict:
    """`compare` against a deadline shared by the whole comparison (a list's items and every
    sympy call of it draw on the same time: the limit bounds the comparison, not each call)."""
    if pred is None or not isinstance(pred, str) or not pred.strip():
        return Verdict(False, "empty")
    try:
        return _compare(pred, gold, deadline)
    except (ArithmeticError, ValueError, RecursionError, MemoryError):  # a grader never raises
        return Verdict(False, "error")


_NOT_A_NUMBER = re.compile(r"^[-+]?\\?(?:nan|NaN|NAN|Nan)$")


def _compare(pred: str, gold: str, deadline: float) -> Verdict:
    p, g = normalize(pred), normalize(gold)
    if _NOT_A_NUMBER.match(p) or _NOT_A_NUMBER.match(g):
        return Verdict(False, "invalid")  # "not a number" is no answer, even to itself
    if pred.strip() == gold.strip() or p == g:
        return Verdict(True, "exact")
    if len(p) > MAX_ANSWER_CHARS or len(g) > MAX_ANSWER_CHARS:
        return Verdict(False, "unparsed")
    pn, gn = parse_number(p), parse_number(g)
    if pn is None and gn is not None and (comma := forms.decimal_comma(p)) is not None:
        pn = parse_number(comma)  # 3,5 for 3.5 where the reference is one number
    if pn is not None and gn is not None:
        return Verdict(numbers_match(pn, gn.value), "numeric")
    pl, gl = split_candidates(p), split_candidates(g)
    if pl is not None or gl is not None:
        if pl is not None and gl is not None and pl[1] and gl[1] and _ends(p) != _ends(g):
            return Verdict(False, "list")  # (1, 2) is not [1, 2], nor [1, 2) [1, 2]
        return _compare_lists(pl, gl, deadline)
    return _compare_expressions(p, g, pn, gn, deadline)


def _ends(s: str) -> str:
    """The brackets around a bracketed list: open or closed at each end."""
    return s[0] + s[-1]


def _compare_lists(
    pl: tuple[list[str], bool] | None, gl: tuple[list[str], bool] | None, deadline: float
) -> Verdict:
    if pl is None or gl is None or len(pl[0]) != len(gl[0]):
        return Verdict(False, "list")
    # The reference decides: a tuple in parentheses is ordered ("4, 3" is not "(3, 4)"); a bare
    # list of solutions is a set.
    p_items, ordered = pl[0], gl[1]
    g_items = gl[0]
    if ordered:
        ok = all(_verdict(a, b, deadline).equivalent for a, b in zip(p_items, g_items, strict=True))
        return Verdict(ok, "list")
    remaining = list(g_items)
    for a in p_items:
        for k, b in enumerate(remaining):
            if _verdict(a, b, deadline).equivalent:
                del remaining[k]
                break
        else:
            return Verdict(False, "list")
    return Verdict(not remaining, "list")


def _compare_expressions(
    p: str, g: str, pn: Number | None, gn: Number | None, deadline: float
) -> Verdict:
    pe = f"({pn.value})" if pn is not None else to_expression(p)
    ge = f"({gn.value})" if gn is not None else to_expression(g)
    if pe is None or ge is None:
        return Verdict(False, "unparsed")
    decided = expression_verdict(pe, ge, pn)
    if decided is not None:
        return Verdict(decided, "expression")
    from offload_gym.scoring.symbolic import sympy_equivalent

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return Verdict(False, "timeout")
    result = sympy_equivalent(pe, ge, timeout=remaining)
    if result is None:
        return Verdict(False, "timeout")
    if isinstance(result, str):
        return Verdict(False, "error")
    return Verdict(result, "symbolic")


def is_equivalent(pred: str | None, gold: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
    """Whether ``pred`` and ``gold`` denote the same answer (see `compare`).

    >>> is_equivalent("$1,200.00", "1200")
    True
    >>> is_equivalent("0.5", r"\\frac{1}{2}")
    True
    >>> is_equivalent("x = 4", "4")
    True
    >>> is_equivalent("4 or 5", "4")
    False
    """
    return compare(pred, gold, timeout=timeout).equivalent
