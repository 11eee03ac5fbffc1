"""The text view: the agent is the local language model (`OffloadTextEnv`)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces

from offload_gym.envs.offload_env import OffloadEnv, _plain
from offload_gym.envs.spaces import PromptText
from offload_gym.protocol import asks_cloud


class OffloadTextEnv(OffloadEnv):
    """## Description
    The agent is the local language model. Each step shows one task's prompt; the agent's action is
    its full response. A response containing the offload marker (``"<unknown>"`` by default) asks
    the cloud, which answers the task given the text before the marker; within the budget the
    cloud's answer is graded, otherwise the local response is.

    ## Action Space
    `PromptText`: any ``str``. Responses longer than ``max_response_chars`` are cut
    (``info["response_truncated"]``).

    ## Observation Space
    ``Dict(prompt=PromptText(max_prompt_chars), budget_left=Box(0, 1, (1,)),
    progress=Box(0, 1, (1,)))``.

    ## Rewards
    By default 1.0 when the final answer (the cloud's if it answered, else the response) is
    right, else 0.0; ``reward_weights`` combine the parts in ``info["reward_components"]``
    (correct, correct_local, correct_cloud, offloaded, cost, latency).

    ## Starting State
    ``reset(seed=...)`` draws the episode's tasks from the stream (fresh procedural tasks, or a
    given dataset in order) and refills the budget: ``floor(budget * num_tasks)`` calls.

    ## Episode End
    Terminated after the last task of the stream; never truncated.

    ## Arguments
    `EnvConfig`'s fields, as keyword arguments of `gym.make`; router-view arguments
    (``local_model``, ``counterfactuals``, ``usage_window``) are refused.

    ## Version History
    - v0: the first version.

    >>> import gymnasium as gym
    >>> env = gym.make("OffloadMath-v0", num_tasks=2, budget=0.5)
    >>> obs, info = env.reset(seed=0)
    >>> sorted(obs)
    ['budget_left', 'progress', 'prompt']
    >>> _, reward, terminated, truncated, info = env.step("<unknown> I need help </unknown>")
    >>> info["offloaded"], info["calls_left"], terminated
    (True, 0, False)
    """

    view = "text"

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)
        self.action_space = PromptText(self.config.max_response_chars)
        self.observation_space = spaces.Dict(
            {
                "prompt": PromptText(self.config.max_prompt_chars),
                "budget_left": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
                "progress": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
            }
        )

    def _obs(self) -> dict[str, Any]:
        return {
            "prompt": "" if self._done else self._tasks[self._t].prompt,
            "budget_left": np.array([self.ledger.fraction_left], dtype=np.float32),
            "progress": np.array([self._t / self.num_tasks], dtype=np.float32),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        self._start_episode(seed, options)
        return self._obs(), _plain(self._base_info())

    def step(self, action: str) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        if not isinstance(action, str):
            raise TypeError(
                f"action must be a str (the response text; space {self.action_space}), "
                f"got {type(action).__name__}"
            )
        self._start_step()
        limit = self.config.max_response_chars
        truncated_response = len(action) > limit
        response = action[:limit]
        task = self._tasks[self._t]
        wants_cloud, partial = asks_cloud(response, self.config.offload_marker)
        info = self._resolve(task, response, wants_cloud, partial, 0.0)
        info["response_truncated"] = truncated_response
        # After the step, for analysis and teaching (an agent that reads it to answer later
        # tasks is not a deployable one).
        info["reference"] = task.answer
        reward, terminated = self._advance(info)
        return self._obs(), reward, terminated, False, _plain(info)
