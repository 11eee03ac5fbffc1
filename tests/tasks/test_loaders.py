import json

import pytest

from offload_gym.scoring import is_equivalent
from offload_gym.tasks import DatasetFormatError, load_gsm8k, load_jsonl, load_math

GSM8K = [
    {
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as "
        "many clips in May. How many clips did Natalia sell altogether in April and May?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = "
        "<<48+24=72>>72 clips altogether in April and May.\n#### 72",
    },
    {
        "question": "A shop sells 1,250 pens a week. How many in 2 weeks?",
        "answer": "1,250 * 2 = 2,500\n#### 2,500",
    },
]
MATH = [
    {
        "problem": "What is $\\frac{1}{2} + \\frac{1}{3}$?",
        "solution": "The sum is $\\frac{3}{6} + \\frac{2}{6} = \\boxed{\\frac{5}{6}}$.",
        "level": "Level 2",
        "type": "Prealgebra",
    },
    {
        "problem": "Simplify $\\sqrt{8}$.",
        "solution": "$\\sqrt{8} = \\boxed{2\\sqrt{2}}$",
    },
]


def _write(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_gsm8k_loader(tmp_path):
    tasks = load_gsm8k(_write(tmp_path / "gsm.jsonl", GSM8K))
    assert [t.answer for t in tasks] == ["72", "2500"]
    assert tasks[0].id == "gsm/1" and tasks[0].domain == "math"
    assert "<<" not in tasks[0].solution and tasks[0].solution.endswith("<answer>72</answer>.")
    assert 1 <= tasks[0].difficulty <= 5
    assert is_equivalent("2,500", tasks[1].answer)


def test_math_loader(tmp_path):
    tasks = load_math(_write(tmp_path / "math.jsonl", MATH))
    assert tasks[0].answer == "\\frac{5}{6}"
    assert tasks[0].difficulty == 2 and tasks[0].metadata["subject"] == "Prealgebra"
    assert tasks[1].answer == "2\\sqrt{2}" and tasks[1].difficulty == 3
    assert is_equivalent("\\sqrt{8}", tasks[1].answer)


def test_auto_detects_format(tmp_path):
    assert load_jsonl(_write(tmp_path / "a.jsonl", GSM8K))[0].answer == "72"
    assert load_jsonl(_write(tmp_path / "b.jsonl", MATH))[0].answer == "\\frac{5}{6}"
    with pytest.raises(DatasetFormatError, match="cannot detect"):
        load_jsonl(_write(tmp_path / "c.jsonl", [{"text": "x"}]))
    with pytest.raises(ValueError, match="format must be"):
        load_jsonl(tmp_path / "a.jsonl", format="csv")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"question": "q"}', "missing field 'answer'"),
        ('{"question": "q", "answer": "no final line"}', "####"),
        ('{"question": 3, "answer": "#### 3"}', "non-empty string"),
    ],
)
def test_malformed_gsm8k_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GSM8K[0]) + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=rf"bad\.jsonl:3: .*{message}"):
        load_gsm8k(path)


def test_malformed_math_line(tmp_path):
    path = _write(tmp_path / "m.jsonl", [MATH[0], {"problem": "p", "solution": "no box"}])
    with pytest.raises(DatasetFormatError, match=r"m\.jsonl:2: .*boxed"):
        load_math(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_gsm8k(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DatasetFormatError, match="no records"):
        load_math(tmp_path / "empty.jsonl")
