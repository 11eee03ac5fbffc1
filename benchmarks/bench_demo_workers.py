"""Wall time of ``offload-gym demo`` over a few seeds: one process of 2 torch threads (the
pre-registered runs' way) against 2 worker processes of 1 thread each (``--workers 2 --threads
1``), in the same run, with the peak memory of each run's whole process tree.

Both runs do the same work (every default method trained and evaluated on each seed); their
numbers differ in the last bits, because a matrix product's reductions split over threads add
in another order, so the runs are compared on time and memory only. The warm-started SLM is
built (or found in the cache) before either run is timed; both use it.

Run: ``python benchmarks/bench_demo_workers.py [--seeds 7,8] [--cache-dir DIR] [--json OUT]``
(seeds 7 and 8 are the demo's tuning seeds, never evaluation seeds). Each run prints nothing
but its time; the reports go to a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from offload_agents.grpo.demo_config import DemoConfig
from offload_agents.grpo.experiment import cached_slm

RUNS = {
    "one process, 2 threads": ["--threads", "2", "--workers", "1"],
    "2 workers, 1 thread each": ["--threads", "1", "--workers", "2"],
}


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def timed_run(args: list[str]) -> dict[str, float]:
    """Seconds and peak resident memory (summed over the process tree, sampled every 0.2 s)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "offload_agents", *args],
                            stdout=subprocess.DEVNULL)  # fmt: skip
    watched, peak, done = psutil.Process(proc.pid), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(watched))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    done.set()
    sampler.join()
    if code:
        raise SystemExit(f"offload-gym {' '.join(args)} exited with {code}")
    return {"seconds": time.perf_counter() - start, "peak_rss_gb": peak[0] / 2**30}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="7,8")
    ap.add_argument("--cache-dir", default=str(Path("~/.cache/offload-gym").expanduser()))
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    cached_slm(DemoConfig(), a.cache_dir, progress=True)  # the warm start, outside the timing
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in RUNS.items():
            out = Path(tmp) / name.replace(" ", "_").replace(",", "")
            rows[name] = timed_run(["demo", "--seeds", a.seeds, "--out", str(out), "--quiet",
                                    "--cache-dir", a.cache_dir, *flags])  # fmt: skip
            print(f"{name}: {rows[name]['seconds']:.0f} s, "
                  f"peak RSS {rows[name]['peak_rss_gb']:.2f} GB", flush=True)  # fmt: skip
    one, two = (rows[n]["seconds"] for n in RUNS)
    result = {"seeds": a.seeds, "runs": rows, "speedup": one / two}
    print(f"speed-up of the workers: {one / two:.2f}x")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
