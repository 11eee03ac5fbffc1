"""Collect a batch of rollouts by driving the vectorised text environment.

P groups of G sub-environments: the G copies of a group are seeded alike, so they present the
same task at every step, and they share one `CachedCloud`, so the cloud answers each task once.
Each step batches all P*G prompts into one ``generate`` call.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from offload_agents.grpo.sampling import sample_groups
from offload_agents.slm.template import HELP_REQUEST, format_prompt
from offload_gym import seeding
from offload_gym.budget import grant_batch
from offload_gym.envs import offload_env
from offload_gym.models import CachedCloud, SimulatedCloud
from offload_gym.models.generation import (
    decode_keeping_specials,
    fit_prompts,
    generate_tokens,
    response_mask,
)
from offload_gym.protocol import OFFLOAD_CLOSE, asks_cloud, check_marker
from offload_gym.scoring import GradeMemo


class Rollout(NamedTuple):
    """One batch. B = P * G; T = prompt + response length.

    Attributes:
        sequences: (B, T) token ids, prompts left-padded.
        attention_mask: (B, T).
        response_mask: (B, T) 1 on the policy's own response tokens (to the end-of-text or the
            end of the help request), 0 on the prompt, padding and anything after.
        rewards: (P, G) the environments' rewards (their ``reward_weights`` are the algorithm's).
        asked: (P, G) 1 where the response asked for the cloud (logged as ``cloud_requests``).
        correct: (P, G) whether the final answer was right.
        offloaded: (P, G) whether the cloud answered (a request the budget granted; logged as
            ``cloud_usage``).
        groups: The task group of each prompt (P,).
        responses: The decoded responses (B,).
        prompt_len: Length of the (left-padded) prompt part; responses start there (0: not
            known, every position is scored).
        greedy_asked: (P,) 1 where the greedy response to the prompt asks for the cloud (the
            decision the evaluation sees), or None when the collector does not probe it.
        refused: (P, G) 1 where the response asked but the batch's budget answered it locally
            (all 0 without a batch budget).
    """

    sequences: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    rewards: torch.Tensor
    asked: torch.Tensor
    correct: torch.Tensor
    offloaded: torch.Tensor
    groups: list[str]
    responses: list[str]
    prompt_len: int = 0
    greedy_asked: torch.Tensor | None = None
    refused: torch.Tensor | None = None


class RolloutCollector:
    """Drives ``P * G`` copies of a text-view env and samples responses from a causal LM."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        env_id: str,
        prompts: int,
        group_size: int,
        env_kwargs: dict[str, Any],
        max_new_tokens: int,
        temperature: float,
        seed: int,
        rank: int = 0,
        min_new_tokens: int = 0,
        greedy_probe: bool = False,
        batch_budget: float | None = None,
        share_prompts: bool = True,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.share_prompts = share_prompts
        """Sample each group's prompt once (`offload_agents.grpo.sampling.sample_groups`);
        False: ``generate`` on every row."""
        self.P, self.G = prompts, group_size
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.min_new_tokens = min_new_tokens
        self.greedy_probe = greedy_probe
        self.batch_budget = batch_budget
        """None, or the share of each batch's responses the cloud may answer
        (`offload_gym.budget.grant_batch`); requests beyond it are answered locally."""
        self.timings: dict[str, float] = {}
        """Seconds spent in the last `collect`: ``generate`` and ``scoring`` (decoding, the
        environments' step with grading and the cloud, rewards)."""
        self.seed = seed
        self.rank = rank
        kwargs = dict(env_kwargs)
        self.cloud = CachedCloud(kwargs.pop("cloud_model", None) or SimulatedCloud(seed=seed))
        kwargs["cloud_model"] = self.cloud
        # one memo for all sub-envs: a group's identical responses are graded once
        kwargs.setdefault("grade_memo", GradeMemo(size=4 * prompts * group_size))
        self.envs = gym.vector.SyncVectorEnv(
            [lambda: gym.make(env_id, **kwargs) for _ in range(prompts * group_size)],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
        if not isinstance(self.envs.single_action_space, gym.spaces.Text):
            raise ValueError(f"{env_id} is not a text-view environment")
        self.marker = offload_env(self.envs.envs[0]).config.offload_marker
        check_marker(tokenizer, self.marker)
        # Each process of a distributed run draws its own prompts.
        seeds: list[int | None] = [
            seeding.derive(seed, rank * seeding.RANK_STRIDE + p, stride=seeding.ROLLOUT_STRIDE)
            for p in range(prompts) for _ in range(group_size)
        ]  # fmt: skip
        self._obs, self._info = self.envs.reset(seed=seeds)
        self._calls = 0

    def _generate(
        self, prompts: list[str], *, sample: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Sequences, attention mask and prompt length for ``prompts``: sampled with each
        group's prompt run once (`sample_groups`), else, and for the greedy probe, through the
        project's generation path (`offload_gym.models.generation.generate_tokens`). Sampling is
        reproducible from (seed, rank, call index) and leaves torch's global RNG alone."""
        ids = fit_prompts(self.model, self.tokenizer, [format_prompt(p) for p in prompts],
                          self.max_new_tokens)  # fmt: skip
        seed = seeding.derive(self.seed, self.rank * seeding.SAMPLER_RANK_STRIDE + self._calls,
                              stride=seeding.SAMPLER_STRIDE)  # fmt: skip
        g = None
        groups = [ids[i : i + self.G] for i in range(0, len(ids), self.G)]
        if sample and self.share_prompts and all(r == grp[0] for grp in groups for r in grp):
            g = sample_groups(self.model, self.tokenizer, [grp[0] for grp in groups], self.G,
                              max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                              seed=seed, min_new_tokens=self.min_new_tokens)  # fmt: skip
        if g is None:
            g = generate_tokens(self.model, self.tokenizer, ids,
                                max_new_tokens=self.max_new_tokens,
                                temperature=self.temperature if sample else 0.0, seed=seed,
                                min_new_tokens=self.min_new_tokens)  # fmt: skip
        if sample:  # the greedy probe leaves the sampler's sequence of seeds alone
            self._calls += 1
        return g.sequences, g.attention_mask, g.prompt_len

    def _response_mask(self, seqs: torch.Tensor, prompt_len: int) -> torch.Tensor:
        """1 on the response tokens up to and including the first end-of-text or end of the help
        request; padding (when it is not end-of-text) and everything after are 0."""
        tok = self.tokenizer
        ends = [tok.eos_token_id, tok.convert_tokens_to_ids(OFFLOAD_CLOSE)]
        return response_mask(seqs, prompt_len, ends, tok.pad_token_id)

    def _own_texts(self, seqs: torch.Tensor, prompt_len: int) -> tuple[torch.Tensor, list[str]]:
        """The response mask and each row's own response text (help request kept)."""
        mask = self._response_mask(seqs, prompt_len)
        own = mask[:, prompt_len:] > 0
        texts = [decode_keeping_specials(self.tokenizer, seqs[b, prompt_len:][own[b]])
                 for b in range(seqs.shape[0])]  # fmt: skip
        return mask, texts

    def _greedy_requests(self, prompts: list[str]) -> torch.Tensor:
        """(P,) 1 where the greedy response to each group's prompt contains the env's offload
        marker: what the policy would do at evaluation."""
        seqs, _, prompt_len = self._generate(prompts[:: self.G], sample=False)
        _, texts = self._own_texts(seqs, prompt_len)
        return torch.tensor([float(asks_cloud(t, self.marker)[0]) for t in texts])

    def collect(self) -> Rollout:
        """One step of every sub-env: the batch, its rewards as the environments return them."""
        prompts = list(self._obs["prompt"])
        start = time.perf_counter()
        seqs, attention, prompt_len = self._generate(prompts)
        greedy = self._greedy_requests(prompts) if self.greedy_probe else None
        generated = time.perf_counter()
        mask, texts = self._own_texts(seqs, prompt_len)
        actions, refused = self._batch_budget(texts)
        self._obs, env_rewards, _, _, info = self.envs.step(tuple(actions))
        self._info = info
        info = _step_outcomes(info)
        groups = self._task_groups(info)
        comps = {k: np.asarray(v, dtype=np.float64) for k, v in info["reward_components"].items()
                 if not k.startswith("_")}  # fmt: skip
        shape = (self.P, self.G)
        rewards = torch.as_tensor(np.asarray(env_rewards, dtype=np.float32)).reshape(shape)
        asked = np.asarray(info["offload_requested"], dtype=bool) | refused
        asked = torch.as_tensor(asked, dtype=torch.float32).reshape(shape)
        correct = torch.as_tensor(np.asarray(info["correct"], dtype=np.float32)).reshape(shape)
        offloaded = torch.as_tensor(comps["offloaded"], dtype=torch.float32).reshape(shape)
        self.timings = {"generate": generated - start, "scoring": time.perf_counter() - generated}
        return Rollout(seqs, attention, mask, rewards, asked, correct, offloaded, groups, texts,
                       prompt_len, greedy,
                       torch.as_tensor(refused, dtype=torch.float32).reshape(shape))  # fmt: skip

    def _task_groups(self, info: dict[str, Any]) -> list[str]:
        """The task group of each prompt, from the step's own info (it describes the task the
        step answered)."""
        groups = info.get("task_group")
        if groups is None:
            raise ValueError("the environments' info carries no task_group: the collector "
                             "needs an offload environment's info")  # fmt: skip
        return [str(groups[p * self.G]) for p in range(self.P)]

    def _batch_budget(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """The env's actions and the refused rows under the batch budget: a refused request is
        answered locally by what the response wrote before the help request."""
        refused = np.zeros(len(texts), dtype=bool)
        if self.batch_budget is None:
            return texts, refused
        asks = [asks_cloud(t, self.marker) for t in texts]
        rng = np.random.default_rng(seeding.derive(
            self.seed, self.rank * seeding.SAMPLER_RANK_STRIDE + self._calls,
            stride=seeding.GRANT_STRIDE))  # fmt: skip
        granted = grant_batch([a for a, _ in asks], self.batch_budget, rng)
        refused = np.array([a for a, _ in asks], dtype=bool) & ~granted
        actions = [p if r and p is not None else t
                   for t, (_, p), r in zip(texts, asks, refused, strict=True)]  # fmt: skip
        return actions, refused

    def state(self) -> dict[str, Any]:
        """Picklable state: the sub-environments (with the shared cloud cache), the current
        observations and info, and the sampler's call counter. Nothing of the vector env's own:
        with same-step autoreset it carries no state between steps."""
        return {
            "envs": list(self.envs.envs),
            "obs": self._obs,
            "info": self._info,
            "calls": self._calls,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a `state`: rebuild the vector env around the saved sub-environments."""
        self.envs.close()
        envs = state["envs"]
        self.envs = gym.vector.SyncVectorEnv(
            [_constant(e) for e in envs], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        )
        cloud = offload_env(envs[0]).cloud
        if not isinstance(cloud, CachedCloud):
            raise ValueError("collector state: its environments must share a CachedCloud, got "
                             f"{type(cloud).__name__}")  # fmt: skip
        self.cloud = cloud
        self._obs, self._info, self._calls = state["obs"], state["info"], state["calls"]

    def close(self) -> None:
        self.envs.close()


def _constant(env: Any) -> Any:
    """A factory that returns ``env`` itself (a restored sub-environment)."""
    return lambda: env


def _step_outcomes(info: dict[str, Any]) -> dict[str, Any]:
    """The step's own infos. With same-step autoreset, a sub-env that just finished its episode
    reports the new episode's reset info and keeps the step's outcome in ``final_info``."""
    if "final_info" not in info:
        return info
    done = np.asarray(info.get("_final_info", []), dtype=bool)
    if not done.any():
        return info
    final = info["final_info"]
    merged: dict[str, Any] = {}
    for key in ("reward_components", "offload_requested", "correct", "task_group"):
        if key == "reward_components":
            src = final.get(key, {})
            live = info.get(key, {})
            merged[key] = {
                k: np.where(done, np.asarray(src[k]), np.asarray(live.get(k, src[k])))
                for k in src
                if not k.startswith("_")
            }
        else:
            live = np.asarray(info.get(key, final[key]))
            merged[key] = np.where(done, np.asarray(final[key]), live)
    return merged


__all__ = ["HELP_REQUEST", "Rollout", "RolloutCollector"]
