"""``offload-gym stats DIR [DIR ...]``: the paired comparisons of saved runs, recomputed from
their per-task records (`offload_agents.stats`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from offload_agents.stats import compare_all, comparisons_table
from offload_gym.tasks.loaders import json_objects

RECORD_FILES = ("steps.jsonl", "logs/*.jsonl", "records/*.jsonl")
"""Where a run keeps its per-task records: the demo's and coplms' ``steps.jsonl`` (and
``records/``), compare's ``logs/<agent>.jsonl``. Each record names its ``agent``."""


def load_run(path: str | Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """The per-task records of a saved run, by agent, and its ``results.json`` (or {})."""
    run = Path(path)
    if not run.is_dir():
        raise ValueError(f"{run} is not a folder (expected a run's output folder)")
    files = [f for pattern in RECORD_FILES for f in sorted(run.glob(pattern))]
    if not files:
        raise ValueError(f"{run} holds no per-task records (looked for {', '.join(RECORD_FILES)})")
    logs: dict[str, list[dict[str, Any]]] = {}
    for f in files:
        for _, row in json_objects(f):
            agent = row.get("agent") or f.stem
            logs.setdefault(str(agent), []).append(row)
    results = run / "results.json"
    meta = json.loads(results.read_text(encoding="utf-8")) if results.exists() else {}
    order = list(meta.get("agents", {}))  # the run's own order of agents, where it has one
    ranked = sorted(logs, key=lambda n: (order.index(n) if n in order else len(order), n))
    return {name: logs[name] for name in ranked}, meta


def join_runs(paths: list[str]) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """The agents of every run in one mapping (an agent name that two runs share is prefixed
    with its folder, ``DIR:agent``) and the first run's declared primary method, if any."""
    loaded = [(p, *load_run(p)) for p in paths]
    counts: dict[str, int] = {}
    for _, logs, _ in loaded:
        for name in logs:
            counts[name] = counts.get(name, 0) + 1
    joined: dict[str, list[dict[str, Any]]] = {}
    for p, logs, _ in loaded:
        for name, rows in logs.items():
            joined[f"{p}:{name}" if counts[name] > 1 else name] = rows
    primary = loaded[0][2].get("config", {}).get("primary")
    if primary is not None and counts.get(primary, 0) > 1:
        primary = f"{paths[0]}:{primary}"
    return joined, primary


def pool_runs(paths: list[str]) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """The runs as one run over all their seeds: an agent's records from every run together.
    The runs must hold disjoint seeds (the same settings run again on new seeds); a seed that
    two runs share is an error."""
    pooled: dict[str, list[dict[str, Any]]] = {}
    owner: dict[tuple[str, Any], str] = {}
    primary = None
    for p in paths:
        logs, meta = load_run(p)
        primary = primary or meta.get("config", {}).get("primary") or None
        for name, rows in logs.items():
            for seed in {r.get("seed") for r in rows}:
                if (name, seed) in owner:
                    raise ValueError(f"--pool: {name!r} seed {seed} is in both {owner[name, seed]} "
                                     f"and {p}; pooled runs must hold disjoint seeds")  # fmt: skip
                owner[name, seed] = p
            pooled.setdefault(name, []).extend(rows)
    return pooled, primary


def _cmd_stats(args: argparse.Namespace) -> int:
    logs, declared = (pool_runs if args.pool else join_runs)(args.runs)
    primary = args.primary or declared
    if primary is None:
        raise ValueError(f"name the method to compare against the others with --primary "
                         f"(one of {sorted(logs)})")  # fmt: skip
    against = [m.strip() for m in args.against.split(",") if m.strip()] if args.against else None
    rows = compare_all(logs, primary, args.metric, against=against)
    print(comparisons_table(rows))
    if args.json is not None:
        Path(args.json).write_text(json.dumps({"comparisons": [c.to_dict() for c in rows]},
                                              indent=2) + "\n", encoding="utf-8")  # fmt: skip
        print(f"wrote {args.json}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("stats", help="paired comparisons, CIs and power of saved runs")
    p.add_argument("runs", nargs="+", metavar="DIR",
                   help="run folders (demo, compare or coplms --out); runs evaluated on "
                   "identical tasks are joined")  # fmt: skip
    p.add_argument(
        "--primary",
        default=None,
        help="the method compared against every other (default: the run's own)",
    )
    p.add_argument(
        "--against", default=None, help="comma-separated methods to compare it with (default: all)"
    )
    p.add_argument(
        "--metric",
        default="correct",
        help="per-task record field to compare (correct, rouge_l, em...)",
    )
    p.add_argument("--pool", action="store_true",
                   help="the runs are one experiment on disjoint seeds: pool each agent's "
                        "records over them (default: join runs on identical tasks)")  # fmt: skip
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the comparisons as JSON")  # fmt: skip
    p.set_defaults(func=_cmd_stats)
