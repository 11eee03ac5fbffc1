"""What a chat cloud is sent and billed with, shared by every cloud backend (`OpenAICloud`,
`TransformersCloud`, ``offload-gym serve``): the system prompt of each task domain, the prefix
that hands over a local model's partial answer, the task payload for servers that simulate a
cloud, and the price table."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from offload_gym.tasks.base import Task

SYSTEM_PROMPTS = {
    "math": "Solve the problem step by step. End with the final answer as <answer>...</answer>.",
    "code": "Write the requested Python function. Reply with one ```python code block.",
}
"""System prompt by task domain (others get the math one)."""

PARTIAL_PREFIX = "A smaller model started this answer and asked for help:\n"


@dataclass(frozen=True)
class PriceTable:
    """Price of 1,000 tokens (in any currency; USD by convention).

    Attributes:
        input_per_1k: Price of 1,000 prompt tokens.
        output_per_1k: Price of 1,000 completion tokens.
    """

    input_per_1k: float = 0.0025
    output_per_1k: float = 0.01

    def __post_init__(self) -> None:
        for name in ("input_per_1k", "output_per_1k"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite price >= 0, got {v!r}")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1k + completion_tokens * self.output_per_1k) / 1000


def task_payload(task: Task) -> dict[str, Any]:
    """The task as JSON, sent with ``send_task=True`` for servers that simulate a cloud."""
    return {f.name: getattr(task, f.name) for f in dataclasses.fields(task)} | {
        "metadata": dict(task.metadata)
    }
