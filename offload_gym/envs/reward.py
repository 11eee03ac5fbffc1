"""Reward parts and their combination: a pure function of named components and weights."""

from __future__ import annotations

from collections.abc import Mapping

REWARD_COMPONENTS = (
    "correct",
    "correct_local",
    "correct_cloud",
    "offloaded",
    "cost",
    "latency",
)
"""Names of the parts reported in ``info["reward_components"]``:

- ``correct``: 1 if the final answer is right, else 0.
- ``correct_local``: 1 if right and answered locally (no cloud call).
- ``correct_cloud``: 1 if right and answered by the cloud.
- ``offloaded``: 1 if the cloud was called.
- ``cost``: the call's cost (0 without a call).
- ``latency``: seconds spent (local answer plus cloud call).
"""

DEFAULT_REWARD_WEIGHTS: Mapping[str, float] = {"correct": 1.0}


def validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Check names and values; return a plain dict. Unknown names are refused."""
    if not isinstance(weights, Mapping):
        raise ValueError(f"reward_weights must be a mapping, got {type(weights).__name__}")
    unknown = sorted(set(weights) - set(REWARD_COMPONENTS))
    if unknown:
        raise ValueError(
            f"unknown reward component(s) {unknown}; valid components: {list(REWARD_COMPONENTS)}"
        )
    out: dict[str, float] = {}
    for k, v in weights.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"reward weight {k!r} must be a number, got {v!r}")
        out[k] = float(v)
    return out


def combine_reward(components: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """``sum(weights[k] * components[k])``; use negative weights for penalties.

    >>> combine_reward({"correct": 1.0, "offloaded": 1.0, "cost": 0.002}, {"correct": 1.0})
    1.0
    >>> # GAPG's hierarchical reward: alpha_a = 1 for a local success, alpha_c = 0.4 for a cloud one
    >>> combine_reward({"correct_local": 0.0, "correct_cloud": 1.0},
    ...                {"correct_local": 1.0, "correct_cloud": 0.4})
    0.4
    >>> combine_reward({"correct": 1.0, "offloaded": 1.0}, {"correct": 1.0, "offloaded": -0.3})
    0.7
    """
    return float(sum(w * components.get(k, 0.0) for k, w in weights.items()))
