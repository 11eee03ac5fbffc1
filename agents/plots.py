"""Plots of evaluation results (matplotlib, PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "p")
LINESTYLES = ("-", "--", "-.", ":")


def style(i: int) -> dict[str, Any]:
    """The i-th method's colour, marker and line style: methods with equal values stay
    distinguishable (a marker inside another, dashes over a line)."""
    return {"color": f"C{i % 10}", "marker": MARKERS[i % len(MARKERS)],
            "ls": LINESTYLES[(i // 2) % len(LINESTYLES)]}  # fmt: skip


def plot_accuracy_vs_usage(
    results: Mapping[str, Any], path: str | PathLike[str], *, budget: float | None = None
) -> Path:
    """Each agent as a point at (cloud usage, accuracy); routing curves for agents with scores;
    the always-local and always-cloud accuracies as the two ends."""
    from offload_gym.metrics import routing_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ends = None
    for i, (name, res) in enumerate(results.items()):
        color = f"C{i % 10}"
        m = res.metrics
        logs = res.logs
        if logs and all(r.get("score") is not None and r.get("cloud_correct") is not None
                        for r in logs):  # fmt: skip
            curve = routing_curve([r["local_correct"] for r in logs],
                                  [r["cloud_correct"] for r in logs],
                                  [r["score"] for r in logs])  # fmt: skip
            ax.plot(curve.usage * 100, curve.accuracy * 100, color=color, alpha=0.35, lw=1)
        # Later methods are drawn smaller and on top: equal points show as nested markers.
        size = max(140 - 12 * i, 30)
        ax.scatter([m["cloud_usage"] * 100], [m["accuracy"] * 100], color=color, s=size,
                   marker=style(i)["marker"], label=name, zorder=3 + i,
                   edgecolor="black")  # fmt: skip
        if m.get("always_local_accuracy") is not None:
            ends = (m["always_local_accuracy"], m["always_cloud_accuracy"])
    if ends is not None:
        ax.plot([0, 100], [ends[0] * 100, ends[1] * 100], ls=":", color="grey",
                label="local to cloud (linear)")  # fmt: skip
        ax.scatter([0, 100], [ends[0] * 100, ends[1] * 100], marker="s", color="grey", zorder=3)
    if budget is not None:
        ax.axvline(budget * 100, color="red", ls="--", lw=1, label=f"budget {budget:.0%}")
    ax.set_xlabel("cloud calls (% of tasks)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy vs cloud usage")
    ax.set_xlim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, plt, path)


def plot_usage_over_stream(
    results: Mapping[str, Any],
    path: str | PathLike[str],
    *,
    budget: float,
    switch_points: Sequence[int] = (),
    window: int = 10,
) -> Path:
    """Cloud usage (rolling mean over ``window`` steps, averaged over episodes) along the
    stream, with the budget line and the task switch marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    for i, (name, res) in enumerate(results.items()):
        usage = _mean_by_step(res.logs, "offloaded")
        if len(usage) == 0:
            continue
        kernel = np.ones(min(window, len(usage))) / min(window, len(usage))
        smooth = np.convolve(usage, kernel, mode="valid")
        st = style(i)
        ax.plot(np.arange(len(smooth)) + len(kernel) - 1, smooth, color=st["color"], ls=st["ls"],
                marker=st["marker"], markevery=max(len(smooth) // 8, 1) + i, label=name,
                lw=1.6)  # fmt: skip
    ax.axhline(budget, color="red", ls="--", lw=1, label=f"budget {budget:.0%}")
    for k, s in enumerate(switch_points):
        ax.axvline(s, color="black", ls=":", lw=1, label="task switch" if k == 0 else None)
    ax.set_xlabel("step in the stream")
    ax.set_ylabel(f"cloud usage (rolling {window})")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Cloud usage over the stream")
    return _save(fig, plt, path)


def plot_group_accuracy(results: Mapping[str, Any], path: str | PathLike[str]) -> Path:
    """Accuracy per task group and agent (bars); with a training agent's before/after
    evaluations these show forgetting."""
    plt = _pyplot()
    names = list(results)
    groups: list[str] = []
    for res in results.values():
        for g in res.metrics["group_accuracy"]:
            if g not in groups:
                groups.append(g)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(names) + 2), 4.2))
    width = 0.8 / max(1, len(groups))
    x = np.arange(len(names))
    for j, g in enumerate(groups):
        vals = [results[n].metrics["group_accuracy"].get(g, np.nan) * 100 for n in names]
        ax.bar(x + j * width - 0.4 + width / 2, vals, width, label=g, color=f"C{j}")
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Accuracy per task group")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, plt, path)


def _mean_by_step(logs: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    by: dict[int, list[float]] = {}
    for r in logs:
        by.setdefault(int(r["step"]), []).append(float(r[key]))
    return np.array([np.mean(by[k]) for k in sorted(by)])


def _save(fig: Any, plt: Any, path: str | PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_training_traces(
    traces: Mapping[str, Mapping[str, Sequence[Sequence[float]]]],
    path: str | PathLike[str],
    *,
    tau: float,
    switch_step: int | None = None,
) -> Path:
    """Cloud requests (top) and DA-GRPO's lambda (bottom) over training steps, averaged over
    seeds, with the budget and the task switch marked."""
    plt = _pyplot()
    fig, (ax_u, ax_l) = plt.subplots(2, 1, figsize=(7.2, 5.6), sharex=True)
    for i, (name, tr) in enumerate(traces.items()):
        usage = np.mean(np.asarray(tr["cloud_requests"], dtype=float), axis=0)
        steps = np.arange(1, len(usage) + 1)
        ax_u.plot(steps, usage, color=f"C{i % 10}", label=name)
        if name.startswith("dagrpo"):  # every DA-GRPO variant (dual controller)
            ax_l.plot(steps, np.mean(np.asarray(tr["lambda"], dtype=float), axis=0),
                      color=f"C{i % 10}", label=f"lambda ({name})")  # fmt: skip
    ax_u.axhline(tau, color="red", ls="--", lw=1, label=f"budget {tau:.0%}")
    for ax in (ax_u, ax_l):
        if switch_step is not None:
            ax.axvline(switch_step + 0.5, color="black", ls=":", lw=1, label="math -> code")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    ax_u.set_ylabel("cloud requests (share of rollouts)")
    ax_l.set_ylabel("lambda")
    ax_l.set_xlabel("training step")
    ax_u.set_title("Cloud usage and the dual variable during training")
    return _save(fig, plt, path)
