"""Polynomials: evaluate ``p(a)`` or find the degree of a product.

Difficulty sets the degree (1-5), the coefficient range and the evaluation point. About one task in
four asks for the degree of a product of two polynomials instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from offload_gym.tasks._fmt import final_line, fmt_poly, poly_eval
from offload_gym.tasks.base import Draft, Draws, GeneratorConfig, Task, TaskGenerator
from offload_gym.tasks.registry import register_generator


def horner_steps(coeffs: Sequence[int], point: int) -> list[str]:
    """Steps evaluating the polynomial (constant term first) at ``point`` by Horner's rule.

    >>> horner_steps([1, 0, 2], 3)
    ['2*3=6', '6+0=6', '6*3=18', '18+1=19']
    """
    acc = coeffs[-1]
    steps = []
    for c in reversed(coeffs[:-1]):
        t = acc * point
        steps += [f"{acc}*{point}={t}", f"{t}+{c}={t + c}"]
        acc = t + c
    return steps or [f"{acc}={acc}"]


@dataclass(frozen=True)
class PolynomialsConfig(GeneratorConfig):
    """Config of the ``polynomials`` family.

    Attributes:
        degree_question_rate: Probability that a task asks for the degree of a product rather
            than a value.
    """

    degree_question_rate: float = 0.25

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.degree_question_rate <= 1.0:
            raise ValueError(
                f"degree_question_rate must be in [0, 1], got {self.degree_question_rate}"
            )


def random_poly(rng: Draws, degree: int, coef: int) -> list[int]:
    """Integer coefficients from the constant term up, with a non-zero leading coefficient."""
    coeffs = [int(c) for c in rng.integers(-coef, coef + 1, size=degree + 1)]
    while coeffs[-1] == 0:
        coeffs[-1] = int(rng.integers(-coef, coef + 1))
    return coeffs


@register_generator
class PolynomialsGenerator(TaskGenerator):
    """Evaluate an integer polynomial at an integer point, or give the degree of a product."""

    name = "polynomials"
    config_class = PolynomialsConfig
    config: PolynomialsConfig

    @classmethod
    def worked_steps(cls, task: Task) -> list[str] | None:
        """A value by Horner's rule; a product's degree as the sum of its factors' degrees."""
        meta = task.metadata
        if meta.get("question") == "value":
            return horner_steps(meta["coefficients"], meta["point"])
        if meta.get("question") == "degree":
            da, db = (len(f) - 1 for f in meta["factors"])
            return [f"{da}+{db}={da + db}"]
        return None

    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        coef = 3 + 2 * difficulty
        if rng.random() < self.config.degree_question_rate:
            da, db = int(rng.integers(1, difficulty + 2)), int(rng.integers(1, difficulty + 2))
            p, q = random_poly(rng, da, coef), random_poly(rng, db, coef)
            answer = str(da + db)
            prompt = f"What is the degree of the polynomial ({fmt_poly(p)})({fmt_poly(q)})?"
            steps = [
                f"The first factor has degree {da} and the second degree {db}.",
                f"The leading terms multiply to a non-zero term of degree {da} + {db} = {da + db}.",
            ]
            meta: dict[str, Any] = {"question": "degree", "factors": [p, q]}
        else:
            p = random_poly(rng, difficulty, coef)
            point = int(rng.integers(-difficulty - 1, difficulty + 2))
            value = poly_eval(p, point)
            answer = str(value)
            prompt = f"Let p(x) = {fmt_poly(p)}. What is p({point})?"
            parts = [f"{c}*({point})^{k}" for k, c in enumerate(p) if c != 0]
            steps = [f"p({point}) = " + " + ".join(reversed(parts)) + f" = {value}"]
            meta = {"question": "value", "coefficients": p, "point": point}
        solution = "\n".join([*steps, final_line(answer)])
        return Draft(prompt, answer, solution, meta)
