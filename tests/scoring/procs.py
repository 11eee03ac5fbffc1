"""Helpers for tests that kill a host and watch its helper processes."""

import time


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] not in "ZX"
    except FileNotFoundError:
        return False


def exits_within(pid: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``pid`` to exit; whether it did."""
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not alive(pid)
