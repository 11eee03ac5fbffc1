"""Running the Co-PLMs experiment: the public checkpoints, then every method on every seed, in
one process or in worker processes (``offload-gym coplms --workers N``).

The work splits into independent jobs: each public checkpoint (the server LLM, each device's
SLM, the proxy; then the proxy's distillation from the LLM, once both exist), and each
(seed, method) pair (plus each seed's scores of the public checkpoints before co-tuning). A job
depends only on the settings, the seed and the checkpoints, so jobs run side by side, one
worker a core. On the 2-core machine this buys nothing measurable against one 2-thread process
(0.96x at reduced public steps, `benchmarks/bench_coplms_workers.py`; a second thread already
speeds these models' steps up, and each worker pays its own start and data): what it gives is
a run that uses the cores of a larger machine, where one process of tiny models cannot.

The numbers depend on ``CoPLMsConfig.threads`` (a matrix product's reductions split over
threads add in another order), never on the number of workers: a job gives the same result in
a worker as in the main process (tested). Workers are started with ``spawn`` (a process forked
from one whose torch thread pool runs can hang).
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

from offload_agents._torch import auto_workers, torch_threads
from offload_agents.coplms.config import CoPLMsConfig
from offload_agents.coplms.experiment import _before, _result, make_evaluator
from offload_agents.coplms.methods import METHODS, prepare, run_method
from offload_agents.coplms.public import (
    PublicModels,
    checkpoint_path,
    distilled_dpm,
    is_built,
    public_checkpoint,
    public_models,
    quiet_transformers,
)

__all__ = ["BEFORE", "auto_workers", "run_experiment", "run_job"]

BEFORE = "before"
"""The job name of a seed's scores of the public checkpoints before co-tuning."""


def run_job(cfg: CoPLMsConfig, method: str, public: PublicModels) -> dict[str, Any]:
    """One seed's (``cfg.seed``) run of ``method`` (or, for `BEFORE`, the public checkpoints'
    scores before co-tuning), at ``cfg.threads`` torch threads; its own data from `prepare`
    (deterministic in the seed), so the same in any process."""
    setup = _prepared(cfg, public, quiet=method != BEFORE)
    evaluate = make_evaluator(setup.tokenizer, cfg.max_new_tokens)
    with torch_threads(cfg.threads), quiet_transformers():
        if method == BEFORE:
            return _before(cfg, setup.eval, public, evaluate)
        return run_method(method, cfg, setup, evaluate, progress=False, public=public)


_SETUPS: dict[Any, Any] = {}
"""The last seed's data, in each process (a seed's jobs run one after another: `prepare` takes
seconds at the default settings)."""


def _prepared(cfg: CoPLMsConfig, public: PublicModels, *, quiet: bool) -> Any:
    """`prepare` ``cfg``, memoised for the last seed; ``quiet``: a short answer room is said
    once a seed, by its `BEFORE` job."""
    key = (cfg, public.server, public.dpm, tuple(public.slms))
    if key not in _SETUPS:
        _SETUPS.clear()
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore", UserWarning)
            _SETUPS[key] = prepare(cfg, public)
    return _SETUPS[key]


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _drain(pool: ProcessPoolExecutor, pending: set[Future[Any]], on_done: Callable) -> None:
    """Wait for ``pending`` (which ``on_done(future)`` may add to), then shut ``pool`` down.
    The first error cancels the jobs not yet started, lets the running ones finish and is
    raised here, with the worker's traceback; Ctrl-C does not wait for the workers."""
    try:
        while pending:
            finished, rest = wait(pending, return_when=FIRST_COMPLETED)
            pending.clear()
            pending |= rest
            for fut in finished:
                fut.result()
                on_done(fut)
    except Exception:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _missing(cfg: CoPLMsConfig, cache_dir: str | PathLike[str]) -> list[tuple[Any, int, str]]:
    """The public checkpoints not yet built, as (spec, steps, role), the server LLM's first;
    one per cache folder (two devices with the same architecture share a checkpoint)."""
    specs = [(cfg.server, cfg.server_pretrain_steps, "server LLM"),
             (cfg.dpm, cfg.slm_pretrain_steps, "DPM"),
             *[(d.slm, cfg.slm_pretrain_steps, f"{d.domain} SLM")
               for d in cfg.devices]]  # fmt: skip
    out: dict[Path, tuple[Any, int, str]] = {}
    for spec, steps, role in specs:
        if steps == 0:  # a random initialisation
            continue
        path = checkpoint_path(cfg, spec, steps, cache_dir)
        if not is_built(path):
            out.setdefault(path, (spec, steps, role))
    return list(out.values())


def build_public(
    cfg: CoPLMsConfig, cache_dir: str | PathLike[str], *, workers: int, progress: bool = True
) -> PublicModels:
    """Every public checkpoint ``cfg`` needs, built where missing, ``workers`` at a time (the
    longest, the server LLM's, first; the proxy's distillation as soon as the LLM and the proxy
    exist). The same checkpoints as `public_models` builds one after another."""
    from tqdm.auto import tqdm

    missing = _missing(cfg, cache_dir)
    if workers > 1 and missing:
        distill = bool(cfg.server_pretrain_steps and cfg.slm_pretrain_steps
                       and cfg.dpm_distill_steps)  # fmt: skip
        bar = tqdm(total=len(missing) + distill, unit="model", disable=not progress,
                   desc=f"public checkpoints ({workers} workers)")  # fmt: skip
        pool = _pool(workers)
        futures = {pool.submit(public_checkpoint, cfg, spec, steps, cache_dir, role=role,
                               progress=False): role for spec, steps, role in missing}  # fmt: skip
        pending = set(futures)
        started = False
        server = checkpoint_path(cfg, cfg.server, cfg.server_pretrain_steps, cache_dir)
        dpm = checkpoint_path(cfg, cfg.dpm, cfg.slm_pretrain_steps, cache_dir)

        def done(fut: Future[Any]) -> None:
            nonlocal started
            bar.update(1)
            bar.set_postfix_str(f"{futures[fut]} done")
            if distill and not started and is_built(server) and is_built(dpm):
                started = True
                nxt = pool.submit(distilled_dpm, cfg, server, dpm, cache_dir, progress=False)
                futures[nxt] = "DPM distilled from the LLM"
                pending.add(nxt)

        try:
            _drain(pool, pending, done)
        finally:
            bar.close()
    return public_models(cfg, cache_dir, progress=progress)  # every one built now


def run_experiment(
    cfg: CoPLMsConfig,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    methods: Sequence[str] = METHODS,
    progress: bool = True,
    cache_dir: str | PathLike[str] = "~/.cache/offload-gym",
    on_seed: Callable[[dict[str, Any]], object] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Every method on every seed (same public checkpoints, data and schedules per seed).

    Returns ``{"config", "seeds", "methods": {name: summary}, "before": ..., "runs": {name:
    [per seed]}}``; a summary holds per-device ``em``/``em_text``/``rouge_l`` (mean and std
    over seeds), their averages over devices, the LLM's (for methods that train it), bytes per
    round and in total, and the per-round averages for the plot; ``before`` holds, per domain,
    the public SLM's and the public server LLM's scores before any co-tuning. ``on_seed`` is
    called with the result over the seeds finished so far (in order) as each finishes (the
    command line writes it, so an interrupted run keeps its finished seeds). ``workers``: the
    processes that build the checkpoints and run the jobs (0: one per ``cfg.threads`` cores;
    1: this process); the results do not depend on it.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid: {list(METHODS)}")
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0: one per {cfg.threads} cores), got {workers}")
    seeds = list(seeds)
    jobs = [(s, m) for s in seeds for m in (BEFORE, *methods)]
    n = workers or auto_workers(cfg.threads, len(jobs))
    public = build_public(cfg, cache_dir, workers=n, progress=progress)
    results: dict[tuple[int, str], dict[str, Any]] = {}
    reported = 0

    def finished(seed_job: tuple[int, str], result: dict[str, Any]) -> None:
        nonlocal reported
        results[seed_job] = result
        while reported < len(seeds) and all((seeds[reported], m) in results
                                            for m in (BEFORE, *methods)):  # fmt: skip
            reported += 1
            if on_seed is not None:
                on_seed(_collect(cfg, seeds[:reported], methods, results))

    _run_jobs(cfg, jobs, public, n, finished, progress)
    return _collect(cfg, seeds, methods, results)


def _collect(cfg: CoPLMsConfig, seeds: list[int], methods: Sequence[str],
             results: dict[tuple[int, str], dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    runs = {m: [results[(s, m)] for s in seeds] for m in methods}
    return _result(cfg, seeds, runs, [results[(s, BEFORE)] for s in seeds])


def _run_jobs(cfg: CoPLMsConfig, jobs: list[tuple[int, str]], public: PublicModels,
              workers: int, finished: Callable, progress: bool) -> None:  # fmt: skip
    """Each (seed, method) job, in this process (``workers`` 1) or in a pool, in order of
    submission (seed by seed, so the finished seeds come early); ``finished(job, result)``."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc=f"seed x method ({workers} worker"
               f"{'s' if workers > 1 else ''})", unit="job", disable=not progress)  # fmt: skip
    try:
        if workers <= 1:
            for seed, method in jobs:
                bar.set_postfix_str(f"seed {seed} {method}")
                finished((seed, method), run_job(replace(cfg, seed=seed), method, public))
                bar.update(1)
            return
        pool = _pool(workers)
        futures = {pool.submit(run_job, replace(cfg, seed=s), m, public): (s, m)
                   for s, m in jobs}  # fmt: skip

        def done(fut: Future[Any]) -> None:
            finished(futures[fut], fut.result())
            bar.update(1)

        _drain(pool, set(futures), done)
    finally:
        bar.close()
