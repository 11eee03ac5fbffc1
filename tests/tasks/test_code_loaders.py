import json

import pytest

from offload_gym.scoring.code import run_code_checks
from offload_gym.tasks import DatasetFormatError, load_humaneval, load_mbpp


@pytest.fixture(scope="module")
def humaneval():
    return load_humaneval()


def test_humaneval_has_164_problems(humaneval):
    assert len(humaneval) == 164
    t = humaneval[0]
    assert t.id == "HumanEval/0" and t.entry_point == "has_close_elements"
    assert t.code_prefix in t.prompt and "def check(candidate)" in t.tests


def test_every_canonical_solution_passes_and_a_wrong_one_fails(humaneval):
    passed = run_code_checks(humaneval, [t.solution for t in humaneval])
    assert [t.id for t, r in zip(humaneval, passed, strict=True) if not r.passed] == []
    body_only = run_code_checks(humaneval, [t.answer[len(t.code_prefix) :] for t in humaneval])
    assert all(r.passed for r in body_only)
    wrong = run_code_checks(humaneval, ["    return None\n" for _ in humaneval])
    assert [t.id for t, r in zip(humaneval, wrong, strict=True) if r.passed] == []


MBPP = [
    {
        "task_id": 11,
        "text": "Write a python function to remove first and last occurrence of a given character "
        "from the string.",
        "code": "def remove_Occ(s,ch): \r\n    for i in range(len(s)): \r\n        if (s[i] == ch): "
        "\r\n            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    for i in "
        "range(len(s) - 1,-1,-1):  \r\n        if (s[i] == ch): \r\n            s = s[0 : i] + "
        "s[i + 1:] \r\n            break\r\n    return s ",
        "test_list": [
            'assert remove_Occ("hello","l") == "heo"',
            'assert remove_Occ("abcda","a") == "bcd"',
            'assert remove_Occ("PHP","P") == "H"',
        ],
        "test_setup_code": "",
    },
    {
        "task_id": 12,
        "text": "Write a function to sort a given matrix in ascending order according to the sum "
        "of its rows.",
        "code": "def sort_matrix(M):\r\n    result = sorted(M, key=sum)\r\n    return result",
        "test_list": [
            "assert sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]])==[[1, 1, 1], [1, 2, 3], [2, 4, 5]]",
            "assert sort_matrix([[1, 2, 3], [-2, 4, -5], [1, -1, 1]])==[[-2, 4, -5], [1, -1, 1], [1, 2, 3]]",
        ],
    },
]


def test_mbpp_loader(tmp_path):
    path = tmp_path / "mbpp.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in MBPP) + "\n")
    tasks = load_mbpp(path)
    assert [t.entry_point for t in tasks] == ["remove_Occ", "sort_matrix"]
    assert tasks[0].id == "mbpp/11" and MBPP[0]["test_list"][0] in tasks[0].prompt
    results = run_code_checks(tasks, [t.solution for t in tasks])
    assert all(r.passed for r in results)
    wrong = run_code_checks(
        tasks, ["def remove_Occ(s, ch):\n    return s", "def sort_matrix(M):\n    return M"]
    )
    assert not any(r.passed for r in wrong)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"text": "t", "code": "def f(): pass"}, "test_list"),
        ({"text": "t", "code": "x = 1", "test_list": ["assert g(1) == 1"]}, "which function"),
        ({"code": "def f(): pass", "test_list": ["assert f()"]}, "missing field 'text'"),
    ],
)
def test_mbpp_malformed_lines(tmp_path, record, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(MBPP[1]) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"bad\.jsonl:2: .*{message}"):
        load_mbpp(path)
