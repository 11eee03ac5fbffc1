"""Math answer equivalence: exact, then numeric, then expression, then sympy under a time limit.

`compare` never raises on garbage input and never hangs: the only potentially slow step (sympy)
runs in a helper process that is killed when it overruns its time limit.
"""

from __future__ import annotations

import ast
import functools
import math
import re
import time
from fractions import Fraction
from typing import NamedTuple

from offload_gym.scoring import forms
from offload_gym.scoring.latex import CONSTANTS, FUNCTIONS, to_expression

DEFAULT_TIMEOUT_S = 2.0
"""Wall-clock limit of the sympy steps of one comparison, all of them together (a list's items
share it)."""

MAX_ANSWER_CHARS = 1000
"""Longer answers are compared as strings only."""


class Verdict(NamedTuple):
    """The outcome of one comparison.

    Attributes:
        equivalent: Whether the prediction matches the reference.
        method: Which stage decided: ``"exact"``, ``"numeric"``, ``"list"``, ``"expression"``,
            ``"symbolic"``, ``"invalid"`` (a side that is not a number, such as ``nan``), or,
            for a negative verdict nothing could decide, ``"empty"`` (no prediction),
            ``"unparsed"``, ``"error"`` or ``"timeout"``.
    """

    equivalent: bool
    method: str


# --------------------------------------------------------------------------- normalisation
_WRAPPERS = (("$$", "$$"), ("$", "$"), (r"\(", r"\)"), (r"\[", r"\]"))
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox|mathbf|operatorname)\s*\{([^{}]*)\}")
_ASSIGN = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?!=)")
_SPACES = re.compile(r"\s+")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°")
_PLAIN = re.compile(r"[-+]?[\w.,/]*\Z", re.ASCII)


@functools.lru_cache(maxsize=8192)
def normalize(answer: str) -> str:
    r"""Canonical surface form: math delimiters, spacing macros, ``\text{}``, degree signs,
    a leading ``x =`` and a trailing full stop removed; ``\dfrac``/``\tfrac`` -> ``\frac``.

    >>> normalize(r" $x = \dfrac{1}{2}$. ")
    '\\frac{1}{2}'
    """
    s = answer.strip().rstrip(".").strip()
    if _PLAIN.match(s):  # fast path: nothing to normalise beyond spacing (or a number word)
        return forms.rewrite(s) if s[:1].isalpha() else s
    for left, right in _WRAPPERS:
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            s = s[len(left) : len(s) - len(right)].strip()
            break
    s = _unbox(s.rstrip(".").strip())
    s = s.replace(r"\dfrac", r"\frac").replace(r"\tfrac", r"\frac")
    for macro in (r"\left", r"\right", r"\!", r"\,", r"\;", r"\:", r"\displaystyle"):
        s = s.replace(macro, "")
    s = _TEXT_CMD.sub(lambda m: " " + m.group(1).strip(), s)
    s = _DEGREES.sub("", s)
    s = _ASSIGN.sub("", s)
    s = s.replace("\\$", "$").replace("\\%", "%")
    return forms.rewrite(_SPACES.sub(" ", s).strip())


def _unbox(s: str) -> str:
    r"""The content of a ``\boxed{...}`` (or ``\fbox{...}``) that wraps the whole answer."""
    for command in (r"\boxed", r"\fbox"):
        if not s.startswith(command):
            continue
        rest = s[len(command) :].lstrip()
        if not (rest.startswith("{") and rest.endswith("}")):
            return s
        depth = 0
        for ch in rest[1:-1]:
            depth += (ch == "{") - (ch == "}")
            if depth < 0:  # \boxed{a} + \boxed{b}: not one wrapper
                return s
        return rest[1:-1].strip() if depth == 0 else s
    return s


# --------------------------------------------------------------------------- numbers
_NUM_CORE = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUMERIC = re.compile(
    r"^(?P<sign>[-+−])?\s*\$?\s*(?:"
    rf"(?P<frac>\\frac\{{\s*(?P<fn>{_NUM_CORE})\s*\}}\{{\s*(?P<fd>{_NUM_CORE})\s*\}})"
    rf"|(?P<slash>(?P<sn>{_NUM_CORE})\s*/\s*(?P<sd>{_NUM_CORE}))"
    rf"|(?P<plain>{_NUM_CORE})(?:\s*[eE](?P<exp>[-+]?\d{{1,3}}))?"
    r")\s*(?P<unit>%|[A-Za-z]+(?:\s+[A-Za-z]+){0,2}|[A-Za-z]+\^?\d)?\s*$"
)
_INTEGER = re.compile(r"-?\d{1,30}\Z", re.ASCII)
_NOT_UNITS = frozenset(
    "or and to x y i e pi sqrt plus minus times over divided by cubed squared power factorial "
    "root half halves third thirds quarter quarters dozen hundred thousand million billion "
    "trillion".split()
) | frozenset(forms.WORDS)
"""Words after a number that are operations or magnitudes, not units: ``3 cubed`` is not 3,
nor ``9 plus four`` 9, nor ``3 million`` 3."""


class _Number(NamedTuple):
    value: Fraction
    decimals: int  # digits after the decimal point as written (0 for integers and fractions)


@functools.lru_cache(maxsize=8192)
def parse_number(text: str) -> _Number | None:
    """Parse an exact number with optional sign, ``$``, thousands separators, fraction or
    ``\\frac``, and a trailing unit word or ``%`` (ignored). ``None`` when it is not one."""
    if _INTEGER.match(text):  # fast path
        return _Number(Fraction(int(text)), 0)
    m = _NUMERIC.match(text)
    if m is None:
        return None
    unit = m.group("unit")
    if unit and any(word.lower() in _NOT_UNITS for word in unit.split()):
        return None
    try:
        if m.group("frac"):
            value = _to_fraction(m.group("fn")) / _to_fraction(m.group("fd"))
            decimals = 0
        elif m.group("slash"):
            value = _to_fraction(m.group("sn")) / _to_fraction(m.group("sd"))
            decimals = 0
        else:
            raw = m.group("plain")
            value = _to_fraction(raw)
            decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
            if m.group("exp"):
                value *= Fraction(10) ** int(m.group("exp"))
                decimals = max(0, decimals - int(m.group("exp")))
    except ZeroDivisionError:
        return None
    if m.group("sign") in ("-", "−"):
        value = -value
    return _Number(value, decimals)


def _to_fraction(raw: str) -> Fraction:
    raw = raw.replace(",", "")
    if raw.isdigit():
        return Fraction(int(raw))
    whole, dot, frac = raw.partition(".")
    if dot and (whole.isdigit() or not whole) and frac.isdigit():
        return Fraction(int(whole or "0") * 10 ** len(frac) + int(frac), 10 ** len(frac))
    return Fraction(raw)


def _numbers_match(pred: _Number, gold_value: float | Fraction) -> bool:
    r"""Exact equality with an exact reference; with a reference known only as a float (an
    irrational value such as ``\sqrt{4}`` evaluated), an integer prediction within 1e-9. A
    decimal is never taken for an exact value it rounds (``0.333`` is not ``1/3``, nor
    ``3.14159265358979`` pi): a reward that accepts roundings rewards wrong answers."""
    if isinstance(gold_value, Fraction):
        return pred.value == gold_value
    if not math.isfinite(gold_value) or pred.decimals or pred.value.denominator != 1:
        return False
    try:
        return math.isclose(float(pred.value), gold_value, rel_tol=1e-9, abs_tol=1e-12)
    except OverflowError:
        return False


# --------------------------------------------------------------------------- lists
_LIST_SEP = re.compile(r"\s*(?:;|,|\bor\b|\band\b)\s*")


def split_candidates(text: str) -> tuple[list[str], bool] | None:
    """Split a list answer at top-level separators (``,`` ``;`` "or" "and").

    Returns ``(items, ordered)`` (ordered for tuples written in parentheses), or ``None`` when the
    answer is a single item. Thousands separators (``1,234``) are not list separators.
    """
    s = text.strip()
    ordered = False
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _top_level_has_sep(s[1:-1]):
        s, ordered = s[1:-1], True
    elif s.startswith("\\{") and s.endswith("\\}"):
        s = s[2:-2]
    if not _top_level_has_sep(s):
        return None
    items, depth, start = [], 0, 0
    i = 0
    while i < len(s):
        ch = s[i]
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif depth == 0:
            m = _LIST_SEP.match(s, i)
            if m and m.end() > i and not _is_thousands(s, i):
                items.append(s[start:i].strip())
                start = i = m.end()
                continue
        i += 1
    items.append(s[start:].strip())
    items = [it for it in items if it]
    return (items, ordered) if len(items) > 1 else None


def _is_thousands(s: str, i: int) -> bool:
    return (
        s[i] == ","
        and i > 0
        and s[i - 1].isdigit()
        and re.match(r",\d{3}(?!\d)", s[i:]) is not None
        and re.search(r"(?:^|[^\d.])\d{1,3}(?:,\d{3})*$", s[:i]) is not None
    )


def _top_level_has_sep(s: str) -> bool:
    depth = 0
    for i, ch in enumerate(s):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif depth == 0 and ch in ",;" and not _is_thousands(s, i):
            return True
    return depth == 0 and re.search(r"\s(?:or|and)\s", s) is not None


# --------------------------------------------------------------------------- expressions
_POINTS = (
    (0.5772156649, 1.3247179572, 2.2360679775, 0.6180339887, 1.7320508076),
    (1.4142135624, 0.3183098862, 2.7182818285, 1.2020569032, 0.9159655942),
    (2.5029078751, 0.8346268417, 1.6180339887, 0.2614972128, 3.3598856662),
    (-0.7390851332, -1.4655712319, 0.4501581580, -2.0287578381, -0.5671432904),
)
"""Where an identity is tested: irrational points, one of them with negative coordinates
(``x / |x|`` is 1 only where x > 0; an expression undefined there goes on to sympy)."""
_MAX_POW = 1e4


class _Undecided(Exception):
    """The fast evaluator cannot decide (domain error, overflow, unsupported node)."""


def _evaluate(node: ast.AST, env: dict[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, env)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id == "pi":
            return math.pi
        if node.id == "E":
            return math.e
        if node.id in env:
            return env[node.id]
        raise _Undecided(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _evaluate(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _evaluate(node.left, env), _evaluate(node.right, env)
        try:
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                return a / b
            if isinstance(node.op, ast.Pow):
                if abs(b) > _MAX_POW or (a < 0 and b != int(b)):
                    raise _Undecided("pow")
                r = a**b
                if isinstance(r, complex):
                    raise _Undecided("complex")
                return r
        except (ZeroDivisionError, OverflowError) as exc:
            raise _Undecided(str(exc)) from exc
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in FUNCTIONS
        and len(node.args) == 1
        and not node.keywords
    ):
        x = _evaluate(node.args[0], env)
        fn = abs if node.func.id == "abs" else getattr(math, node.func.id)
        try:
            return float(fn(x))
        except (ValueError, OverflowError) as exc:
            raise _Undecided(str(exc)) from exc
    raise _Undecided(type(node).__name__)


_MAX_EXACT_BITS = 13_300
"""Exact (rational) evaluation gives up past numbers of this many bits (about 4,000 digits)."""


def _bits(x: Fraction) -> int:
    """Size of ``x``: the bit length of its larger part (cheap, unlike ``str`` of a big int)."""
    return max(x.numerator.bit_length(), x.denominator.bit_length())


def _exact(node: ast.AST) -> Fraction | None:
    """The exact rational value of a constant expression of numbers, + - * / and integer
    powers, or None when it has anything else (names, functions, irrational powers) or grows
    past `_MAX_EXACT_BITS`. Division by zero raises `_Invalid`."""
    if isinstance(node, ast.Expression):
        return _exact(node.body)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value)
    if isinstance(node, ast.Constant) and type(node.value) is float:
        return Fraction(repr(node.value)) if math.isfinite(node.value) else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _exact(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if not isinstance(node, ast.BinOp):
        return None
    a, b = _exact(node.left), _exact(node.right)
    if a is None or b is None:
        return None
    if isinstance(node.op, ast.Add):
        out = a + b
    elif isinstance(node.op, ast.Sub):
        out = a - b
    elif isinstance(node.op, ast.Mult):
        out = a * b
    elif isinstance(node.op, ast.Div):
        if b == 0:
            raise _Invalid("division by zero")
        out = a / b
    elif isinstance(node.op, ast.Pow) and b.denominator == 1 and abs(b) <= _MAX_POW:
        if _bits(a) * abs(int(b)) > _MAX_EXACT_BITS:
            return None
        if a == 0 and b < 0:
            raise _Invalid("division by zero")
        out = a ** int(b)
    else:
        return None
    return None if _bits(out) > _MAX_EXACT_BITS else out


class _Invalid(Exception):
    """The expression has no value (a division by zero): never equivalent to anything."""


def _free_names(tree: ast.AST) -> set[str]:
    return {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and n.id not in CONSTANTS and n.id not in FUNCTIONS
    }


def _expression_verdict(pred_expr: str, gold_expr: str, pred_num: _Number | None) -> bool | None:
    """Numeric identity test at fixed irrational points: ``False`` on a disagreement (a proof of
    non-equivalence), ``True`` when all points agree, ``None`` when undecided."""
    try:
        pt, gt = ast.parse(pred_expr, mode="eval"), ast.parse(gold_expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return None
    names = sorted(_free_names(pt) | _free_names(gt))
    if len(names) > len(_POINTS[0]) or "oo" in pred_expr or "oo" in gold_expr:
        return None
    if not names:  # constants: exact rational arithmetic where both sides allow it
        try:
            pe, ge = _exact(pt), _exact(gt)
        except _Invalid:
            return False
        except (RecursionError, OverflowError, ValueError):
            return None
        if ge is not None and pred_num is not None:
            return pred_num.value == ge
        if pe is not None and ge is not None:
            return pe == ge
    try:
        for point in _POINTS if names else _POINTS[:1]:
            env = dict(zip(names, point, strict=False))
            g = _evaluate(gt, env)
            if pred_num is not None and not names:
                if not _numbers_match(pred_num, g):
                    return False
                continue
            p = _evaluate(pt, env)
            if not (math.isfinite(p) and math.isfinite(g)):
                return None
            if not math.isclose(p, g, rel_tol=1e-9, abs_tol=1e-12):
                return False
    except (_Undecided, RecursionError):
        return None
    # Floats that agree prove nothing about a term below their precision (5 + 10^{-5000}).
    return None if _extreme_constant(pt) or _extreme_constant(gt) else True


def _extreme_constant(tree: ast.AST) -> bool:
    """Whether a constant part of the expression (a number, or a power of numbers) is nonzero
    and outside [1e-6, 1e12] in size, or too large to evaluate."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            value = abs(float(node.value))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            if _free_names(node):
                continue
            try:  # by its logarithm: 10^{-5000} underflows to 0.0
                base, power = abs(_evaluate(node.left, {})), _evaluate(node.right, {})
                if base == 0:
                    continue
                if not -6 <= power * math.log10(base) <= 12:
                    return True
                continue
            except (_Undecided, RecursionError, ValueError, OverflowError):
                return True
        else:
            continue
        if value != 0 and not 1e-6 <= value <= 1e12:
            return True
    return False


# --------------------------------------------------------------------------- entry points
def compare(pred: str | None, gold: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> Verdict:
    """Compare a predicted final answer with the reference answer.

    >>> compare("1,000", "1000")
    Verdict(equivalent=True, method='numeric')
    >>> compare(r"\\frac{1}{\\sqrt{2}}", r"\\frac{\\sqrt{2}}{2}").equivalent
    True
    >>> compare("3, 5", "3")
    Verdict(equivalent=False, method='list')
    """
    if not isinstance(gold, str):
        raise TypeError(f"gold must be a string, got {type(gold).__name__}")
    return _verdict(pred, gold, time.monotonic() + timeout)


def _verdict(pred: str | None, gold: str, deadline: float) -> Verdict:
    """`compare` against a deadline shared by the whole comparison (a list's items and every
    sympy call of it draw on the same time: the limit bounds the comparison, not each call)."""
    if pred is None or not isinstance(pred, str) or not pred.strip():
        return Verdict(False, "empty")
    try:
        return _compare(pred, gold, deadline)
    except (ArithmeticError, ValueError, RecursionError, MemoryError):  # a grader never raises
        return Verdict(False, "error")


_NOT_A_NUMBER = re.compile(r"^[-+]?\\?(?:nan|NaN|NAN|Nan)$")


def _compare(pred: str, gold: str, deadline: float) -> Verdict:
    p, g = normalize(pred), normalize(gold)
    if _NOT_A_NUMBER.match(p) or _NOT_A_NUMBER.match(g):
        return Verdict(False, "invalid")  # "not a number" is no answer, even to itself
    if pred.strip() == gold.strip() or p == g:
        return Verdict(True, "exact")
    if len(p) > MAX_ANSWER_CHARS or len(g) > MAX_ANSWER_CHARS:
        return Verdict(False, "unparsed")
    pn, gn = parse_number(p), parse_number(g)
    if pn is None and gn is not None and (comma := forms.decimal_comma(p)) is not None:
        pn = parse_number(comma)  # 3,5 for 3.5 where the reference is one number
    if pn is not None and gn is not None:
        return Verdict(_numbers_match(pn, gn.value), "numeric")
    pl, gl = split_candidates(p), split_candidates(g)
    if pl is not None or gl is not None:
        if pl is not None and gl is not None and pl[1] and gl[1] and _ends(p) != _ends(g):
            return Verdict(False, "list")  # (1, 2) is not [1, 2], nor [1, 2) [1, 2]
        return _compare_lists(pl, gl, deadline)
    return _compare_expressions(p, g, pn, gn, deadline)


def _ends(s: str) -> str:
    """The brackets around a bracketed list: open or closed at each end."""
    return s[0] + s[-1]


def _compare_lists(
    pl: tuple[list[str], bool] | None, gl: tuple[list[str], bool] | None, deadline: float
) -> Verdict:
    if pl is None or gl is None or len(pl[0]) != len(gl[0]):
        return Verdict(False, "list")
    # The reference decides: a tuple in parentheses is ordered ("4, 3" is not "(3, 4)"); a bare
    # list of solutions is a set.
    p_items, ordered = pl[0], gl[1]
    g_items = gl[0]
    if ordered:
        ok = all(_verdict(a, b, deadline).equivalent for a, b in zip(p_items, g_items, strict=True))
        return Verdict(ok, "list")
    remaining = list(g_items)
    for a in p_items:
        for k, b in enumerate(remaining):
            if _verdict(a, b, deadline).equivalent:
                del remaining[k]
                break
        else:
            return Verdict(False, "list")
    return Verdict(not remaining, "list")


def _compare_expressions(
    p: str, g: str, pn: _Number | None, gn: _Number | None, deadline: float
) -> Verdict:
    pe = f"({pn.value})" if pn is not None else to_expression(p)
    ge = f"({gn.value})" if gn is not None else to_expression(g)
    if pe is None or ge is None:
        return Verdict(False, "unparsed")
    decided = _expression_verdict(pe, ge, pn)
    if decided is not None:
        return Verdict(decided, "expression")
    from offload_gym.scoring.symbolic import sympy_equivalent

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return Verdict(False, "timeout")
    result = sympy_equivalent(pe, ge, timeout=remaining)
    if result is None:
        return Verdict(False, "timeout")
    if isinstance(result, str):
        return Verdict(False, "error")
    return Verdict(result, "symbolic")


def is_equivalent(pred: str | None, gold: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
    """Whether ``pred`` and ``gold`` denote the same answer (see `compare`).

    >>> is_equivalent("$1,200.00", "1200")
    True
    >>> is_equivalent("0.5", r"\\frac{1}{2}")
    True
    >>> is_equivalent("x = 4", "4")
    True
    >>> is_equivalent("4 or 5", "4")
    False
    """
    return compare(pred, gold, timeout=timeout).equivalent
