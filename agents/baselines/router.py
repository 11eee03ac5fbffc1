"""A trained router in the style of Hybrid-LLM: a classifier predicts, from the task's features,
whether the cloud would be right where the local model is wrong (a positive quality gap); the
router offloads the tasks with the highest predicted gain, at a threshold calibrated to the
target rate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from offload_agents.base import Agent
from offload_agents.baselines.calibration import collect_outcomes
from offload_gym.envs import ROUTER_FEATURES, offload_env

TASK_FEATURES = [ROUTER_FEATURES.index(n) for n in ("is_math", "is_code", "difficulty",
                                                    "local_confidence")]  # fmt: skip


class TrainedRouter(Agent):
    """Logistic-regression quality-gap router.

    Args:
        target_rate: Offload rate to calibrate for (the env's budget by default).
        training_episodes: Always-local episodes whose counterfactual outcomes train it.
    """

    name = "router"

    def __init__(self, target_rate: float | None = None, training_episodes: int = 10) -> None:
        if target_rate is not None and not 0.0 <= target_rate <= 1.0:
            raise ValueError(f"target_rate must be in [0, 1], got {target_rate}")
        self.target_rate = target_rate
        self.training_episodes = training_episodes
        self.model: Any = None
        self.threshold = np.inf

    @staticmethod
    def _features(obs: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(obs, dtype=np.float64))[:, TASK_FEATURES]
        conf = np.clip(x[:, 3:4], 1e-4, 1 - 1e-4)
        # Interactions let a linear model bend with difficulty; the logit of the confidence is
        # what the simulated local model's confidence is linear in.
        return np.hstack([x, np.log(conf / (1 - conf)), x[:, 2:3] * x[:, 3:4]])

    def fit(self, env_id: str, env_kwargs: Mapping[str, Any], seed: int) -> None:
        rate = self.target_rate
        if rate is None:
            rate = float(offload_env(gym.make(env_id, **env_kwargs)).ledger.rate)
        data = collect_outcomes(env_id, env_kwargs, seed, self.training_episodes)
        self.fit_outcomes(data.obs, data.local_correct, data.cloud_correct, rate)

    def fit_outcomes(
        self, obs: np.ndarray, local_correct: np.ndarray, cloud_correct: np.ndarray, rate: float
    ) -> None:
        """Fit on observed outcomes: ``obs`` in the router view's feature layout (only
        is_math, is_code, difficulty and local_confidence are read), the local model's and the
        cloud's correctness on each task; calibrate the threshold to offload ``rate``."""
        from sklearn.linear_model import LogisticRegression

        gain = np.asarray(cloud_correct, bool) & ~np.asarray(local_correct, bool)
        x = self._features(obs)
        if gain.all() or not gain.any():
            raise ValueError("the training data has a single class; use more training episodes")
        self.model = LogisticRegression(max_iter=1000).fit(x, gain)
        scores = self.model.predict_proba(x)[:, 1]
        self.threshold = float(np.quantile(scores, 1.0 - rate)) if rate > 0 else np.inf

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """The predicted probability of a gain from the cloud for each row of ``obs`` (rows in
        the router view's feature layout)."""
        if self.model is None:
            raise RuntimeError("TrainedRouter needs fit()")
        return np.asarray(self.model.predict_proba(self._features(obs))[:, 1])

    def score(self, obs: Any, info: Mapping[str, Any]) -> float:
        if self.model is None:
            raise RuntimeError("TrainedRouter needs fit()")
        return float(self.model.predict_proba(self._features(obs))[0, 1])

    def act(self, obs: Any, info: Mapping[str, Any]) -> int:
        return int(self.score(obs, info) > self.threshold)
