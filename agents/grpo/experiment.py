"""The math-to-code continual experiment behind ``offload-gym demo``.

A tiny SLM is warm-started (or loaded from the cache), then trained along the stream, a math
phase followed by a code phase, by each algorithm of the GRPO family; it is evaluated on unseen
math and code tasks after the math phase and at the end (for forgetting), next to the references
``local`` (the warm-started model alone), ``cloud`` (every task to the cloud) and the composite
baselines ``grpo+random`` (the GRPO-tuned model with random offloading at the budget rate) and
``grpo+router`` (the same model behind a confidence-threshold router calibrated to the budget).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from offload_agents.grpo.config import GRPOConfig
from offload_agents.grpo.lm_eval import (
    always_help,
    eval_stream,
    evaluate_lm,
    generate_responses,
    never_help,
)
from offload_agents.grpo.trainer import GRPOTrainer
from offload_agents.slm import HELP_REQUEST, TinyLMConfig, build_slm, load_local_lm
from offload_gym import metrics
from offload_gym.tasks import TaskStream

ALGORITHMS = ("dagrpo", "grpo", "collab", "gapg")
TRACED = ("lambda", "cloud_requests", "cloud_usage", "reward", "accuracy")
"""Per-step training quantities kept in ``results.json`` (``traces[algorithm][key][seed]``)."""
DEMO_WINDOW = 10
"""Steps per window of the budget tracking error in the demo's evaluation."""


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the experiment (``quick()`` gives the 10-minute CPU version).

    Attributes:
        tau: The cloud budget.
        seeds: Training seeds.
        steps_per_group: Training steps in each phase (math, then code).
        group_size: G.
        prompts_per_step: P.
        max_new_tokens: Longest response.
        lr: Learning rate of the RL phase.
        eta_lambda: DA-GRPO's dual step size.
        eval_per_group: Unseen evaluation tasks per group.
        slm_tasks_per_family: Warm-start tasks per family.
        slm_epochs: Warm-start epochs.
    """

    tau: float = 0.3
    seeds: tuple[int, ...] = (0, 1, 2)
    steps_per_group: int = 40
    group_size: int = 8
    prompts_per_step: int = 4
    max_new_tokens: int = 96
    lr: float = 2e-4
    eta_lambda: float = 0.01
    eval_per_group: int = 40
    slm_tasks_per_family: int = 300
    slm_epochs: int = 5

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(seeds=(0,), steps_per_group=8, group_size=4, max_new_tokens=64,
                   eval_per_group=20, slm_tasks_per_family=120, slm_epochs=4)  # fmt: skip


def training_budget_tracking(
    requests: list[list[float]], tau: float, steps_per_group: int
) -> dict[str, Any]:
    """How closely training-time cloud requests J_c track tau: per seed, the mean of
    |J_c - tau| and of J_c over the second half of each task group's steps; then their mean
    and spread over seeds.

    >>> t = training_budget_tracking([[1.0, 1.0, 0.5, 0.3], [0.0, 0.0, 0.3, 0.1]], 0.3, 2)
    >>> t["per_seed"], t["requests_per_seed"]
    ([0.35, 0.25], [0.65, 0.05])
    """
    errors, usage = [], []
    for trace in requests:
        second: list[float] = []
        for start in range(0, len(trace), steps_per_group):
            group = trace[start : start + steps_per_group]
            second += group[len(group) // 2 :]
        errors.append(round(float(np.mean([abs(x - tau) for x in second])), 12))
        usage.append(round(float(np.mean(second)), 12))
    return {
        "tracking_error": float(np.mean(errors)),
        "tracking_error_std": float(np.std(errors)),
        "requests": float(np.mean(usage)),
        "requests_std": float(np.std(usage)),
        "per_seed": errors,
        "requests_per_seed": usage,
    }


def cached_slm(cfg: DemoConfig, cache_dir: str | PathLike[str], progress: bool) -> Path:
    """The warm-started SLM for these settings, built once and cached by a hash of them."""
    key = hashlib.sha256(
        json.dumps([cfg.slm_tasks_per_family, cfg.slm_epochs, asdict(TinyLMConfig())]).encode()
    ).hexdigest()[:12]
    path = Path(cache_dir) / f"slm-{key}"
    if not (path / "config.json").exists():
        build_slm(path, n_per_family=cfg.slm_tasks_per_family, epochs=cfg.slm_epochs,
                  progress=progress)  # fmt: skip
    return path


def _confidence_router(
    model: Any, tokenizer: Any, cfg: DemoConfig, seed: int
) -> Callable[[str, float, int], str]:
    """Offload the least-confident share tau of responses (threshold calibrated on separate
    calibration tasks)."""
    calib = eval_stream(cfg.eval_per_group, seed=50_000 + seed)
    tasks, _ = calib.draw(np.random.default_rng(0))
    _, conf = generate_responses(model, tokenizer, tasks, max_new_tokens=cfg.max_new_tokens)
    threshold = float(np.quantile(conf, cfg.tau))
    return lambda text, c, i: HELP_REQUEST if c < threshold else never_help(text, c, i)


def _math_skill(model: Any, tokenizer: Any, math_only: TaskStream, run: dict[str, Any]) -> dict:
    """Accuracy on the math evaluation tasks alone: with the cloud at the budget, and the
    model's own (help requests answered by nobody)."""
    with_cloud = evaluate_lm(model, tokenizer, math_only, agent="probe", **run)
    local = evaluate_lm(model, tokenizer, math_only, agent="probe", route=never_help, **run)
    return {"with_cloud": metrics.overall_accuracy(with_cloud) or 0.0,
            "local": metrics.overall_accuracy(local) or 0.0}  # fmt: skip


def _forgetting(after: list[float], end: list[float]) -> dict[str, Any]:
    """Mean over seeds of the math accuracy after the math group and at the end, and of the
    drop between them (absolute; relative where the accuracy after math is above zero)."""
    pairs = [metrics.forgetting(a, e) for a, e in zip(after, end, strict=True)]
    rel = [p.relative for p in pairs if p.relative is not None]
    return {"after_math": float(np.mean(after)), "end": float(np.mean(end)),
            "absolute": float(np.mean([p.absolute for p in pairs])),
            "absolute_std": float(np.std([p.absolute for p in pairs])),
            "relative": float(np.mean(rel)) if len(rel) == len(pairs) else None}  # fmt: skip


def _random_router(cfg: DemoConfig, seed: int) -> Callable[[str, float, int], str]:
    rng = np.random.default_rng(seed)
    return lambda text, c, i: HELP_REQUEST if rng.random() < cfg.tau else never_help(text, c, i)


def run_demo(
    out_dir: str | PathLike[str],
    cfg: DemoConfig,
    *,
    cache_dir: str | PathLike[str],
    progress: bool = True,
    algorithms: tuple[str, ...] = ALGORITHMS,
) -> dict[str, Any]:
    """Run the experiment; return ``{"config", "agents", "traces"}`` (also written to
    ``out_dir/results.json`` with ``results.md`` and plots by the CLI)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base_model, tokenizer = load_local_lm(cached_slm(cfg, cache_dir, progress))
    logs: dict[str, list[dict[str, Any]]] = {}
    after_math: dict[str, list[dict[str, float]]] = {}
    end_math: dict[str, list[dict[str, float]]] = {}
    traces: dict[str, dict[str, list[list[float]]]] = {}
    tuned_grpo: dict[int, Any] = {}
    for seed in cfg.seeds:
        stream = eval_stream(cfg.eval_per_group, seed=90_000 + seed)
        math_only = TaskStream(stream.groups[:1])  # the same math tasks, alone
        run = {"budget": cfg.tau, "max_new_tokens": cfg.max_new_tokens, "seed": seed}
        logs.setdefault("local", []).extend(
            evaluate_lm(base_model, tokenizer, stream, route=never_help, agent="local", **run)
        )
        cloud_run = {**run, "budget": 1.0}
        logs.setdefault("cloud", []).extend(
            evaluate_lm(
                base_model, tokenizer, stream, route=always_help, agent="cloud", **cloud_run
            )
        )
        for algo in algorithms:
            model = copy.deepcopy(base_model)
            gcfg = GRPOConfig(algorithm=algo, num_tasks=2 * cfg.steps_per_group, tau=cfg.tau,
                              group_size=cfg.group_size, prompts_per_step=cfg.prompts_per_step,
                              max_new_tokens=cfg.max_new_tokens, lr=cfg.lr, seed=seed,
                              eta_lambda=cfg.eta_lambda)  # fmt: skip
            trainer = GRPOTrainer(model, tokenizer, gcfg,
                                  env_kwargs={"switch_point": cfg.steps_per_group},
                                  log_path=out / "train" / f"{algo}-seed{seed}.jsonl")  # fmt: skip
            trainer.train(cfg.steps_per_group, progress=progress)
            after_math.setdefault(algo, []).append(_math_skill(model, tokenizer, math_only, run))
            trainer.train(cfg.steps_per_group, progress=progress)
            trainer.close()
            end_math.setdefault(algo, []).append(_math_skill(model, tokenizer, math_only, run))
            logs.setdefault(algo, []).extend(evaluate_lm(model, tokenizer, stream, agent=algo,
                                                         **run))  # fmt: skip
            trace = traces.setdefault(algo, {k: [] for k in TRACED})
            for key in TRACED:
                trace[key].append([r[key] for r in trainer.history])
            if algo == "grpo":
                tuned_grpo[seed] = model
        if seed in tuned_grpo:
            model = tuned_grpo[seed]
            logs.setdefault("grpo+random", []).extend(
                evaluate_lm(
                    model,
                    tokenizer,
                    stream,
                    route=_random_router(cfg, seed),
                    agent="grpo+random",
                    **run,
                )
            )
            logs.setdefault("grpo+router", []).extend(
                evaluate_lm(
                    model,
                    tokenizer,
                    stream,
                    route=_confidence_router(model, tokenizer, cfg, seed),
                    agent="grpo+router",
                    **run,
                )
            )
    agents: dict[str, Any] = {}
    for name, agent_logs in logs.items():
        summary = metrics.summarize(agent_logs, cfg.tau, window=DEMO_WINDOW)
        summary["n_seeds"] = len(cfg.seeds)
        per_seed = [metrics.overall_accuracy([r for r in agent_logs if r["seed"] == s])
                    for s in cfg.seeds]  # fmt: skip
        summary["accuracy_std"] = float(np.std(per_seed)) if len(per_seed) > 1 else 0.0
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
        agents[name] = summary
    config = {"experiment": "math-to-code stream", **asdict(cfg)}
    return {"config": config, "agents": agents, "traces": traces, "logs": logs}


def write_demo_report(result: dict[str, Any], out_dir: str | PathLike[str]) -> dict[str, Path]:
    """``results.json`` (config, agents, traces), ``results.md`` and the plots."""
    from offload_agents.evaluation import EvalResult
    from offload_agents.plots import plot_training_traces
    from offload_agents.report import write_report

    cfg = result["config"]
    evals = {
        name: EvalResult(name, "OffloadStream-v0", cfg["tau"], result["logs"][name], m, [])
        for name, m in result["agents"].items()
    }
    config = {"env": "OffloadStream-v0 (text view)", "budget": cfg["tau"],
              **{k: v for k, v in cfg.items() if k != "tau"}}  # fmt: skip
    paths = write_report(
        evals, out_dir, config, switch_points=(cfg["eval_per_group"],), window=DEMO_WINDOW
    )
    payload = json.loads(paths["json"].read_text())
    payload["traces"] = result["traces"]
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    trained = {k: m["training"] for k, m in result["agents"].items() if "training" in m}
    if trained:
        rows = ["", "## Training: cloud requests over the second half of each task group", "",
                f"| algorithm | requests J_c | mean abs(J_c - tau), tau = {cfg['tau']} |",
                "|---|---|---|"]  # fmt: skip
        for k, t in trained.items():
            rows.append(f"| {k} | {t['requests']:.3f} ± {t['requests_std']:.3f} | "
                        f"{t['tracking_error']:.3f} ± {t['tracking_error_std']:.3f} |")  # fmt: skip
        rows += ["", "## Forgetting: accuracy on the same math tasks after the math group and "
                 "at the end", "",
                 "| algorithm | with cloud: after math | at end | drop | own skill: after math "
                 "| at end | drop |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for k in trained:
            f = result["agents"][k]["forgetting"]
            cells = [f"{f[v]['after_math']:.3f} | {f[v]['end']:.3f} | {f[v]['absolute']:+.3f}"
                     for v in ("with_cloud", "local")]  # fmt: skip
            rows.append(f"| {k} | " + " | ".join(cells) + " |")
        paths["md"].write_text(paths["md"].read_text() + "\n".join(rows) + "\n", encoding="utf-8")
    if result["traces"]:
        paths["training"] = plot_training_traces(
            result["traces"], Path(out_dir) / "training.png", tau=cfg["tau"],
            switch_step=cfg["steps_per_group"],
        )  # fmt: skip
        md = paths["md"].read_text() + "\n![training](training.png)\n"
        paths["md"].write_text(md, encoding="utf-8")
    return paths
