"""Templated multi-step word problems in the style of GSM8K.

A person starts with some items, and each of ``difficulty + 1`` sentences changes the count
(buying packs, giving some away, sharing equally, doubling). From difficulty 3 on, the question may
ask for money earned by selling the final count at a unit price. Every intermediate value is a
non-negative integer.
"""

from __future__ import annotations

from dataclasses import dataclass

from offload_gym.tasks._fmt import final_line
from offload_gym.tasks.base import Draft, Draws, GeneratorConfig, TaskGenerator
from offload_gym.tasks.registry import register_generator

NAMES = (
    "Ava", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Imani", "Jonas",
    "Keiko", "Luis", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tariq",
)  # fmt: skip
ITEMS = (
    ("marbles", "bags"), ("stickers", "sheets"), ("pencils", "boxes"), ("apples", "crates"),
    ("cookies", "tins"), ("cards", "packs"), ("beads", "jars"), ("eggs", "cartons"),
)  # fmt: skip


@dataclass(frozen=True)
class WordProblemsConfig(GeneratorConfig):
    """Config of the ``word_problems`` family (see `GeneratorConfig`)."""


@register_generator
class WordProblemsGenerator(TaskGenerator):
    """A GSM8K-style story with ``difficulty + 1`` arithmetic steps and an integer answer."""

    name = "word_problems"
    config_class = WordProblemsConfig

    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        name = NAMES[int(rng.integers(0, len(NAMES)))]
        item, units = ITEMS[int(rng.integers(0, len(ITEMS)))]
        count = int(rng.integers(5, 10 * difficulty + 20))
        sentences = [f"{name} has {count} {item}."]
        steps: list[str] = []
        for _ in range(difficulty + 1):
            kind = int(rng.integers(0, 4))
            if kind == 0:
                packs, per = int(rng.integers(2, 6)), int(rng.integers(3, 13))
                new = count + packs * per
                sentences.append(f"Then {name} buys {packs} {units} with {per} {item} in each.")
                steps.append(f"{count} + {packs} * {per} = {new}")
            elif kind == 1 and count > 1:
                lost = int(rng.integers(1, count))
                new = count - lost
                sentences.append(f"{name} gives {lost} {item} to a friend.")
                steps.append(f"{count} - {lost} = {new}")
            elif kind == 2 and count > 1 and _divisors(count):
                divs = _divisors(count)
                parts = divs[int(rng.integers(0, len(divs)))]
                new = count // parts
                sentences.append(
                    f"{name} splits the {item} equally into {parts} groups and keeps one group."
                )
                steps.append(f"{count} / {parts} = {new}")
            else:
                new = count * 2
                sentences.append(f"A neighbour gives {name} as many {item} as {name} already has.")
                steps.append(f"{count} * 2 = {new}")
            count = new
        if difficulty >= 3 and rng.random() < 0.5:
            price = int(rng.integers(2, 10))
            answer = str(count * price)
            sentences.append(
                f"Finally, {name} sells all the {item} for ${price} each. "
                f"How many dollars does {name} earn?"
            )
            steps.append(f"{count} * {price} = {count * price}")
            unit_text = "dollars"
        else:
            answer = str(count)
            sentences.append(f"How many {item} does {name} have now?")
            unit_text = item
        solution = "\n".join([*steps, final_line(answer)])
        return Draft(" ".join(sentences), answer, solution, {"steps": steps, "unit": unit_text})


def _divisors(n: int) -> list[int]:
    """Divisors of ``n`` in [2, 6], so that sharing equally keeps integers."""
    return [d for d in range(2, 7) if n % d == 0 and n // d >= 1]
