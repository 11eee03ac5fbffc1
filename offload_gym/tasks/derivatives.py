"""Derivatives of polynomials evaluated at a point: ``f(x) = 3x^3 - 2x + 1; f'(2) = ?``.

Difficulty 1-3: a single polynomial of degree difficulty + 1; 4-5: a product of two polynomials
(product rule), evaluated at a larger point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offload_gym.tasks._fmt import final_line, fmt_poly, poly_deriv, poly_eval
from offload_gym.tasks.base import Draft, Draws, GeneratorConfig, Task, TaskGenerator
from offload_gym.tasks.polynomials import horner_steps, random_poly
from offload_gym.tasks.registry import register_generator


@dataclass(frozen=True)
class DerivativesConfig(GeneratorConfig):
    """Config of the ``derivatives`` family (see `GeneratorConfig`)."""


@register_generator
class DerivativesGenerator(TaskGenerator):
    """Compute ``f'(a)`` for a polynomial ``f`` (or a product of two, from difficulty 4)."""

    name = "derivatives"
    config_class = DerivativesConfig

    @classmethod
    def worked_steps(cls, task: Task) -> list[str] | None:
        """A single polynomial (difficulty 1-3): each term's derivative coefficient, then the
        derivative's value by Horner's rule. A product (4-5): None."""
        factors = task.metadata.get("factors", ())
        if len(factors) != 1:
            return None
        c = factors[0]
        deriv = [k * c[k] for k in range(1, len(c))]
        steps = [f"{k}*{c[k]}={k * c[k]}" for k in range(len(c) - 1, 0, -1) if c[k]]
        return steps + horner_steps(deriv or [0], task.metadata["point"])

    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        point = int(rng.integers(-difficulty, difficulty + 1))
        if difficulty <= 3:
            f = random_poly(rng, difficulty + 1, 9)
            df = poly_deriv(f)
            value = poly_eval(df, point)
            prompt = f"Let f(x) = {fmt_poly(f)}. What is f'({point})?"
            steps = [f"f'(x) = {fmt_poly(df)}", f"f'({point}) = {value}"]
            meta: dict[str, Any] = {"factors": [f], "point": point}
        else:
            u = random_poly(rng, difficulty - 2, 6)
            v = random_poly(rng, 2, 6)
            du, dv = poly_deriv(u), poly_deriv(v)
            value = poly_eval(du, point) * poly_eval(v, point) + poly_eval(u, point) * poly_eval(
                dv, point
            )
            prompt = f"Let f(x) = ({fmt_poly(u)})({fmt_poly(v)}). What is f'({point})?"
            steps = [
                "Product rule: f'(x) = u'(x)v(x) + u(x)v'(x)",
                f"u({point}) = {poly_eval(u, point)}, u'({point}) = {poly_eval(du, point)}",
                f"v({point}) = {poly_eval(v, point)}, v'({point}) = {poly_eval(dv, point)}",
                f"f'({point}) = {value}",
            ]
            meta = {"factors": [u, v], "point": point}
        answer = str(value)
        solution = "\n".join([*steps, final_line(answer)])
        return Draft(prompt, answer, solution, meta)
