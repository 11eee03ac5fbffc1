"""The demo's routing baselines and the routing ceiling.

GAPG's composite baselines put the GRPO-tuned model (task tuning only) behind an external
router: random offloading at the budget rate (``grpo+random``) and a trained Hybrid-LLM-style
router. A deployed router reads the query and the local model's confidence, not the task's
metadata, so ``grpo+router`` is `offload_agents.baselines.PromptRouter` (character n-grams of the
prompt and the confidence); ``grpo+router-privileged`` is the same quality-gap classifier over
the task's domain and *difficulty label* (`offload_agents.baselines.TrainedRouter`), kept as a
reference that knows what no deployed router knows. Both are fitted on calibration tasks (drawn
apart from the training and evaluation tasks) with the tuned model's own outcomes and the
cloud's, and both offload exactly the budget's share of the evaluation tasks, their highest
scores (`offload_agents.baselines.prompt_router.top_share`), so they differ only in ranking.

`routing_ceiling` is the best accuracy any routing of a model could reach at the budget: its own
right answers, plus one budgeted call for each task the cloud answers right and it does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from offload_agents.baselines.prompt_router import PromptRouter, top_share
from offload_agents.baselines.router import TrainedRouter
from offload_agents.lm_eval import GreedyMemo, Route, always_help, evaluate_lm, never_help
from offload_agents.slm import HELP_REQUEST
from offload_gym.tasks import Task, TaskStream


@dataclass(frozen=True)
class Calibration:
    """The calibration tasks with the tuned model's greedy confidence on each, and whether the
    model alone and the cloud answered each right."""

    tasks: list[Task]
    confidences: np.ndarray
    local_correct: np.ndarray
    cloud_correct: np.ndarray


def calibrate(
    model: Any, tokenizer: Any, stream: TaskStream, *, max_new_tokens: int, seed: int,
    memo: GreedyMemo | None = None,
) -> Calibration:  # fmt: skip
    """The model's own outcomes and the cloud's on every task of ``stream`` (a fixed stream);
    ``memo``: the model's greedy responses, shared with its other evaluations."""
    memo = memo or GreedyMemo(model, tokenizer, max_new_tokens)
    run = {"budget": 1.0, "max_new_tokens": max_new_tokens, "seed": seed, "memo": memo}
    local = evaluate_lm(model, tokenizer, stream, route=never_help, agent="calib", **run)
    cloud = evaluate_lm(model, tokenizer, stream, route=always_help, agent="calib", **run)
    tasks, _ = stream.draw(np.random.default_rng(seed))
    return Calibration(tasks, np.array([r["confidence"] for r in local]),
                       np.array([bool(r["correct"]) for r in local]),
                       np.array([bool(r["correct"]) for r in cloud]))  # fmt: skip


def task_features(tasks: Sequence[Task], confidences: ArrayLike) -> np.ndarray:
    """Router-view features of tasks as the env computes them (is_math, is_code, difficulty,
    confidence; the budget features 0): what the privileged router reads."""
    from offload_gym.envs import ROUTER_FEATURES

    x = np.zeros((len(tasks), len(ROUTER_FEATURES)))
    for i, (t, c) in enumerate(zip(tasks, np.asarray(confidences), strict=True)):
        x[i, :4] = [t.domain == "math", t.domain == "code", (t.difficulty - 1) / 4.0, c]
    return x


def mask_route(offload: Sequence[bool]) -> Route:
    """A route that sends task ``i`` to the cloud where ``offload[i]``, else keeps it local."""
    sent = np.asarray(offload, dtype=bool)
    return lambda text, c, i: HELP_REQUEST if sent[i] else never_help(text, c, i)


def route_by(
    kind: str,
    calib: Calibration,
    tasks: Sequence[Task],
    confidences: Sequence[float],
    tau: float,
    seed: int = 0,
) -> np.ndarray:
    """Which of ``tasks`` the ``kind`` router (``"prompt"`` or ``"privileged"``) offloads at
    rate ``tau``. When the calibration data has one class only (the cloud gains on none of its
    tasks, or on all), the lowest confidences are offloaded."""
    gain_args = (calib.local_correct, calib.cloud_correct, tau)
    try:
        if kind == "prompt":
            prompts = [t.prompt for t in calib.tasks]
            router = PromptRouter(seed=seed).fit(prompts, calib.confidences, *gain_args)
            return router.route([t.prompt for t in tasks], confidences, rate=tau)
        if kind == "privileged":
            ranker = TrainedRouter()
            ranker.fit_outcomes(task_features(calib.tasks, calib.confidences), *gain_args)
            return top_share(ranker.scores(task_features(tasks, confidences)), tau)
    except ValueError:
        return top_share(-np.asarray(confidences, dtype=np.float64), tau)
    raise ValueError(f"unknown router kind {kind!r}; choose 'prompt' or 'privileged'")


def routing_ceiling(
    local_correct: Sequence[bool], cloud_correct: Sequence[bool], tau: float
) -> float:
    """The best accuracy any routing can reach with ``floor(tau * n)`` cloud calls, given the
    local model's and the cloud's outcome on each of the n tasks.

    >>> routing_ceiling([1, 0, 0, 0], [1, 1, 1, 0], 0.5)  # 1 own + 2 calls where the cloud gains
    0.75
    >>> routing_ceiling([1, 0, 0, 0], [0, 0, 1, 0], 0.5)  # only one task to gain
    0.5
    """
    local = np.asarray(local_correct, dtype=bool)
    cloud = np.asarray(cloud_correct, dtype=bool)
    if local.shape != cloud.shape or local.ndim != 1 or not len(local):
        raise ValueError("local_correct and cloud_correct need one outcome per task, n >= 1")
    calls = math.floor(tau * len(local) + 1e-9)
    gain = int((cloud & ~local).sum())
    return float((local.sum() + min(calls, gain)) / len(local))


def random_route(tau: float, seed: int) -> Route:
    """``grpo+random``: each task offloaded with probability ``tau`` (seeded)."""
    rng = np.random.default_rng(seed)
    return lambda text, c, i: HELP_REQUEST if rng.random() < tau else never_help(text, c, i)
