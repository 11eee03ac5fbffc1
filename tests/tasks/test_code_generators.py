"""Procedural code families: deterministic, difficulty knob, and reference solutions that pass
their own hidden tests in the sandbox while plausible bugs fail them."""

from __future__ import annotations

import pytest

from offload_gym.models._answers import wrong_code
from offload_gym.scoring.code import run_code_checks
from offload_gym.tasks import list_generators, make_generator

CODE_FAMILIES = ["code_algorithms", "code_arithmetic", "code_lists", "code_strings"]


def test_four_code_families_registered():
    assert set(CODE_FAMILIES) <= set(list_generators("code"))


@pytest.mark.parametrize("name", CODE_FAMILIES)
def test_deterministic_and_complete(name):
    a, b = make_generator(name, seed=4), make_generator(name, seed=4)
    assert [a[i] for i in range(10)] == [b[i] for i in range(10)]
    for t in a.take(10):
        assert t.domain == "code" and t.entry_point and "def check(candidate)" in t.tests
        assert t.answer.startswith(t.code_prefix) and f"def {t.entry_point}(" in t.prompt
        assert t.solution.startswith("```python\n")


@pytest.mark.parametrize("name", CODE_FAMILIES)
@pytest.mark.parametrize("difficulty", [1, 5])
def test_difficulty_knob(name, difficulty):
    gen = make_generator(name, min_difficulty=difficulty, max_difficulty=difficulty)
    assert {t.difficulty for t in gen.take(8)} == {difficulty}


@pytest.mark.parametrize("name", CODE_FAMILIES)
def test_references_pass_and_bugs_mostly_fail(name):
    tasks = make_generator(name, seed=9).take(30)
    results = run_code_checks(tasks, [t.solution for t in tasks])
    assert all(r.passed for r in results), [
        (t.id, r) for t, r in zip(tasks, results, strict=True) if not r.passed
    ]
    broken = run_code_checks(tasks, [f"```python\n{wrong_code(t.answer, 0.3)}```" for t in tasks])
    assert sum(not r.passed for r in broken) >= 0.7 * len(tasks)
    dead = run_code_checks(tasks, [f"def {t.entry_point}(*args):\n    return None" for t in tasks])
    assert not any(r.passed for r in dead)
