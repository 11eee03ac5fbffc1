"""The sympy stage of answer checking, in a helper process with a wall-clock limit.

sympy can take unbounded time on adversarial input (``simplify`` of a huge power), and a thread
cannot be interrupted, so the comparison runs in a long-lived child process (started on first
use, about half a second) that is killed and restarted when a request overruns its time limit.
The child only ever sees strings produced by `offload_gym.scoring.latex.to_expression`, which
contain whitelisted tokens only, so sympy's parser never evaluates arbitrary code.

The protocol is one JSON line per request and per answer over the child's stdin and stdout;
each request carries an id that its answer repeats, and an answer to any other request is
discarded. A comparison that is interrupted (Ctrl-C, any exception) or overruns its limit kills
the helper, so no reply can outlive its request.
"""

from __future__ import annotations

import atexit
import itertools
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_proc: subprocess.Popen[str] | None = None
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offload-sympy-spawner")
STARTUP_TIMEOUT_S = 60.0
stats = {"calls": 0, "timeouts": 0, "errors": 0, "restarts": 0, "stale": 0}
"""Counters of the helper's use in this process: calls, timeouts, errors, restarts, and stale
replies discarded (answers to an earlier request)."""
_ids = itertools.count(1)


def _start() -> subprocess.Popen[str]:
    global _proc
    if _proc is not None and _proc.poll() is None:
        return _proc
    if _proc is not None:
        stats["restarts"] += 1
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME", "LANG")}
    # Started from one long-lived thread: the helper asks the kernel to kill it when the thread
    # that started it dies (so a kill -9 of this process leaves no helper behind), and a
    # short-lived caller thread must not take the helper down with it.
    _proc = _spawner.submit(
        subprocess.Popen,
        [sys.executable, "-m", "offload_gym.scoring._sympy_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        env=env,
    ).result()
    # The helper says "ready" once sympy is imported; that start-up is not part of any timeout.
    assert _proc.stdout is not None
    ready, _, _ = select.select([_proc.stdout], [], [], STARTUP_TIMEOUT_S)
    if not ready or _proc.stdout.readline().strip() != '"ready"':
        _kill()
        raise RuntimeError("the sympy helper process did not start")
    return _proc


def _kill() -> None:
    global _proc
    if _proc is not None:
        try:
            _proc.kill()
            _proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
    _proc = None


atexit.register(_kill)


def sympy_equivalent(pred_expr: str, gold_expr: str, *, timeout: float) -> bool | str | None:
    """``True``/``False`` from sympy, an error message string when sympy failed, or ``None``
    when it did not answer within ``timeout`` seconds (the helper is then restarted).

    The first call (and the first after a timeout) also waits for the helper to start, which is
    not counted in ``timeout``.
    """
    answer = _call([pred_expr, gold_expr], timeout, lambda a: isinstance(a, bool))
    assert answer is None or isinstance(answer, bool | str)
    return answer


def math_verify_equivalent(
    response: str, gold: str, *, timeout: float
) -> tuple[bool, str | None] | str | None:
    """math-verify's verdict on a whole ``response`` against the reference ``gold`` (LaTeX),
    with the answer it extracted; an error string when it failed, ``None`` past ``timeout``
    seconds (the helper is then restarted, as for `sympy_equivalent`)."""
    answer = _call(["math-verify", response, gold], timeout, _is_verdict_and_answer)
    if answer is None or isinstance(answer, str):
        return answer
    assert isinstance(answer, list)
    return answer[0], answer[1]


def _is_verdict_and_answer(answer: object) -> bool:
    return (
        isinstance(answer, list)
        and len(answer) == 2
        and isinstance(answer[0], bool)
        and isinstance(answer[1], str | None)
    )


def _call(payload: list[str], timeout: float, valid: Callable[[object], bool]) -> object:
    """One request to the helper: its answer (one that ``valid`` accepts), ``None`` on a
    timeout, or an error string (the helper's, or ours for a malformed reply, after which the
    helper is restarted)."""
    if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
        stats["errors"] += 1
        return f"the sympy stage needs a finite timeout > 0 seconds, got {timeout!r}"
    with _lock:
        stats["calls"] += 1
        try:
            proc = _start()
        except (OSError, RuntimeError) as exc:
            stats["errors"] += 1
            return f"sympy helper unavailable: {exc}"
        request_id = next(_ids)
        try:
            answer = _exchange(proc, request_id, payload, timeout)
        except BaseException:  # interrupted mid-request: its reply must never be read later
            _kill()
            raise
        if answer is _NO_REPLY:
            stats["timeouts"] += 1
            _kill()
            return None
        if isinstance(answer, str):
            stats["errors"] += 1
            return answer
        if answer is _MALFORMED or not valid(answer):
            stats["errors"] += 1
            _kill()
            return "bad reply from sympy helper"
        return answer


_NO_REPLY = object()
_MALFORMED = object()


def _exchange(
    proc: subprocess.Popen[str], request_id: int, payload: list[str], timeout: float
) -> object:
    """Send one request; return the answer that names it (discarding stale ones), or
    ``_NO_REPLY`` when none came within ``timeout`` seconds or the pipe broke."""
    assert proc.stdin is not None and proc.stdout is not None
    deadline = time.monotonic() + timeout
    try:
        proc.stdin.write(json.dumps([request_id, *payload]) + "\n")
        proc.stdin.flush()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not _wait_ready(proc, remaining):
                return _NO_REPLY
            line = proc.stdout.readline()
            if not line:
                return _NO_REPLY
            reply = json.loads(line)
            if not (isinstance(reply, list) and len(reply) == 2):
                return _MALFORMED
            if reply[0] == request_id:
                return reply[1]
            stats["stale"] += 1  # an answer to an earlier request: never this one's verdict
    except (BrokenPipeError, OSError):
        return _NO_REPLY
    except json.JSONDecodeError:
        return _MALFORMED


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> bool:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return bool(ready)
