"""Grade a model response against a task, by the task's domain."""

from __future__ import annotations

import time
from typing import NamedTuple

from offload_gym.scoring.equivalence import DEFAULT_TIMEOUT_S, compare
from offload_gym.scoring.extract import EXPLICIT_SOURCES, extract_with_source
from offload_gym.tasks.base import Task

UNDECIDED = frozenset({"unparsed", "timeout", "error", "empty"})
"""`Verdict` methods of a negative that nothing decided: math-verify is asked."""


class Grade(NamedTuple):
    """The verdict on one response.

    Attributes:
        correct: Whether the response's final answer is right.
        answer: The extracted final answer (``None`` when the response states none).
        method: Math: the stage that decided (see `Verdict`), or ``"math-verify"`` when the
            fallback found the answer right (`grade_response`). Code: the sandbox's status
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


def grade_response(
    task: Task, response: str, *, timeout: float = DEFAULT_TIMEOUT_S, math_verify: bool = True
) -> Grade:
    """Grade ``response``: for math, extract its final answer from its last `MAX_GRADED_CHARS`
    characters and compare it with ``task.answer`` (see `grade_math`); for code, run its code
    against the task's tests in the sandbox (``Grade.method`` is then the sandbox's status; the
    sandbox's own limits bound it)."""
    if task.domain == "math":
        return grade_math(task.answer, response, timeout=timeout, math_verify=math_verify)
    if task.domain == "code":
        from offload_gym.scoring.code import code_check
        from offload_gym.scoring.sandbox import default_sandbox

        result = default_sandbox().run(code_check(task, response))
        return Grade(result.passed, None, result.status)
    raise ValueError(f"no verifier for domain {task.domain!r}")


def grade_math(
    gold: str, response: str, *, timeout: float = DEFAULT_TIMEOUT_S, math_verify: bool = True
) -> Grade:
    """The fast path, then math-verify where the fast path cannot decide, all within
    ``timeout`` seconds (plus the helper's start-up on first use).

    The fast path (`extract_with_source`, `compare`) decides a right answer, and a wrong one
    stated explicitly (an answer tag, a box, a ``####`` line, "the answer is", a bare
    expression) and compared by a stage that parsed both sides. Otherwise (an answer found by
    a heuristic, which may be the wrong candidate, or a form the fast path cannot parse)
    math-verify reads the whole response
    (`offload_gym.scoring.symbolic.math_verify_equivalent`). Its "right" is checked
    again by the fast path on the answer math-verify extracted: accepted when the fast path
    agrees or cannot decide, refused when it proves the two different (the false-positive
    classes the fast path refuses stay refused).
    """
    deadline = time.monotonic() + timeout
    text = response[-MAX_GRADED_CHARS:]
    answer, source = extract_with_source(text)
    verdict = compare(answer, gold, timeout=max(deadline - time.monotonic(), 0.0))
    decided = source in EXPLICIT_SOURCES and verdict.method not in UNDECIDED
    remaining = deadline - time.monotonic()
    # A response with no answer at all (not even a number: a refused help request) is wrong
    # without asking math-verify, which costs a helper process in a training loop.
    if verdict.equivalent or decided or answer is None or not math_verify or remaining <= 0:
        return Grade(verdict.equivalent, answer, verdict.method)
    from offload_gym.scoring.symbolic import math_verify_equivalent

    mv = math_verify_equivalent(text, gold, timeout=remaining)
    if mv is None:
        return Grade(False, answer, "timeout")
    if isinstance(mv, str) or not mv[0]:  # an error (math-verify missing): no opinion
        return Grade(False, answer, verdict.method)
    extracted = mv[1] if mv[1] is not None else answer
    check = compare(extracted, gold, timeout=max(deadline - time.monotonic(), 1e-3))
    if check.equivalent or check.method in UNDECIDED:
        return Grade(True, extracted, "math-verify")
    return Grade(False, extracted, check.method)
