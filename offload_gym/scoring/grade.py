"""Grade a model response against a task, by the task's domain."""

from __future__ import annotations

from typing import NamedTuple

from offload_gym.scoring.equivalence import DEFAULT_TIMEOUT_S, Verdict, compare
from offload_gym.scoring.extract import extract_answer
from offload_gym.tasks.base import Task


class Grade(NamedTuple):
    """The verdict on one response.

    Attributes:
        correct: Whether the response's final answer is right.
        answer: The extracted final answer (``None`` when the response states none).
        method: The stage that decided (see `Verdict`); ``"timeout"`` and ``"error"`` are
            grading failures worth counting.
    """

    correct: bool
    answer: str | None
    method: str


def grade_response(task: Task, response: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> Grade:
    """Extract the final answer of ``response`` and check it against ``task.answer``."""
    if task.domain == "math":
        answer = extract_answer(response)
        verdict: Verdict = compare(answer, task.answer, timeout=timeout)
        return Grade(verdict.equivalent, answer, verdict.method)
    raise NotImplementedError(f"no verifier for domain {task.domain!r} yet")
