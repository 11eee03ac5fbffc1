"""The router view: a local model answers, the agent decides whether to offload
(`OffloadRouterEnv`, its observation `ROUTER_FEATURES`)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces

from offload_gym.envs.offload_env import OffloadEnv, _plain
from offload_gym.models.base import CloudError, LocalResponse
from offload_gym.tasks.base import Task

ROUTER_FEATURES = (
    "is_math",
    "is_code",
    "difficulty",
    "local_confidence",
    "budget_left",
    "recent_usage",
    "usage_rate",
    "budget_rate",
    "progress",
    "group_position",
)
"""Router-view observation, in order (all in [0, 1]):

- ``is_math``, ``is_code``: one-hot domain of the task.
- ``difficulty``: ``(difficulty - 1) / 4``.
- ``local_confidence``: the local model's confidence in its answer.
- ``budget_left``: share of the episode's call budget still unused.
- ``recent_usage``: share of the last ``usage_window`` steps that went to the cloud.
- ``usage_rate``: cloud calls so far divided by steps so far (0 at the first step).
- ``budget_rate``: tau, the budget as a fraction of tasks.
- ``progress``: steps done divided by the episode length.
- ``group_position``: index of the task's group divided by (number of groups - 1); 0 for one group.
"""


class OffloadRouterEnv(OffloadEnv):
    """## Description
    A local model (simulated by default) answers each task; the agent decides whether to keep the
    local answer (0) or to offload the task to the cloud (1) within the budget.

    ## Action Space
    ``Discrete(2)``: 0 answer locally, 1 offload. `action_masks` marks offloading invalid once a
    hard budget is spent (for sb3-contrib's MaskablePPO).

    ## Observation Space
    ``Box(0, 1, (10,), float32)``, the features of `ROUTER_FEATURES`.

    ## Rewards
    As in the text view: 1.0 for a right final answer by default, the parts in
    ``info["reward_components"]``; ``info`` also carries the counterfactuals
    ``local_correct`` and ``cloud_correct`` (with ``counterfactuals=True``).

    ## Starting State
    ``reset(seed=...)`` draws the episode's tasks, refills the budget and has the local model
    answer the first task (its confidence is a feature).

    ## Episode End
    Terminated after the last task of the stream; never truncated.

    ## Arguments
    `EnvConfig`'s fields, as keyword arguments of `gym.make`; text-view arguments
    (``offload_marker``, ``max_response_chars``) are refused.

    ## Version History
    - v0: the first version.

    >>> import gymnasium as gym
    >>> env = gym.make("OffloadMathRouter-v0", num_tasks=4, budget=0.25)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, int(env.action_space.n)
    ((10,), 2)
    >>> _, _, _, _, info = env.step(1)
    >>> info["offloaded"], bool(env.unwrapped.action_masks()[1])
    (True, False)
    """

    view = "router"

    def _models(self) -> list[Any]:
        return [self.cloud, self.local]

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)
        self.local = self.config.build_local()
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(
            0.0, 1.0, shape=(len(ROUTER_FEATURES),), dtype=np.float32
        )
        self._local_response: LocalResponse | None = None
        self._n_groups = len(self.stream.groups)

    def _prepare(self) -> None:
        self._local_response = None if self._done else self.local.answer(self._tasks[self._t])

    def _obs(self) -> np.ndarray:
        ledger, t = self.ledger, self._t
        recent = self._recent
        budget = [
            ledger.fraction_left,
            sum(recent) / len(recent) if recent else 0.0,
            ledger.calls_used / t if t else 0.0,
            ledger.rate,
            t / self.num_tasks,
        ]
        if self._done:
            return np.array([0.0, 0.0, 0.0, 0.0, *budget, 0.0], dtype=np.float32)
        task = self._tasks[t]
        assert self._local_response is not None
        confidence = min(1.0, max(0.0, self._local_response.confidence))
        group = self._groups[t] / (self._n_groups - 1) if self._n_groups > 1 else 0.0
        domain = task.domain
        features = [domain == "math", domain == "code", (task.difficulty - 1) / 4.0, confidence]
        return np.array([*features, *budget, group], dtype=np.float32)

    def _counterfactual(self, task: Task) -> str | None:
        """The cloud's answer to a task it was not asked for (None if the call failed and
        failures are tolerated)."""
        try:
            return self.cloud.answer(task).text
        except CloudError:
            if self.config.cloud_failure == "raise":
                raise
            return None

    def peek_outcomes(self) -> tuple[bool, bool]:
        """``(local_correct, cloud_correct)`` for the current task, without acting.

        Privileged information for oracle baselines and analysis; an agent that uses it is not a
        deployable router. Asks the cloud (counterfactually) for the current task.
        """
        if self._done or self._local_response is None:
            raise RuntimeError("the episode is over; call reset()")
        task = self._tasks[self._t]
        self._start_grading()
        local = self._grade(task, self._local_response.text).correct
        cloud = self._grade(task, self.cloud.answer(task).text).correct
        return local, cloud

    def action_masks(self) -> np.ndarray:
        """``[True, can_offload]``: offloading is masked once a hard budget is spent."""
        can = not self._done and self.ledger.can_offload(
            self.cloud.quote(self._tasks[self._t]) if not self._done else 0.0
        )
        return np.array([True, can], dtype=bool)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        self._start_episode(seed, options)
        self._prepare()
        info = self._base_info()
        assert self._local_response is not None
        info["local_confidence"] = self._local_response.confidence
        return self._obs(), _plain(info)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        a = _as_binary_action(action, self.action_space)
        self._start_step()
        task = self._tasks[self._t]
        local = self._local_response
        assert local is not None
        counterfactual = None
        if a == 0 and self.config.counterfactuals:
            counterfactual = self._counterfactual(task)
            if counterfactual is not None:
                self._grade_together(task, [local.text, counterfactual])
        info = self._resolve(task, local.text, a == 1, None, local.latency_s)
        local_grade = self._grade(task, local.text)
        info["local_correct"] = local_grade.correct
        info["local_confidence"] = local.confidence
        if info["offloaded"]:
            info["cloud_correct"] = info["correct"]
        elif counterfactual is not None:
            info["cloud_correct"] = self._grade(task, counterfactual).correct
        elif self.config.counterfactuals and a == 1:  # refused or failed: ask counterfactually
            text = self._counterfactual(task)
            info["cloud_correct"] = None if text is None else self._grade(task, text).correct
        else:
            info["cloud_correct"] = None
        reward, terminated = self._advance(info)
        self._prepare()
        return self._obs(), reward, terminated, False, _plain(info)


def _as_binary_action(action: Any, space: spaces.Space[Any]) -> int:
    if isinstance(action, np.ndarray) and action.shape in ((), (1,)):
        action = action.reshape(()).item()
    if isinstance(action, bool | np.bool_) or not isinstance(action, int | np.integer):
        raise TypeError(
            f"action must be an int in {space} (0 = answer locally, 1 = offload), "
            f"got {type(action).__name__} {action!r}"
        )
    if action not in (0, 1):
        raise ValueError(
            f"action must be 0 (answer locally) or 1 (offload), in {space}; got {action}"
        )
    return int(action)
