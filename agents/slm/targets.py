"""What the skilled-SLM kit teaches a model to write for a task: short worked steps (one binary
operation each, digits least-significant first, then ``####`` and the answer) for math, the
function body for code (`worked_steps`), and the operation drills (`drill_target`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from offload_gym.tasks import Task
from offload_gym.tasks.registry import worked_steps as family_steps


def reverse_digits(text: str) -> str:
    """Every run of digits written least-significant digit first.

    >>> reverse_digits("12*-34=-408")
    '21*-43=-804'
    """
    return re.sub(r"\d+", lambda m: m.group()[::-1], text)


def _generic_steps(task: Task) -> list[str]:
    """The reference solution's lines, labels (``Expand:``) and spaces removed."""
    lines = [ln for ln in (task.solution or "").splitlines() if "<answer>" not in ln]
    return [re.sub(r"^[A-Za-z' ]+:\s*", "", ln).replace(" ", "") for ln in lines if ln.strip()]


def math_steps(task: Task) -> list[str]:
    """One binary operation per step where the task's family has that form
    (`offload_gym.tasks.registry.worked_steps`: polynomials, single-factor derivatives,
    single linear equations), else the reference solution's lines."""
    steps = family_steps(task)
    return steps if steps is not None else _generic_steps(task)


def worked_steps(task: Task) -> str:
    """The target the kit teaches for ``task``: for math, short steps (digits reversed) then
    ``####`` and the answer; for code, the function body (unindented; the grader continues the
    signature with it).

    >>> from offload_gym.tasks import make_generator
    >>> t = make_generator("polynomials", seed=1, max_difficulty=1)[0]
    >>> t.prompt, worked_steps(t)
    ('Let p(x) = 2x. What is p(2)?', '2*2=4;4+0=4####4')
    """
    if task.domain == "code":
        body = task.answer[len(task.code_prefix) :] if task.code_prefix else task.answer
        return "\n".join(
            ln[4:] if ln.startswith("    ") else ln for ln in body.strip("\n").splitlines()
        )
    return reverse_digits(";".join(math_steps(task))) + "####" + task.answer


DRILL_PROMPT = "Drill:\n"
_STEP = re.compile(r"^-?\d+[+*/]-?\d+=-?\d+$")


def drill_target(steps: Sequence[str]) -> tuple[str, list[bool]]:
    """A drill row's target: ``steps`` (digits reversed, as in `worked_steps`) joined by ``;``,
    and a per-character loss mask that is true on each result and its ``;`` (the operands are
    given, the model learns to compute).

    >>> text, mask = drill_target(["-6+1=-5", "8+5=13"])
    >>> text
    '-6+1=-5;8+5=31'
    >>> "".join(c if m else "." for c, m in zip(text, mask))
    '.....-5;....31'
    """
    text = ";".join(reverse_digits(s) for s in steps)
    mask, on = [], False
    for ch in text:
        if ch == "=":
            on = True
            mask.append(False)
            continue
        mask.append(on)
        if ch == ";":
            on = False
    return text, mask
