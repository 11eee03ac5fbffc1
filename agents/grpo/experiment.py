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
    _sample_sd,
    forgetting_comparisons,
    probe_name,
    training_budget_tracking,
    write_demo_report,
)
from offload_agents.grpo.routers import (
    calibrate,
    mask_route,
    random_route,
    route_by,
    routing_ceiling,
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
    "training_budget_tracking",
    "write_demo_report",
]


def cached_slm(cfg: DemoConfig, cache_dir: str | PathLike[str], progress: bool) -> Path:
    """The skilled SLM for these settings, built once and cached by a hash of its recipe."""
    recipe = cfg.skill()
    path = Path(cache_dir) / f"skilled-slm-{recipe.key()}"
    if not (path / "config.json").exists():
        tmp = path.with_name(path.name + ".partial")
        build_skilled_slm(tmp, recipe, progress=progress)
        tmp.replace(path)
    return path


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


def _forgetting(after: list[float], end: list[float]) -> dict[str, Any]:
    """Mean over seeds of the math accuracy after the math group and at the end, and of the
    drop between them (absolute; relative where the accuracy after math is above zero)."""
    pairs = [metrics.forgetting(a, e) for a, e in zip(after, end, strict=True)]
    rel = [p.relative for p in pairs if p.relative is not None]
    return {"after_math": float(np.mean(after)), "end": float(np.mean(end)),
            "absolute": float(np.mean([p.absolute for p in pairs])),
            "absolute_std": _sample_sd([p.absolute for p in pairs]),
            "relative": float(np.mean(rel)) if len(rel) == len(pairs) else None}  # fmt: skip


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


def _summaries(
    cfg: DemoConfig,
    logs: dict[str, list[dict[str, Any]]],
    traces: dict[str, Any],
    after_math: dict[str, list[dict[str, float]]],
    end_math: dict[str, list[dict[str, float]]],
) -> dict[str, Any]:
    agents: dict[str, Any] = {}
    for name, agent_logs in logs.items():
        summary = metrics.summarize(agent_logs, cfg.tau, window=DEMO_WINDOW)
        summary["n_seeds"] = len(cfg.seeds)
        per_seed = [metrics.overall_accuracy([r for r in agent_logs if r["seed"] == s])
                    for s in cfg.seeds]  # fmt: skip
        summary["accuracy_per_seed"] = per_seed
        values = [a for a in per_seed if a is not None]
        summary["accuracy_std"] = _sample_sd(values)
        summary["eval_requests"] = float(np.mean([r.get("action") == "cloud"
                                                  for r in agent_logs]))  # fmt: skip
        if name in after_math:
            summary["forgetting"] = {
                view: _forgetting([a[view] for a in after_math[name]],
                                  [e[view] for e in end_math[name]])
                for view in ("with_cloud", "local")
            }  # fmt: skip
        if name in traces:
            summary["training"] = training_budget_tracking(
                traces[name]["cloud_requests"], cfg.tau, cfg.steps_per_group
            )
            greedy = traces[name].get("greedy_requests", [])
            if greedy and all(v is not None for seed in greedy for v in seed):
                summary["training_greedy"] = training_budget_tracking(
                    greedy, cfg.tau, cfg.steps_per_group
                )
        agents[name] = summary
    return agents


def run_demo(
    out_dir: str | PathLike[str],
    cfg: DemoConfig,
    *,
    cache_dir: str | PathLike[str],
    progress: bool = True,
    tensorboard_dir: str | PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run the experiment; return ``{"config", "agents", "traces", "logs", "slm", "probes"}``
    (``probes``: the per-task records of the forgetting probes, by `probe_name`; written
    to ``out_dir/results.json`` with ``results.md`` and plots by `write_demo_report`). With
    ``tensorboard_dir``, each trained method's steps go to ``<dir>/<method>-seed<seed>``."""
    with torch_threads(cfg.threads):
        return _run_demo(Path(out_dir), cfg, cache_dir, progress, tensorboard_dir)


def _run_demo(
    out: Path, cfg: DemoConfig, cache_dir: Any, progress: bool, tensorboard_dir: Any = None
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    slm_path = cached_slm(cfg, cache_dir, progress)
    base, tokenizer = load_local_lm(slm_path)
    seen = load_seen(slm_path)
    key = hashlib.sha256(json.dumps([asdict(cfg), slm_path.name], sort_keys=True,
                                    default=str).encode()).hexdigest()[:12]  # fmt: skip
    per_seed = []
    for seed in cfg.seeds:
        path = out / PARTIAL_DIR / f"seed{seed}-{key}.json"
        if path.exists():
            if progress:
                print(f"seed {seed}: resumed from {path}", file=sys.stderr)
            per_seed.append(json.loads(path.read_text(encoding="utf-8")))
            continue
        done = _run_seed(base, tokenizer, seen, cfg, seed, out, progress, tensorboard_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(done), encoding="utf-8")
        tmp.replace(path)
        per_seed.append(done)
    logs: dict[str, list[dict[str, Any]]] = {}
    after_math: dict[str, list[dict[str, float]]] = {}
    end_math: dict[str, list[dict[str, float]]] = {}
    traces: dict[str, dict[str, list[list[float]]]] = {}
    probes: dict[str, list[dict[str, Any]]] = {}
    for done in per_seed:
        for name, records in done["logs"].items():
            logs.setdefault(name, []).extend(records)
        for method in done["after"]:
            for when, key in (("after-math", "after"), ("end", "end")):
                for view, records in done[key][method].pop("records").items():
                    name = probe_name(method, when, view)
                    probes.setdefault(name, []).extend({**r, "agent": name} for r in records)
            after_math.setdefault(method, []).append(done["after"][method])
            end_math.setdefault(method, []).append(done["end"][method])
            trace = traces.setdefault(method, {k: [] for k in TRACED})
            for k in TRACED:
                trace[k].append(done["traces"][method][k])
        for method, records in done.get("own", {}).items():
            name = probe_name(method, "end", OWN_VIEW)
            probes.setdefault(name, []).extend({**r, "agent": name} for r in records)
    share = float(np.mean([d["seen_share"] for d in per_seed]))
    config = {"experiment": "math-to-code stream", **asdict(cfg), "eta": cfg.eta,
              "eval_seen_in_warm_start": share}  # fmt: skip
    agents = _summaries(cfg, logs, traces, after_math, end_math)
    for name, ceiling in _ceilings(cfg, per_seed).items():
        agents[name]["ceiling"] = ceiling
    slm = json.loads((slm_path / "skill_recipe.json").read_text(encoding="utf-8"))
    return {"config": config, "agents": agents, "traces": traces, "logs": logs, "slm": slm,
            "probes": probes}  # fmt: skip


def _ceilings(cfg: DemoConfig, per_seed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per trained method (and the composites built on its model), the routing ceiling at tau
    on the evaluation tasks (`routing_ceiling`, from the model's own outcomes and the cloud's),
    and the model's own accuracy; mean, sample SD and per seed."""
    per: dict[str, dict[str, list[float]]] = {}
    for done in per_seed:
        cloud = done["logs"]["cloud-unlimited"]
        for method, own in done.get("own", {}).items():
            if [r["task_id"] for r in own] != [r["task_id"] for r in cloud]:
                raise ValueError(f"{method}: own and cloud records are not on the same tasks")
            ceiling = routing_ceiling([r["correct"] for r in own],
                                      [r["correct"] for r in cloud], cfg.tau)  # fmt: skip
            row = per.setdefault(method, {"ceiling": [], "own": []})
            row["ceiling"].append(ceiling)
            row["own"].append(float(np.mean([r["correct"] for r in own])))
    out = {m: {"accuracy": float(np.mean(v["ceiling"])), "accuracy_std": _sample_sd(v["ceiling"]),
               "per_seed": v["ceiling"], "own": float(np.mean(v["own"])),
               "own_per_seed": v["own"]} for m, v in per.items()}  # fmt: skip
    if "grpo" in out:  # the composites route the grpo model
        for name in ("grpo+random", "grpo+router", "grpo+router-privileged"):
            out[name] = out["grpo"]
    for method in [
        m for m in cfg.methods if m in out and get_algorithm(METHODS[m]["algorithm"]).dual
    ]:
        out[method + RANKED] = out[method]  # the same model, ranked by its own asking
    return out


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


RANKED = "+rank"
"""Suffix of a DA-GRPO model deployed by its own asking probability: ``<method>+rank``."""


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
