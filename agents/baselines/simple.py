"""Always-local, always-cloud and random offloading at the budget rate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from offload_agents.base import Agent
from offload_gym.envs import offload_env


class AlwaysLocal(Agent):
    """Never offloads: the lower end of the accuracy-cost curve."""

    name = "local"

    def act(self, obs: Any, info: Mapping[str, Any]) -> int:
        return 0

    def score(self, obs: Any, info: Mapping[str, Any]) -> float | None:
        return None


class AlwaysCloud(Agent):
    """Always asks the cloud (a hard budget caps it at tau; the unconstrained cloud accuracy is
    the upper end of the curve, read from the counterfactuals)."""

    name = "cloud"

    def act(self, obs: Any, info: Mapping[str, Any]) -> int:
        return 1


class RandomOffload(Agent):
    """Offloads each task with probability ``rate`` (the env's budget by default).

    Args:
        rate: Offload probability; ``None`` uses the environment's budget tau.
        seed: Seed of its own generator (re-seeded per episode from the episode's seed).
    """

    name = "random"

    def __init__(self, rate: float | None = None, seed: int = 0) -> None:
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        self.rate = rate
        self.seed = seed
        self._rate = rate or 0.0
        self._rng = np.random.default_rng(seed)

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        self._rate = self.rate if self.rate is not None else float(offload_env(env).ledger.rate)
        self._rng = np.random.default_rng([self.seed, 0 if seed is None else seed])

    def act(self, obs: Any, info: Mapping[str, Any]) -> int:
        return int(self._rng.random() < self._rate)

    def score(self, obs: Any, info: Mapping[str, Any]) -> float:
        return float(self._rng.random())
