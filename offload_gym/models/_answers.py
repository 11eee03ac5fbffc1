"""Answer strings for simulated models: the right answer in varied formats, or a plausibly
wrong one. Both go through the real verifier."""

from __future__ import annotations

import hashlib
import re
import struct
from fractions import Fraction

from offload_gym.scoring.equivalence import normalize
from offload_gym.scoring.numbers import parse_number
from offload_gym.tasks.base import Task

_INV_2_53 = 2.0**-53


def uniforms(seed: int, salt: str, task_id: str, n: int) -> list[float]:
    """``n`` uniforms in [0, 1), a deterministic function of ``(seed, salt, task_id)``.

    Hash-derived (BLAKE2b) rather than a seeded generator: an order of magnitude cheaper per
    task, and independent of how many tasks were seen before.
    """
    if not 1 <= n <= 8:
        raise ValueError(f"n must be in [1, 8], got {n}")
    digest = hashlib.blake2b(f"{seed}\x1f{salt}\x1f{task_id}".encode(), digest_size=8 * n).digest()
    return [(x >> 11) * _INV_2_53 for x in struct.unpack(f"<{n}Q", digest)]


def render_right(task: Task, u: float, u_fmt: float) -> str:
    """A correct response: the task's worked steps (when known) and the answer in one of the
    formats the extractor reads, sometimes written in an equivalent form. For code, the
    reference solution in a fenced block, or (one time in five) as a bare body."""
    if task.domain == "code":
        return _render_code(task, task.answer, u_fmt)
    answer = _equivalent_form(task.answer, u)
    body = _steps(task)
    return body + _final(answer, u_fmt)


def render_wrong(task: Task, u: float, u_fmt: float) -> str:
    """A plausibly wrong response: a near-miss of the reference answer (for code, the reference
    with one operator, constant or return value changed)."""
    if task.domain == "code":
        return _render_code(task, wrong_code(task.answer, u), u_fmt)
    wrong = wrong_answer(task.answer, u)
    return "Let me work through this step by step.\n" + _final(wrong, u_fmt)


def _steps(task: Task) -> str:
    if task.solution:
        lines = task.solution.splitlines()
        return "\n".join(lines[:-1]) + "\n" if len(lines) > 1 else ""
    return "Let me work through this step by step.\n"


def _final(answer: str, u: float) -> str:
    if u < 0.4:
        return f"The answer is <answer>{answer}</answer>."
    if u < 0.65:
        return f"Therefore, the final answer is $\\boxed{{{answer}}}$."
    if u < 0.85:
        return f"#### {answer}"
    return f"The answer is {answer}."


def _equivalent_form(answer: str, u: float) -> str:
    num = parse_number(answer)
    if num is None or u < 0.7:
        return answer
    value = num.value
    if value.denominator == 1:
        n = value.numerator
        return f"{n:,}" if abs(n) >= 1000 else f"{n}.0"
    if _terminates(value):
        return _decimal(value)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _terminates(f: Fraction) -> bool:
    d = f.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def _decimal(f: Fraction) -> str:
    s = f"{float(f):.10f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def wrong_answer(answer: str, u: float) -> str:
    """A near-miss of ``answer`` that the checker will not accept.

    >>> wrong_answer("12", 0.1) != "12"
    True
    """
    num = parse_number(answer)
    if num is not None and num.value.denominator == 1:
        n, k = num.value.numerator, int(u * 1e6)
        options = [n + 1 + k % 9, n - 1 - k % 7, 2 * n if n else 1, -n if n else -1, n + 10]
        if n % 2 == 0 and n:
            options.append(n // 2)
        return str(options[int(u * len(options)) % len(options)])
    if num is not None:
        value = num.value
        k = int(u * 1e6)
        candidates: list[Fraction] = [
            value + 1 + k % 9,
            value - 1 - k % 7,
            value * 2 if value != 0 else Fraction(1),
            -value if value != 0 else Fraction(-1),
            value + 10,
        ]
        if value.denominator != 1:
            candidates.append(Fraction(value.numerator + 1, value.denominator))
        elif value % 2 == 0 and value != 0:
            candidates.append(value / 2)
        pick = candidates[int(u * len(candidates)) % len(candidates)]
        if pick == value:
            pick = value + 1
        if pick.denominator == 1:
            return str(pick.numerator)
        return f"{pick.numerator}/{pick.denominator}"
    digits = list(re.finditer(r"\d+", answer))
    if digits:
        m = digits[int(u * len(digits)) % len(digits)]
        new = str(int(m.group()) + 1 + int(u * 97) % 5)
        out = answer[: m.start()] + new + answer[m.end() :]
    else:
        out = f"{answer} + 1"
    return out if normalize(out) != normalize(answer) else f"{answer} + 1"


def _render_code(task: Task, code: str, u: float) -> str:
    if u < 0.2 and task.code_prefix and code.startswith(task.code_prefix):
        return code[len(task.code_prefix) :]  # a body-only completion
    return f"Here is the function.\n\n```python\n{code}```\n"


_MUTATIONS = (
    (" + ", " - "),
    (" - ", " + "),
    (" < ", " <= "),
    (" > ", " >= "),
    (" == ", " != "),
    (" * ", " + "),
    ("% 2", "% 3"),
    ("[::-1]", ""),
    ("max(", "min("),
    ("min(", "max("),
    (".lower()", ".upper()"),
)


def wrong_code(code: str, u: float) -> str:
    """The reference ``code`` with one plausible bug: a final result off by one (by its return
    annotation), a flipped operator or bound, a changed constant, or a ``None`` result."""
    body_start = code.rfind('"""') + 3 if '"""' in code else 0
    head, body = code[:body_start], code[body_start:]
    if u < 0.75:
        changed = _wrong_return(code, body)
        if changed is not None:
            return head + changed
    # Operator bugs outside loop conditions (a flipped `while` test would hang, not err).
    loop_free = "\n".join(ln for ln in body.splitlines() if not ln.lstrip().startswith("while"))
    options = [m for m in _MUTATIONS if m[0] in loop_free]
    if options:
        old, new = options[int(u * len(options)) % len(options)]
        lines = body.splitlines(keepends=True)
        candidates = [i for i, ln in enumerate(lines)
                      if old in ln and not ln.lstrip().startswith("while")]  # fmt: skip
        i = candidates[int(u * 1e6) % len(candidates)]
        lines[i] = lines[i].replace(old, new, 1)
        return head + "".join(lines)
    digits = list(re.finditer(r"(?<![\w.])\d+", body))
    if digits:
        m = digits[int(u * len(digits)) % len(digits)]
        return head + body[: m.start()] + str(int(m.group()) + 1) + body[m.end() :]
    return head + re.sub(r"return (.+)", r"return None", body, count=1)


_RETURN_BUGS = {
    "int": "({}) + 1",
    "float": "({}) + 1.0",
    "str": "({}) + '.'",
    "bool": "not ({})",
    "list": "({}) + [None]",
}


def _wrong_return(code: str, body: str) -> str | None:
    """The body with its last ``return`` changed according to the return annotation."""
    m = re.search(r"def\s+\w+\s*\(.*?\)\s*->\s*([A-Za-z]+)", code, re.DOTALL)
    returns = list(re.finditer(r"^(\s*)return (.+)$", body, re.MULTILINE))
    if m is None or m.group(1) not in _RETURN_BUGS or not returns:
        return None
    last = returns[-1]
    bug = _RETURN_BUGS[m.group(1)].format(last.group(2).strip())
    return body[: last.start()] + f"{last.group(1)}return {bug}" + body[last.end() :]
