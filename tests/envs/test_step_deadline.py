"""One step grades within one deadline: `EnvConfig.checker_timeout` bounds all the checking of a
step (its response, the cloud's answer, a counterfactual), not each graded response."""

from __future__ import annotations

import time

import gymnasium as gym

import offload_gym  # noqa: F401
from offload_gym.models.base import CloudResponse, LocalResponse
from offload_gym.scoring import compare
from offload_gym.tasks.base import Task

SLOW = "The answer is $9^{9^{9^{9}}}$."  # sympy cannot finish it: every grading times out
TIMEOUT_S = 1.0
SLACK_S = 1.5  # the fast path's bounded work, and a restart of the killed sympy helper


class SlowLocal:
    def answer(self, task: Task) -> LocalResponse:
        return LocalResponse(SLOW, 0.5, 10, 0.0)


class SlowCloud:
    def quote(self, task: Task, partial: str | None = None) -> float:
        return 1.0

    def answer(self, task: Task, partial: str | None = None) -> CloudResponse:
        return CloudResponse(SLOW.replace("9}}}", "8}}}"), 1, 1, 1.0, 0.0)


def test_a_step_grading_three_slow_answers_takes_one_deadline():
    compare("2^{10} + x", "x + 1024")  # the sympy helper started, outside the timing
    env = gym.make(
        "OffloadMathRouter-v0",
        local_model=SlowLocal(),
        cloud_model=SlowCloud(),
        checker_timeout=TIMEOUT_S,
        num_tasks=4,
    )
    env.reset(seed=0)
    start = time.monotonic()
    _, _, _, _, info = env.step(0)  # grades the local response and the counterfactual
    elapsed = time.monotonic() - start
    assert elapsed < TIMEOUT_S + SLACK_S, f"{elapsed:.2f} s"  # was about 2 x TIMEOUT_S
    assert info["cloud_correct"] is False
    start = time.monotonic()
    env.unwrapped.peek_outcomes()  # two more gradings, their own deadline
    assert time.monotonic() - start < TIMEOUT_S + SLACK_S
    env.close()
