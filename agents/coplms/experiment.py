"""The Co-PLMs experiment behind ``offload-gym coplms``: every method over seeds, evaluated with
exact match (the project's checker: math answers compared by value, code run against its tests
in the sandbox) and Rouge-L against the reference solution (``rouge-score``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from offload_agents.coplms.config import CoPLMsConfig
from offload_agents.coplms.methods import METHODS, Evaluator, prepare, run_method
from offload_agents.lm_eval import generate_responses
from offload_gym.scoring.grade import grade_response
from offload_gym.tasks import Task


def make_evaluator(tokenizer: Any, max_new_tokens: int) -> Evaluator:
    """``evaluate(model, tasks) -> {"em", "rouge_l"}`` (greedy answers)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])

    def evaluate(model: Any, tasks: Sequence[Task]) -> dict[str, float]:
        texts, _ = generate_responses(model, tokenizer, tasks, max_new_tokens=max_new_tokens)
        em = [grade_response(t, x).correct for t, x in zip(tasks, texts, strict=True)]
        rouge = [scorer.score(t.solution or t.answer, x)["rougeL"].fmeasure
                 for t, x in zip(tasks, texts, strict=True)]  # fmt: skip
        return {"em": float(np.mean(em)), "rouge_l": float(np.mean(rouge))}

    return evaluate


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values)) if len(values) > 1 else 0.0


def run_experiment(
    cfg: CoPLMsConfig,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    methods: Sequence[str] = METHODS,
    progress: bool = True,
) -> dict[str, Any]:
    """Every method on every seed (same data, initialisations and schedules per seed).

    Returns ``{"config", "seeds", "methods": {name: summary}, "runs": {name: [per seed]}}``;
    a summary holds per-device ``em``/``rouge_l`` (mean and std over seeds), their averages
    over devices, the LLM's (for methods that train it), bytes per round and in total, and the
    per-round averages for the plot.
    """
    from dataclasses import replace

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid: {list(METHODS)}")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for seed in seeds:
        scfg = replace(cfg, seed=seed)
        setup = prepare(scfg)
        evaluate = make_evaluator(setup.tokenizer, cfg.max_new_tokens)
        for m in methods:
            runs[m].append(run_method(m, scfg, setup, evaluate, progress=progress))
    domains = [d.domain for d in cfg.devices]
    summaries = {m: _method_summary(per_seed, domains, cfg.rounds) for m, per_seed in runs.items()}
    return {"config": cfg.to_dict(), "seeds": list(seeds), "methods": summaries, "runs": runs}


def _method_summary(
    per_seed: list[dict[str, Any]], domains: list[str], rounds: int
) -> dict[str, Any]:
    """One method's summary over seeds: per-device and average EM and Rouge-L (mean, std),
    the LLM's scores, bytes communicated and the per-round averages for the plot."""
    final = [run["rounds"][-1]["devices"] for run in per_seed]
    devices = {}
    for k, dom in enumerate(domains):
        em = _mean_std([f[k]["em"] for f in final])
        rl = _mean_std([f[k]["rouge_l"] for f in final])
        devices[dom] = {"em": em[0], "em_std": em[1], "rouge_l": rl[0], "rouge_l_std": rl[1]}
    avg_em = _mean_std([np.mean([d["em"] for d in f]) for f in final])
    avg_rl = _mean_std([np.mean([d["rouge_l"] for d in f]) for f in final])
    curve = [
        {"round": r + 1,
         "avg_em": float(np.mean([np.mean([d["em"] for d in run["rounds"][r]["devices"]])
                                  for run in per_seed])),
         "avg_rouge_l": float(np.mean([np.mean([d["rouge_l"]
                                                for d in run["rounds"][r]["devices"]])
                                       for run in per_seed]))}
        for r in range(rounds)
    ]  # fmt: skip
    server = None
    if per_seed[0]["server"] is not None:
        server = {dom: {"em": float(np.mean([run["server"][k]["em"] for run in per_seed])),
                        "rouge_l": float(np.mean([run["server"][k]["rouge_l"]
                                                  for run in per_seed]))}
                  for k, dom in enumerate(domains)}  # fmt: skip
    return {
        "devices": devices,
        "avg_em": avg_em[0],
        "avg_em_std": avg_em[1],
        "avg_rouge_l": avg_rl[0],
        "avg_rouge_l_std": avg_rl[1],
        "server": server,
        "bytes_per_round": per_seed[0]["bytes_per_round"],
        "bytes_total": per_seed[0]["bytes_per_round"] * rounds,
        "params": per_seed[0]["params"],
        "rounds": curve,
    }


def write_report(result: dict[str, Any], out_dir: str | PathLike[str]) -> dict[str, Path]:
    """``results.json``, ``results.md`` and ``rounds.png`` (average Rouge-L and EM per round)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "md": out / "results.md", "plot": out / "rounds.png"}
    paths["json"].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    methods = result["methods"]
    domains = list(next(iter(methods.values()))["devices"])
    n = len(result["seeds"])
    head = "| method | " + " | ".join(f"{d} EM | {d} Rouge-L" for d in domains)
    head += " | avg EM | avg Rouge-L | MB per round |"
    lines = [f"# Co-PLMs and baselines ({n} seed{'s' if n > 1 else ''}, mean ± std)", "",
             head, "|" + "---|" * (3 + 2 * len(domains))]  # fmt: skip
    for name, m in methods.items():
        cells = [f"{m['devices'][d]['em']:.3f} ± {m['devices'][d]['em_std']:.3f} | "
                 f"{m['devices'][d]['rouge_l']:.3f} ± {m['devices'][d]['rouge_l_std']:.3f}"
                 for d in domains]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {m['avg_em']:.3f} ± "
                     f"{m['avg_em_std']:.3f} | {m['avg_rouge_l']:.3f} ± {m['avg_rouge_l_std']:.3f}"
                     f" | {m['bytes_per_round'] / 1e6:.2f} |")  # fmt: skip
    servers = {k: m["server"] for k, m in methods.items() if m["server"] is not None}
    if servers:
        lines += ["", "Server LLM on each device's held-out tasks:", "",
                  "| method | " + " | ".join(f"{d} EM | {d} Rouge-L" for d in domains) + " |",
                  "|" + "---|" * (1 + 2 * len(domains))]  # fmt: skip
        for k, srv in servers.items():
            cells = [f"{srv[d]['em']:.3f} | {srv[d]['rouge_l']:.3f}" for d in domains]
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "![metrics per round](rounds.png)", ""]
    paths["md"].write_text("\n".join(lines), encoding="utf-8")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, m in methods.items():
        rounds = [r["round"] for r in m["rounds"]]
        axes[0].plot(rounds, [r["avg_rouge_l"] for r in m["rounds"]], marker="o", label=name)
        axes[1].plot(rounds, [r["avg_em"] for r in m["rounds"]], marker="o", label=name)
    for ax, title in zip(axes, ("average Rouge-L", "average exact match"), strict=True):
        ax.set_xlabel("round")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(paths["plot"], dpi=110)
    plt.close(fig)
    return paths
