"""Stable-Baselines3 agents (PPO, DQN) and sb3-contrib's MaskablePPO on the router view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from offload_agents.base import Agent

SB3_ALGORITHMS = ("ppo", "dqn", "maskable-ppo")


class SB3Agent(Agent):
    """Train an SB3 algorithm on the router view, then act greedily.

    Args:
        algo: ``"ppo"``, ``"dqn"`` or ``"maskable-ppo"`` (action masks from the hard budget).
        total_timesteps: Training steps in `fit`.
        progress_bar: Show SB3's progress bar while training.
        algo_kwargs: Extra arguments of the SB3 algorithm (e.g. ``{"learning_rate": 1e-3}``).
    """

    name = "sb3"

    def __init__(
        self,
        algo: str = "ppo",
        total_timesteps: int = 50_000,
        progress_bar: bool = False,
        algo_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if algo not in SB3_ALGORITHMS:
            raise ValueError(f"algo must be one of {SB3_ALGORITHMS}, got {algo!r}")
        if total_timesteps < 1:
            raise ValueError(f"total_timesteps must be >= 1, got {total_timesteps}")
        self.algo = algo
        self.name = algo  # type: ignore[misc]
        self.total_timesteps = total_timesteps
        self.progress_bar = progress_bar
        self.algo_kwargs = dict(algo_kwargs or {})
        self.model: Any = None
        self._env: Any = None

    def _make_env(self, env_id: str, env_kwargs: Mapping[str, Any]) -> gym.Env:
        env = gym.make(env_id, **env_kwargs)
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError(f"{env_id} is not a router-view environment")
        if self.algo == "maskable-ppo":
            from sb3_contrib.common.wrappers import ActionMasker

            env = ActionMasker(env, lambda e: e.unwrapped.action_masks())  # type: ignore[attr-defined]
        return env

    def fit(self, env_id: str, env_kwargs: Mapping[str, Any], seed: int) -> None:
        env = self._make_env(env_id, env_kwargs)
        env.reset(seed=seed)
        if self.algo == "ppo":
            from stable_baselines3 import PPO as Algo
        elif self.algo == "dqn":
            from stable_baselines3 import DQN as Algo  # type: ignore[assignment]
        else:
            from sb3_contrib import MaskablePPO as Algo  # type: ignore[assignment]
        kwargs = {"verbose": 0, "seed": seed, "device": "cpu", **self.algo_kwargs}
        self.model = Algo("MlpPolicy", env, **kwargs)
        if not kwargs["verbose"] and kwargs.get("tensorboard_log") is None:
            # SB3's default quiet logger still makes an empty SB3-<time> folder in the temp dir
            # on every learn(); a logger with no outputs writes nothing.
            from stable_baselines3.common.logger import Logger

            self.model.set_logger(Logger(folder=None, output_formats=[]))
        bar = _labelled_bar(f"{self.name} seed {seed}: train", self.total_timesteps)
        self.model.learn(total_timesteps=self.total_timesteps,
                         callback=bar if self.progress_bar else None)  # fmt: skip

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        self._env = env.unwrapped

    def act(self, obs: Any, info: Mapping[str, Any]) -> int:
        if self.model is None:
            raise RuntimeError(f"{self.algo} needs fit() before acting")
        if self.algo == "maskable-ppo":
            action, _ = self.model.predict(
                obs, deterministic=True, action_masks=self._env.action_masks()
            )
        else:
            action, _ = self.model.predict(obs, deterministic=True)
        return int(np.asarray(action).reshape(()))


def _labelled_bar(desc: str, total: int) -> Any:
    """An SB3 callback drawing a tqdm bar that says what trains (SB3's own bar names neither the
    agent nor the seed, and needs the rich package)."""
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm.auto import tqdm

    class Bar(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=total, desc=desc, leave=False)

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    return Bar()


def episode_metrics_callback(budget: float | None = None) -> Any:
    """An SB3 callback that logs the mean accuracy and cloud usage of the episodes in SB3's
    episode buffer as ``rollout/accuracy`` and ``rollout/cloud_usage`` (and, given the
    ``budget``, ``rollout/budget_error``: usage minus budget), beside ``rollout/ep_rew_mean``.

    The environments must be wrapped in SB3's ``Monitor`` with
    ``info_keywords=EPISODE_KEYWORDS`` (``make_vec_env(..., monitor_kwargs=...)``), which copies
    those keys of an episode's last info into its buffer entry.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class EpisodeMetrics(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            buffer = self.model.ep_info_buffer or ()
            episodes = [e for e in buffer if EPISODE_KEYWORDS[0] in e]
            if not episodes:
                return
            usage = float(np.mean([e["episode_cloud_usage"] for e in episodes]))
            accuracy = float(np.mean([e["episode_accuracy"] for e in episodes]))
            self.logger.record("rollout/accuracy", accuracy)
            self.logger.record("rollout/cloud_usage", usage)
            if budget is not None:
                self.logger.record("rollout/budget_error", usage - budget)

    return EpisodeMetrics()


EPISODE_KEYWORDS = ("episode_accuracy", "episode_cloud_usage")
"""The flat keys of an episode's last info that SB3's ``Monitor`` should keep
(``Monitor(env, info_keywords=EPISODE_KEYWORDS)``)."""
