"""The answer-checker table: (prediction, reference, expected verdict, math-verify agrees).

``mv`` is True where math-verify's ``verify(parse(f"${gold}$"), parse(f"${pred}$"))`` reaches
the same verdict (checked by the tests when math-verify is installed); False marks the pairs
where we hold math-verify to be wrong or where the project deliberately differs, each with
its reason.
"""

from __future__ import annotations

from typing import NamedTuple


class Pair(NamedTuple):
    pred: str
    gold: str
    expected: bool
    mv: bool = True
    why: str = ""


TABLE: list[Pair] = [
    # --- integers, signs, separators
    Pair("72", "72", True),
    Pair("072", "72", True),
    Pair("-5", "-5", True),
    Pair("+5", "5", True),
    Pair("−5", "-5", True),
    Pair("-5", "5", False),
    Pair("1,000", "1000", True),
    Pair("1,234,567", "1234567", True),
    Pair("12,5", "125", False),
    Pair("1000", "1,000", True),
    Pair("71", "72", False),
    Pair("7.2", "72", False),
    # --- decimals
    Pair("0.5", "0.5", True),
    Pair(".5", "0.5", True),
    Pair("0.50", "0.5", True),
    Pair("2.0", "2", True),
    Pair("2.000", "2", True),
    Pair("3.14", "3.15", False),
    Pair("1e3", "1000", True, False, "scientific notation"),
    Pair("2.5e-1", "0.25", True, False, "scientific notation"),
    # --- fractions
    Pair("1/2", "0.5", True),
    Pair("\\frac{1}{2}", "0.5", True),
    Pair("\\dfrac{3}{4}", "\\frac{3}{4}", True),
    Pair("6/8", "3/4", True),
    Pair("-\\frac{3}{4}", "-0.75", True),
    Pair("\\frac{-3}{4}", "-\\frac{3}{4}", True),
    Pair("3/4", "4/3", False),
    Pair("0.3333", "1/3", False, True, "a rounding is not the exact value (a reward hole)"),
    Pair("0.333", "1/3", False),
    Pair("0.33", "1/3", False, True, "two decimal places are too few to claim 1/3"),
    Pair("0.667", "\\frac{2}{3}", False),
    Pair("0.666", "\\frac{2}{3}", False),
    Pair("\\frac{10}{4}", "\\frac{5}{2}", True),
    Pair("\\frac12", "\\frac{1}{2}", True),
    # --- units, currency, percent, text
    Pair("$18", "18", True),
    Pair("\\$18.00", "18", True),
    Pair("18 dollars", "18", True, False, "a trailing unit word is ignored"),
    Pair("5 cm", "5", True),
    Pair("5\\text{ cm}", "5", True),
    Pair("12 apples", "12", True),
    Pair("50%", "50", False, False, "a percent is a hundredth; math-verify reads % as a unit"),
    Pair("50\\%", "50", False, False, "a percent is a hundredth; math-verify reads % as a unit"),
    Pair("50%", "0.5", True),
    Pair("50\\%", "50%", True),
    Pair("12.5%", "\\frac{1}{8}", True),
    Pair("90^\\circ", "90", True),
    Pair("90°", "90", True),
    Pair("13 cm", "12", False),
    # --- candidate lists (no partial credit)
    Pair("3, 5", "3", False),
    Pair("3 or 5", "3", False),
    Pair("3 and 5", "3", False),
    Pair("x = 3 or x = 5", "3", False),
    Pair("3", "3, 5", False),
    Pair("3, 5", "5, 3", True),
    Pair("\\{1, 2\\}", "\\{2, 1\\}", True),
    Pair("(1, 2)", "(1, 2)", True),
    Pair("(1, 2)", "(2, 1)", False),
    Pair("2, 3, 4", "2, 3", False),
    Pair("1,2", "12", False),
    # --- assignments and wrappers
    Pair("x = 4", "4", True),
    Pair("x=4", "4", True),
    Pair("$4$", "4", True),
    Pair("\\(4\\)", "4", True),
    Pair("4.", "4", True),
    Pair("y = 2x + 1", "2x + 1", True),
    # --- expressions
    Pair("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", True),
    Pair("\\sqrt{8}", "2\\sqrt{2}", True),
    Pair("2\\sqrt{2}", "\\sqrt{2}", False),
    Pair("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}", True),
    Pair("0.7071", "\\frac{\\sqrt{2}}{2}", False),
    Pair("3.14159265358979", "\\pi", False, False, "a 14-place rounding is not pi"),
    Pair("2", "\\sqrt{4}", True),
    Pair("0.7", "\\frac{\\sqrt{2}}{2}", False),
    Pair("x^2 - 1", "(x-1)(x+1)", True),
    Pair("x^2+2x+1", "(x+1)^2", True),
    Pair("x^2+2x", "(x+1)^2", False),
    Pair("2x", "2y", False),
    Pair("3\\pi", "3\\pi", True),
    Pair("\\pi", "3.14159", False, True, "pi is not its 5-place rounding the other way round"),
    Pair("2^{10}", "1024", True),
    Pair("2^10", "1024", True),
    Pair("\\frac{\\pi}{2}", "\\frac{1}{2}\\pi", True),
    Pair("e^{2}", "e^2", True),
    Pair("\\sqrt[3]{27}", "3", True),
    Pair("\\ln(e)", "1", True),
    Pair("\\sin(\\pi/6)", "\\frac{1}{2}", True),
    Pair("10^{100}", "10^{100}", True),
    Pair("2^{100000}", "2^{100001}/2", True),
    Pair("\\infty", "\\infty", True),
    # --- garbage, empty, near-misses
    Pair("", "5", False),
    Pair("   ", "5", False),
    Pair("banana", "5", False),
    Pair("five", "5", True, False, "a number word is its number"),
    Pair("5\\", "5", False, False, "a dangling backslash is malformed"),
    Pair("{{{{", "5", False),
    Pair("\\frac{1}{0}", "1", False),
    Pair("1/0", "1", False),
    # --- reward holes: answers a lenient checker would pay for
    Pair("nan", "nan", False, False, "'not a number' answers nothing, not even itself"),
    Pair("1/0", "2/0", False, False, "division by zero has no value"),
    Pair("(1, 2)", "[1, 2]", False, False, "an open interval is not a closed one"),
    Pair("[1, 2]", "[1, 2)", False, False, "a closed end is not an open one"),
    Pair("10^{20}", "10^{20}+1", False),
    Pair("10^{20}+1", "100000000000000000001", True),
    Pair("\\boxed{1e999}", "\\frac{\\sqrt{3}}{2}", False, True, "overflow: no crash"),
    Pair("1e999", "\\frac{\\sqrt{3}}{2}", False),
    Pair("__import__('os').system('true')", "0", False),
    # --- false positives found from outside (2026-12): operations read as units, vanishing
    # terms, tuples compared as sets, identities tested only at positive points
    Pair("3 cubed", "3", False),
    Pair("9 plus four", "9", False),
    Pair("3 million", "3", False),
    Pair("5 cm squared", "5", False),
    Pair("5 + 10^{-5000}", "5", False),
    Pair("5 + 10^{-12}", "5", False),
    Pair("x + 10^{-12}", "x", False),
    Pair("4, 3", "(3, 4)", False),
    Pair("3, 4", "(3, 4)", True),
    Pair("4, 3", "3, 4", True),
    Pair("\\sqrt{x^2}", "x", False),
    Pair("\\frac{x}{|x|}", "1", False),
    # --- an answer still in its box compares by its content
    Pair("\\boxed{5}", "5", True),
    Pair("\\boxed{\\frac12}", "\\frac{1}{2}", True),
    Pair("\\boxed{x = 4}", "4", True),
    Pair("\\boxed{5}", "6", False),
]
