"""The math-to-code continual experiment behind ``offload-gym demo``.

A skilled tiny SLM (`offload_agents.slm.skill`: one token per character, short worked steps)
is built and warm-started (or loaded from the cache), then trained along the stream, a math
group followed by a code group, by each method: the GRPO-family algorithms, and DA-GRPO under
the dual controllers. Each task group draws its own families and difficulties
(`DemoConfig.math_difficulty`, `code_difficulty`; settings in `offload_agents.grpo.demo_config`),
and evaluation draws from the same distribution with its own seed, on prompts the warm start
never saw. Every trained model is evaluated on them after the math group and at the end (for
forgetting; the report is `offload_agents.grpo.demo_report`), next to the references
``local`` (the warm-started model alone), ``cloud`` (every task to the cloud, no budget) and the
composite baselines ``grpo+random`` (the GRPO-tuned model with random offloading at the budget
rate), ``grpo+router`` (the same model behind a Hybrid-LLM-style router that reads the prompt
and the model's confidence, fitted on that model's own correctness) and the reference
``grpo+router-privileged`` (the same classifier over the task's difficulty label, which no
deployed router knows; `offload_agents.grpo.routers`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import asdict
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from offload_agents._torch import torch_threads
from offload_agents.baselines.prompt_router import top_share
from offload_agents.grpo.algorithms import get_algorithm
from offload_agents.grpo.demo_config import (
    CALIB_SEED,
    DEFAULT_METHODS,
    DEMO_WINDOW,
    EVAL_SEED,
    METHODS,
    RANKED,
    TRACED,
    TRAIN_SEED,
    DemoConfig,
    demo_stream,
    heldout_stream,
)
from offload_agents.grpo.demo_report import (
    OWN_VIEW,
    PARTIAL_DIR,
    PROBE_VIEWS,
    forgetting_comparisons,
    probe_name,
    training_budget_tracking,
    write_demo_report,
)
from offload_agents.grpo.demo_summary import summarize_seeds
from offload_agents.grpo.routers import (
    calibrate,
    mask_route,
    random_route,
    route_by,
)
from offload_agents.grpo.trainer import GRPOTrainer
from offload_agents.lm_eval import (
    GreedyMemo,
    always_help,
    ask_probabilities,
    evaluate_lm,
    never_help,
)
from offload_agents.slm import load_local_lm
from offload_agents.slm.skill import WorkedAnswers, build_skilled_slm, load_seen, prompt_digest
from offload_gym import metrics
from offload_gym.tasks import TaskStream

__all__ = [
    "CALIB_SEED",
    "DEFAULT_METHODS",
    "DEMO_WINDOW",
    "EVAL_SEED",
    "METHODS",
    "OWN_VIEW",
    "PARTIAL_DIR",
    "PROBE_VIEWS",
    "TRACED",
    "TRAIN_SEED",
    "DemoConfig",
    "cached_slm",
    "demo_stream",
    "forgetting_comparisons",
    "heldout_stream",
    "probe_name",
    "run_demo",
    "slm_dir",
    "training_budget_tracking",
    "write_demo_report",
]


def cached_slm(cfg: DemoConfig, cache_dir: str | PathLike[str], progress: bool) -> Path:
    """The skilled SLM for these settings, built once and cached by a hash of its recipe."""
    path = slm_dir(cfg, cache_dir)
    if not (path / "config.json").exists():
        tmp = path.with_name(path.name + ".partial")
        build_skilled_slm(tmp, cfg.skill(), progress=progress)
        tmp.replace(path)
    return path


def slm_dir(cfg: DemoConfig, cache_dir: str | PathLike[str]) -> Path:
    """Where `cached_slm` keeps the skilled SLM of these settings (built or not)."""
    return Path(cache_dir) / f"skilled-slm-{cfg.skill().key()}"


def _math_skill(
    model: Any, tokenizer: Any, math_only: TaskStream, run: dict[str, Any], memo: GreedyMemo
) -> dict:
    """Accuracy on the math evaluation tasks alone: with the cloud at the budget, and the
    model's own (help requests answered by nobody); ``records`` keeps each view's per-task
    records. ``memo``: the model's greedy responses, shared with its other evaluations."""
    with_cloud = evaluate_lm(model, tokenizer, math_only, agent="probe", memo=memo, **run)
    local = evaluate_lm(model, tokenizer, math_only, agent="probe", route=never_help, memo=memo,
                        **run)  # fmt: skip
    return {"with_cloud": metrics.overall_accuracy(with_cloud) or 0.0,
            "local": metrics.overall_accuracy(local) or 0.0,
            "records": {"with_cloud": with_cloud, "local": local}}  # fmt: skip


def _train_method(
    base: Any,
    tokenizer: Any,
    cfg: DemoConfig,
    method: str,
    seed: int,
    out: Path,
    math_only: TaskStream,
    run: dict[str, Any],
    progress: bool,
    tensorboard_dir: Any = None,
    held_out: frozenset[str] = frozenset(),
) -> tuple[Any, list[dict[str, Any]], dict[str, float], dict[str, float], GreedyMemo]:
    """Train a copy of ``base`` with ``method`` along the stream; return the model, its
    training history, its math skill after the math group and at the end, and the memo of its
    final greedy responses. The anchor never draws a prompt in ``held_out`` (`prompt_digest`
    keys of the evaluation tasks)."""
    model = copy.deepcopy(base)
    train_stream = demo_stream(cfg, cfg.steps_per_group, TRAIN_SEED + seed, replay=cfg.replay)
    log = out / "train" / f"{method}-seed{seed}.jsonl"
    log.unlink(missing_ok=True)  # a fresh run (the trainer appends to resume its own log)
    groups = {"math": cfg.math_families, "code": cfg.code_families}
    trainer = GRPOTrainer(model, tokenizer, cfg.grpo(method, seed),
                          env_kwargs={"tasks": train_stream}, log_path=log,
                          tensorboard_dir=tensorboard_dir,
                          anchor=WorkedAnswers(cfg.skill(), groups, seed=seed,
                                               exclude=held_out))  # fmt: skip
    trainer.train(cfg.steps_per_group, progress=progress, desc=f"{method} seed {seed}: train math")
    new_tokens = run["max_new_tokens"]
    after = _math_skill(model, tokenizer, math_only, run, GreedyMemo(model, tokenizer, new_tokens))
    trainer.train(cfg.steps_per_group, progress=progress, desc=f"{method} seed {seed}: train code")
    trainer.close()
    memo = GreedyMemo(model, tokenizer, new_tokens)
    return model, trainer.history, after, _math_skill(model, tokenizer, math_only, run, memo), memo


def run_demo(
    out_dir: str | PathLike[str],
    cfg: DemoConfig,
    *,
    cache_dir: str | PathLike[str],
    progress: bool = True,
    tensorboard_dir: str | PathLike[str] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Run the experiment; return ``{"config", "agents", "traces", "logs", "slm", "probes"}``
    (``probes``: the per-task records of the forgetting probes, by `probe_name`; written
    to ``out_dir/results.json`` with ``results.md`` and plots by `write_demo_report`). With
    ``tensorboard_dir``, each trained method's steps go to ``<dir>/<method>-seed<seed>``. With
    ``workers`` > 1, the seeds run side by side in that many processes of ``cfg.threads``
    torch threads each (`offload_agents.grpo.seed_pool`): the same numbers, sooner."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    with torch_threads(cfg.threads):
        return _run_demo(Path(out_dir), cfg, cache_dir, progress, tensorboard_dir, workers)


def write_partial(path: Path, done: dict[str, Any]) -> None:
    """Keep one finished seed's result (written whole, then moved into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(done), encoding="utf-8")
    tmp.replace(path)


def _run_demo(
    out: Path,
    cfg: DemoConfig,
    cache_dir: Any,
    progress: bool,
    tensorboard_dir: Any = None,
    workers: int = 1,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    slm_path = slm_dir(cfg, cache_dir)
    key = hashlib.sha256(json.dumps([asdict(cfg), slm_path.name], sort_keys=True,
                                    default=str).encode()).hexdigest()[:12]  # fmt: skip
    paths = {seed: out / PARTIAL_DIR / f"seed{seed}-{key}.json" for seed in cfg.seeds}
    missing = {seed: path for seed, path in paths.items() if not path.exists()}
    if progress:
        for seed in sorted(set(paths) - set(missing)):
            print(f"seed {seed}: resumed from {paths[seed]}", file=sys.stderr)
    if workers > 1 and len(missing) > 1:
        from offload_agents.grpo.seed_pool import cached_slm_in_child, run_seeds_in_workers

        cached_slm_in_child(cfg, cache_dir, progress)  # the parent stays small
        run_seeds_in_workers(missing, slm_path=slm_path, cfg=cfg, out=out, workers=workers,
                             progress=progress, tensorboard_dir=tensorboard_dir)  # fmt: skip
    else:
        cached_slm(cfg, cache_dir, progress)  # also when every seed resumed: the report reads it
        if missing:
            base, tokenizer = load_local_lm(slm_path)
            seen = load_seen(slm_path)
        for seed, path in missing.items():
            done = _run_seed(base, tokenizer, seen, cfg, seed, out, progress, tensorboard_dir)
            write_partial(path, done)
    per_seed = [json.loads(paths[seed].read_text(encoding="utf-8")) for seed in cfg.seeds]
    return summarize_seeds(cfg, per_seed, slm_path)


def _run_seed(
    base: Any,
    tokenizer: Any,
    seen: set[str],
    cfg: DemoConfig,
    seed: int,
    out: Path,
    progress: bool,
    tensorboard_dir: Any = None,
) -> dict[str, Any]:
    """Every agent of the demo on one seed: evaluation logs, math skill after the math group
    and at the end, and the training traces of each trained method (JSON-ready)."""
    stream = heldout_stream(cfg, cfg.eval_per_group, EVAL_SEED + seed, seen)
    tasks, _ = stream.draw(np.random.default_rng(seed))
    held_out = frozenset(prompt_digest(t.prompt) for t in tasks)
    math_only = TaskStream(stream.groups[:1])  # the same math tasks, alone
    run = {"budget": cfg.tau, "max_new_tokens": cfg.max_new_tokens, "seed": seed}
    done: dict[str, Any] = {"logs": {}, "after": {}, "end": {}, "traces": {}, "own": {},
                            "seen_share": float(np.mean([prompt_digest(t.prompt) in seen
                                                         for t in tasks]))}  # fmt: skip

    from tqdm.auto import tqdm

    # One status line for the phases without a bar of their own (the trainers have theirs).
    status = tqdm(total=0, bar_format="{desc}", disable=not progress, leave=False)

    def evaluate(name: str, memo: GreedyMemo, route: Any = None, **over: Any) -> None:
        status.set_description_str(f"seed {seed}: evaluate {name}")
        done["logs"][name] = evaluate_lm(memo.model, tokenizer, stream, route=route, agent=name,
                                         memo=memo, **{**run, **over})  # fmt: skip

    base_memo = GreedyMemo(base, tokenizer, cfg.max_new_tokens)
    evaluate("local", base_memo, never_help)
    evaluate("cloud-unlimited", base_memo, always_help, budget=1.0)
    for method in cfg.methods:
        tb = None if tensorboard_dir is None else Path(tensorboard_dir) / f"{method}-seed{seed}"
        model, history, after, end, memo = _train_method(base, tokenizer, cfg, method, seed, out,
                                                         math_only, run, progress, tb,
                                                         held_out)  # fmt: skip
        done["after"][method], done["end"][method] = after, end
        evaluate(method, memo)
        done["traces"][method] = {k: [r[k] for r in history] for k in TRACED}
        own = evaluate_lm(model, tokenizer, stream, route=never_help, agent=f"{method}:own",
                          memo=memo, **run)  # fmt: skip
        done["own"][method] = own
        for name, route in _composites(method, memo, cfg, seed, tasks, seen | held_out).items():
            evaluate(name, memo, route)
    status.close()
    return done


def _composites(
    method: str, memo: GreedyMemo, cfg: DemoConfig, seed: int, tasks: list[Any], exclude: Any
) -> dict[str, Any]:
    """The deployments of a tuned model other than its own greedy decisions, by name: the
    ``grpo`` model behind random offloading and the two routers; a DA-GRPO model by its own
    probability of asking (``<method>+rank``: the evaluation tasks with the highest
    probability, the budget's share of them, go to the cloud, the rule the routers follow, so
    the policy's ranking is compared with theirs)."""
    if method == "grpo":
        return {"grpo+random": random_route(cfg.tau, seed),
                **_routers(memo, cfg, seed, tasks, exclude)}  # fmt: skip
    if get_algorithm(METHODS[method]["algorithm"]).dual:
        scores = ask_probabilities(memo.model, memo.tokenizer, tasks)
        return {method + RANKED: mask_route(top_share(scores, cfg.tau))}
    return {}


def _routers(
    memo: GreedyMemo, cfg: DemoConfig, seed: int, tasks: list[Any], exclude: Any
) -> dict[str, Any]:
    """``grpo+router`` (prompt-only) and ``grpo+router-privileged`` (reads the difficulty label)
    for the evaluation ``tasks``, fitted on calibration tasks (none of whose prompts is in
    ``exclude``: the warm start's and the evaluation's) with the memo's model's own outcomes
    (`offload_agents.grpo.routers`)."""
    calib_stream = heldout_stream(cfg, cfg.calib_per_group, CALIB_SEED + seed, exclude)
    calib = calibrate(memo.model, memo.tokenizer, calib_stream,
                      max_new_tokens=cfg.max_new_tokens, seed=seed, memo=memo)  # fmt: skip
    _, conf = memo.responses(tasks)
    return {name: mask_route(route_by(kind, calib, tasks, conf, cfg.tau, seed))
            for name, kind in (("grpo+router", "prompt"),
                               ("grpo+router-privileged", "privileged"))}  # fmt: skip
