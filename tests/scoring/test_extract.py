import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offload_gym.scoring import extract_answer, grade_response, last_boxed
from offload_gym.tasks import Task


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Work. The answer is <answer>12</answer>.", "12"),
        ("<answer>1</answer> then <answer>2</answer>", "2"),
        ("Thus $\\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}"),
        ("\\boxed{1} and finally \\boxed{\\sqrt{2}}", "\\sqrt{2}"),
        ("\\fbox{7}", "7"),
        ("48 + 24 = 72\n#### 72", "72"),
        ("The answer is 3.5.", "3.5"),
        ("So the final answer is: 42. Done.", "42"),
        ("Final answer: x = 7", "x = 7"),
        ("I get 3 then 4 then 5", "5"),
        ("It costs $1,200 in total", "1,200"),
        ("<answer>5</answer> but \\boxed{6}", "5"),
        ("no numbers here", None),
        ("", None),
        ("\\boxed{unclosed", None),
    ],
)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


def test_last_boxed_nested():
    assert last_boxed("\\boxed{\\frac{\\sqrt{3}}{2}}") == "\\frac{\\sqrt{3}}{2}"
    assert last_boxed("\\boxed 5$") == "5"


def test_grade_response():
    task = Task(id="t", domain="math", prompt="1+1?", answer="2")
    assert grade_response(task, "It is <answer>2.0</answer>").correct
    g = grade_response(task, "It is \\boxed{3}")
    assert (g.correct, g.answer, g.method) == (False, "3", "numeric")
    assert grade_response(task, "no idea").method == "empty"


# ---------------------------------------------------------------- linear time on adversarial input

_OPENERS = ["<answer>", "<ANSWER>", "\\[", "\\(", "$$", "$", "\\boxed{", "{", "the answer is ",
            "####", "1,", "-", "</answer>", "\\]"]  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(_OPENERS), min_size=1, max_size=3), st.sampled_from(["", "7"]))
def test_extraction_is_linear_on_long_repeated_openers(parts, tail):
    """200,000-character runs of unclosed delimiters and tags: a quadratic scan (a lazy regex
    rescanning from every opener) takes minutes on them; the extractor must take well under a
    second. The alarm is a guard at 100x the expected time, not a timing."""
    text = ("".join(parts) * (200_000 // len("".join(parts)) + 1))[:200_000] + tail

    def too_slow(signum, frame):
        raise TimeoutError("extract_answer did not return within 5 s on 200,000 characters")

    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(5)
    try:
        answer = extract_answer(text)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert answer is None or isinstance(answer, str)


def test_the_last_tag_and_span_are_the_ones_that_close_last():
    assert extract_answer("<answer>a</answer> text <Answer>b</ANSWER>") == "b"
    assert extract_answer("<answer>a <answer>b</answer>") == "b"  # the opening nearest the close
    assert extract_answer("words \\(x+1\\) and then words $y$ here") == "y"
    assert extract_answer("words $y$ and then words \\[z^2\\] here") == "z^2"
    assert extract_answer("words \\[a\\] and words \\[b unclosed") == "a"
    assert extract_answer("words $$ $$ and words") is None  # an empty span is no answer
