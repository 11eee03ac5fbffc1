"""The sympy stage of answer checking, in a helper process with a wall-clock limit.

sympy can take unbounded time on adversarial input (``simplify`` of a huge power), and a thread
cannot be interrupted, so the comparison runs in a long-lived child process (started on first
use, about half a second) that is killed and restarted when a request overruns its time limit.
The child only ever sees strings produced by `offload_gym.scoring.latex.to_expression`, which
contain whitelisted tokens only, so sympy's parser never evaluates arbitrary code.

The protocol is one JSON line per request and per answer over the child's stdin and stdout.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_proc: subprocess.Popen[str] | None = None
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offload-sympy-spawner")
STARTUP_TIMEOUT_S = 60.0
stats = {"calls": 0, "timeouts": 0, "errors": 0, "restarts": 0}
"""Counters of the helper's use in this process: calls, timeouts, errors, restarts."""


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
    with _lock:
        stats["calls"] += 1
        try:
            proc = _start()
        except (OSError, RuntimeError) as exc:
            stats["errors"] += 1
            return f"sympy helper unavailable: {exc}"
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps([pred_expr, gold_expr]) + "\n")
            proc.stdin.flush()
            ready = _wait_ready(proc, timeout)
            line = proc.stdout.readline() if ready else ""
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            stats["timeouts"] += 1
            _kill()
            return None
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            stats["errors"] += 1
            _kill()
            return "bad reply from sympy helper"
        if isinstance(answer, str):
            stats["errors"] += 1
        return answer


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> bool:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return bool(ready)
