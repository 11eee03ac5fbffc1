"""Calibration data for the offline baselines: always-local episodes with counterfactuals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from offload_gym import seeding


class Outcomes(NamedTuple):
    """Observations and the local and cloud outcomes of every step."""

    obs: np.ndarray  # (n, n_features) float32
    local_correct: np.ndarray  # (n,) bool
    cloud_correct: np.ndarray  # (n,) bool


def collect_outcomes(
    env_id: str, env_kwargs: Mapping[str, Any], seed: int, episodes: int = 5
) -> Outcomes:
    """Run ``episodes`` always-local episodes (seeds ``seed * 1000 + k``) and record what the
    local model and the cloud would have scored on each task."""
    kwargs = {**env_kwargs, "counterfactuals": True}
    env = gym.make(env_id, **kwargs)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"{env_id} is not a router-view environment (Discrete(2) actions)")
    obs_rows, local, cloud = [], [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=seeding.derive(seed, k, stride=seeding.EPISODE_STRIDE))
        done = False
        while not done:
            obs_rows.append(obs)
            obs, _, terminated, truncated, info = env.step(0)
            local.append(bool(info["local_correct"]))
            cloud.append(bool(info["cloud_correct"]))
            done = terminated or truncated
    env.close()
    return Outcomes(np.asarray(obs_rows), np.asarray(local), np.asarray(cloud))
