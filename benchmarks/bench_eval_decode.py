"""The evaluations' greedy decoding: our loop (`offload_agents.decoding.greedy_tokens`, through
`generate_responses`) against Hugging Face's greedy ``generate`` (`generate_batch`, the path the
evaluations took before, 32 prompts a batch), on the demo's warm-started SLM and one seed's 300
held-out evaluation tasks (150 math, 150 code; tuning seed 7), the help request allowed and
suppressed (the own-answer probe). Interleaved over ``--rounds``, in the same run, at the
demo's thread counts; reports seconds per 300 tasks, the ratio, and whether every response and
confidence is the same.

Run: ``python benchmarks/bench_eval_decode.py [--rounds 3] [--threads 1,2] [--cache-dir DIR]
[--json OUT]`` (the warm start is built into the cache first if it is not there: minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch

from offload_agents.grpo.demo_config import EVAL_SEED, DemoConfig, heldout_stream
from offload_agents.grpo.experiment import cached_slm
from offload_agents.lm_eval import generate_responses
from offload_agents.slm import format_prompt, load_local_lm
from offload_agents.slm.skill import load_seen
from offload_gym.models.generation import generate_batch
from offload_gym.protocol import OFFLOAD_MARKER


def hf_generate(model, tok, tasks, suppress):
    out = generate_batch(model, tok, [format_prompt(t.prompt) for t in tasks],
                         max_new_tokens=128, batch_size=32, keep_special_tokens=True,
                         suppress=suppress)  # fmt: skip
    return [t for t, _, _ in out], [math.exp(m) for _, m, _ in out]


def ours(model, tok, tasks, suppress):
    return generate_responses(model, tok, tasks, max_new_tokens=128, suppress=suppress)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache-dir", default="~/.cache/offload-gym")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    cfg = DemoConfig()
    path = cached_slm(cfg, os.path.expanduser(args.cache_dir), progress=True)
    model, tok = load_local_lm(path)
    stream = heldout_stream(cfg, cfg.eval_per_group, EVAL_SEED + args.seed, load_seen(path))
    tasks, _ = stream.draw(np.random.default_rng(args.seed))
    results = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        seconds: dict[str, list[float]] = {"generate": [], "ours": []}
        same = True
        for _ in range(args.rounds):
            for suppress in ((), (OFFLOAD_MARKER,)):
                got = {}
                for name, fn in (("generate", hf_generate), ("ours", ours)):
                    start = time.perf_counter()
                    got[name] = fn(model, tok, tasks, suppress)
                    seconds[name].append(time.perf_counter() - start)
                (a, ca), (b, cb) = got["generate"], got["ours"]
                same &= a == b and np.allclose(ca, cb, rtol=1e-5)
        row = {k: float(np.sum(v) / args.rounds / 2) for k, v in seconds.items()}
        row.update(ratio=row["generate"] / row["ours"], same_responses=bool(same))
        results[f"{threads} thread(s)"] = row
        print(f"{threads} thread(s): generate {row['generate']:.2f} s, ours {row['ours']:.2f} s "
              f"per {len(tasks)} tasks, {row['ratio']:.2f}x, same responses: {same}")  # fmt: skip
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"tasks": len(tasks), "rounds": args.rounds, "results": results}, f,
                      indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
