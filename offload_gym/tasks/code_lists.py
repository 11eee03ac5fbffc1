"""List transforms: a pipeline of filters, maps and reorderings, optionally reduced at the end.

Difficulty sets the pipeline's length (1-4 steps) and, from 3, a final reduction.
"""

from __future__ import annotations

from dataclasses import dataclass

from offload_gym.tasks._code import build_code_task, draw_pipeline
from offload_gym.tasks.base import Draft, Draws, GeneratorConfig, TaskGenerator
from offload_gym.tasks.registry import register_generator

_STEPS = [
    ("keep only the even numbers", "[v for v in xs if v % 2 == 0]"),
    ("keep only the numbers greater than {k}", "[v for v in xs if v > {k}]"),
    ("drop the negative numbers", "[v for v in xs if v >= 0]"),
    ("square every number", "[v * v for v in xs]"),
    ("add {k} to every number", "[v + {k} for v in xs]"),
    ("multiply every number by {k}", "[v * {k} for v in xs]"),
    ("replace every number by its absolute value", "[abs(v) for v in xs]"),
    ("sort the numbers in ascending order", "sorted(xs)"),
    ("reverse the list", "xs[::-1]"),
    ("remove duplicates, keeping first occurrences", "list(dict.fromkeys(xs))"),
]
_REDUCERS = [
    ("return their sum", "sum(xs)", "int"),
    ("return how many numbers are left", "len(xs)", "int"),
    ("return the largest number, or 0 if none is left", "max(xs, default=0)", "int"),
    ("return the smallest number, or 0 if none is left", "min(xs, default=0)", "int"),
]


@dataclass(frozen=True)
class CodeListsConfig(GeneratorConfig):
    """Config of the ``code_lists`` family (see `GeneratorConfig`)."""


@register_generator
class CodeListsGenerator(TaskGenerator):
    """Implement ``transform(xs)``: a described pipeline over a list of integers."""

    name = "code_lists"
    domain = "code"
    config_class = CodeListsConfig

    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        words, body, returns = draw_pipeline(
            rng, difficulty, "xs", _STEPS, _REDUCERS, ("return the resulting list", "list[int]")
        )
        description = "Given a list of integers xs, " + ", then ".join(words) + "."
        cases = [([int(v) for v in rng.integers(-10, 11, size=int(rng.integers(0, 9)))],)
                 for _ in range(6)]  # fmt: skip
        cases.append(([],))
        return build_code_task(
            "transform", [("xs", "list[int]")], returns, description, "\n".join(body), cases
        )
