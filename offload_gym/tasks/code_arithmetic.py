"""Arithmetic functions: ``f(x, y)`` returning an integer formula of its arguments.

Difficulty sets the number of terms (difficulty + 1) and brings in floor division, modulo,
``abs``, ``max`` and ``min``.
"""

from __future__ import annotations

from dataclasses import dataclass

from offload_gym.tasks._code import build_code_task
from offload_gym.tasks.base import Draft, Draws, GeneratorConfig, TaskGenerator
from offload_gym.tasks.registry import register_generator

_TERMS = {
    1: ["{a} * x", "{a} * y", "x", "y"],
    2: ["x * y", "x * x", "{a} * x", "{a} * y"],
    3: ["x // {k}", "y % {k}", "x * y", "{a} * x"],
    4: ["abs(x - y)", "max(x, y)", "min(x, y)", "x // {k}", "y % {k}"],
    5: ["abs(x - y)", "max(x, y) * {a}", "(x + y) // {k}", "(x * y) % {k}", "x * x * y"],
}


@dataclass(frozen=True)
class CodeArithmeticConfig(GeneratorConfig):
    """Config of the ``code_arithmetic`` family (see `GeneratorConfig`)."""


@register_generator
class CodeArithmeticGenerator(TaskGenerator):
    """Implement ``f(x, y)`` returning a given integer formula."""

    name = "code_arithmetic"
    domain = "code"
    config_class = CodeArithmeticConfig

    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        terms: list[str] = []
        for _ in range(difficulty + 1):
            level = int(rng.integers(1, difficulty + 1))
            pool = _TERMS[level]
            template = pool[int(rng.integers(0, len(pool)))]
            term = template.format(a=int(rng.integers(2, 10)), k=int(rng.integers(2, 8)))
            sign = " - " if terms and rng.random() < 0.4 else " + "
            terms.append((sign if terms else "") + term)
        const = int(rng.integers(-9, 10))
        formula = "".join(terms) + (f" + {const}" if const >= 0 else f" - {-const}")
        cases = [(int(rng.integers(-20, 21)), int(rng.integers(-20, 21))) for _ in range(6)]
        description = (
            f"Given integers x and y, return the value of {formula} "
            "(with Python's // and % semantics)."
        )
        prompt, answer, solution, meta = build_code_task(
            "f", [("x", "int"), ("y", "int")], "int", description, f"return {formula}", cases
        )
        meta["formula"] = formula
        return Draft(prompt, answer, solution, meta)
