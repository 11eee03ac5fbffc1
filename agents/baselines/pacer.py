"""A budget-pacing primal-dual bandit (a Lagrangian router learned online).

It estimates the gain of offloading (cloud right minus local right) per confidence bin from the
outcomes of its own offloads only (bandit feedback: no counterfactuals), offloads when the
estimated gain exceeds the price ``lambda``, and moves ``lambda`` by dual ascent toward the target
rate: ``lambda <- max(0, lambda + eta * (offloaded - tau))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from offload_agents.base import Agent
from offload_gym.envs import ROUTER_FEATURES, offload_env

CONFIDENCE = ROUTER_FEATURES.index("local_confidence")


class BudgetPacer(Agent):
    """Primal-dual bandit router.

    Args:
        bins: Confidence bins of the gain estimate.
        eta: Step size of the dual update.
        lambda0: Initial price of a cloud call.
        prior_strength: Pseudo-observations of the optimistic prior ``gain = 1 - confidence``.
        target_rate: Usage to pace to (the env's budget by default).
    """

    name = "pacer"

    def __init__(
        self,
        bins: int = 10,
        eta: float = 0.05,
        lambda0: float = 0.3,
        prior_strength: float = 2.0,
        target_rate: float | None = None,
    ) -> None:
        if bins < 1 or eta <= 0 or lambda0 < 0 or prior_strength <= 0:
            raise ValueError("bins >= 1, eta > 0, lambda0 >= 0 and prior_strength > 0 required")
        self.bins, self.eta, self.lambda0 = bins, eta, lambda0
        self.prior_strength = prior_strength
        self.target_rate = target_rate
        centers = (np.arange(bins) + 0.5) / bins
        self._sum = prior_strength * (1.0 - centers)
        self._n = np.full(bins, prior_strength)
        self.lam = lambda0
        self._tau = 0.0
        self._bin = 0
        self.lambda_trace: list[float] = []

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        # The gain estimates carry over between episodes (it keeps learning); the price restarts.
        self._tau = (
            self.target_rate
            if self.target_rate is not None
            else float(offload_env(env).ledger.rate)
        )
        self.lam = self.lambda0

    def _bin_of(self, obs: Any) -> int:
        return min(self.bins - 1, int(float(obs[CONFIDENCE]) * self.bins))

    def score(self, obs: Any, info: Mapping[str, Any]) -> float:
        b = self._bin_of(obs)
        return float(self._sum[b] / self._n[b])

    def act(self, obs: Any, info: Mapping[str, Any]) -> int:
        self._bin = self._bin_of(obs)
        return int(self.score(obs, info) > self.lam)

    def observe(self, obs: Any, reward: float, info: Mapping[str, Any]) -> None:
        offloaded = bool(info["offloaded"])
        if offloaded and info.get("cloud_correct") is not None:
            # Observed only because it offloaded: the cloud's outcome and the local one.
            self._sum[self._bin] += float(info["cloud_correct"]) - float(info["local_correct"])
            self._n[self._bin] += 1.0
        self.lam = max(0.0, self.lam + self.eta * (float(offloaded) - self._tau))
        self.lambda_trace.append(self.lam)
