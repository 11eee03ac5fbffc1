"""Small torch helpers shared by the kit, the trainer and the experiments."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, restoring the previous number after
    (``n = 0`` leaves the setting alone). On a small model and a shared machine, fewer threads
    are often faster: oversubscribed cores slow every thread down.

    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n < 0:
        raise ValueError(f"threads must be >= 0, got {n}")
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(before)


def auto_workers(threads: int, n_jobs: int, cpus: int | None = None) -> int:
    """Worker processes for ``workers=0``: one per ``threads`` cores, at most one a job, at
    least 1 (the demo's seeds, Co-PLMs' (seed, method) jobs).

    >>> auto_workers(1, 8, cpus=2), auto_workers(2, 8, cpus=2), auto_workers(1, 1, cpus=16)
    (2, 1, 1)
    """
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(1, min(n_jobs, cpus // max(1, threads)))
