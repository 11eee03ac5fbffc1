"""Whole responses graded as a user grades a dataset (the full model output against the
reference): one row for each way real LLM outputs state an answer, and the false positives
that must stay false."""

import pytest

from offload_gym.scoring.grade import grade_response
from offload_gym.tasks.base import Task

ROWS = [
    # (reference, response, right?, kind)
    ("\\frac{10}{9}", "\\dfrac{10}{9}", True, "bare LaTeX, no tag"),
    ("\\frac{3}{4}", "\\tfrac34", True, "bare LaTeX, brace-free fraction"),
    ("\\frac{10}{9}", "So the answer is \\dfrac{10}{9}", True, "the answer is"),
    ("\\frac{10}{9}", "The answer is \\(\\frac{10}{9}\\).", True, "inline \\( \\) span"),
    ("\\frac{10}{9}", "Simplifying, we get\n\\[\\frac{10}{9}\\]", True, "display \\[ \\] span"),
    ("\\frac{10}{9}", "Hence\n$$\\frac{10}{9}$$", True, "display $$ span"),
    ("3", "We get $x=1$ and then $y = 3$", True, "last inline $ span"),
    ("5", "<answer>\\boxed{5}</answer>", True, "boxed inside answer tags"),
    ("1234567", "The answer is 1,234,567.", True, "thousands separators"),
    ("3.5", "The answer is 3,5", True, "decimal comma"),
    ("0.5", "50%", True, "percent vs decimal"),
    ("75\\%", "\\tfrac34", True, "fraction vs percent"),
    ("20", "It costs \\$20.", True, "currency"),
    ("5", "The side is 5 cm", True, "units"),
    ("[1,2]", "x \\in [1,2]", True, "membership"),
    ("[1,2]", "1 \\le x \\le 2", True, "chained inequality, closed"),
    ("(1,2)", "1 < x < 2", True, "chained inequality, open"),
    ("[1,2)", "$1 \\leq x < 2$", True, "chained inequality, half-open"),
    ("\\frac{1}{3}", "0.\\overline{3}", True, "repeating decimal"),
    ("\\frac{1}{6}", "0.1\\overline{6}", True, "repeating decimal with a fixed part"),
    ("10", "\\binom{5}{2}", True, "binomial coefficient"),
    ("\\frac{7}{2}", "3\\frac12", True, "mixed number"),
    ("\\frac{7}{2}", "3 \\frac{1}{2}", True, "mixed number, spaced"),
    ("\\pm 2", "x = \\pm 2", True, "plus-minus"),
    ("2,-2", "\\pm 2", True, "plus-minus vs the two roots"),
    ("1+\\sqrt{2}, 1-\\sqrt{2}", "x = 1 \\pm \\sqrt{2}", True, "plus-minus with a head"),
    ("2x", "f'(x) = 2x", True, "equation: the right-hand side"),
    ("3", "three", True, "number word"),
    ("21", "The answer is twenty-one.", True, "number word, compound"),
    # forms the fast path cannot read, which the math-verify fallback reads
    (
        "12",
        "First we compute $3 \\times 4 = 12$. Therefore the number of apples is 12.",
        True,
        "last span is a computation",
    ),
    ("2\\sqrt{2}", "So $\\sqrt{8} = 2\\sqrt{2}$", True, "a chain of equalities"),
    ("x^2+2x+1", "Expanding, $(x+1)^2 = x^2 + 2x + 1$.", True, "an expansion"),
    ("6", "$$\\text{Total} = 6$$", True, "a named total in display math"),
    (
        "8",
        "Final Answer: The final answer is $8$. I hope it is correct.",
        True,
        "a Minerva-style final line",
    ),
    ("2", "**2**", True, "markdown bold"),
    ("\\frac{\\pi}{3}", "$\\theta = \\dfrac{\\pi}{3}$ radians", True, "a named angle"),
    # false positives: each must stay wrong
    ("3", "The answer is 3 cubed.", False, "an operation word read as a unit"),
    ("9", "The answer is 9 plus four.", False, "an operation with a number word"),
    ("5", "The answer is $5 + 10^{-5000}$.", False, "a vanishing term"),
    ("(3, 4)", "The answer is 4, 3.", False, "an ordered pair reversed"),
    ("7", "So $x = 8$", False, "a wrong span stays wrong after the fallback"),
    ("[1,2]", "(1,2)", False, "open vs closed interval"),
    ("[1,2)", "[1,2]", False, "half-open vs closed"),
    ("10^{20}+1", "10^{20}", False, "large powers differ by one"),
    ("\\pi", "3.14159265358979", False, "a rounding is not pi"),
    ("\\frac{1}{3}", "0.333", False, "a rounding is not a third"),
    ("50", "50%", False, "a percent is a hundredth"),
    ("2/0", "1/0", False, "division by zero has no value"),
    ("nan", "nan", False, "not a number answers nothing"),
    ("3,5", "3.5", False, "a list is not a decimal"),
    ("\\frac{7}{2}", "3\\frac{3}{2}", False, "not a mixed number (improper part)"),
    ("\\frac{1}{3}", "0.\\overline{30}", False, "another repeating decimal"),
    ("2", "x = \\pm 2", False, "two roots are not one"),
    ("4", "Not three but five", False, "a number word elsewhere"),
]


@pytest.mark.parametrize(("gold", "response", "right", "kind"), ROWS, ids=[r[3] for r in ROWS])
def test_answer_form(gold, response, right, kind):
    grade = grade_response(Task(id="t", domain="math", prompt="p", answer=gold), response)
    assert grade.correct is right, (grade.answer, grade.method)


def test_every_listed_kind_has_a_row():
    kinds = " ".join(r[3] for r in ROWS)
    for kind in ("bare LaTeX", "\\( \\)", "\\[ \\]", "$$", "answer tags", "thousands",
                 "decimal comma", "percent", "currency", "units", "membership", "inequality",
                 "repeating", "binomial", "mixed number", "plus-minus", "equation",
                 "number word"):  # fmt: skip
        assert kind in kinds, kind
