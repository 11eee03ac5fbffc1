"""The demo's per-seed results joined into its summary: per agent, accuracy and its spread over
seeds, cloud usage, budget tracking in training, forgetting and the routing ceiling; the
per-task logs, probes and training traces pooled over seeds (`offload_agents.grpo.experiment`
runs the seeds; `offload_agents.grpo.demo_report` writes the report)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from offload_agents.grpo.algorithms import get_algorithm
from offload_agents.grpo.demo_config import DEMO_WINDOW, METHODS, RANKED, TRACED, DemoConfig
from offload_agents.grpo.demo_report import (
    OWN_VIEW,
    _sample_sd,
    probe_name,
    training_budget_tracking,
)
from offload_agents.grpo.routers import routing_ceiling
from offload_gym import metrics

__all__ = ["summarize_seeds"]


def summarize_seeds(
    cfg: DemoConfig, per_seed: list[dict[str, Any]], slm_path: Path
) -> dict[str, Any]:
    """``{"config", "agents", "traces", "logs", "slm", "probes"}`` from the seeds' results
    (``per_seed``, in the order of ``cfg.seeds``) and the warm-started model's folder."""
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


def _forgetting(after: list[float], end: list[float]) -> dict[str, Any]:
    """Mean over seeds of the math accuracy after the math group and at the end, and of the
    drop between them (absolute; relative where the accuracy after math is above zero)."""
    pairs = [metrics.forgetting(a, e) for a, e in zip(after, end, strict=True)]
    rel = [p.relative for p in pairs if p.relative is not None]
    return {"after_math": float(np.mean(after)), "end": float(np.mean(end)),
            "absolute": float(np.mean([p.absolute for p in pairs])),
            "absolute_std": _sample_sd([p.absolute for p in pairs]),
            "relative": float(np.mean(rel)) if len(rel) == len(pairs) else None}  # fmt: skip
