"""The agent interface and the agent registry.

Any object with ``act(obs, info) -> action`` can be evaluated; subclass `Agent` for the optional
hooks (``reset`` at the start of an episode, ``observe`` after each step for online learning,
``fit`` for offline training, ``score`` for routing curves)::

    from offload_agents import Agent

    class Cautious(Agent):
        name = "cautious"

        def act(self, obs, info):
            return int(obs[3] < 0.4)  # offload when the local confidence is low
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import gymnasium as gym


class Agent:
    """Base class of agents for the offload environments."""

    name: ClassVar[str] = "agent"

    def fit(self, env_id: str, env_kwargs: Mapping[str, Any], seed: int) -> None:
        """Train or calibrate before evaluation (no-op by default). Use seeds of your own: the
        evaluation episodes use seeds from 1,000,000 on."""

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        """Called at the start of every evaluation episode with the environment."""

    def act(self, obs: Any, info: Mapping[str, Any]) -> Any:
        """The action for ``obs``; ``info`` is the info of the last reset/step."""
        raise NotImplementedError

    def observe(self, obs: Any, reward: float, info: Mapping[str, Any]) -> None:
        """Called after every step with its outcome (for online learners)."""

    def score(self, obs: Any, info: Mapping[str, Any]) -> float | None:
        """How much this step deserves the cloud (higher first), for routing curves; ``None``
        when the agent has no such score."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FunctionAgent(Agent):
    """Wraps a plain ``policy(obs) -> action`` callable."""

    name = "function"

    def __init__(self, policy: Callable[[Any], Any]) -> None:
        if not callable(policy):
            raise TypeError(f"policy must be callable, got {type(policy).__name__}")
        self.policy = policy

    def act(self, obs: Any, info: Mapping[str, Any]) -> Any:
        return self.policy(obs)


_AGENTS: dict[str, Callable[..., Agent]] = {}


def register_agent(name: str, factory: Callable[..., Agent]) -> None:
    """Register an agent factory under ``name`` (refuses duplicates)."""
    if name in _AGENTS:
        raise ValueError(f"an agent named {name!r} is already registered")
    _AGENTS[name] = factory


def list_agents() -> list[str]:
    return list(_AGENTS)


def make_agent(name: str, **kwargs: Any) -> Agent:
    """Instantiate a registered agent by name; unknown names list the valid ones."""
    try:
        factory = _AGENTS[name]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; valid agents: {list_agents()}") from None
    return factory(**kwargs)
