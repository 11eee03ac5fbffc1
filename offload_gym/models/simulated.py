"""Simulated local and cloud models: seeded, deterministic per task, emitting real answer strings.

Each model decides per task whether it is right (with a probability set by the task's domain and
difficulty), then writes a response: the reference answer in one of several formats, or a
plausible near-miss. The environment grades the response with the real verifier, so the
simulation exercises the same code paths as a real model.

Every random draw is a hash of ``(seed, model, task.id)``: a task gets the same answer however
many times, in whatever order, and by whichever environment copy it is asked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from offload_gym.models._answers import render_right, render_wrong, uniforms
from offload_gym.models.base import CloudResponse, LocalResponse
from offload_gym.tasks.base import Task


def _check_domain_map(name: str, value: Mapping[str, float]) -> None:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{name} must be a non-empty mapping from domain to a probability")
    for domain, p in value.items():
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{name}[{domain!r}] must be a probability in [0, 1], got {p!r}")


def _check_nonneg(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def success_probability(
    base: Mapping[str, float], slope: float, floor: float, task: Task, model: str
) -> float:
    """``max(floor, base[domain] - slope * (difficulty - 1))``."""
    try:
        p1 = base[task.domain]
    except KeyError:
        raise ValueError(
            f"{model} has no accuracy for domain {task.domain!r}; known domains: {sorted(base)}"
        ) from None
    return max(floor, min(1.0, p1 - slope * (task.difficulty - 1)))


def _normal_from(u1: float, u2: float) -> float:
    """A standard normal draw from two uniforms (Box-Muller)."""
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


@dataclass
class SimulatedLocal:
    """A simulated small on-device model.

    Attributes:
        skill: Probability of a correct answer at difficulty 1, by domain.
        difficulty_slope: Drop of that probability per difficulty level above 1.
        min_skill: Lowest probability of a correct answer, at any difficulty.
        confidence_correlation: rho in [0, 1]. The confidence is
            ``sigmoid(logit(p) + z)`` with ``z = rho * s + sqrt(1 - rho^2) * n``, where ``p`` is the
            success probability, ``s`` the correctness indicator standardised within its
            (domain, difficulty) cell and ``n`` standard normal noise: ``z`` has Pearson
            correlation exactly rho with correctness in each cell, and the sigmoid keeps the
            ranking. rho = 0 gives a confidence that knows only the task's difficulty.
        tokens_per_answer: Tokens of a local answer (for latency and logs).
        seconds_per_token: Simulated local decoding time per token.
        seed: Seed of all draws.
    """

    skill: Mapping[str, float] = field(default_factory=lambda: {"math": 0.85, "code": 0.75})
    difficulty_slope: float = 0.15
    min_skill: float = 0.05
    confidence_correlation: float = 0.6
    tokens_per_answer: int = 120
    seconds_per_token: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        _check_domain_map("skill", self.skill)
        _check_nonneg("difficulty_slope", self.difficulty_slope)
        _check_nonneg("seconds_per_token", self.seconds_per_token)
        if not 0.0 <= self.min_skill <= 1.0:
            raise ValueError(f"min_skill must be in [0, 1], got {self.min_skill!r}")
        if not 0.0 <= self.confidence_correlation <= 1.0:
            raise ValueError(
                f"confidence_correlation must be in [0, 1], got {self.confidence_correlation!r}"
            )
        if self.tokens_per_answer < 1:
            raise ValueError(f"tokens_per_answer must be >= 1, got {self.tokens_per_answer!r}")

    def success_probability(self, task: Task) -> float:
        return success_probability(
            self.skill, self.difficulty_slope, self.min_skill, task, "SimulatedLocal"
        )

    def answer(self, task: Task) -> LocalResponse:
        u = uniforms(self.seed, "local", task.id, 5)
        p = self.success_probability(task)
        correct = u[0] < p
        rho = self.confidence_correlation
        if 0.0 < p < 1.0:
            s = ((1.0 if correct else 0.0) - p) / math.sqrt(p * (1.0 - p))
            z = rho * s + math.sqrt(1.0 - rho * rho) * _normal_from(u[1], u[2])
            pc = min(max(p, 1e-6), 1 - 1e-6)
            confidence = 1.0 / (1.0 + math.exp(-(math.log(pc / (1.0 - pc)) + z)))
        else:
            confidence = p
        text = render_right(task, u[3], u[4]) if correct else render_wrong(task, u[3], u[4])
        return LocalResponse(
            text=text,
            confidence=confidence,
            tokens=self.tokens_per_answer,
            latency_s=self.tokens_per_answer * self.seconds_per_token,
        )


@dataclass
class SimulatedCloud:
    """A simulated cloud LLM with a price table.

    Attributes:
        accuracy: Probability of a correct answer at difficulty 1, by domain.
        difficulty_slope: Drop of that probability per difficulty level above 1.
        min_accuracy: Lowest probability of a correct answer.
        price_per_1k_input: Price of 1,000 prompt tokens (default: USD 2.50 per million).
        price_per_1k_output: Price of 1,000 completion tokens (default: USD 10 per million).
        chars_per_token: Characters per token when counting prompt tokens.
        completion_tokens_base: Completion tokens at difficulty 1.
        completion_tokens_per_level: Extra completion tokens per difficulty level.
        max_completion_tokens: Cap on completion tokens (bounds `quote`).
        base_latency_s: Time to first token.
        tokens_per_second: Decoding speed.
        seed: Seed of all draws.
    """

    needs_task: ClassVar[bool] = True
    """It simulates answers from the task's reference (a server must be sent the task)."""

    accuracy: Mapping[str, float] = field(default_factory=lambda: {"math": 0.97, "code": 0.93})
    difficulty_slope: float = 0.04
    min_accuracy: float = 0.5
    price_per_1k_input: float = 0.0025
    price_per_1k_output: float = 0.01
    chars_per_token: float = 4.0
    completion_tokens_base: int = 80
    completion_tokens_per_level: int = 40
    max_completion_tokens: int = 512
    base_latency_s: float = 0.4
    tokens_per_second: float = 80.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_domain_map("accuracy", self.accuracy)
        for name in (
            "difficulty_slope",
            "price_per_1k_input",
            "price_per_1k_output",
            "base_latency_s",
        ):
            _check_nonneg(name, getattr(self, name))
        if not 0.0 <= self.min_accuracy <= 1.0:
            raise ValueError(f"min_accuracy must be in [0, 1], got {self.min_accuracy!r}")
        if self.chars_per_token <= 0 or self.tokens_per_second <= 0:
            raise ValueError("chars_per_token and tokens_per_second must be > 0")
        if self.max_completion_tokens < 1 or self.completion_tokens_base < 1:
            raise ValueError("max_completion_tokens and completion_tokens_base must be >= 1")

    def success_probability(self, task: Task) -> float:
        return success_probability(
            self.accuracy, self.difficulty_slope, self.min_accuracy, task, "SimulatedCloud"
        )

    def _prompt_tokens(self, task: Task, partial: str | None) -> int:
        chars = len(task.prompt) + (len(partial) if partial else 0)
        return max(1, math.ceil(chars / self.chars_per_token))

    def quote(self, task: Task, partial: str | None = None) -> float:
        return (
            self._prompt_tokens(task, partial) * self.price_per_1k_input
            + self.max_completion_tokens * self.price_per_1k_output
        ) / 1000.0

    def answer(self, task: Task, partial: str | None = None) -> CloudResponse:
        """The cloud's answer; ``partial`` (the local model's attempt) is billed as input but does
        not change the simulated outcome."""
        u = uniforms(self.seed, "cloud", task.id, 4)
        correct = u[0] < self.success_probability(task)
        text = render_right(task, u[1], u[2]) if correct else render_wrong(task, u[1], u[2])
        prompt_tokens = self._prompt_tokens(task, partial)
        spread = 0.5 + u[3]  # +-50% around the mean length
        mean = self.completion_tokens_base + self.completion_tokens_per_level * (
            task.difficulty - 1
        )
        completion = max(1, min(self.max_completion_tokens, round(mean * spread)))
        cost = (
            prompt_tokens * self.price_per_1k_input + completion * self.price_per_1k_output
        ) / 1000.0
        latency = self.base_latency_s + completion / self.tokens_per_second
        return CloudResponse(text, prompt_tokens, completion, cost, latency)
