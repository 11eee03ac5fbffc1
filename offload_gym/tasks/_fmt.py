"""Small formatting helpers shared by the math families (exact arithmetic, plain-text output)."""

from __future__ import annotations

from fractions import Fraction

ANSWER_TEMPLATE = "<answer>{}</answer>"
"""The project's own final-answer format; `extract_answer` reads it first."""


def fmt_number(value: int | Fraction) -> str:
    """``7``, ``-3``, ``5/6``: integers plain, other rationals as a reduced fraction."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        return f"{value.numerator}/{value.denominator}"
    return str(value)


def fmt_poly(coeffs: list[int], var: str = "x") -> str:
    """Format a polynomial given coefficients from the constant term up: ``[1, 0, -2]`` ->
    ``-2x^2 + 1``."""
    terms: list[str] = []
    for power in range(len(coeffs) - 1, -1, -1):
        c = coeffs[power]
        if c == 0:
            continue
        mag = abs(c)
        if power == 0:
            body = str(mag)
        else:
            body = ("" if mag == 1 else str(mag)) + var + (f"^{power}" if power > 1 else "")
        if not terms:
            terms.append(("-" if c < 0 else "") + body)
        else:
            terms.append(("- " if c < 0 else "+ ") + body)
    return " ".join(terms) if terms else "0"


def poly_eval(coeffs: list[int], x: int) -> int:
    """Horner evaluation of a polynomial with coefficients from the constant term up."""
    acc = 0
    for c in reversed(coeffs):
        acc = acc * x + c
    return acc


def poly_mul(a: list[int], b: list[int]) -> list[int]:
    out = [0] * (len(a) + len(b) - 1)
    for i, ca in enumerate(a):
        for j, cb in enumerate(b):
            out[i + j] += ca * cb
    return out


def poly_deriv(coeffs: list[int]) -> list[int]:
    return [i * c for i, c in enumerate(coeffs)][1:] or [0]


def final_line(answer: str) -> str:
    return "The answer is " + ANSWER_TEMPLATE.format(answer) + "."
