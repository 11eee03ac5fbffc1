"""Exercise 3 (solution): sweep the budget, read the accuracy-vs-cost curve, compute APGR."""

from __future__ import annotations

import numpy as np

from offload_agents import evaluate
from offload_gym.metrics import apgr, routing_curve


def area_under_pgr(usage: np.ndarray, accuracy: np.ndarray, acc_local: float,
                   acc_cloud: float) -> float:  # fmt: skip
    """APGR: the area under (accuracy - acc_local) / (acc_cloud - acc_local) over usage."""
    pgr = (accuracy - acc_local) / (acc_cloud - acc_local)
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
    return float(trapezoid(pgr, usage))


def run(budgets=(0.1, 0.2, 0.3, 0.4, 0.5), episodes: int = 3, num_tasks: int = 100) -> dict:
    points = {}
    for tau in budgets:
        res = evaluate("threshold", "OffloadMathRouter-v0", episodes=episodes,
                       env_kwargs={"budget": tau, "num_tasks": num_tasks}, progress=False)  # fmt: skip
        points[tau] = (res.metrics["cloud_usage"], res.metrics["accuracy"])
    logs = res.logs  # the last run's counterfactuals and scores give the whole routing curve
    curve = routing_curve([r["local_correct"] for r in logs], [r["cloud_correct"] for r in logs],
                          [r["score"] for r in logs])  # fmt: skip
    acc_l = float(np.mean([r["local_correct"] for r in logs]))
    acc_c = float(np.mean([r["cloud_correct"] for r in logs]))
    mine = area_under_pgr(curve.usage, curve.accuracy, acc_l, acc_c)
    return {"points": points, "apgr": mine, "apgr_library": apgr(curve, acc_l, acc_c)}


if __name__ == "__main__":
    out = run()
    for tau, (usage, acc) in out["points"].items():
        print(f"budget {tau:.1f}: usage {usage:.3f}, accuracy {acc:.3f}")
    print(f"APGR {out['apgr']:.3f}")
