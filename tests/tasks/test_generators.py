"""Procedural math families: determinism, difficulty knob, registry, and answers re-derived with
sympy from each task's own statement."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import sympy
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

from offload_gym.tasks import (
    GeneratorConfig,
    Task,
    TaskGenerator,
    list_generators,
    make_generator,
    register_generator,
)

MATH_FAMILIES = [
    "arithmetic",
    "derivatives",
    "fractions",
    "linear_equations",
    "polynomials",
    "word_problems",
]
TRANSFORMS = (*standard_transformations, implicit_multiplication_application, convert_xor)
X = sympy.Symbol("x")


def _parse(text: str) -> sympy.Expr:
    return parse_expr(text, transformations=TRANSFORMS, local_dict={"x": X})


def test_at_least_six_math_families_registered():
    assert set(MATH_FAMILIES) <= set(list_generators("math"))


@pytest.mark.parametrize("name", MATH_FAMILIES)
def test_deterministic_by_seed_and_index(name):
    a, b = make_generator(name, seed=7), make_generator(name, seed=7)
    assert [a[i] for i in range(20)] == [b[i] for i in range(20)]
    assert a[3].prompt == a[3].prompt
    other = make_generator(name, seed=8)
    assert [a[i].prompt for i in range(20)] != [other[i].prompt for i in range(20)]
    ids = {a[i].id for i in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize("name", MATH_FAMILIES)
@pytest.mark.parametrize("difficulty", [1, 3, 5])
def test_difficulty_knob(name, difficulty):
    gen = make_generator(name, seed=0, min_difficulty=difficulty, max_difficulty=difficulty)
    tasks = gen.take(15)
    assert {t.difficulty for t in tasks} == {difficulty}
    for t in tasks:
        assert t.domain == "math" and t.prompt and t.answer
        assert t.solution.rstrip().endswith(f"<answer>{t.answer}</answer>.")


@pytest.mark.parametrize("name", MATH_FAMILIES)
def test_harder_tasks_are_longer(name):
    easy = make_generator(name, seed=0, min_difficulty=1, max_difficulty=1).take(40)
    hard = make_generator(name, seed=0, min_difficulty=5, max_difficulty=5).take(40)
    steps = lambda ts: sum(len(t.solution.splitlines()) + len(t.prompt) / 50 for t in ts)  # noqa: E731
    assert steps(hard) > steps(easy)


def _rational_expr(expr: str) -> sympy.Expr:
    expr = expr.replace("×", "*").replace("÷", "/")
    expr = re.sub(r"(\d+)/(\d+)", r"Rational(\1, \2)", expr)
    return sympy.sympify(expr, locals={"Rational": sympy.Rational})


def _check_with_sympy(task: Task) -> None:
    fam = task.metadata["family"]
    answer = sympy.Rational(task.answer)
    if fam == "arithmetic":
        assert sympy.sympify(task.metadata["expression"]) == answer
    elif fam == "fractions":
        # Fractions a/b are units and operations go left to right: fold term by term.
        tokens = task.metadata["expression"].replace("(", "").replace(")", "").split()
        value = _rational_expr(tokens[0])
        for op, term in zip(tokens[1::2], tokens[2::2], strict=True):
            value = _rational_expr(f"({value}) {op} ({_rational_expr(term)})")
        assert value == answer
    elif fam == "linear_equations":
        m = task.metadata
        if "equation" in m:
            lhs, rhs = m["equation"].split("=")
            assert sympy.solve(sympy.Eq(_parse(lhs), _parse(rhs)), X) == [answer]
        else:
            y = sympy.Symbol("y")
            eqs = []
            for e in m["equations"]:
                lhs, rhs = e.split("=")
                tr = TRANSFORMS
                loc = {"x": X, "y": y}
                eqs.append(
                    sympy.Eq(
                        parse_expr(lhs, transformations=tr, local_dict=loc),
                        parse_expr(rhs, transformations=tr, local_dict=loc),
                    )
                )
            sol = sympy.solve(eqs, [X, y])
            want = sol[X] + sol[y] if m["asks"] == "x + y" else sol[X]
            assert want == answer
    elif fam == "polynomials":
        if task.metadata["question"] == "degree":
            body = task.prompt.split("polynomial ", 1)[1].rstrip("?")
            assert sympy.degree(sympy.expand(_parse(body)), X) == answer
        else:
            m = re.match(r"Let p\(x\) = (.*)\. What is p\((-?\d+)\)\?", task.prompt)
            assert m, task.prompt
            assert _parse(m.group(1)).subs(X, int(m.group(2))) == answer
    elif fam == "derivatives":
        m = re.match(r"Let f\(x\) = (.*)\. What is f'\((-?\d+)\)\?", task.prompt)
        assert m, task.prompt
        assert sympy.diff(_parse(m.group(1)), X).subs(X, int(m.group(2))) == answer
    elif fam == "word_problems":
        steps = task.metadata["steps"]
        previous = None
        for step in steps:
            lhs, rhs = step.split("=")
            assert sympy.sympify(lhs) == sympy.Integer(rhs.strip()), step
            first = int(lhs.split()[0])
            if previous is not None:
                assert first == previous, (steps, task.prompt)
            previous = int(rhs)
        assert previous == answer
        assert re.search(rf"\b{steps[0].split()[0]}\b", task.prompt)
    else:  # pragma: no cover
        raise AssertionError(fam)


@pytest.mark.parametrize("name", MATH_FAMILIES)
def test_answers_agree_with_sympy(name):
    gen = make_generator(name, seed=11)
    for i in range(40):
        _check_with_sympy(gen[i])


def test_registry_refuses_duplicates_and_unknowns():
    @dataclass(frozen=True)
    class Cfg(GeneratorConfig):
        pass

    class Dup(TaskGenerator):
        name = "arithmetic"
        config_class = Cfg

        def _generate(self, rng, difficulty):  # pragma: no cover
            return "p", "1", "s", {}

    with pytest.raises(ValueError, match="already registered"):
        register_generator(Dup)
    with pytest.raises(ValueError, match="registered families"):
        make_generator("no_such_family")
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \[.max_dificulty.\]; valid"):
        make_generator("arithmetic", max_dificulty=3)
    with pytest.raises(ValueError, match="min_difficulty"):
        make_generator("arithmetic", min_difficulty=4, max_difficulty=2)
    with pytest.raises(ValueError, match=r"\[1, 5\]"):
        make_generator("arithmetic", max_difficulty=9)
    with pytest.raises(IndexError):
        make_generator("arithmetic")[-1]


def test_task_validation():
    with pytest.raises(ValueError, match="difficulty"):
        Task(id="a", domain="math", prompt="p", answer="1", difficulty=0)
    with pytest.raises(ValueError, match="domain"):
        Task(id="a", domain="poetry", prompt="p", answer="1")
    with pytest.raises(ValueError, match="prompt"):
        Task(id="a", domain="math", prompt="", answer="1")


def test_draws_are_reproducible_and_uniform():
    from offload_gym.tasks.base import Draws

    a, b = Draws("k"), Draws("k")
    xs = [a.random() for _ in range(20)]
    assert xs == [b.random() for _ in range(20)] and xs != [Draws("j").random() for _ in range(20)]
    d = Draws("uniform")
    counts = [0] * 6
    for _ in range(60_000):
        counts[d.integers(0, 6)] += 1
    assert all(abs(c - 10_000) < 400 for c in counts)  # ~4 standard deviations
    assert all(0 <= u < 1 for u in (d.random() for _ in range(1000)))
    with pytest.raises(ValueError, match="high"):
        d.integers(3, 3)
