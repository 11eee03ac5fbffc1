"""What the skilled-SLM kit teaches a model to write for a task: short worked steps (one binary
operation each, digits least-significant first, then ``####`` and the answer) for math, the
function body for code (`worked_steps`), and the operation drills (`drill_target`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from offload_gym.tasks import Task


def reverse_digits(text: str) -> str:
    """Every run of digits written least-significant digit first.

    >>> reverse_digits("12*-34=-408")
    '21*-43=-804'
    """
    return re.sub(r"\d+", lambda m: m.group()[::-1], text)


def _horner(coeffs: Sequence[int], point: int) -> list[str]:
    """Steps evaluating the polynomial (constant term first) at ``point`` by Horner's rule."""
    acc = coeffs[-1]
    steps = []
    for c in reversed(coeffs[:-1]):
        t = acc * point
        steps += [f"{acc}*{point}={t}", f"{t}+{c}={t + c}"]
        acc = t + c
    return steps or [f"{acc}={acc}"]


def _generic_steps(task: Task) -> list[str]:
    """The reference solution's lines, labels (``Expand:``) and spaces removed."""
    lines = [ln for ln in (task.solution or "").splitlines() if "<answer>" not in ln]
    return [re.sub(r"^[A-Za-z' ]+:\s*", "", ln).replace(" ", "") for ln in lines if ln.strip()]


_LIN = re.compile(r"^(?:(-?\d*)x)?\s*(?:([+-])?\s*(\d+))?$")


def _parse_lin(text: str) -> tuple[int, int] | None:
    """``(a, b)`` of ``"ax + b"`` as the generators print it (``"-x + 3"``, ``"7"``, ``"4x"``)."""
    m = _LIN.match(text.strip())
    if not m or not text.strip():
        return None
    coef, sign, const = m.groups()
    a = 0 if coef is None else int(coef + "1") if coef in ("", "-") else int(coef)
    b = 0 if const is None else (-1 if sign == "-" else 1) * int(const)
    return a, b


def _linear_steps(equation: str, x: int) -> list[str] | None:
    """``a(x + b) = cx + d`` or ``ax + b = cx + d``: expand, subtract constants and
    coefficients, divide, one operation a step.

    >>> _linear_steps("4x + 10 = -18", -7)
    ['-18+-10=-28', '-28/4=-7']
    >>> _linear_steps("3(x - 16) = 5x + 10", -29)
    ['3*-16=-48', '10+48=58', '3+-5=-2', '58/-2=-29']
    """
    lhs, _, rhs = equation.partition(" = ")
    steps = []
    m = re.match(r"^(-?\d+)\(x ([+-]) (\d+)\)$", lhs)
    if m:
        a, b = int(m.group(1)), (-1 if m.group(2) == "-" else 1) * int(m.group(3))
        steps.append(f"{a}*{b}={a * b}")
        left: tuple[int, int] | None = (a, a * b)
    else:
        left = _parse_lin(lhs)
    right = _parse_lin(rhs)
    if left is None or right is None or left[0] == right[0]:
        return None
    (a, b), (c, d) = left, right
    # Subtractions are written as additions of the negation (``d+-b``), the same operation
    # Horner's steps use, and ``a-0`` is skipped: fewer kinds of step to learn.
    steps += [f"{d}+{-b}={d - b}"] if b else []
    steps += [f"{a}+{-c}={a - c}"] if c else []
    return [*steps, f"{d - b}/{a - c}={x}"]


def math_steps(task: Task) -> list[str]:
    """One binary operation per step where the family's metadata allows (polynomials and
    single-factor derivatives by Horner's rule), else the reference solution's lines."""
    meta = task.metadata
    family = meta.get("family")
    if family == "polynomials" and meta.get("question") == "value":
        return _horner(meta["coefficients"], meta["point"])
    if family == "polynomials" and meta.get("question") == "degree":
        da, db = (len(f) - 1 for f in meta["factors"])
        return [f"{da}+{db}={da + db}"]
    if family == "linear_equations" and "equation" in meta:
        steps = _linear_steps(meta["equation"], meta["x"])
        if steps is not None:
            return steps
    if family == "derivatives" and len(meta.get("factors", ())) == 1:
        c = meta["factors"][0]
        deriv = [k * c[k] for k in range(1, len(c))]
        steps = [f"{k}*{c[k]}={k * c[k]}" for k in range(len(c) - 1, 0, -1) if c[k]]
        return steps + _horner(deriv or [0], meta["point"])
    return _generic_steps(task)


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
