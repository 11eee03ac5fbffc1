"""Each family's worked steps (`TaskGenerator.worked_steps`): every step is a true binary
operation, and the last one's result is the task's answer."""

import re
from fractions import Fraction

import pytest

from offload_gym.tasks import list_generators, make_generator
from offload_gym.tasks.registry import worked_steps

STEP = re.compile(r"^(-?\d+)([+*/])(-?\d+)=(-?\d+)$")
WITH_STEPS = {"polynomials": (1, 5), "derivatives": (1, 3), "linear_equations": (1, 3)}


def _value(step: str) -> int:
    m = STEP.match(step)
    assert m, step
    a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
    got = Fraction(a + b) if op == "+" else Fraction(a * b) if op == "*" else Fraction(a, b)
    assert got == c, step
    return c


@pytest.mark.parametrize("family", sorted(WITH_STEPS))
def test_every_step_is_true_and_ends_at_the_answer(family):
    lo, hi = WITH_STEPS[family]
    gen = make_generator(family, seed=5, min_difficulty=lo, max_difficulty=hi)
    for task in gen.take(300):
        steps = worked_steps(task)
        assert steps, task.id
        if len(steps) == 1 and "=" in steps[0] and STEP.match(steps[0]) is None:
            assert steps[0] == f"{task.answer}={task.answer}"  # a constant polynomial
            continue
        assert str(_value(steps[-1])) == task.answer, (task.id, steps)
        for step in steps[:-1]:
            _value(step)


def test_families_without_the_form_and_unknown_tasks_give_none():
    for family in ("arithmetic", "fractions", "word_problems", "code_lists"):
        assert worked_steps(make_generator(family, seed=0)[0]) is None
    product = make_generator("derivatives", seed=0, min_difficulty=4, max_difficulty=4)[0]
    system = make_generator("linear_equations", seed=0, min_difficulty=4, max_difficulty=4)[0]
    assert worked_steps(product) is None and worked_steps(system) is None
    from dataclasses import replace

    assert worked_steps(replace(product, metadata={"family": "no-such-family"})) is None
    assert set(WITH_STEPS) <= set(list_generators())
