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
        method: Math: the stage that decided (see `Verdict`). Code: the sandbox's status
            (see `SandboxResult`). ``"timeout"``/``"error"`` of the checker and
            ``"sandbox_error"`` are grading failures worth counting.
    """

    correct: bool
    answer: str | None
    method: str


MAX_GRADED_CHARS = 16_384
"""A math response (local or cloud) is graded on its last this-many characters, where its final
answer is: extraction then costs at most about 0.2 s on the worst input found (thousands of
repeated open tags; a 1 MB cloud answer once held one env step for 126 s)."""


def grade_response(task: Task, response: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> Grade:
    """Grade ``response``: for math, extract its final answer from its last `MAX_GRADED_CHARS`
    characters and compare it with ``task.answer`` (``timeout`` bounds the sympy stage); for
    code, run its code against the task's tests in the sandbox (``Grade.method`` is then the
    sandbox's status; the sandbox's own limits bound it)."""
    if task.domain == "math":
        answer = extract_answer(response[-MAX_GRADED_CHARS:])
        verdict: Verdict = compare(answer, task.answer, timeout=timeout)
        return Grade(verdict.equivalent, answer, verdict.method)
    if task.domain == "code":
        from offload_gym.scoring.code import code_check
        from offload_gym.scoring.sandbox import default_sandbox

        result = default_sandbox().run(code_check(task, response))
        return Grade(result.passed, None, result.status)
    raise ValueError(f"no verifier for domain {task.domain!r}")
