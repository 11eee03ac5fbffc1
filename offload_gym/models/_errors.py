"""Reading a failed call to a cloud endpoint: the seconds a ``Retry-After`` header asks for,
the root cause of a chained exception, and an error's message body (all bounded in length, so
an error message never carries a whole response)."""

from __future__ import annotations

from typing import Any


def retry_after(response: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds form; HTTP dates are ignored)."""
    try:
        value = response.headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


def root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc) or type(exc).__name__
    return text[:200]


def error_body(exc: Any) -> str:
    try:
        return str(exc.message)[:300]
    except AttributeError:
        return type(exc).__name__
