"""grade_response: bounded work on huge responses, the final answer still found."""

from offload_gym.scoring.grade import MAX_GRADED_CHARS, grade_response
from offload_gym.tasks import Task

TASK = Task(id="t", domain="math", prompt="2 + 2?", answer="4")


def test_extraction_never_sees_more_than_the_documented_maximum(monkeypatch):
    # a megabyte of repeated open tags (quadratic for extraction when graded whole: minutes)
    from offload_gym.scoring import grade

    seen = []
    real = grade.extract_with_source
    monkeypatch.setattr(
        grade, "extract_with_source", lambda text: seen.append(len(text)) or real(text)
    )
    g = grade_response(TASK, "<answer>" * 125_000 + "4")
    assert seen == [MAX_GRADED_CHARS]
    assert g.method in ("exact", "numeric", "unparsed")  # a verdict, never an exception


def test_a_huge_ordinary_response_is_graded_on_its_tail():
    response = "2 + 2 is what we add. " * 50_000 + "So the answer is <answer>4</answer>."
    g = grade_response(TASK, response)
    assert g.correct and g.answer == "4"


def test_an_answer_before_the_graded_tail_is_not_read():
    # documented: only the last MAX_GRADED_CHARS characters are graded
    response = "<answer>4</answer>" + "x" * MAX_GRADED_CHARS
    assert not grade_response(TASK, response).correct
    assert grade_response(TASK, "<answer>4</answer>" + "x" * (MAX_GRADED_CHARS - 100)).correct


def test_math_verify_sees_no_more_than_the_documented_maximum_either(monkeypatch):
    from offload_gym.scoring import symbolic

    seen = []
    monkeypatch.setattr(
        symbolic, "math_verify_equivalent", lambda text, gold, timeout: seen.append(len(text))
    )
    g = grade_response(TASK, "So we get $x^{2}$. " * 10_000)  # a span: the fallback reads it
    assert seen == [MAX_GRADED_CHARS]
    assert not g.correct and g.method == "timeout"  # the stub answered nothing: counted


def test_a_response_with_no_answer_at_all_never_reaches_math_verify(monkeypatch):
    from offload_gym.protocol import HELP_REQUEST
    from offload_gym.scoring import symbolic

    calls = []
    monkeypatch.setattr(symbolic, "math_verify_equivalent", lambda *a, **k: calls.append(a))
    g = grade_response(TASK, HELP_REQUEST)  # a refused help request is graded as it stands
    assert not g.correct and g.answer is None and calls == []
    assert not grade_response(TASK, "So we get $x^{2}$.").correct  # a span: the fallback reads it
    assert len(calls) == 1
