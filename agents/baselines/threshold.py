"""Offload when the local model's confidence is low, with the threshold calibrated so that the
offload rate matches a target (the budget by default)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from offload_agents.base import Agent
from offload_agents.baselines.calibration import collect_outcomes
from offload_gym.envs import ROUTER_FEATURES, offload_env

CONFIDENCE = ROUTER_FEATURES.index("local_confidence")


class ConfidenceThreshold(Agent):
    """Offload iff ``local_confidence < threshold``.

    Args:
        target_rate: Offload rate to calibrate for; ``None`` uses the env's budget at `fit`.
        threshold: A fixed threshold (skips calibration).
        calibration_episodes: Always-local episodes used by `fit`.
    """

    name = "threshold"

    def __init__(
        self,
        target_rate: float | None = None,
        threshold: float | None = None,
        calibration_episodes: int = 5,
    ) -> None:
        if target_rate is not None and not 0.0 <= target_rate <= 1.0:
            raise ValueError(f"target_rate must be in [0, 1], got {target_rate}")
        self.target_rate = target_rate
        self.threshold = threshold
        self.calibration_episodes = calibration_episodes

    def fit(self, env_id: str, env_kwargs: Mapping[str, Any], seed: int) -> None:
        if self.threshold is not None and self.target_rate is None:
            return
        rate = self.target_rate
        if rate is None:
            rate = float(offload_env(gym.make(env_id, **env_kwargs)).ledger.rate)
        data = collect_outcomes(env_id, env_kwargs, seed, self.calibration_episodes)
        conf = data.obs[:, CONFIDENCE]
        # The rate-quantile: a share `rate` of calibration confidences lies below it.
        self.threshold = float(np.quantile(conf, rate)) if rate > 0 else -1.0

    def act(self, obs: Any, info: Mapping[str, Any]) -> int:
        if self.threshold is None:
            raise RuntimeError("ConfidenceThreshold needs fit() or a threshold")
        return int(obs[CONFIDENCE] < self.threshold)

    def score(self, obs: Any, info: Mapping[str, Any]) -> float:
        return float(1.0 - obs[CONFIDENCE])
