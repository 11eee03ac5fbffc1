"""Grading code answers: extract the code of a response and run the task's tests in the sandbox."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from offload_gym.scoring.sandbox import CodeCheck, SandboxLimits, SandboxResult, default_sandbox
from offload_gym.tasks.base import Task

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
MAX_CODE_CHARS = 20_000


def extract_code(response: str) -> str:
    """The response's code: its last fenced ```python block (or, failing that, its last fenced
    block of any language), or the whole response when it has none.

    >>> extract_code("Here:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    'def f():\\n    return 1\\n'
    >>> extract_code("    return x + 1")
    '    return x + 1'
    """
    blocks = _FENCE.findall(response)
    python = [code for lang, code in blocks if lang.lower() in ("python", "py", "python3")]
    if python:
        return python[-1]
    if blocks:
        return blocks[-1][1]
    return response


def build_program(task: Task, code: str) -> str:
    """The program the sandbox runs: the task's ``code_prefix`` (imports and the signature with
    its docstring), then the completion. A complete definition of the entry point simply
    redefines the stub; a body-only completion continues it (indented if it was not)."""
    code = code[:MAX_CODE_CHARS]
    if re.search(rf"^\s*def\s+{re.escape(task.entry_point)}\s*\(", code, re.MULTILINE):
        return task.code_prefix + "    pass\n\n" + code if task.code_prefix else code
    lines = [ln for ln in code.splitlines() if ln.strip()]
    if lines and not lines[0].startswith((" ", "\t")):
        code = textwrap.indent(code, "    ")
    return task.code_prefix + code


def code_check(task: Task, response: str) -> CodeCheck:
    """The sandbox check for ``response`` to the code task ``task``."""
    if task.domain != "code":
        raise ValueError(f"task {task.id!r} is not a code task")
    program = build_program(task, extract_code(response))
    return CodeCheck(program, task.entry_point, task.tests, context=task.code_prefix)


def run_code_checks(
    tasks: Sequence[Task], responses: Sequence[str], limits: SandboxLimits | None = None
) -> list[SandboxResult]:
    """Grade many code responses concurrently on the default sandbox."""
    if len(tasks) != len(responses):
        raise ValueError(f"{len(tasks)} tasks but {len(responses)} responses")
    checks = [code_check(t, r) for t, r in zip(tasks, responses, strict=True)]
    return default_sandbox().run_many(checks, limits)
