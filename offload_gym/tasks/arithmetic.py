"""Multi-step integer arithmetic: ``(17 + 5) * 3 - 48``.

Difficulty sets the number of operations (difficulty + 1) and the size of the operands.
"""

from __future__ import annotations

from dataclasses import dataclass

from offload_gym.tasks._fmt import final_line
from offload_gym.tasks.base import Draft, Draws, GeneratorConfig, TaskGenerator
from offload_gym.tasks.registry import register_generator

_MAX_OPERAND = {1: 20, 2: 50, 3: 100, 4: 500, 5: 1000}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2}


@dataclass(frozen=True)
class ArithmeticConfig(GeneratorConfig):
    """Config of the ``arithmetic`` family (see `GeneratorConfig` for the difficulty range)."""


@register_generator
class ArithmeticGenerator(TaskGenerator):
    """Evaluate an integer expression with ``difficulty + 1`` operations (+, -, *)."""

    name = "arithmetic"
    config_class = ArithmeticConfig

    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        hi = _MAX_OPERAND[difficulty]
        value = int(rng.integers(1, hi + 1))
        text, prec = str(value), 3
        steps: list[str] = []
        for _ in range(difficulty + 1):
            op = "+-*"[int(rng.integers(0, 3))]
            # Keep products small: multiply by a single- or two-digit factor.
            operand = (
                int(rng.integers(2, 13 if difficulty < 4 else 26))
                if op == "*"
                else int(rng.integers(1, hi + 1))
            )
            left = bool(rng.integers(0, 2))
            inner = text if prec >= _PRECEDENCE[op] + (0 if left else 1) else f"({text})"
            if left:
                new_text = f"{inner} {op} {operand}"
                new_value = _apply(op, value, operand)
                steps.append(f"{_p(value)} {op} {operand} = {new_value}")
            else:
                new_text = f"{operand} {op} {inner}"
                new_value = _apply(op, operand, value)
                steps.append(f"{operand} {op} {_p(value)} = {new_value}")
            text, value, prec = new_text, new_value, _PRECEDENCE[op]
        answer = str(value)
        prompt = f"Compute the value of {text}."
        solution = "\n".join([*steps, final_line(answer)])
        return Draft(prompt, answer, solution, {"expression": text})


def _apply(op: str, a: int, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    return a * b


def _p(x: int) -> str:
    return f"({x})" if x < 0 else str(x)
