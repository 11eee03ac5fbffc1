"""Turn a LaTeX or plain-text math answer into a whitelisted Python-syntax expression string.

The output contains only numbers, single-letter variables, ``pi``, ``E``, ``oo``, whitelisted
function names, ``+ - * / **`` and parentheses, so it can be walked as a Python AST (never
``eval``-ed) and handed to sympy's parser safely.
"""

from __future__ import annotations

import re

FUNCTIONS = frozenset({"sqrt", "sin", "cos", "tan", "log", "exp", "asin", "acos", "atan", "abs"})
CONSTANTS = frozenset({"pi", "E", "oo"})

_COMMANDS = {
    r"\cdot": "*",
    r"\times": "*",
    r"\div": "/",
    r"\pi": " pi ",
    r"\infty": " oo ",
    r"\ln": " log",
    r"\log": " log",
    r"\exp": " exp",
    r"\sin": " sin",
    r"\cos": " cos",
    r"\tan": " tan",
    r"\arcsin": " asin",
    r"\arccos": " acos",
    r"\arctan": " atan",
}
_DROP = (r"\left", r"\right", r"\!", r"\,", r"\;", r"\:", r"\displaystyle", "\\ ")
_TOKEN = re.compile(r"\s*(?:(\d+\.\d*|\.\d+|\d+)|([A-Za-z]+)|(\*\*|[-+*/()]))")
_MAX_LEN = 400


def _brace_group(s: str, i: int) -> tuple[str, int] | None:
    """Read ``{...}`` (or a single character) starting at ``s[i]``; return (content, next)."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return None
    if s[i] != "{":
        return s[i], i + 1
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j], j + 1
    return None


def _rewrite_frac_sqrt(s: str) -> str | None:
    out: list[str] = []
    i = 0
    while i < len(s):
        if s.startswith(r"\frac", i):
            a = _brace_group(s, i + 5)
            if a is None:
                return None
            b = _brace_group(s, a[1])
            if b is None:
                return None
            na, nb = _rewrite_frac_sqrt(a[0]), _rewrite_frac_sqrt(b[0])
            if na is None or nb is None:
                return None
            out.append(f"(({na})/({nb}))")
            i = b[1]
        elif s.startswith(r"\sqrt", i):
            j = i + 5
            index = None
            if j < len(s) and s[j] == "[":
                k = s.find("]", j)
                if k < 0:
                    return None
                index, j = s[j + 1 : k], k + 1
            a = _brace_group(s, j)
            if a is None:
                return None
            na = _rewrite_frac_sqrt(a[0])
            if na is None:
                return None
            if index is None:
                out.append(f"sqrt({na})")
            else:
                ni = _rewrite_frac_sqrt(index)
                if ni is None:
                    return None
                out.append(f"(({na})**(1/({ni})))")
            i = a[1]
        elif s[i] == "^":
            digits = re.match(r"\s*(\d+)", s[i + 1 :])
            # Plain-text powers: `2^10` is 1024 (LaTeX would read 2^{1}0).
            a = (digits.group(1), i + 1 + digits.end()) if digits else _brace_group(s, i + 1)
            if a is None:
                return None
            na = _rewrite_frac_sqrt(a[0])
            if na is None:
                return None
            out.append(f"**({na})")
            i = a[1]
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def to_expression(text: str) -> str | None:
    """A whitelisted Python-syntax expression for ``text``, or ``None`` when it is not one.

    >>> to_expression(r"\\frac{\\sqrt{2}}{2}")
    '((sqrt(2))/(2))'
    >>> to_expression("2x^2 + 3(x-1)")
    '2*x**(2)+3*(x-1)'
    >>> to_expression("__import__('os')") is None
    True
    """
    if len(text) > _MAX_LEN:
        return None
    s = text.replace(r"\dfrac", r"\frac").replace(r"\tfrac", r"\frac")
    for cmd in _DROP:
        s = s.replace(cmd, "")
    rewritten = _rewrite_frac_sqrt(s)
    if rewritten is None:
        return None
    s = rewritten
    for cmd, rep in sorted(_COMMANDS.items(), key=lambda kv: -len(kv[0])):
        s = s.replace(cmd, rep)
    s = s.replace("{", "(").replace("}", ")").replace("[", "(").replace("]", ")")
    return _tokens_to_expr(s)


def _tokens_to_expr(s: str) -> str | None:
    tokens: list[tuple[str, str]] = []  # (kind, text)
    pos = 0
    s = s.rstrip()
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if m is None:
            return None
        num, word, op = m.groups()
        pos = m.end()
        if num is not None:
            tokens.append(("num", num))
        elif word is not None:
            for part in _split_word(word):
                if part is None:
                    return None
                tokens.append(part)
        else:
            tokens.append(("op", op))
    if not tokens:
        return None
    out: list[str] = []
    prev: tuple[str, str] | None = None
    for tok in tokens:
        if prev is not None and _implicit_mul(prev, tok):
            out.append("*")
        out.append(tok[1])
        prev = tok
    expr = "".join(out)
    if expr.count("(") != expr.count(")"):
        return None
    return expr


def _split_word(word: str) -> list[tuple[str, str] | None]:
    """Split a run of letters into function names, constants and single-letter variables."""
    parts: list[tuple[str, str] | None] = []
    i = 0
    while i < len(word):
        for name in sorted(FUNCTIONS | CONSTANTS, key=len, reverse=True):
            if word.startswith(name, i):
                parts.append(("func" if name in FUNCTIONS else "var", name))
                i += len(name)
                break
        else:
            ch = word[i]
            if ch == "e":  # Euler's number, as in LaTeX answers
                parts.append(("var", "E"))
            else:
                parts.append(("var", ch) if ch.isascii() and ch.isalpha() else None)
            i += 1
    return parts


def _implicit_mul(prev: tuple[str, str], tok: tuple[str, str]) -> bool:
    pk, pt = prev
    tk, tt = tok
    left_ends_value = pk in ("num", "var") or (pk == "op" and pt == ")")
    right_starts_value = tk in ("num", "var", "func") or (tk == "op" and tt == "(")
    return left_ends_value and right_starts_value and not (pk == "num" and tk == "num")
