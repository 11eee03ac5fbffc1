"""Core throughput, each figure beside its peer measured in the same run.

- Router view steps/s and text view steps/s (simulated models, resets included, the wrappers of
  `gym.make`), beside Gymnasium's CartPole-v1 steps/s with a random policy.
- `is_equivalent` answers/s beside math-verify's ``verify(parse(gold), parse(pred))`` on the same
  pairs (the checker table plus answers written by the simulated models), and how often the two
  agree.

Run: ``python benchmarks/bench_core.py [--quick] [--out results.json]``. Figures are medians of
``--repeats`` runs; machines are shared and noisy, so compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import offload_gym  # noqa: F401
from offload_gym.models import SimulatedCloud, SimulatedLocal
from offload_gym.protocol import HELP_REQUEST
from offload_gym.scoring import extract_answer, is_equivalent
from offload_gym.scoring.equivalence import normalize
from offload_gym.scoring.grade import grade_response
from offload_gym.scoring.numbers import parse_number
from offload_gym.tasks import math_stream
from offload_gym.tasks.base import Task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "scoring"))
from checker_table import TABLE
from test_answer_forms import ROWS

MARKER = HELP_REQUEST


def steps_per_second(env_id: str, n_steps: int, policy: str, **kwargs) -> float:
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(0)
    rng = np.random.default_rng(0)
    canned = ["Let me see. The answer is <answer>12</answer>.", "I need help. " + MARKER,
              "So \\boxed{7}."]  # fmt: skip
    env.reset(seed=0)
    start = time.perf_counter()
    for i in range(n_steps):
        if policy == "text":
            if rng.random() < 0.5:
                action = f"... the answer is <answer>{env.unwrapped.task.answer}</answer>."
            else:
                action = canned[i % 3]
        else:
            action = env.action_space.sample()
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return n_steps / elapsed


def checker_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """Final answers written by the simulated local and cloud models, with their references."""
    tasks, _ = math_stream(n, seed=seed).draw(np.random.default_rng(seed))
    local, cloud = SimulatedLocal(seed=seed), SimulatedCloud(seed=seed)
    pairs = []
    for k, task in enumerate(tasks):
        model = local if k % 2 else cloud
        pairs.append((extract_answer(model.answer(task).text) or "", task.answer))
    return pairs


def answers_per_second(fn, pairs) -> tuple[float, list[bool]]:
    start = time.perf_counter()
    verdicts = [fn(p, g) for p, g in pairs]
    return len(pairs) / (time.perf_counter() - start), verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    n = 5_000 if args.quick else 50_000
    n_text = 2_000 if args.quick else 20_000
    n_pairs = 200 if args.quick else 2_000

    figures: dict[str, float] = {}
    # A fixed dataset (`tasks=`) instead of fresh procedural tasks every episode: the same stepping
    # work without task generation; and a router that does not ask the cloud counterfactually.
    fixed = math_stream(1000, seed=9).draw(np.random.default_rng(9))[0]
    runs: dict[str, list[float]] = {
        "router": [],
        "router_fixed_tasks": [],
        "router_no_counterfactuals": [],
        "text": [],
        "cartpole": [],
    }
    for _ in range(args.repeats):
        runs["cartpole"].append(steps_per_second("CartPole-v1", n, "random"))
        runs["router"].append(steps_per_second("OffloadMathRouter-v0", n, "random"))
        runs["router_fixed_tasks"].append(
            steps_per_second("OffloadMathRouter-v0", n, "random", tasks=fixed)
        )
        runs["router_no_counterfactuals"].append(
            steps_per_second("OffloadMathRouter-v0", n, "random", counterfactuals=False)
        )
        runs["text"].append(steps_per_second("OffloadMath-v0", n_text, "text"))
    for key, values in runs.items():
        figures[f"{key}_steps_per_s"] = statistics.median(values)
    figures["router_vs_cartpole"] = figures["router_steps_per_s"] / figures["cartpole_steps_per_s"]
    figures["text_vs_cartpole"] = figures["text_steps_per_s"] / figures["cartpole_steps_per_s"]

    import math_verify.parser
    from math_verify import parse, verify

    def mv(pred: str, gold: str) -> bool:
        return bool(verify(parse(f"${gold}$"), parse(f"${pred}$")))

    def clear_caches() -> None:
        # Both checkers memoise parsing; every timed pass starts cold, on pairs it has not seen.
        normalize.cache_clear()
        parse_number.cache_clear()
        for obj in vars(math_verify.parser).values():
            if hasattr(obj, "cache_clear"):
                obj.cache_clear()

    is_equivalent("2^{100000}", "2^{100001}/2")  # start the sympy helper outside the timing
    mv("1", "1")
    ours_runs, mv_runs, agreement = [], [], []
    for rep in range(args.repeats):
        pairs = checker_pairs(n_pairs, seed=100 + rep)
        clear_caches()
        rate, ours = answers_per_second(is_equivalent, pairs)
        ours_runs.append(rate)
        clear_caches()
        rate, theirs = answers_per_second(mv, pairs)
        mv_runs.append(rate)
        agreement.append(float(np.mean([a == b for a, b in zip(ours, theirs, strict=True)])))
    figures["checker_answers_per_s"] = statistics.median(ours_runs)
    figures["math_verify_answers_per_s"] = statistics.median(mv_runs)
    figures["checker_vs_math_verify"] = (
        figures["checker_answers_per_s"] / figures["math_verify_answers_per_s"]
    )
    figures["checker_pairs_per_pass"] = n_pairs
    figures["verdict_agreement"] = statistics.median(agreement)
    # The hard pairs of the checker table, one cold pass each.
    table = [(p.pred, p.gold) for p in TABLE]
    clear_caches()
    figures["table_answers_per_s"], _ = answers_per_second(is_equivalent, table)
    clear_caches()
    figures["table_math_verify_answers_per_s"], _ = answers_per_second(mv, table)
    table_ours = [is_equivalent(p.pred, p.gold) for p in TABLE]
    figures["table_correct_ours"] = sum(
        o == p.expected for o, p in zip(table_ours, TABLE, strict=True)
    )
    figures["table_correct_math_verify"] = sum(mv(p.pred, p.gold) == p.expected for p in TABLE)
    figures["table_size"] = len(TABLE)

    # Whole responses graded against the reference, as a user grades a dataset: ours extracts
    # the final answer first; math-verify parses the whole response with its own extraction.
    # Ours is the fast path with math-verify as its fallback (`grade_math`); timed cold, each
    # grader on every row, beside math-verify alone.
    def ours_whole(response: str, gold: str) -> bool:
        task = Task(id="f", domain="math", prompt="p", answer=gold)
        return grade_response(task, response).correct

    def mv_whole(response: str, gold: str) -> bool:
        return bool(verify(parse(f"${gold}$"), parse(response)))

    rows = [(r, g) for g, r, _, _ in ROWS]
    forms_ours_runs, forms_mv_runs = [], []
    for _ in range(args.repeats):
        clear_caches()
        rate, forms_ours = answers_per_second(ours_whole, rows)
        forms_ours_runs.append(rate)
        clear_caches()
        rate, forms_mv = answers_per_second(mv_whole, rows)
        forms_mv_runs.append(rate)
    figures["forms_answers_per_s"] = statistics.median(forms_ours_runs)
    figures["forms_math_verify_answers_per_s"] = statistics.median(forms_mv_runs)
    figures["forms_vs_math_verify"] = (
        figures["forms_answers_per_s"] / figures["forms_math_verify_answers_per_s"]
    )
    for name, verdicts in (("ours", forms_ours), ("math_verify", forms_mv)):
        figures[f"forms_correct_{name}"] = sum(
            o == row[2] for o, row in zip(verdicts, ROWS, strict=True)
        )
        figures[f"forms_false_positives_{name}"] = sum(
            o and not row[2] for o, row in zip(verdicts, ROWS, strict=True)
        )
    figures["forms_size"] = len(ROWS)

    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "gymnasium": gym.__version__,
        "quick": args.quick,
        "repeats": args.repeats,
    }
    print(json.dumps({"meta": meta, "figures": figures}, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"meta": meta, "figures": figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
