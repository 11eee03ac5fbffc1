"""The typed contract of a step: what ``info`` and its reward parts hold (docs/environments.md).

These are `TypedDict`s: at run time ``info`` is a plain dict (as Gymnasium expects), and a
type checker holds the environments and their users to these keys.
"""

from __future__ import annotations

from typing import Any, TypedDict


class RewardComponents(TypedDict):
    """The parts that ``reward_weights`` combine into the reward (`REWARD_COMPONENTS`)."""

    correct: float
    correct_local: float
    correct_cloud: float
    offloaded: float
    cost: float
    latency: float


class EpisodeSummary(TypedDict):
    """``info["episode_summary"]`` on the last step of an episode."""

    ledger: dict[str, Any]
    grading_failures: int


class StepInfo(TypedDict, total=False):
    """``info`` of ``reset`` and ``step`` in both views. ``reset`` and a finished episode give
    the budget keys only; a step gives the task's keys, the decision's outcome and the
    reward parts; the router view adds the local model's counterfactual keys."""

    # the task and the budget (reset and every step)
    task_id: str
    domain: str
    difficulty: int
    task_group: str
    step: int
    budget_left: float
    calls_left: int
    # the decision and its outcome (every step)
    correct: bool
    answer: str | None
    grading: str
    offload_requested: bool
    offloaded: bool
    offload_refused: bool
    cloud_failed: bool
    cloud_error: str | None
    cloud_answer: str | None
    over_budget: bool
    cost: float
    latency_s: float
    calls_used: int
    reward_components: RewardComponents
    episode_summary: EpisodeSummary
    # the last step of an episode: its fraction of correct answers and of offloaded tasks
    episode_accuracy: float
    episode_cloud_usage: float
    # text view
    response_truncated: bool
    reference: str
    # router view
    local_confidence: float
    local_correct: bool
    cloud_correct: bool | None


__all__ = ["EpisodeSummary", "RewardComponents", "StepInfo"]
