"""The fast expression test of math equivalence: both answers as Python expressions,
evaluated exactly (rationals) where they are constants, else at fixed irrational points;
undecided cases go on to sympy (`offload_gym.scoring.equivalence`)."""

from __future__ import annotations

import ast
import math
from fractions import Fraction

from offload_gym.scoring.latex import CONSTANTS, FUNCTIONS
from offload_gym.scoring.numbers import Number, numbers_match

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


def expression_verdict(pred_expr: str, gold_expr: str, pred_num: Number | None) -> bool | None:
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
                if not numbers_match(pred_num, g):
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
