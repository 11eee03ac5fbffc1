"""String transforms: a pipeline over a short text, optionally reduced to a count or a test.

Difficulty sets the pipeline's length and, from 3, a final reduction.
"""

from __future__ import annotations

from dataclasses import dataclass

from offload_gym.tasks._code import build_code_task, draw_pipeline
from offload_gym.tasks.base import Draft, Draws, GeneratorConfig, TaskGenerator
from offload_gym.tasks.registry import register_generator

_WORDS = (
    "apple river stone cloud Quiet tiger Level noon Data moon sun Code radar echo lamp "
    "Bright green kayak seven tree"
).split()
_STEPS = [
    ("convert it to lower case", "s.lower()"),
    ("convert it to upper case", "s.upper()"),
    ("remove every vowel (a, e, i, o, u, either case)",
     "''.join(c for c in s if c.lower() not in 'aeiou')"),
    ("reverse it", "s[::-1]"),
    ("replace every space with an underscore", "s.replace(' ', '_')"),
    ("reverse the order of its space-separated words", "' '.join(s.split(' ')[::-1])"),
    ("double every character", "''.join(c * 2 for c in s)"),
    ("keep only the letters", "''.join(c for c in s if c.isalpha())"),
]  # fmt: skip
_REDUCERS = [
    ("return the number of vowels (a, e, i, o, u, either case)",
     "sum(c.lower() in 'aeiou' for c in s)", "int"),
    ("return its length", "len(s)", "int"),
    ("return True if it reads the same backwards, else False", "s == s[::-1]", "bool"),
    ("return the number of distinct characters", "len(set(s))", "int"),
]  # fmt: skip


@dataclass(frozen=True)
class CodeStringsConfig(GeneratorConfig):
    """Config of the ``code_strings`` family (see `GeneratorConfig`)."""


@register_generator
class CodeStringsGenerator(TaskGenerator):
    """Implement ``process(s)``: a described pipeline over a string."""

    name = "code_strings"
    domain = "code"
    config_class = CodeStringsConfig

    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        words, body, returns = draw_pipeline(
            rng, difficulty, "s", _STEPS, _REDUCERS, ("return the result", "str")
        )
        description = "Given a string s, " + ", then ".join(words) + "."
        cases = []
        for _ in range(6):
            n = int(rng.integers(1, 4))
            cases.append((" ".join(_WORDS[int(rng.integers(0, len(_WORDS)))] for _ in range(n)),))
        cases.append(("",))
        return build_code_task(
            "process", [("s", "str")], returns, description, "\n".join(body), cases
        )
