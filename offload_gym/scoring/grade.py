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


class GradeMemo:
    """Graded (task, response) pairs, at most ``size`` of them (oldest go first): a response
    repeated within a step (a GRPO group's identical samples, the counterfactual answer) is
    graded once. One memo may be shared by several environments that see the same tasks (a
    vector env's copies of one prompt: `EnvConfig.grade_memo`); grading is a function of the
    task and the text, so sharing changes no verdict, only how often the sandbox runs.

    >>> from offload_gym.tasks.base import Task
    >>> memo = GradeMemo(size=1)
    >>> a, b = Task("t1", "math", "1+1?", "2"), Task("t2", "math", "2+2?", "4")
    >>> memo.put(a, "2", Grade(True, "2", "exact"))
    >>> memo.get(a, "2"), memo.get(a, "3")
    (Grade(correct=True, answer='2', method='exact'), None)
    >>> memo.put(b, "4", Grade(True, "4", "exact"))
    >>> memo.get(a, "2") is None, len(memo)
    (True, 1)
    """

    def __init__(self, size: int = 256) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self._grades: dict[tuple[str, str, str, str], Grade] = {}

    @staticmethod
    def _key(task: Task, text: str) -> tuple[str, str, str, str]:
        # ids alone can repeat across generators; the reference and tests decide the verdict
        return (task.id, task.prompt, task.answer + "\0" + (task.tests or ""), text)

    def get(self, task: Task, text: str) -> Grade | None:
        return self._grades.get(self._key(task, text))

    def put(self, task: Task, text: str, grade: Grade) -> None:
        key = self._key(task, text)
        self._grades.pop(key, None)
        while len(self._grades) >= self.size:
            del self._grades[next(iter(self._grades))]  # oldest first (dicts keep order)
        self._grades[key] = grade

    def __len__(self) -> int:
        return len(self._grades)


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
