"""Answer forms rewritten to the canonical ones the comparison understands: the ways real model
outputs state an answer that the number, list and expression paths would otherwise misread.

Each rewrite applies to a whole (normalised) answer and returns it unchanged when the form
does not match, so a rewrite can never turn a wrong answer into a right one by accident: the
result still goes through the exact comparison.

- relations: ``f'(x) = 2x``, ``y(x) = ...``, ``x \\in [1, 2]`` -> the right-hand side;
- chained inequalities: ``1 \\le x \\le 2`` -> ``[1, 2]``, ``1 < x < 2`` -> ``(1, 2)``;
- ``\\pm``: ``\\pm 2`` -> ``2, -2``; ``1 \\pm \\sqrt{2}`` -> ``1 + \\sqrt{2}, 1 - \\sqrt{2}``;
- mixed numbers: ``3\\frac12`` / ``3 \\frac{1}{2}`` -> ``\\frac{7}{2}``;
- repeating decimals: ``0.\\overline{3}``, ``0.1\\overline{6}`` -> exact fractions;
- ``\\binom{n}{k}`` (``\\dbinom``, ``{n \\choose k}``) of small integers -> its value;
- percent: ``50%`` -> ``\\frac{1}{2}`` (a percent is a hundredth: ``50%`` is not ``50``);
- number words: ``three``, ``twenty-one``, ``one hundred`` -> digits;
- a decimal comma (``3,5`` where the part after the comma is not a thousands group) is read as
  a decimal point only when the reference is a single number (`decimal_comma`).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_REL = r"(?:=|\\in(?![a-z]))"
_LHS = re.compile(
    r"^(?:[A-Za-z](?:_\{?\w+\}?)?'*(?:\s*\(\s*[A-Za-z]\s*\))?|\\?[A-Za-z]+\s*\(\s*[A-Za-z]\s*\))"
    rf"\s*{_REL}\s*(?!=)"
)
_LE = r"(?:\\le(?:q)?(?![a-z])|<=|≤)"
_LT = r"(?:<(?!=)|\\lt(?![a-z]))"
_CHAIN = re.compile(
    rf"^(?P<a>[^<>=\\]+?|\\[a-z]+\{{[^{{}}]*\}}\{{[^{{}}]*\}}|-?\\infty)\s*(?P<l>{_LE}|{_LT})\s*"
    rf"[A-Za-z]\s*(?P<r>{_LE}|{_LT})\s*(?P<b>.+)$"
)
_PM = re.compile(r"\\pm(?![a-z])")
_MIXED = re.compile(r"^(?P<sign>-?)(?P<whole>\d+)\s*\\frac\s*(?:\{(?P<a>\d+)\}|(?P<a1>\d))"
                    r"\s*(?:\{(?P<b>\d+)\}|(?P<b1>\d))$")  # fmt: skip
_REPEAT = re.compile(r"^(?P<sign>-?)(?P<whole>\d{0,40})\.(?P<fixed>\d{0,40})"
                     r"(?:\\overline\{(?P<rep>\d{1,40})\}|\\dot\{?(?P<dot>\d)\}?"
                     r"|\((?P<par>\d{1,40})\))$")  # fmt: skip
_BINOM = re.compile(r"^\\[dt]?binom\s*\{\s*(?P<n>\d{1,3})\s*\}\s*\{\s*(?P<k>\d{1,3})\s*\}$|"
                    r"^\{?\s*(?P<n2>\d{1,3})\s*\\choose\s*(?P<k2>\d{1,3})\s*\}?$")  # fmt: skip
_PERCENT = re.compile(
    r"^(?P<num>[-+]?(?:\d{1,40}(?:\.\d{1,40})?|\.\d{1,40}))\s*(?:%|\\%|\s*percent)$"
)
_DECIMAL_COMMA = re.compile(r"^(?P<sign>[-+]?)(?P<whole>\d+),(?P<frac>\d+)$")

_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen").split()  # fmt: skip
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
WORDS = {w: i for i, w in enumerate(_UNITS)}
WORDS.update({w: 20 + 10 * i for i, w in enumerate(_TENS)})
WORDS.update({f"{t}-{u}": 20 + 10 * i + j for i, t in enumerate(_TENS)
              for j, u in enumerate(_UNITS[1:10], start=1)})  # fmt: skip
WORDS.update({"one hundred": 100, "a hundred": 100, "hundred": 100})


def _frac(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _relation_rhs(s: str) -> str:
    m = _LHS.match(s)
    return s[m.end() :].strip() if m and s[m.end() :].strip() else s


def _chain(s: str) -> str:
    m = _CHAIN.match(s)
    if m is None:
        return s
    left = "[" if re.fullmatch(_LE, m.group("l")) else "("
    right = "]" if re.fullmatch(_LE, m.group("r")) else ")"
    return f"{left}{m.group('a').strip()}, {m.group('b').strip()}{right}"


def _plus_minus(s: str) -> str:
    if len(_PM.findall(s)) != 1 or "," in s:
        return s
    head, tail = (part.strip() for part in _PM.split(s))
    if not tail:
        return s
    if not head:
        return f"{tail}, -{tail}" if tail[0] not in "+-" else s
    return f"{head} + {tail}, {head} - {tail}"


def _mixed(s: str) -> str:
    m = _MIXED.match(s)
    if m is None:
        return s
    a, b = int(m.group("a") or m.group("a1")), int(m.group("b") or m.group("b1"))
    if not 0 < a < b:  # a proper fraction after the whole part, or it is not a mixed number
        return s
    value = int(m.group("whole")) + Fraction(a, b)
    return _frac(-value if m.group("sign") else value)


def _repeating(s: str) -> str:
    m = _REPEAT.match(s)
    if m is None:
        return s
    rep = m.group("rep") or m.group("dot") or m.group("par")
    fixed = m.group("fixed")
    whole = int(m.group("whole") or "0")
    # 0.fixed(rep) = (fixed rep - fixed) / (10^len(fixed) * (10^len(rep) - 1))
    num = int(fixed + rep) - int(fixed or "0")
    value = whole + Fraction(num, 10 ** len(fixed) * (10 ** len(rep) - 1))
    return _frac(-value if m.group("sign") else value)


def _binom(s: str) -> str:
    m = _BINOM.match(s)
    if m is None:
        return s
    n, k = int(m.group("n") or m.group("n2")), int(m.group("k") or m.group("k2"))
    return str(math.comb(n, k)) if k <= n else s


def _percent(s: str) -> str:
    m = _PERCENT.match(s)
    if m is None:
        return s
    raw = m.group("num")
    whole, _, frac = raw.lstrip("+-").partition(".")
    value = Fraction(int((whole or "0") + frac), 10 ** len(frac) * 100)
    return _frac(-value if raw.startswith("-") else value)


def _words(s: str) -> str:
    key = s.strip().lower().rstrip(".")
    negative = key.startswith(("minus ", "negative "))
    if negative:
        key = key.split(" ", 1)[1]
    if key in WORDS:
        return str(-WORDS[key] if negative else WORDS[key])
    return s


def rewrite(s: str) -> str:
    r"""``s`` in a canonical form (see the module doc), or unchanged.

    >>> [rewrite(x) for x in (r"f'(x) = 2x", r"1 \le x < 2", r"\pm 2", r"3\frac12",
    ...                       r"0.\overline{3}", r"\binom{5}{2}", "50%", "twenty-one")]
    ['2x', '[1, 2)', '2, -2', '\\frac{7}{2}', '\\frac{1}{3}', '10', '\\frac{1}{2}', '21']
    """
    for step in (_relation_rhs, _chain, _plus_minus, _mixed, _repeating, _binom, _percent, _words):
        s = step(s)
    return s


def decimal_comma(s: str) -> str | None:
    """``3,5`` read with a decimal comma (``3.5``); None when ``s`` is not one (``1,000`` is a
    thousands group, not a decimal).

    >>> decimal_comma("3,5"), decimal_comma("-0,25"), decimal_comma("1,000")
    ('3.5', '-0.25', None)
    """
    m = _DECIMAL_COMMA.match(s)
    if m is None or len(m.group("frac")) == 3:
        return None
    return f"{m.group('sign')}{m.group('whole')}.{m.group('frac')}"
