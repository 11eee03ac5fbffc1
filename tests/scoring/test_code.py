import pytest

from offload_gym.scoring import grade_response
from offload_gym.scoring.code import build_program, code_check, extract_code
from offload_gym.tasks import Task

TASK = Task(
    id="t",
    domain="code",
    prompt="Write inc.",
    answer="def inc(x: int) -> int:\n    return x + 1\n",
    entry_point="inc",
    tests="def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n",
    code_prefix='import math\n\ndef inc(x: int) -> int:\n    """Add one."""\n',
)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("```python\ndef f():\n    pass\n```", "def f():\n    pass\n"),
        ("```py\na = 1\n```\ntext\n```python\nb = 2\n```", "b = 2\n"),
        ("```\nc = 3\n```", "c = 3\n"),
        ("```python\nx\n```\n```\ny\n```", "x\n"),
        ("    return 1", "    return 1"),
    ],
)
def test_extract_code(response, expected):
    assert extract_code(response) == expected


@pytest.mark.parametrize(
    ("response", "correct"),
    [
        ("```python\ndef inc(x):\n    return x + 1\n```", True),
        ("    return x + 1\n", True),
        ("return x + 1", True),  # a body without indentation is indented
        (
            "Sure!\n```python\ndef inc(x):\n    return math.floor(x) + 1\n```",
            True,
        ),  # prefix imports
        ("```python\ndef inc(x):\n    return x + 2\n```", False),
        ("no code at all, sorry", False),
        ("```python\ndef other(x):\n    return x + 1\n```", False),
    ],
)
def test_grade_code_responses(response, correct):
    assert grade_response(TASK, response).correct is correct


def test_build_program_keeps_prefix_for_full_definitions():
    program = build_program(TASK, "def inc(x):\n    return x + 1\n")
    assert program.startswith("import math") and program.count("def inc") == 2
    assert code_check(TASK, "    return x").entry_point == "inc"
    with pytest.raises(ValueError, match="not a code task"):
        code_check(Task(id="m", domain="math", prompt="p", answer="1"), "x")
