"""The text view as a TRL environment: plain ``trl.GRPOTrainer`` with this project's graders,
cloud and budget, and no subclass.

TRL lets an environment own the reward through its ``rollout_func`` argument: a function that
receives a batch's prompts and the trainer, generates the completions, and returns their ids and
log-probabilities plus any other fields, which TRL hands to the reward functions. `OffloadRollout`
is that function for the offload environments:

- it samples one completion per prompt it is given (TRL repeats each prompt ``num_generations``
  times) from the trainer's model, at the trainer's temperature and completion length, seeded
  (torch's global RNG is not touched);
- it plays the batch as **one episode of a text-view environment** over the batch's tasks, in a
  seeded random order: each completion is one step, graded by the project's graders (the code
  sandbox included), a help request is answered by the cloud model (one `CachedCloud` for the
  whole run, so each task is answered once), and the episode's `BudgetLedger` grants at most
  ``floor(budget * n)`` calls of the ``n`` (``budget_mode="hard"``; ``"soft"`` grants every call
  and flags the ones over budget), exactly as in any other episode of the environment;
- it returns the environment's reward (``env_reward``: the environment's ``reward_weights``
  applied to its reward parts) and the step's outcomes (``asked``, ``offloaded``, ``correct``)
  as extra fields. `env_reward` is the reward function that reads the first back.

The completion is the local model's own text (to the end of text or the end of its help
request), so the cloud's answer is never in the loss. Use::

    rollout = OffloadRollout(tasks, env_kwargs={"budget": 0.3})
    trainer = trl.GRPOTrainer(model, reward_funcs=env_reward, args=args,
                              train_dataset=task_dataset(tasks), rollout_func=rollout,
                              processing_class=tokenizer)

For DA-GRPO's advantage and dual controller on TRL, use `offload_agents.trl.OffloadGRPOTrainer`
(TRL has no hook for a custom advantage). TRL marks ``rollout_func`` experimental.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from offload_agents.grpo.logprobs import LogpSettings, token_logp
from offload_agents.slm.template import format_prompt
from offload_gym import seeding
from offload_gym.envs.config import DEFAULT_OFFLOAD_MARKER
from offload_gym.models import CachedCloud, SimulatedCloud
from offload_gym.models.generation import (
    decode_keeping_specials,
    fit_prompts,
    generate_tokens,
    response_mask,
)
from offload_gym.protocol import OFFLOAD_CLOSE, check_marker
from offload_gym.tasks import Task

__all__ = ["OffloadRollout", "env_reward"]

OUTCOMES = ("env_reward", "asked", "offloaded", "correct")
"""The extra fields `OffloadRollout` returns beside TRL's required ones (one value per
completion), which TRL passes to every reward function as keyword arguments."""


def env_reward(prompts: list[Any], completions: list[Any], env_reward: list[float],
               **kwargs: Any) -> list[float]:  # fmt: skip
    """TRL reward function: the environment's reward of each completion, as `OffloadRollout`
    computed it (pass `OffloadRollout` as ``rollout_func``, or this function has nothing to read).

    >>> env_reward(["q", "q"], ["a", "b"], env_reward=[1.0, 0.0])
    [1.0, 0.0]
    """
    if len(env_reward) != len(completions):
        raise ValueError(f"env_reward has {len(env_reward)} values for {len(completions)} "
                         "completions; pass OffloadRollout as rollout_func")  # fmt: skip
    return [float(r) for r in env_reward]


@dataclass
class OffloadRollout:
    """TRL ``rollout_func`` playing each generated batch as one episode of a text-view
    environment (see the module doc).

    Args:
        tasks: The tasks of the training set, in the order of `offload_agents.trl.task_dataset`'s
            rows (each prompt is matched back to its task by its text).
        env_id: A text-view environment id.
        env_kwargs: Its arguments (``budget``, ``budget_mode``, ``reward_weights``,
            ``cloud_model``, ``offload_marker``...); ``tasks`` is set per batch.
        seed: Seeds the sampling and the order in which each batch's tasks are played.

    ``history`` gets one record per batch: the share of completions that asked, were answered by
    the cloud, and were right, and the mean reward.
    """

    tasks: Sequence[Task]
    env_id: str = "OffloadStream-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    history: list[dict[str, float]] = field(default_factory=list, init=False)
    _calls: int = field(default=0, init=False)
    __name__ = "offload_rollout"

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("OffloadRollout needs at least one task")
        if "tasks" in self.env_kwargs:
            raise ValueError("env_kwargs must not hold 'tasks': each batch's tasks are the "
                             "prompts TRL hands over")  # fmt: skip
        kwargs = dict(self.env_kwargs)
        self.cloud = CachedCloud(kwargs.pop("cloud_model", None) or SimulatedCloud(seed=self.seed))
        self._kwargs = kwargs
        self.marker = kwargs.get("offload_marker", DEFAULT_OFFLOAD_MARKER)
        self._index: dict[str, int] = {}
        for i, t in enumerate(self.tasks):
            self._index.setdefault(format_prompt(t.prompt), i)

    def task_of(self, prompt: Any) -> Task:
        """The task whose templated prompt is ``prompt``; ValueError for any other prompt."""
        if not isinstance(prompt, str):
            raise ValueError("OffloadRollout takes plain-text prompts (the `prompt` column of "
                             f"task_dataset), got {type(prompt).__name__}")  # fmt: skip
        try:
            return self.tasks[self._index[prompt]]
        except KeyError:
            raise ValueError(f"prompt {prompt[:60]!r}... is not one of the rollout's tasks; "
                             "build the dataset with task_dataset(tasks) from the same "
                             "tasks") from None  # fmt: skip

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        tasks = [self.task_of(p) for p in prompts]
        model = trainer.accelerator.unwrap_model(trainer.model)
        tokenizer = trainer.processing_class
        check_marker(tokenizer, self.marker)
        prompt_ids, completion_ids, logprobs = self._sample(model, tokenizer, list(prompts),
                                                            trainer.args)  # fmt: skip
        texts = [decode_keeping_specials(tokenizer, ids) for ids in completion_ids]
        outcomes = self.play(tasks, texts)
        self._calls += 1
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": logprobs,
                **{k: v.tolist() for k, v in outcomes.items()}}  # fmt: skip

    def _sample(
        self, model: Any, tokenizer: Any, prompts: list[str], args: Any
    ) -> tuple[list[list[int]], list[list[int]], list[list[float]]]:
        """Prompt ids, completion ids (to the end of text or of the help request, included) and
        their log-probabilities at the sampling temperature."""
        temperature = float(getattr(args, "temperature", 1.0) or 1.0)
        max_new = int(getattr(args, "max_completion_length", 256) or 256)
        ids = fit_prompts(model, tokenizer, prompts, max_new)
        seed = seeding.derive(self.seed, self._calls, stride=seeding.SAMPLER_STRIDE)
        was_training = model.training
        model.eval()
        try:
            g = generate_tokens(model, tokenizer, ids, max_new_tokens=max_new,
                                temperature=temperature, seed=seed)  # fmt: skip
            ends = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(OFFLOAD_CLOSE)]
            mask = response_mask(g.sequences, g.prompt_len, ends, tokenizer.pad_token_id)
            settings = LogpSettings.for_model(model, temperature=temperature, chunk=0,
                                              group_size=1, share_prompts=False)  # fmt: skip
            with torch.no_grad():
                logp = token_logp(model, g.sequences, g.attention_mask, mask, g.prompt_len,
                                  settings)  # fmt: skip
        finally:
            model.train(was_training)
        own = mask[:, g.prompt_len :] > 0
        completions = [g.sequences[b, g.prompt_len :][own[b]].tolist() for b in range(len(ids))]
        logprobs = [logp[b][own[b]].tolist() for b in range(len(ids))]
        return [list(r) for r in ids], completions, logprobs

    def play(self, tasks: Sequence[Task], responses: Sequence[str]) -> dict[str, np.ndarray]:
        """One episode of the environment over ``tasks``, answered by ``responses`` (one each),
        played in a seeded random order; the outcomes in the given order: ``env_reward``,
        ``asked``, ``offloaded``, ``correct``."""
        if len(tasks) != len(responses):
            raise ValueError(f"{len(tasks)} tasks but {len(responses)} responses")
        rng = np.random.default_rng(seeding.derive(self.seed, self._calls,
                                                   stride=seeding.GRANT_STRIDE))  # fmt: skip
        order = rng.permutation(len(tasks))
        env = gym.make(self.env_id, tasks=[tasks[i] for i in order], cloud_model=self.cloud,
                       **self._kwargs)  # fmt: skip
        if not isinstance(env.action_space, gym.spaces.Text):
            env.close()
            raise ValueError(f"{self.env_id} is not a text-view environment")
        out = {k: np.zeros(len(tasks)) for k in OUTCOMES}
        env.reset(seed=self.seed)
        for i in order:
            _, reward, _, _, info = env.step(responses[i])
            row = (reward, info["offload_requested"], info["reward_components"]["offloaded"],
                   info["correct"])  # fmt: skip
            for k, v in zip(OUTCOMES, row, strict=True):
                out[k][i] = float(v)
        env.close()
        self.history.append({k: float(v.mean()) for k, v in out.items()})
        return out
