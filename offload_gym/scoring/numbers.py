"""Exact numbers in answers: `parse_number` reads ``1,000``, ``-3/4``, ``\\frac{1}{2}``,
``2.5e3`` or ``12 cm`` as an exact fraction (with the decimals as written), and
`numbers_match` compares one with a reference value without accepting roundings."""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction
from typing import NamedTuple

from offload_gym.scoring import forms

_NUM_CORE = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUMERIC = re.compile(
    r"^(?P<sign>[-+−])?\s*\$?\s*(?:"
    rf"(?P<frac>\\frac\{{\s*(?P<fn>{_NUM_CORE})\s*\}}\{{\s*(?P<fd>{_NUM_CORE})\s*\}})"
    rf"|(?P<slash>(?P<sn>{_NUM_CORE})\s*/\s*(?P<sd>{_NUM_CORE}))"
    rf"|(?P<plain>{_NUM_CORE})(?:\s*[eE](?P<exp>[-+]?\d{{1,3}}))?"
    r")\s*(?P<unit>%|[A-Za-z]+(?:\s+[A-Za-z]+){0,2}|[A-Za-z]+\^?\d)?\s*$"
)
_INTEGER = re.compile(r"-?\d{1,30}\Z", re.ASCII)
_NOT_UNITS = frozenset(
    "or and to x y i e pi sqrt plus minus times over divided by cubed squared power factorial "
    "root half halves third thirds quarter quarters dozen hundred thousand million billion "
    "trillion".split()
) | frozenset(forms.WORDS)
"""Words after a number that are operations or magnitudes, not units: ``3 cubed`` is not 3,
nor ``9 plus four`` 9, nor ``3 million`` 3."""


class Number(NamedTuple):
    value: Fraction
    decimals: int  # digits after the decimal point as written (0 for integers and fractions)


@functools.lru_cache(maxsize=8192)
def parse_number(text: str) -> Number | None:
    """Parse an exact number with optional sign, ``$``, thousands separators, fraction or
    ``\\frac``, and a trailing unit word or ``%`` (ignored). ``None`` when it is not one."""
    if _INTEGER.match(text):  # fast path
        return Number(Fraction(int(text)), 0)
    m = _NUMERIC.match(text)
    if m is None:
        return None
    unit = m.group("unit")
    if unit and any(word.lower() in _NOT_UNITS for word in unit.split()):
        return None
    try:
        if m.group("frac"):
            value = _to_fraction(m.group("fn")) / _to_fraction(m.group("fd"))
            decimals = 0
        elif m.group("slash"):
            value = _to_fraction(m.group("sn")) / _to_fraction(m.group("sd"))
            decimals = 0
        else:
            raw = m.group("plain")
            value = _to_fraction(raw)
            decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
            if m.group("exp"):
                value *= Fraction(10) ** int(m.group("exp"))
                decimals = max(0, decimals - int(m.group("exp")))
    except ZeroDivisionError:
        return None
    if m.group("sign") in ("-", "−"):
        value = -value
    return Number(value, decimals)


def _to_fraction(raw: str) -> Fraction:
    raw = raw.replace(",", "")
    if raw.isdigit():
        return Fraction(int(raw))
    whole, dot, frac = raw.partition(".")
    if dot and (whole.isdigit() or not whole) and frac.isdigit():
        return Fraction(int(whole or "0") * 10 ** len(frac) + int(frac), 10 ** len(frac))
    return Fraction(raw)


def numbers_match(pred: Number, gold_value: float | Fraction) -> bool:
    r"""Exact equality with an exact reference; with a reference known only as a float (an
    irrational value such as ``\sqrt{4}`` evaluated), an integer prediction within 1e-9. A
    decimal is never taken for an exact value it rounds (``0.333`` is not ``1/3``, nor
    ``3.14159265358979`` pi): a reward that accepts roundings rewards wrong answers."""
    if isinstance(gold_value, Fraction):
        return pred.value == gold_value
    if not math.isfinite(gold_value) or pred.decimals or pred.value.denominator != 1:
        return False
    try:
        return math.isclose(float(pred.value), gold_value, rel_tol=1e-9, abs_tol=1e-12)
    except OverflowError:
        return False
