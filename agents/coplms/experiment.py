"""The Co-PLMs experiment's evaluation and report (`offload_agents.coplms.runner` runs it):
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
from offload_agents.coplms.methods import Evaluator
from offload_agents.coplms.public import PublicModels, load_public
from offload_agents.lm_eval import generate_responses
from offload_agents.slm.skill import worked_steps
from offload_gym.scoring.grade import grade_response
from offload_gym.tasks import Task


def make_evaluator(tokenizer: Any, max_new_tokens: int) -> Evaluator:
    """``evaluate(model, tasks) -> {"em", "em_text", "rouge_l"}`` on greedy answers: ``em`` by
    the project's verifiers (a math answer compared by value; a code answer run against the
    task's tests in the sandbox: pass@1), ``em_text`` the response equal to the reference
    target (`worked_steps`) as text, ``rouge_l`` its Rouge-L F-measure against that target;
    ``records`` the same per task (``task_id``, ``correct``, ``rouge_l``) for the paired
    statistics."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])

    def evaluate(model: Any, tasks: Sequence[Task]) -> dict[str, Any]:
        texts, _ = generate_responses(model, tokenizer, tasks, max_new_tokens=max_new_tokens)
        refs = [worked_steps(t) for t in tasks]
        em = [grade_response(t, x).correct for t, x in zip(tasks, texts, strict=True)]
        em_text = [x.strip() == r.strip() for x, r in zip(texts, refs, strict=True)]
        rouge = [scorer.score(r, x)["rougeL"].fmeasure for r, x in zip(refs, texts, strict=True)]
        records = [{"task_id": t.id, "correct": float(c), "rouge_l": float(r)}
                   for t, c, r in zip(tasks, em, rouge, strict=True)]  # fmt: skip
        return {"em": float(np.mean(em)), "em_text": float(np.mean(em_text)),
                "rouge_l": float(np.mean(rouge)), "records": records}  # fmt: skip

    return evaluate


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


PRIMARY = "coplms"
"""The method every other is compared against (where the run has it)."""
SERVER_SUFFIX = ":server-llm"
"""Records of a method's server LLM on the devices' tasks are named ``<method>:server-llm``."""


def _result(
    cfg: CoPLMsConfig, seeds: list[int], runs: dict[str, list[Any]], before: list[Any]
) -> dict[str, Any]:
    domains = [d.domain for d in cfg.devices]
    summaries = {m: _method_summary(per_seed, domains, cfg.rounds) for m, per_seed in runs.items()}
    records = task_records(seeds, runs, domains)
    slim = {m: [{k: v for k, v in run.items() if k not in ("records", "server_records")}
                for run in per_seed] for m, per_seed in runs.items()}  # fmt: skip
    return {"config": cfg.to_dict(), "seeds": seeds, "methods": summaries,
            "before": _before_summary(before, domains), "runs": slim,
            "comparisons": comparisons(records, domains), "records": records}  # fmt: skip


def task_records(
    seeds: list[int], runs: dict[str, list[Any]], domains: list[str]
) -> list[dict[str, Any]]:
    """Every method's last-round per-task records, one row per (seed, device, task), in the
    form `offload_agents.stats` pairs on: ``agent``, ``seed``, ``episode`` (the device's index),
    ``step`` (the task's index), ``device``, ``task_id``, ``correct`` (EM), ``rouge_l``. A
    method's server LLM has its own rows (``<method>:server-llm``). Methods whose evaluator
    kept no records are left out."""
    rows: list[dict[str, Any]] = []
    for method, per_seed in runs.items():
        for seed, run in zip(seeds, per_seed, strict=True):
            for agent, key in ((method, "records"), (method + SERVER_SUFFIX, "server_records")):
                for k, device in enumerate(run.get(key) or []):
                    where = {"agent": agent, "seed": seed, "episode": k, "device": domains[k]}
                    rows += [{**where, "step": i, **rec} for i, rec in enumerate(device)]
    return rows


def comparisons(records: list[dict[str, Any]], domains: list[str]) -> list[dict[str, Any]]:
    """The paired comparisons of the run (`offload_agents.stats.compare`, over seeds and the
    devices' held-out tasks together, so the device average): ``coplms`` against every other
    method on EM (``correct``) and Rouge-L, each device's model against ``standalone`` per
    domain (``coplms[<domain>]``), and the server direction: ``coplms:server-llm`` (the LLM after
    co-tuning) against ``server`` (the LLM tuned on public data alone), on the devices' tasks."""
    from offload_agents.stats import compare

    logs: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        logs.setdefault(r["agent"], []).append(r)
    if PRIMARY not in logs:
        return []
    pairs = [(PRIMARY, b) for b in logs if b != PRIMARY and not b.endswith(SERVER_SUFFIX)]
    if "server" in logs and PRIMARY + SERVER_SUFFIX in logs:
        pairs.append((PRIMARY + SERVER_SUFFIX, "server"))
    out = [compare(logs[a], logs[b], a, b, metric).to_dict()
           for metric in ("correct", "rouge_l") for a, b in pairs]  # fmt: skip
    if "standalone" in logs:
        for k, dom in enumerate(domains):
            a = [r for r in logs[PRIMARY] if r["episode"] == k]
            b = [r for r in logs["standalone"] if r["episode"] == k]
            out += [compare(a, b, f"{PRIMARY}[{dom}]", f"standalone[{dom}]", metric).to_dict()
                    for metric in ("correct", "rouge_l")]  # fmt: skip
    return out


def _before(
    cfg: CoPLMsConfig, held: list[list[Task]], public: PublicModels, evaluate: Evaluator
) -> dict[str, list[dict[str, float] | None]]:
    """Each device's public SLM, the public (distilled) proxy and the public server LLM on each
    device's held-out tasks, before co-tuning (None for a randomly initialised model)."""

    def means(model: Any, tasks: list[Task]) -> dict[str, float]:
        return {k: v for k, v in evaluate(model, tasks).items() if k != "records"}

    def every(path: Any) -> list[dict[str, float] | None]:
        if path is None:
            return [None] * len(held)
        model = load_public(path)
        return [means(model, tasks) for tasks in held]

    slms = [means(load_public(p), held[k]) if p is not None else None
            for k, p in enumerate(public.slms)]  # fmt: skip
    return {"slm": slms, "dpm": every(public.dpm), "server": every(public.server)}


ROLES = ("slm", "dpm", "server")
"""The public checkpoints scored before co-tuning: each device's SLM, the proxy, the LLM."""


def _before_summary(
    per_seed: list[dict[str, list[Any]]], domains: list[str]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for k, dom in enumerate(domains):
        row: dict[str, Any] = {}
        for role in ROLES:
            scores = [s[role][k] for s in per_seed if s.get(role) and s[role][k] is not None]
            row[role] = (
                None
                if not scores
                else {key: float(np.mean([x[key] for x in scores])) for key in scores[0]}
            )
        out[dom] = row
    return out


METRICS = ("em", "em_text", "rouge_l")


def _avg(devices: list[dict[str, float]], key: str) -> float:
    return float(np.mean([d[key] for d in devices]))


def _method_summary(
    per_seed: list[dict[str, Any]], domains: list[str], rounds: int
) -> dict[str, Any]:
    """One method's summary over seeds: per-device and average EM, text EM and Rouge-L
    (mean, std), the LLM's scores, bytes communicated and the per-round averages (and spread)
    for the plot."""
    final = [run["rounds"][-1]["devices"] for run in per_seed]
    devices: dict[str, dict[str, float]] = {}
    for k, dom in enumerate(domains):
        devices[dom] = {}
        for key in METRICS:
            mean, std = _mean_std([f[k][key] for f in final])
            devices[dom] |= {key: mean, f"{key}_std": std}
    out: dict[str, Any] = {"devices": devices}
    for key in METRICS:
        mean, std = _mean_std([_avg(f, key) for f in final])
        out |= {f"avg_{key}": mean, f"avg_{key}_std": std}
    curve = []
    for r in range(rounds):
        point: dict[str, Any] = {"round": r + 1}
        for key in ("em", "rouge_l"):
            mean, std = _mean_std([_avg(run["rounds"][r]["devices"], key) for run in per_seed])
            point |= {f"avg_{key}": mean, f"avg_{key}_std": std}
        curve.append(point)
    return out | {
        "server": _per_domain(per_seed, domains, "server"),
        "proxy": _per_domain(per_seed, domains, "proxy"),
        "bytes_per_round": per_seed[0]["bytes_per_round"],
        "bytes_total": per_seed[0]["bytes_per_round"] * rounds,
        "params": per_seed[0]["params"],
        "rounds": curve,
    }


def _per_domain(
    per_seed: list[dict[str, Any]], domains: list[str], key: str
) -> dict[str, dict[str, float]] | None:
    """A run's ``key`` scores (the LLM's or the proxies', per device) averaged over seeds, per
    domain; None where the method has none."""
    if per_seed[0].get(key) is None:
        return None
    return {dom: {m: float(np.mean([run[key][k][m] for run in per_seed])) for m in METRICS}
            for k, dom in enumerate(domains)}  # fmt: skip


def _markdown(result: dict[str, Any]) -> list[str]:
    methods = result["methods"]
    domains = list(next(iter(methods.values()))["devices"])
    n = len(result["seeds"])
    head = "| method | " + " | ".join(f"{d} EM | {d} Rouge-L" for d in domains)
    head += " | avg EM | avg Rouge-L | avg text EM | MB per round |"
    from offload_agents.stats import mean_pm

    spread = ", mean ± sample SD over seeds" if n > 1 else ", one seed: no spread"
    lines = [f"# Co-PLMs and baselines ({n} seed{'s' if n > 1 else ''}{spread})", "",
             head, "|" + "---|" * (5 + 2 * len(domains))]  # fmt: skip
    for name, m in methods.items():
        dev = m["devices"]
        cells = [f"{mean_pm(dev[d]['em'], dev[d]['em_std'], n)} | "
                 f"{mean_pm(dev[d]['rouge_l'], dev[d]['rouge_l_std'], n)}"
                 for d in domains]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {mean_pm(m['avg_em'], m['avg_em_std'], n)} | "
                     f"{mean_pm(m['avg_rouge_l'], m['avg_rouge_l_std'], n)}"
                     f" | {m['avg_em_text']:.3f} | {m['bytes_per_round'] / 1e6:.2f} |")  # fmt: skip
    lines += _before_md(result.get("before") or {})
    for key, title in (
        ("server", "Server LLM after co-tuning"),
        ("proxy", "Proxy (DPM) after co-tuning, as each device holds it"),
    ):
        lines += _after_md(methods, domains, key, title)
    params = next(iter(methods.values())).get("params")
    if params:
        slms = " / ".join(f"{n / 1e6:.2f}M" for n in params["slm"])
        lines += ["", f"Parameters: device SLMs {slms}, proxy (DPM) {params['dpm'] / 1e6:.2f}M "
                  f"(what travels), server LLM {params['llm'] / 1e6:.2f}M."]  # fmt: skip
    return [
        *lines,
        *_comparisons_md(result.get("comparisons") or []),
        "",
        "![metrics per round](rounds.png)",
        "",
    ]


def _before_md(before: dict[str, Any]) -> list[str]:
    """The public checkpoints' scores before co-tuning, a row per domain."""
    if not before:
        return []
    names = {"slm": "device SLM", "dpm": "proxy (DPM)", "server": "server LLM"}
    roles = [r for r in ROLES if any(r in row for row in before.values())]
    lines = ["", "Public checkpoints before co-tuning (EM / Rouge-L on each device's held-out "
             "tasks):", "", "| domain | " + " | ".join(names[r] for r in roles) + " |",
             "|" + "---|" * (1 + len(roles))]  # fmt: skip
    for dom, row in before.items():
        cells = [f"{row[r]['em']:.3f} / {row[r]['rouge_l']:.3f}" if row.get(r) else "random init"
                 for r in roles]  # fmt: skip
        lines.append(f"| {dom} | " + " | ".join(cells) + " |")
    return lines


def _after_md(methods: dict[str, Any], domains: list[str], key: str, title: str) -> list[str]:
    """A table of the methods' ``key`` scores (``server`` or ``proxy``) per domain."""
    found = {k: m[key] for k, m in methods.items() if m.get(key) is not None}
    if not found:
        return []
    lines = ["", f"{title}, on each device's held-out tasks:", "",
             "| method | " + " | ".join(f"{d} EM | {d} Rouge-L" for d in domains) + " |",
             "|" + "---|" * (1 + 2 * len(domains))]  # fmt: skip
    for k, scores in found.items():
        cells = [f"{scores[d]['em']:.3f} | {scores[d]['rouge_l']:.3f}" for d in domains]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines


def _comparisons_md(rows: list[dict[str, Any]]) -> list[str]:
    """The paired comparisons as tables: device side (co-tuning against each method, and per
    domain against standalone) and server side."""
    from offload_agents.stats import Comparison, comparisons_table

    if not rows:
        return []
    found = [Comparison(**row) for row in rows]
    server = [c for c in found if c.a.endswith(SERVER_SUFFIX)]
    device = [c for c in found if c not in server]
    out = ["", "## Paired comparisons (metric `correct` is EM; over seeds and each device's "
           "held-out tasks)", "", comparisons_table(device)]  # fmt: skip
    if server:
        out += ["The server LLM after co-tuning against the server tuned on public data alone, "
                "on the devices' held-out tasks:", "", comparisons_table(server)]  # fmt: skip
    return out


def write_report(result: dict[str, Any], out_dir: str | PathLike[str]) -> dict[str, Path]:
    """``results.json`` (without the per-task records), ``steps.jsonl`` (the per-task records,
    which ``offload-gym stats`` reads), ``results.md`` and ``rounds.png`` (average Rouge-L and
    EM per round, with their spread over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "md": out / "results.md", "plot": out / "rounds.png",
             "records": out / "steps.jsonl"}  # fmt: skip
    summary = {k: v for k, v in result.items() if k != "records"}
    paths["json"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    with paths["records"].open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in result.get("records") or [])
    methods = result["methods"]
    paths["md"].write_text("\n".join(_markdown(result)), encoding="utf-8")
    from matplotlib.ticker import MaxNLocator

    from offload_agents.plots import style

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (name, m) in enumerate(methods.items()):
        rounds = [r["round"] for r in m["rounds"]]
        for ax, key in zip(axes, ("avg_rouge_l", "avg_em"), strict=True):
            mean = np.array([r[key] for r in m["rounds"]])
            std = np.array([r.get(f"{key}_std", 0.0) for r in m["rounds"]])
            ax.plot(rounds, mean, label=name, **style(i))
            ax.fill_between(rounds, mean - std, mean + std, alpha=0.15, color=style(i)["color"])
    for ax, title in zip(axes, ("average Rouge-L", "average exact match (verifiers)"), strict=True):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole
        ax.set_xlabel("round")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(paths["plot"], dpi=110)
    plt.close(fig)
    return paths
