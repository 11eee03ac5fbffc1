import pytest

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
