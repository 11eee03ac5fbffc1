"""Wall time of ``offload-gym coplms`` from an empty checkpoint cache: one process of 2 torch
threads (the way the runs before 2026-12-07 ran) against 2 worker processes of 1 thread each
(``--workers 2 --threads 1``, the default since), in the same run, with the peak memory of each
run's whole process tree.

Both runs do the same work: they build the public checkpoints (each in its own empty cache
folder, so the build is timed too), then train and evaluate every method on each seed. Their
numbers differ in the last bits (a matrix product's reductions split over threads add in
another order), so the runs are compared on time and memory only.

Run: ``python benchmarks/bench_coplms_workers.py [--seeds 2] [--first-seed 108] [--full]
[--public-steps SERVER,SLM] [--json OUT]``. By default the ``--quick`` settings with the full
run's three methods; seed 108 is a tuning seed, never an evaluation seed. ``--full`` times the
default settings (about an hour for both runs at their own public steps; ``--public-steps
600,200`` shortens the checkpoints' training, for about 15 minutes in all).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench_demo_workers import timed_run  # the same timer and tree-memory sampler

RUNS = {
    "one process, 2 threads": ["--threads", "2", "--workers", "1"],
    "2 workers, 1 thread each": ["--threads", "1", "--workers", "2"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=108)
    ap.add_argument("--full", action="store_true", help="the default settings, not --quick")
    ap.add_argument("--public-steps", default=None,
                    help="SERVER,SLM: the public checkpoints' training steps")  # fmt: skip
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    steps = []
    if a.public_steps:
        server, slm = a.public_steps.split(",")
        steps = ["--server-pretrain-steps", server, "--slm-pretrain-steps", slm]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in RUNS.items():
            run = Path(tmp) / name.replace(" ", "_").replace(",", "")
            args = ["coplms", "--seeds", str(a.seeds), "--first-seed", str(a.first_seed),
                    "--methods", "coplms,standalone,server", "--out", str(run / "out"),
                    "--cache-dir", str(run / "cache"), "--quiet", *steps, *flags]  # fmt: skip
            rows[name] = timed_run(args if a.full else [*args, "--quick"])
            print(f"{name}: {rows[name]['seconds']:.0f} s, "
                  f"peak RSS {rows[name]['peak_rss_gb']:.2f} GB", flush=True)  # fmt: skip
    one, two = (rows[n]["seconds"] for n in RUNS)
    result = {"settings": "default" if a.full else "quick", "public_steps": a.public_steps,
              "seeds": a.seeds, "first_seed": a.first_seed, "runs": rows,
              "speedup": one / two}  # fmt: skip
    print(f"speed-up of the workers: {one / two:.2f}x")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
