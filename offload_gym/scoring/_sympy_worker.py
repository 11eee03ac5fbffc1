"""Helper process of `offload_gym.scoring.symbolic`: reads ``[id, pred, gold]`` (sympy) or
``[id, "math-verify", response, gold]`` JSON lines and writes ``[id, result]``: ``true``/``false``
or an error string for sympy, ``[verdict, extracted answer]`` for math-verify. Run as
``python -m offload_gym.scoring._sympy_worker``."""

from __future__ import annotations

import json
import sys


def _equivalent(pred: str, gold: str) -> bool | str:
    import sympy
    from sympy.parsing.sympy_parser import parse_expr

    letters = "abcdfghjklmnopqrstuvwxyzABCDFGHJKLMNOPQRSTUVWXYZ"
    local = {name: sympy.Symbol(name) for name in letters}
    # As in LaTeX answers: i is the imaginary unit (e is mapped to E before this point).
    local.update({"pi": sympy.pi, "E": sympy.E, "oo": sympy.oo, "abs": sympy.Abs, "i": sympy.I})
    try:
        a = parse_expr(pred, local_dict=local, evaluate=True)
        b = parse_expr(gold, local_dict=local, evaluate=True)
        undefined = (sympy.zoo, sympy.nan)
        if any(getattr(x, "has", lambda *_: False)(*undefined) for x in (a, b)):
            return False  # 1/0 and 0/0 have no value: never equivalent, not even to themselves
        diff = sympy.simplify(a - b)
        if diff == 0:
            return True
        if a == b:
            return True
        eq = a.equals(b)
        return bool(eq) if eq is not None else False
    except Exception as exc:  # sympy raises many types; report, do not crash the helper
        return f"{type(exc).__name__}: {exc}"[:200]


def _math_verify(response: str, gold: str) -> list[object] | str:
    """math-verify's verdict on a whole response, and the answer it extracted. Its own
    signal-based time limits are off: the host kills this process when it overruns."""
    try:
        from math_verify import parse, verify

        pred = parse(response, parsing_timeout=None)  # type: ignore[arg-type]
        ok = bool(verify(parse(f"${gold}$", parsing_timeout=None), pred, timeout_seconds=None))  # type: ignore[arg-type]
        return [ok, str(pred[1]) if len(pred) > 1 else None]
    except Exception as exc:  # report, do not crash the helper
        return f"{type(exc).__name__}: {exc}"[:200]


def _answer(request: list[object]) -> object:
    if len(request) == 4 and request[1] == "math-verify":
        return _math_verify(str(request[2]), str(request[3]))
    _, pred, gold = request
    return _equivalent(str(pred), str(gold))


def _exit_with_parent(poll_s: float = 0.5) -> None:
    """Exit as soon as the host process is gone: a kill -9 of the host leaves no EOF to read
    while a long sympy computation runs, and the helper must not keep a core busy for nobody.
    On Linux the kernel kills the helper when its parent dies (``PR_SET_PDEATHSIG``: a
    computation in C that holds the GIL, such as a huge power, cannot stop a thread-based
    watch); elsewhere a thread polls the parent pid between computations."""
    import os
    import signal
    import threading
    import time

    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # 1 = PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before the call: nobody to serve
                os._exit(0)
            return
    except (OSError, AttributeError, ImportError):
        pass

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    _exit_with_parent()
    import sympy  # noqa: F401  (import once, before the first request)

    try:
        import logging

        import math_verify  # noqa: F401

        logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout is off" notes
    except ImportError:
        pass

    sys.stdout.write('"ready"\n')
    sys.stdout.flush()

    for line in sys.stdin:
        request_id = None
        try:
            request = json.loads(line)
            request_id = request[0]
            result = _answer(request)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            result = f"bad request: {exc}"
        # The reply names its request: the parent discards a reply to an earlier request.
        sys.stdout.write(json.dumps([request_id, result]) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
