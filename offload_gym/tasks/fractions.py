"""Fraction arithmetic: ``3/4 + 5/6 - 1/3`` in lowest terms.

Difficulty sets the number of fractions (2-4), the size of the denominators, and whether products
and quotients appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from offload_gym.tasks._fmt import final_line, fmt_number
from offload_gym.tasks.base import Draft, Draws, GeneratorConfig, TaskGenerator
from offload_gym.tasks.registry import register_generator

_SYMBOL = {"+": "+", "-": "-", "*": "×", "/": "÷"}
_N_TERMS = {1: 2, 2: 2, 3: 3, 4: 3, 5: 4}
_MAX_DEN = {1: 6, 2: 10, 3: 12, 4: 16, 5: 20}


@dataclass(frozen=True)
class FractionsConfig(GeneratorConfig):
    """Config of the ``fractions`` family (see `GeneratorConfig` for the difficulty range)."""


@register_generator
class FractionsGenerator(TaskGenerator):
    """Combine 2-4 fractions with + and - (and, from difficulty 4, * and ÷), evaluated left to
    right as written (every operation is parenthesised)."""

    name = "fractions"
    config_class = FractionsConfig

    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        ops = "+-*/" if difficulty >= 4 else "+-"
        max_den = _MAX_DEN[difficulty]
        terms = [_draw_fraction(rng, max_den) for _ in range(_N_TERMS[difficulty])]
        value = terms[0]
        text, additive = _tex(terms[0]), False
        steps: list[str] = []
        for term in terms[1:]:
            op = ops[int(rng.integers(0, len(ops)))]
            new_value = _apply(op, value, term)
            sym = _SYMBOL[op]
            steps.append(f"{_paren(value)} {sym} {_paren(term)} = {fmt_number(new_value)}")
            if op in "*/":
                text = f"({text}) {sym} {_tex(term)}" if additive else f"{text} {sym} {_tex(term)}"
                additive = False
            else:
                text, additive = f"{text} {sym} {_tex(term)}", True
            value = new_value
        answer = fmt_number(value)
        prompt = (
            f"Compute {text}, working left to right. Give the result as a fraction a/b in "
            "lowest terms, or as an integer."
        )
        solution = "\n".join([*steps, final_line(answer)])
        return Draft(prompt, answer, solution, {"expression": text})


def _draw_fraction(rng: Draws, max_den: int) -> Fraction:
    den = int(rng.integers(2, max_den + 1))
    num = int(rng.integers(1, 2 * den))
    return Fraction(num, den)


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b


def _tex(f: Fraction) -> str:
    # Terms are drawn positive; show them unreduced-looking but valid: always a/b form.
    return f"{f.numerator}/{f.denominator}" if f.denominator != 1 else str(f.numerator)


def _paren(f: Fraction) -> str:
    s = fmt_number(f)
    return f"({s})" if "/" in s or f < 0 else s
