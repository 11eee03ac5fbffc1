"""Plain-data encoding between the sandbox's test monitor and the candidate process.

Only values of exactly these types cross (no subclasses, so no object whose ``__eq__`` always
says yes): ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, ``list``,
``tuple``, ``dict``, ``set``, ``frozenset``. Anything else is refused with ``TypeError``.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64


def encode(value: Any, depth: int = 0) -> Any:
    """A JSON-able tagged form of ``value``."""
    if depth > MAX_DEPTH:
        raise TypeError("value nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if abs(value) < 2**53 else {"i": str(value)}
    if t is float:
        return value if math.isfinite(value) else {"f": repr(value)}
    if t is complex:
        return {"c": [encode(value.real), encode(value.imag)]}
    if t is bytes:
        return {"b": value.hex()}
    if t is list:
        return [encode(v, depth + 1) for v in value]
    if t is tuple:
        return {"t": [encode(v, depth + 1) for v in value]}
    if t is set or t is frozenset:
        items = [encode(v, depth + 1) for v in value]
        return {"s" if t is set else "fs": items}
    if t is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    raise TypeError(f"values of type {t.__name__} cannot leave the sandbox")


def decode(obj: Any) -> Any:
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if isinstance(obj, dict) and len(obj) == 1:
        ((tag, v),) = obj.items()
        if tag == "i":
            return int(v)
        if tag == "f":
            return float(v)
        if tag == "c":
            return complex(decode(v[0]), decode(v[1]))
        if tag == "b":
            return bytes.fromhex(v)
        if tag == "t":
            return tuple(decode(x) for x in v)
        if tag == "s":
            return {decode(x) for x in v}
        if tag == "fs":
            return frozenset(decode(x) for x in v)
        if tag == "d":
            return {decode(k): decode(x) for k, x in v}
    raise ValueError(f"malformed sandbox message: {str(obj)[:80]}")


def dumps(value: Any) -> bytes:
    return json.dumps(encode(value), separators=(",", ":")).encode() + b"\n"


def loads(line: bytes) -> Any:
    return decode(json.loads(line))
