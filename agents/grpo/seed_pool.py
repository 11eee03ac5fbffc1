"""The demo's seeds in parallel worker processes (``offload-gym demo --workers N``).

A seed of the demo (every method trained and evaluated on it) depends only on the warm-started
model, the settings and the seed, so seeds can run side by side. A step of the demo's small
model is partly Python and dispatch overhead that a second torch thread does not shorten, so
two 1-thread workers on two cores finish more seeds an hour than one 2-thread process: 1.23x
on the demo's seeds (docs/benchmarks.md); more where a machine has cores no single process
uses well.

The numbers depend on ``DemoConfig.threads`` (a matrix product's reductions split over threads
add in another order), never on the number of workers: a seed gives the same results in a worker
as in the main process at the same ``threads`` (tested). Each worker writes its seed's result to
the run's partial folder as it finishes, as the sequential run does, so an interrupted run
resumes from the finished seeds with either.

Workers are started with ``spawn``: a process forked from one whose torch thread pool is running
can hang.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from offload_agents._torch import auto_workers

__all__ = ["auto_workers", "cached_slm_in_child", "run_seeds_in_workers"]

_STATE: dict[str, Any] = {}
"""What a worker loads once: the warm-started model, its tokenizer and its seen prompts."""


def _init(slm_path: str, threads: int) -> None:
    import torch
    from transformers.utils import logging as hf_logging

    from offload_agents.slm import load_local_lm
    from offload_agents.slm.skill import load_seen

    hf_logging.disable_progress_bar()
    if threads:  # 0 leaves torch's setting alone, as in one process
        torch.set_num_threads(threads)
    base, tokenizer = load_local_lm(slm_path)
    _STATE.update(base=base, tokenizer=tokenizer, seen=load_seen(slm_path))


def _seed_job(cfg: Any, seed: int, out: str, path: str, tensorboard_dir: str | None) -> int:
    from offload_agents.grpo import experiment

    done = experiment._run_seed(_STATE["base"], _STATE["tokenizer"], _STATE["seen"], cfg, seed,
                                Path(out), False, tensorboard_dir)  # fmt: skip
    experiment.write_partial(Path(path), done)
    return seed


def cached_slm_in_child(cfg: Any, cache_dir: Any, progress: bool) -> Path:
    """`cached_slm` in a spawned process: the warm start's training leaves hundreds of MB in
    the process that ran it, and the parent of the workers only waits and writes the report.
    The same model as in-process (the build is seeded and runs at ``cfg.slm_threads``)."""
    from offload_agents.grpo.experiment import cached_slm, slm_dir

    path = slm_dir(cfg, cache_dir)
    if (path / "config.json").exists():
        return path
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(cached_slm, cfg, cache_dir, progress).result()


def run_seeds_in_workers(
    jobs: dict[int, Path],
    *,
    slm_path: Path,
    cfg: Any,
    out: Path,
    workers: int,
    progress: bool,
    tensorboard_dir: Any = None,
) -> None:
    """Run each seed of ``jobs`` (seed -> the partial file its result goes to) in a pool of
    ``workers`` processes with ``cfg.threads`` torch threads each. The first error in a worker
    cancels the seeds not yet started, lets the running ones finish (their files are kept)
    and is raised here."""
    from tqdm.auto import tqdm

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    n = min(workers, len(jobs))
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=n, mp_context=spawn, initializer=_init,
                               initargs=(str(slm_path), cfg.threads))  # fmt: skip
    tb = None if tensorboard_dir is None else str(tensorboard_dir)
    bar = tqdm(total=len(jobs), desc=f"seeds ({n} workers)", unit="seed", disable=not progress)
    pending: set[Future[int]] = {
        pool.submit(_seed_job, cfg, seed, str(out), str(path), tb) for seed, path in jobs.items()
    }
    try:
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in finished:
                fut.result()  # a worker's error, raised here with its remote traceback
                bar.update(1)
    except Exception:
        pool.shutdown(wait=True, cancel_futures=True)  # the running seeds finish and are kept
        raise
    except BaseException:  # Ctrl-C: the workers got it too; do not wait for them
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown(wait=True)
