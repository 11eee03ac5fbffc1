"""Write evaluation results: ``results.json``, ``results.md`` (a table) and the plots."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from offload_agents.evaluation import EvalResult
from offload_agents.plots import plot_accuracy_vs_usage, plot_group_accuracy, plot_usage_over_stream
from offload_agents.stats import compare_all, comparisons_table

COLUMNS = (
    ("accuracy", "accuracy"),
    ("local_accuracy", "local acc."),
    ("cloud_usage", "cloud usage"),
    ("budget_error", "budget error"),
    ("post_switch_accuracy", "post-switch acc."),
    ("apgr", "APGR"),
    ("cpt50", "CPT(50%)"),
    ("cost_per_correct", "cost / correct"),
)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _fmt(value: Any, key: str) -> str:
    if value is None:
        return "n/a"
    if key == "cost_per_correct":
        return f"{value:.5f}"
    return f"{value:.3f}"


def results_table(results: Mapping[str, EvalResult]) -> str:
    """A Markdown table of the agents' metrics (mean over all seeds; +- the across-seed sample SD,
    shown only with two seeds or more)."""
    head = "| agent | " + " | ".join(label for _, label in COLUMNS) + " | seeds |"
    rule = "|---" * (len(COLUMNS) + 2) + "|"
    rows = [head, rule]
    for name, res in results.items():
        m = res.metrics
        cells = []
        for key, _ in COLUMNS:
            cell = _fmt(m.get(key), key)
            if key in ("accuracy", "cloud_usage") and m.get(f"{key}_std") and m["n_seeds"] > 1:
                cell += f" ± {m[f'{key}_std']:.3f}"
            cells.append(cell)
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {m['n_seeds']} |")
    return "\n".join(rows) + "\n"


def write_report(
    results: Mapping[str, EvalResult],
    out_dir: str | PathLike[str],
    config: Mapping[str, Any],
    *,
    switch_points: tuple[int, ...] = (),
    window: int = 20,
    primary: str | None = None,
) -> dict[str, Path]:
    """Write ``results.json``, ``results.md`` and three PNG plots into ``out_dir``. With
    ``primary`` (an agent of ``results``), both files carry the paired comparisons of it against
    every other agent (`offload_agents.stats`; ``results.json["comparisons"]``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    budget = float(config["budget"])
    payload: dict[str, Any] = {
        "config": _clean({**config, "primary": primary}),
        "agents": {name: _clean(res.metrics) for name, res in results.items()},
    }
    comparisons = []
    if primary is not None and len(results) > 1:
        logs = {name: res.logs for name, res in results.items()}
        comparisons = compare_all(logs, primary)
        payload["comparisons"] = [c.to_dict() for c in comparisons]
    paths = {"json": out / "results.json", "md": out / "results.md"}
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    plots = {
        "accuracy_vs_usage": plot_accuracy_vs_usage(
            results, out / "accuracy_vs_usage.png", budget=budget
        ),
        "usage_over_stream": plot_usage_over_stream(
            results, out / "usage_over_stream.png", budget=budget, switch_points=switch_points
        ),
        "group_accuracy": plot_group_accuracy(results, out / "group_accuracy.png"),
    }
    cfg = ", ".join(f"{k}={v}" for k, v in config.items())
    md = [
        f"# Results: {config.get('env')}",
        "",
        f"Configuration: {cfg}.",
        "",
        results_table(results),
        "Accuracy is over all evaluation steps and seeds (± the sample SD over seeds, ddof 1); "
        "local acc. is accuracy on the steps kept "
        f"local; budget error is the mean |usage - tau| over windows of {window} steps; APGR and "
        "CPT(50%) "
        "come from each agent's routing scores (n/a for agents without scores).",
        "",
    ]
    if comparisons:
        md += [f"## Paired comparisons against {primary}", "", comparisons_table(comparisons)]
    md += [f"![{name}]({p.name})" for name, p in plots.items()]
    paths["md"].write_text("\n".join(md) + "\n", encoding="utf-8")
    paths.update(plots)
    return paths
