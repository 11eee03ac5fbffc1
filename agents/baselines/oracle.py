"""The oracle: offloads exactly where only the cloud is right, while budget is left."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from offload_agents.base import Agent


class Oracle(Agent):
    """Uses privileged counterfactuals (`OffloadRouterEnv.peek_outcomes`), so it bounds what any
    router can reach at the same usage: every offload it makes gains exactly one correct answer,
    and it makes as many as the budget allows. Not a deployable policy."""

    name = "oracle"

    def __init__(self) -> None:
        self._env: Any = None

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        self._env = env.unwrapped
        if not hasattr(self._env, "peek_outcomes"):
            raise ValueError("the oracle needs a router-view environment")

    def _gain(self) -> bool:
        local, cloud = self._env.peek_outcomes()
        return cloud and not local

    def act(self, obs: Any, info: Mapping[str, Any]) -> int:
        return int(self._gain() and self._env.ledger.calls_left > 0)

    def score(self, obs: Any, info: Mapping[str, Any]) -> float:
        return float(self._gain())
