"""The report of ``offload-gym demo``: budget tracking, forgetting probes and their paired
comparisons, the routing ceiling, and ``results.json`` / ``results.md`` / the plots."""

from __future__ import annotations

import json
import shutil
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from offload_agents.grpo.demo_config import DEMO_WINDOW

PARTIAL_DIR = "partial"
"""Folder of ``out_dir`` that holds one file per finished seed while a demo runs (removed by
`write_demo_report`): an interrupted demo resumes from it with the same settings."""


def _sample_sd(values: list[float]) -> float:
    """The sample SD (ddof 1) of ``values``; 0.0 for fewer than two."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _seed_summary(values: list[float], tau: float) -> dict[str, Any]:
    """Per-seed values, their mean and (two seeds or more) the t CI of the mean over seeds."""
    from offload_agents.stats import t_interval

    out: dict[str, Any] = {"per_seed": values, "mean": round(float(np.mean(values)), 12)}
    if len(values) > 1:
        out["ci95"] = list(t_interval(values))
        out["ci95_minus_tau"] = [x - tau for x in out["ci95"]]
    return out


def training_budget_tracking(
    requests: list[list[float]], tau: float, steps_per_group: int
) -> dict[str, Any]:
    """How closely training-time cloud requests J_c track tau: per seed, the mean of
    |J_c - tau| and of J_c over the second half of each task group's steps; then their mean
    and spread over seeds.

    ``by_group`` holds, per task group (in stream order: ``group1``, ``group2``...), the
    per-seed mean of J_c over the group's second half, their mean and, with two seeds or more,
    the 95% t interval of that mean over seeds (``ci95``) and of its offset from tau.

    >>> t = training_budget_tracking([[1.0, 1.0, 0.5, 0.3], [0.0, 0.0, 0.3, 0.1]], 0.3, 2)
    >>> t["per_seed"], t["requests_per_seed"]
    ([0.35, 0.25], [0.65, 0.05])
    >>> half = t["by_group"].get("group2")  # the code group's second half
    >>> half["per_seed"], half.get("mean")
    ([0.3, 0.1], 0.2)
    """
    errors, usage = [], []
    halves: dict[str, list[float]] = {}
    for trace in requests:
        second: list[float] = []
        for k, start in enumerate(range(0, len(trace), steps_per_group)):
            group = trace[start : start + steps_per_group]
            second += group[len(group) // 2 :]
            halves.setdefault(f"group{k + 1}", []).append(
                round(float(np.mean(group[len(group) // 2 :])), 12))  # fmt: skip
        errors.append(round(float(np.mean([abs(x - tau) for x in second])), 12))
        usage.append(round(float(np.mean(second)), 12))
    return {
        "by_group": {name: _seed_summary(values, tau) for name, values in halves.items()},
        "tracking_error": float(np.mean(errors)),
        "tracking_error_std": _sample_sd(errors),
        "requests": float(np.mean(usage)),
        "requests_std": _sample_sd(usage),
        "per_seed": errors,
        "requests_per_seed": usage,
    }


PROBE_VIEWS = ("with_cloud", "local")
"""The two views of a forgetting probe: with the cloud at the budget, and the model's own."""
OWN_VIEW = "own-all"
"""The probe of each trained model's own answers on every evaluation task at the end (math and
code; help requests answered by the model with asking suppressed): the routing ceiling's
input."""


def probe_name(method: str, when: str, view: str) -> str:
    """The agent name of a forgetting probe's records: ``dagrpo@after-math:local``."""
    return f"{method}@{when}:{view}"


def forgetting_comparisons(probes: dict[str, list[dict[str, Any]]]) -> list[Any]:
    """Per method and view, the paired change of math accuracy from after the math group to the
    end, on the same tasks (`offload_agents.stats.compare`: diff < 0 is forgetting)."""
    from offload_agents.stats import compare

    methods = list(dict.fromkeys(name.split("@")[0] for name in probes))  # in run order
    return [compare(probes[probe_name(m, "end", v)], probes[probe_name(m, "after-math", v)],
                    probe_name(m, "end", v), probe_name(m, "after-math", v))
            for m in methods for v in PROBE_VIEWS]  # fmt: skip


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
    primary = cfg["primary"] or cfg["methods"][0]
    paths = write_report(evals, out_dir, config, switch_points=(cfg["eval_per_group"],),
                         window=DEMO_WINDOW, primary=primary)  # fmt: skip
    payload = json.loads(paths["json"].read_text())
    payload["traces"] = result["traces"]
    steps = Path(out_dir) / "steps.jsonl"  # every evaluation step of every agent and seed
    with steps.open("w", encoding="utf-8") as fh:
        for records in result["logs"].values():
            fh.writelines(json.dumps(r) + "\n" for r in records)
    paths["steps"] = steps
    probes = result.get("probes") or {}
    forgetting = forgetting_comparisons(probes) if probes else []
    if probes:  # every forgetting probe's per-task records
        paths["probes"] = Path(out_dir) / "probes.jsonl"
        with paths["probes"].open("w", encoding="utf-8") as fh:
            for records in probes.values():
                fh.writelines(json.dumps(r) + "\n" for r in records)
        payload["forgetting_comparisons"] = [c.to_dict() for c in forgetting]
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(Path(out_dir) / PARTIAL_DIR, ignore_errors=True)  # the run is written
    trained = {k: m["training"] for k, m in result["agents"].items() if "training" in m}
    if trained:
        rows = _usage_rows(result, trained)
        rows += _group_rows(trained, cfg["tau"])
        rows += _forgetting_rows(result, list(trained), forgetting)
        rows += _ceiling_rows(result)
        paths["md"].write_text(paths["md"].read_text() + "\n".join(rows) + "\n", encoding="utf-8")
    if result["traces"]:
        paths["training"] = plot_training_traces(
            result["traces"], Path(out_dir) / "training.png", tau=cfg["tau"],
            switch_step=cfg["steps_per_group"],
        )  # fmt: skip
        md = paths["md"].read_text() + "\n![training](training.png)\n"
        paths["md"].write_text(md, encoding="utf-8")
    return paths


def _usage_rows(result: dict[str, Any], trained: dict[str, Any]) -> list[str]:
    """The report's cloud-usage section: training requests and grants against evaluation."""
    cfg = result["config"]
    rows = ["", "## Cloud usage, both ways: training requests J_c over sampled responses "
            "(second half of each task group) and evaluation usage over greedy answers", "",
            f"| method | training requests J_c | mean abs(J_c - tau), tau = {cfg['tau']} | "
            "training greedy requests | training granted | eval requests | eval granted |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    from offload_agents.stats import mean_pm

    n = len(cfg["seeds"])
    for k, t in trained.items():
        m = result["agents"][k]
        granted = training_budget_tracking(result["traces"][k]["cloud_usage"], cfg["tau"],
                                           cfg["steps_per_group"])["requests"]  # fmt: skip
        g = m.get("training_greedy")
        greedy = "n/a" if g is None else mean_pm(g["requests"], g["requests_std"], n)
        rows.append(f"| {k} | {mean_pm(t['requests'], t['requests_std'], n)} | "
                    f"{mean_pm(t['tracking_error'], t['tracking_error_std'], n)} | "
                    f"{greedy} | {granted:.3f} | {m['eval_requests']:.3f} | "
                    f"{m['cloud_usage']:.3f} |")  # fmt: skip
    return rows


def _forgetting_rows(
    result: dict[str, Any], trained: list[str], forgetting: list[Any]
) -> list[str]:
    """The report's forgetting section: the probes' accuracies, then their paired changes."""
    rows = ["", "## Forgetting: accuracy on the same math tasks after the math group and "
             "at the end", "",
             "| method | with cloud: after math | at end | drop | own skill: after math "
             "| at end | drop |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for k in trained:
        f = result["agents"][k]["forgetting"]
        cells = [f"{f[v]['after_math']:.3f} | {f[v]['end']:.3f} | {f[v]['absolute']:+.3f}"
                 for v in ("with_cloud", "local")]  # fmt: skip
        rows.append(f"| {k} | " + " | ".join(cells) + " |")
    if forgetting:
        from offload_agents.stats import comparisons_table

        note = "Change from after the math group to the end, paired on the same math tasks"
        rows += ["", f"{note} (negative: forgetting):", "", comparisons_table(forgetting)]
    return rows


def _ceiling_rows(result: dict[str, Any]) -> list[str]:
    """The report's routing-ceiling section: per agent built on a tuned model, that model's own
    accuracy, the best accuracy any routing of it reaches at the budget, and the agent's."""
    agents = {k: m for k, m in result["agents"].items() if "ceiling" in m}
    if not agents:
        return []
    rows = ["", "## Routing ceiling: the best any routing of each tuned model reaches at the "
            "budget (its own right answers plus one call for each task the cloud gains)", "",
            "| agent | own accuracy | ceiling | accuracy | share of the gap own -> ceiling |",
            "|---|---|---|---|---|"]  # fmt: skip
    from offload_agents.stats import mean_pm

    n = len(result["config"]["seeds"])
    for name, m in agents.items():
        c = m["ceiling"]
        gap = c["accuracy"] - c["own"]
        share = f"{(m['accuracy'] - c['own']) / gap:.2f}" if gap > 0 else "n/a"
        rows.append(f"| {name} | {c['own']:.3f} | {mean_pm(c['accuracy'], c['accuracy_std'], n)} "
                    f"| {m['accuracy']:.3f} | {share} |")  # fmt: skip
    return rows


def _group_rows(trained: dict[str, Any], tau: float) -> list[str]:
    """Training requests J_c over the second half of each task group (math, then code), mean
    and 95% t CI over seeds: whether a method holds tau, and how far above it usage drifts."""
    rows = [
        "",
        f"Training requests J_c over the second half of each task group (tau = {tau}; "
        "95% CI over seeds, t, sample SD):",
        "",
        "| method | math: J_c | 95% CI | code: J_c | 95% CI |",
        "|---|---|---|---|---|",
    ]
    for name, t in trained.items():
        cells = []
        for group in ("group1", "group2"):
            g = t.get("by_group", {}).get(group)
            if g is None:
                cells += ["n/a", "n/a"]
                continue
            ci = g.get("ci95")
            cells += [
                f"{g['mean']:.3f}",
                "n/a (one seed)" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]",
            ]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows  # fmt: skip
