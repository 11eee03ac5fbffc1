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
