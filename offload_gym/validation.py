"""Small validation helpers shared by the configs."""

from __future__ import annotations

from collections.abc import Iterable


def reject_unknown(given: Iterable[str], valid: Iterable[str], what: str) -> None:
    """Raise ``ValueError`` naming the unknown keys of ``given`` and listing the valid ones.

    >>> reject_unknown(["budgett"], ["budget", "tasks"], "environment argument")
    Traceback (most recent call last):
    ...
    ValueError: unknown environment argument(s) ['budgett']; valid: ['budget', 'tasks']
    """
    valid = list(valid)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; valid: {valid}")


def require_int(name: str, value: object, minimum: int = 1) -> None:
    """Raise ``ValueError`` unless ``value`` is an int (not a bool) of at least ``minimum``.

    >>> require_int("group_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: group_size must be a positive int, got 0
    >>> require_int("max_retries", -1, minimum=0)
    Traceback (most recent call last):
    ...
    ValueError: max_retries must be an int >= 0, got -1
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")


def require_ints(obj: object, names: Iterable[str], minimum: int = 1) -> None:
    """`require_int` for each named attribute of ``obj`` (a config dataclass)."""
    for name in names:
        require_int(name, getattr(obj, name), minimum)
