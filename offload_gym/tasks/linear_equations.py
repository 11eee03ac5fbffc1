"""Linear equations with an integer solution.

Difficulty 1: ``a*x + b = c``; 2: ``a*x + b = c*x + d``; 3: ``a*(x + b) = c*x + d``;
4-5: a system of two equations in x and y, asking for x (5: larger coefficients, asks x + y).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from offload_gym.tasks._fmt import final_line, fmt_poly
from offload_gym.tasks.base import Draft, Draws, GeneratorConfig, Task, TaskGenerator
from offload_gym.tasks.registry import register_generator


@dataclass(frozen=True)
class LinearEquationsConfig(GeneratorConfig):
    """Config of the ``linear_equations`` family (see `GeneratorConfig`)."""


def _nonzero(rng: Draws, lo: int, hi: int) -> int:
    while True:
        v = int(rng.integers(lo, hi + 1))
        if v != 0:
            return v


def _lin(a: int, b: int, var: str = "x") -> str:
    return fmt_poly([b, a], var)


_LIN = re.compile(r"^(?:(-?\d*)x)?\s*(?:([+-])?\s*(\d+))?$")


def _parse_lin(text: str) -> tuple[int, int] | None:
    """``(a, b)`` of ``"ax + b"`` as the generators print it (``"-x + 3"``, ``"7"``, ``"4x"``)."""
    m = _LIN.match(text.strip())
    if not m or not text.strip():
        return None
    coef, sign, const = m.groups()
    a = 0 if coef is None else int(coef + "1") if coef in ("", "-") else int(coef)
    b = 0 if const is None else (-1 if sign == "-" else 1) * int(const)
    return a, b


def _linear_steps(equation: str, x: int) -> list[str] | None:
    """``a(x + b) = cx + d`` or ``ax + b = cx + d``: expand, subtract constants and
    coefficients, divide, one operation a step.

    >>> _linear_steps("4x + 10 = -18", -7)
    ['-18+-10=-28', '-28/4=-7']
    >>> _linear_steps("3(x - 16) = 5x + 10", -29)
    ['3*-16=-48', '10+48=58', '3+-5=-2', '58/-2=-29']
    """
    lhs, _, rhs = equation.partition(" = ")
    steps = []
    m = re.match(r"^(-?\d+)\(x ([+-]) (\d+)\)$", lhs)
    if m:
        a, b = int(m.group(1)), (-1 if m.group(2) == "-" else 1) * int(m.group(3))
        steps.append(f"{a}*{b}={a * b}")
        left: tuple[int, int] | None = (a, a * b)
    else:
        left = _parse_lin(lhs)
    right = _parse_lin(rhs)
    if left is None or right is None or left[0] == right[0]:
        return None
    (a, b), (c, d) = left, right
    # Subtractions are written as additions of the negation (``d+-b``), the same operation
    # Horner's steps use, and ``a-0`` is skipped: fewer kinds of step to learn.
    steps += [f"{d}+{-b}={d - b}"] if b else []
    steps += [f"{a}+{-c}={a - c}"] if c else []
    return [*steps, f"{d - b}/{a - c}={x}"]


@register_generator
class LinearEquationsGenerator(TaskGenerator):
    """Solve a linear equation (or a 2x2 system) whose solution is an integer."""

    name = "linear_equations"
    config_class = LinearEquationsConfig

    @classmethod
    def worked_steps(cls, task: Task) -> list[str] | None:
        """One equation in x (difficulty 1-3): expand, move constants and coefficients,
        divide. A system (4-5): None."""
        if "equation" not in task.metadata:
            return None
        return _linear_steps(task.metadata["equation"], task.metadata["x"])

    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        span = 10 * difficulty
        x = int(rng.integers(-span, span + 1))
        if difficulty <= 3:
            a = _nonzero(rng, -9, 9) if difficulty > 1 else int(rng.integers(2, 10))
            b = int(rng.integers(-20, 21))
            c = a + _nonzero(rng, -6, 6) if difficulty > 1 else 0
            if difficulty == 3:
                # a*(x + b) = c*x + d
                d = a * (x + b) - c * x
                lhs = f"{a}(x {'+' if b >= 0 else '-'} {abs(b)})"
                rhs = _lin(c, d)
                steps = [
                    f"Expand: {_lin(a, a * b)} = {rhs}",
                    f"Collect x: {a - c}x = {d - a * b}",
                    f"x = {d - a * b} / {a - c} = {x}",
                ]
            else:
                d = a * x + b - c * x
                lhs, rhs = _lin(a, b), _lin(c, d)
                steps = [f"Collect x: {a - c}x = {d - b}", f"x = {d - b} / {a - c} = {x}"]
            answer = str(x)
            prompt = f"Solve for x: {lhs} = {rhs}."
            meta: dict[str, Any] = {"equation": f"{lhs} = {rhs}", "x": x}
        else:
            y = int(rng.integers(-span, span + 1))
            hi = 6 if difficulty == 4 else 12
            while True:
                a1, b1, a2, b2 = (_nonzero(rng, -hi, hi) for _ in range(4))
                det = a1 * b2 - a2 * b1
                if det != 0:
                    break
            c1, c2 = a1 * x + b1 * y, a2 * x + b2 * y
            e1 = f"{_two(a1, b1)} = {c1}"
            e2 = f"{_two(a2, b2)} = {c2}"
            ask_sum = difficulty == 5
            target = x + y if ask_sum else x
            answer = str(target)
            question = "x + y" if ask_sum else "x"
            prompt = f"Solve the system {e1} and {e2}. What is {question}?"
            steps = [
                f"Determinant: ({a1})({b2}) - ({a2})({b1}) = {det}",
                f"x = (({c1})({b2}) - ({c2})({b1})) / {det} = {x}",
                f"y = (({a1})({c2}) - ({a2})({c1})) / {det} = {y}",
            ]
            if ask_sum:
                steps.append(f"x + y = {x} + {_p(y)} = {x + y}")
            meta = {"equations": [e1, e2], "x": x, "y": y, "asks": question}
        solution = "\n".join([*steps, final_line(answer)])
        return Draft(prompt, answer, solution, meta)


def _two(a: int, b: int) -> str:
    first = ("-" if a < 0 else "") + ("" if abs(a) == 1 else str(abs(a))) + "x"
    second = ("- " if b < 0 else "+ ") + ("" if abs(b) == 1 else str(abs(b))) + "y"
    return f"{first} {second}"


def _p(v: int) -> str:
    return f"({v})" if v < 0 else str(v)
