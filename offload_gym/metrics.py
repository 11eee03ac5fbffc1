"""The metrics of cloud offloading, as pure functions over per-step logs.

A log is a sequence of step records (dicts, `step_record`), with at
least ``correct`` and ``offloaded``; some metrics also read ``local_correct``, ``cloud_correct``,
``task_group``, ``episode``, ``seed``, ``cost`` and ``score``. Definitions (docs/metrics.md):

- overall accuracy: mean of ``correct``.
- conditional local accuracy: mean of ``correct`` over the steps answered locally.
- cloud usage J_c: mean of ``offloaded``.
- budget tracking error: mean over consecutive windows (within each episode) of
  ``|usage in the window - tau|``.
- per-group accuracy: accuracy on each task group; post-switch accuracy: accuracy on the steps
  after the first group.
- forgetting on group k: ``(acc_k after training on k - acc_k at the end) / acc_k after training on
  k``, and the absolute drop.
- accuracy vs cloud-call curve: offload the fraction q of steps with the highest routing scores,
  keep the rest local, read the accuracy from the counterfactual outcomes.
- APGR: the area under the performance-gap-recovered curve
  ``PGR(q) = (acc(q) - acc_local) / (acc_cloud - acc_local)`` over q in [0, 1] (RouteLLM).
- CPT(x): the smallest fraction of cloud calls with ``PGR >= x`` (RouteLLM), as a fraction.
- cost per correct answer: total cost / number of correct answers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

Log = Sequence[Mapping[str, Any]]
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # type: ignore[attr-defined]  # numpy < 2


def step_record(
    info: Mapping[str, Any], action: Any, reward: float, score: float | None, **ids: Any
) -> dict[str, Any]:
    """The JSON-able record of one step, from the env's step ``info``: the log entry every
    metric here reads. ``action`` is the agent's (0/1 in the router view, a label in the text
    view); ``score`` its routing score, if any; ``ids`` (agent, seed, episode...) go first.

    >>> rec = step_record({"offloaded": True, "correct": True, "cost": 0.5}, 1, 1.0, None, seed=0)
    >>> rec["seed"], rec["offloaded"], rec["correct"], rec["cost"], rec["task_id"]
    (0, True, True, 0.5, None)
    """
    return {
        **ids,
        "step": info.get("step"),
        "task_id": info.get("task_id"),
        "domain": info.get("domain"),
        "difficulty": info.get("difficulty"),
        "task_group": info.get("task_group"),
        "action": action if isinstance(action, int | str) else int(action),
        "offloaded": bool(info["offloaded"]),
        "offload_refused": bool(info.get("offload_refused", False)),
        "correct": bool(info["correct"]),
        "local_correct": info.get("local_correct"),
        "cloud_correct": info.get("cloud_correct"),
        "local_confidence": info.get("local_confidence"),
        "cost": float(info.get("cost", 0.0)),
        "reward": float(reward),
        "budget_left": float(info.get("budget_left", 0.0)),
        "score": score,
    }


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def overall_accuracy(log: Log) -> float | None:
    """Mean of ``correct``.

    >>> overall_accuracy([{"correct": True}, {"correct": False}])
    0.5
    """
    return _mean([float(r["correct"]) for r in log])


def local_accuracy(log: Log) -> float | None:
    """Accuracy on the steps kept local (``None`` when every step went to the cloud)."""
    return _mean([float(r["correct"]) for r in log if not r["offloaded"]])


def cloud_usage(log: Log) -> float | None:
    """J_c: the fraction of steps answered by the cloud."""
    return _mean([float(r["offloaded"]) for r in log])


def _episodes(log: Log) -> list[list[Mapping[str, Any]]]:
    groups: OrderedDict[tuple[Any, Any], list[Mapping[str, Any]]] = OrderedDict()
    for r in log:
        groups.setdefault((r.get("seed"), r.get("episode")), []).append(r)
    return list(groups.values())


def budget_tracking_errors(log: Log, tau: float, window: int = 20) -> list[float]:
    """``|usage - tau|`` of each window of ``window`` consecutive steps within each episode
    (a last, shorter window is included)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    errors = []
    for ep in _episodes(log):
        for start in range(0, len(ep), window):
            chunk = ep[start : start + window]
            errors.append(abs(float(np.mean([float(r["offloaded"]) for r in chunk])) - tau))
    return errors


def budget_tracking_error(log: Log, tau: float, window: int = 20) -> float | None:
    """Mean of `budget_tracking_errors`.

    >>> budget_tracking_error([{"offloaded": k % 2 == 0} for k in range(4)], 0.5, window=2)
    0.0
    """
    return _mean(budget_tracking_errors(log, tau, window))


def group_accuracy(log: Log) -> dict[str, float]:
    """Accuracy on each task group, in the order the groups first appear."""
    by: OrderedDict[str, list[float]] = OrderedDict()
    for r in log:
        by.setdefault(str(r.get("task_group", "all")), []).append(float(r["correct"]))
    return {g: float(np.mean(v)) for g, v in by.items()}


def post_switch_accuracy(log: Log) -> float | None:
    """Accuracy on the steps whose group is not the stream's first (``None`` for one group)."""
    groups = list(group_accuracy(log))
    if len(groups) < 2:
        return None
    return _mean([float(r["correct"]) for r in log if str(r.get("task_group")) != groups[0]])


class Forgetting(NamedTuple):
    relative: float | None
    absolute: float


def forgetting(acc_after_training: float, acc_at_end: float) -> Forgetting:
    """Forgetting on a group: the drop from right after training on it to the end.

    >>> forgetting(0.8, 0.6)
    Forgetting(relative=0.25, absolute=0.2)
    """
    absolute = acc_after_training - acc_at_end
    relative = absolute / acc_after_training if acc_after_training > 0 else None
    return Forgetting(round(relative, 12) if relative is not None else None, round(absolute, 12))


def cost_per_correct(log: Log) -> float | None:
    """Total cloud cost divided by the number of correct answers."""
    n = sum(bool(r["correct"]) for r in log)
    return sum(float(r.get("cost", 0.0)) for r in log) / n if n else None


class Curve(NamedTuple):
    """Accuracy when the fraction ``usage[i]`` of steps (highest scores first) goes to the
    cloud."""

    usage: np.ndarray
    accuracy: np.ndarray


def routing_curve(
    local_correct: Sequence[bool], cloud_correct: Sequence[bool], scores: Sequence[float]
) -> Curve:
    """The accuracy vs cloud-call curve of a router that offloads its highest-scored steps.

    >>> c = routing_curve([1, 0, 1, 0], [1, 1, 1, 1], [0.1, 0.9, 0.2, 0.8])
    >>> c.usage.tolist(), c.accuracy.tolist()
    ([0.0, 0.25, 0.5, 0.75, 1.0], [0.5, 0.75, 1.0, 1.0, 1.0])
    """
    lc = np.asarray(local_correct, dtype=float)
    cc = np.asarray(cloud_correct, dtype=float)
    s = np.asarray(scores, dtype=float)
    if not (lc.shape == cc.shape == s.shape) or lc.ndim != 1 or len(lc) == 0:
        raise ValueError("local_correct, cloud_correct and scores must be equal-length, non-empty")
    order = np.argsort(-s, kind="stable")
    gains = (cc - lc)[order]
    n = len(lc)
    accuracy = (lc.sum() + np.concatenate([[0.0], np.cumsum(gains)])) / n
    return Curve(np.arange(n + 1) / n, accuracy)


def pgr(accuracy: float, acc_local: float, acc_cloud: float) -> float | None:
    """Performance gap recovered; ``None`` when the cloud is no better than the local model."""
    gap = acc_cloud - acc_local
    return (accuracy - acc_local) / gap if gap > 0 else None


def apgr(curve: Curve, acc_local: float, acc_cloud: float) -> float | None:
    """Average performance gap recovered: the area under PGR(usage) over usage in [0, 1].

    >>> c = routing_curve([1, 0, 1, 0], [1, 1, 1, 1], [0.1, 0.9, 0.2, 0.8])
    >>> round(apgr(c, 0.5, 1.0), 4)  # PGR 0, .5, 1, 1, 1 at usage 0, .25, .5, .75, 1
    0.75
    """
    gap = acc_cloud - acc_local
    if gap <= 0:
        return None
    p = (curve.accuracy - acc_local) / gap
    return float(_trapezoid(p, curve.usage))


def cpt(curve: Curve, acc_local: float, acc_cloud: float, x: float = 0.5) -> float | None:
    """Call-performance threshold: the smallest cloud-call fraction with ``PGR >= x``.

    >>> c = routing_curve([1, 0, 1, 0], [1, 1, 1, 1], [0.1, 0.9, 0.2, 0.8])
    >>> cpt(c, 0.5, 1.0, 0.5)
    0.25
    """
    gap = acc_cloud - acc_local
    if gap <= 0:
        return None
    reached = np.nonzero((curve.accuracy - acc_local) / gap >= x - 1e-12)[0]
    return float(curve.usage[reached[0]]) if len(reached) else None


def summarize(log: Log, tau: float, *, window: int = 20) -> dict[str, Any]:
    """The standard metrics of one agent's log (``None`` where a metric does not apply)."""
    has_cf = all(r.get("cloud_correct") is not None and "local_correct" in r for r in log)
    acc_local = acc_cloud = apgr_value = cpt50 = None
    if log and has_cf:
        acc_local = _mean([float(r["local_correct"]) for r in log])
        acc_cloud = _mean([float(r["cloud_correct"]) for r in log])
        if (
            acc_local is not None
            and acc_cloud is not None
            and all(r.get("score") is not None for r in log)
        ):
            curve = routing_curve(
                [r["local_correct"] for r in log],
                [r["cloud_correct"] for r in log],
                [r["score"] for r in log],
            )
            apgr_value = apgr(curve, acc_local, acc_cloud)
            cpt50 = cpt(curve, acc_local, acc_cloud, 0.5)
    usage = cloud_usage(log)
    return {
        "accuracy": overall_accuracy(log),
        "local_accuracy": local_accuracy(log),
        "cloud_usage": usage,
        "budget_error": budget_tracking_error(log, tau, window) if log else None,
        "usage_gap": None if usage is None else usage - tau,
        "group_accuracy": group_accuracy(log),
        "post_switch_accuracy": post_switch_accuracy(log),
        "forgetting": None,
        "apgr": apgr_value,
        "cpt50": cpt50,
        "always_local_accuracy": acc_local,
        "always_cloud_accuracy": acc_cloud,
        "cost_per_correct": cost_per_correct(log),
        "steps": len(log),
    }
