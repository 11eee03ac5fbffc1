"""Shared construction of procedural code tasks: prompt, reference solution and hidden tests.

Expected outputs are computed by running the family's own reference source (trusted code this
package generates) on the drawn inputs, so the reference passes its tests by construction.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from offload_gym.tasks.base import Draft

CODE_INSTRUCTIONS = (
    "Answer with the complete function in a ```python code block (a body that continues the "
    "signature also works)."
)


def build_code_task(
    name: str,
    params: list[tuple[str, str]],
    returns: str,
    description: str,
    body: str,
    cases: list[tuple[Any, ...]],
    preamble: str = "",
) -> Draft:
    """The `Draft` of a code task.

    Args:
        name: Function name (the entry point).
        params: ``(name, type)`` of each parameter.
        returns: Return type annotation.
        description: What the function must do (one paragraph).
        body: Reference body, unindented.
        cases: Argument tuples of the hidden tests.
        preamble: Imports placed before the function.
    """
    signature = f"def {name}({', '.join(f'{p}: {t}' for p, t in params)}) -> {returns}:"
    doc = "\n".join(textwrap.wrap(description, 88))
    docstring = textwrap.indent(f'"""{doc}\n"""', "    ")
    code_prefix = (preamble + "\n\n" if preamble else "") + f"{signature}\n{docstring}\n"
    answer = code_prefix + textwrap.indent(body.strip("\n"), "    ") + "\n"
    namespace: dict[str, Any] = {}
    exec(compile(answer, f"<reference {name}>", "exec"), namespace)  # our own generated code
    fn = namespace[name]
    lines = ["def check(candidate):"]
    for args in cases:
        expected = fn(*args)
        lines.append(f"    assert candidate({', '.join(map(repr, args))}) == {expected!r}")
    tests = "\n".join(lines) + "\n"
    prompt = (
        f"Write a Python function `{name}`. {description}\n\n"
        f"```python\n{code_prefix}```\n\n{CODE_INSTRUCTIONS}"
    )
    solution = f"```python\n{answer}```"
    meta = {"entry_point": name, "tests": tests, "code_prefix": code_prefix}
    return Draft(prompt, answer, solution, meta)


def draw_pipeline(
    rng: Any,
    difficulty: int,
    var: str,
    steps: Sequence[tuple[str, str]],
    reducers: Sequence[tuple[str, str, str]],
    final: tuple[str, str],
) -> tuple[list[str], list[str], str]:
    """Draw a described pipeline of 1-4 ``steps`` (more with difficulty) over the variable
    ``var``, ended from difficulty 3 on by one of ``reducers``, else by ``final`` (its
    description and return type). Step texts and expressions may use ``{k}``, a drawn constant.

    Returns ``(descriptions, body lines, return type)``.
    """
    n_steps = min(4, 1 + difficulty // 2 + (difficulty == 5))
    words, body = [], []
    for _ in range(n_steps):
        text, expr = steps[int(rng.integers(0, len(steps)))]
        k = int(rng.integers(1, 6))
        words.append(text.format(k=k))
        body.append(f"{var} = {expr.format(k=k)}")
    if difficulty >= 3:
        text, expr, returns = reducers[int(rng.integers(0, len(reducers)))]
        words.append(text)
        body.append(f"return {expr}")
    else:
        words.append(final[0])
        body.append(f"return {var}")
        returns = final[1]
    return words, body, returns
