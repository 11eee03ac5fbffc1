"""DA-GRPO and the GRPO family on TRL's ``GRPOTrainer``, for GPU scale.

TRL's trainer brings what GPU users already run: vLLM generation, PEFT/LoRA, DeepSpeed/FSDP,
gradient accumulation, ``accelerate launch``. It has no hook for a custom advantage, and its
maintainers' route is a subclass; `OffloadGRPOTrainer` is that subclass:

- the reward comes from this project's environments: each completion is one step of a one-task
  text-view environment (`OffloadScorer`), so grading, the sandbox, the cloud model (shared and
  cached: it answers each task once) and the budget ledger are the ones the project's own trainer
  uses; the completion is the local model's text only, so the cloud's answer is never in the loss;
- the advantage is the registered algorithm's (`offload_agents.grpo.algorithms`): DA-GRPO's
  ``A_r - lambda A_c``, GRPO's, ``collab``'s, GAPG's with its prompt filter (dropped prompts leave
  the loss and its token count) and no clip;
- lambda is held by the same dual controllers (``ascent``, ``pid``, ``price``) and updated once
  per generated batch, after its advantages, with the usage averaged over processes;
- the budget: ``soft`` algorithms have every request granted (lambda does the holding), ``none``
  have none, ``hard`` ones have at most ``floor(tau * n)`` requests of a process's batch of ``n``
  completions granted (the project's trainer caps per episode of ``num_tasks``; the rate is the
  same).

`trl_args` maps a `GRPOConfig` onto TRL's ``GRPOConfig`` (group size, prompts per step,
iterations, clip, KL, learning rate, token-level length normalisation as ``loss_type="dapo"``).
Install with ``pip install offload-gym[trl]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from offload_agents.grpo.algorithms import AlgorithmSpec
from offload_agents.grpo.config import GRPOConfig
from offload_agents.grpo.dual import DualController, make_controller
from offload_agents.slm.template import format_prompt
from offload_gym import seeding
from offload_gym.budget import grant_batch
from offload_gym.envs.config import DEFAULT_OFFLOAD_MARKER
from offload_gym.models import CachedCloud, SimulatedCloud
from offload_gym.models.generation import decode_keeping_specials
from offload_gym.protocol import asks_cloud, check_marker
from offload_gym.tasks import Task

try:
    import trl
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "offload_agents.trl needs TRL: pip install 'offload-gym[trl]' (or pip install trl)"
    ) from exc

__all__ = ["OffloadBatch", "OffloadGRPOTrainer", "OffloadScorer", "task_dataset", "trl_args"]


class OffloadBatch(NamedTuple):
    """The (P, G) outcome tensors an algorithm's advantage and filter read (the fields of
    `offload_agents.grpo.rollout.Rollout` they use)."""

    rewards: torch.Tensor
    asked: torch.Tensor
    correct: torch.Tensor
    offloaded: torch.Tensor


def task_dataset(tasks: Sequence[Task]) -> Any:
    """A ``datasets.Dataset`` of the tasks' prompts in the local model's template (column
    ``prompt``) and their positions in ``tasks`` (column ``task_index``, which `OffloadScorer`
    reads back)."""
    from datasets import Dataset

    if not tasks:
        raise ValueError("task_dataset needs at least one task")
    return Dataset.from_dict({"prompt": [format_prompt(t.prompt) for t in tasks],
                              "task_index": list(range(len(tasks)))})  # fmt: skip


def trl_args(config: GRPOConfig, output_dir: str, *, steps: int, **overrides: Any) -> Any:
    """TRL's ``GRPOConfig`` for ``config`` and ``steps`` training steps as the project's trainer
    counts them (one generated batch each, so TRL's ``max_steps`` is ``steps * num_iterations``
    optimiser steps): ``prompts_per_step`` prompts of ``group_size`` completions per generated
    batch, ``num_iterations`` passes over it, the clip, KL coefficient,
    learning rate, sampling temperature, completion length and seed; token-level length
    normalisation (``length_norm="token"``) is TRL's ``loss_type="dapo"``, the per-response one
    ``"grpo"``. ``overrides`` go to TRL unchanged (``use_vllm``, ``bf16``,
    ``gradient_accumulation_steps``, ``report_to``...)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    loss_type = {"token": "dapo", "sequence": "grpo"}[config.length_norm]
    kwargs = {
        "output_dir": output_dir,
        "max_steps": steps * config.num_iterations,
        "per_device_train_batch_size": config.prompts_per_step * config.group_size,
        "num_generations": config.group_size,
        "num_iterations": config.num_iterations,
        "epsilon": config.clip_eps,
        "beta": config.beta,
        "learning_rate": config.lr,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "temperature": config.temperature,
        "top_k": 0,
        "max_completion_length": config.max_new_tokens,
        "loss_type": loss_type,
        "seed": config.seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
    }
    kwargs.update(overrides)
    return trl.GRPOConfig(**kwargs)


@dataclass
class OffloadScorer:
    """TRL reward function: every completion is the one step of a one-task text-view
    environment over its task (``task_index`` column), through a shared cached cloud.

    ``last`` keeps the outcomes of the latest call (this process's completions, in order):
    ``rewards`` (the algorithm's), ``cloud`` (help requested), ``correct``, ``offloaded``.
    """

    tasks: Sequence[Task]
    spec: AlgorithmSpec
    config: GRPOConfig
    tokenizer: Any
    cloud_model: Any = None
    env_id: str = "OffloadStream-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    last: dict[str, np.ndarray] = field(default_factory=dict, init=False)
    _calls: int = field(default=0, init=False)
    __name__ = "offload_reward"  # TRL names reward functions by it

    def __post_init__(self) -> None:
        self.cloud = CachedCloud(self.cloud_model or SimulatedCloud(seed=self.config.seed))
        self.marker = self.env_kwargs.get("offload_marker", DEFAULT_OFFLOAD_MARKER)
        if "reward_weights" in self.env_kwargs:
            raise ValueError("env_kwargs must not set reward_weights: the algorithm's spec "
                             "gives the environment its reward weights")  # fmt: skip
        check_marker(self.tokenizer, self.marker)

    def __call__(self, prompts: list[Any], completions: list[Any], completion_ids: list[Any],
                 task_index: list[int], **kwargs: Any) -> list[float]:  # fmt: skip
        budget, mode = self.spec.env_budget(self.config.tau)
        # With their special tokens (the offload marker is one): TRL's own decoding drops them.
        texts = [decode_keeping_specials(self.tokenizer, list(ids)) for ids in completion_ids]
        cap = self.spec.batch_budget(self.config.tau)  # per batch of this process
        refused = np.zeros(len(texts), dtype=bool)
        if cap is not None:
            asks = [asks_cloud(t, self.marker)[0] for t in texts]
            rng = np.random.default_rng(seeding.derive(self.config.seed, self._calls,
                                                       stride=seeding.GRANT_STRIDE))  # fmt: skip
            refused = np.asarray(asks, dtype=bool) & ~grant_batch(asks, cap, rng)
        self._calls += 1
        weights = self.spec.reward_weights(self.config)
        rows = []
        for text, index, no in zip(texts, task_index, refused, strict=True):
            b, m = (0.0, "hard") if no else (budget, mode)
            env = gym.make(self.env_id, tasks=[self.tasks[int(index)]], budget=b, budget_mode=m,
                           cloud_model=self.cloud, reward_weights=weights,
                           **self.env_kwargs)  # fmt: skip
            env.reset(seed=self.config.seed)
            _, reward, _, _, info = env.step(text)
            env.close()
            rows.append((reward, info["offload_requested"], info["correct"],
                         info["reward_components"]["offloaded"]))  # fmt: skip
        arrays = np.asarray(rows, dtype=np.float64).reshape(len(texts), 4)
        self.last = dict(zip(("rewards", "asked", "correct", "offloaded"), arrays.T, strict=True))
        return self.last["rewards"].tolist()


class OffloadGRPOTrainer(trl.GRPOTrainer):
    """TRL's ``GRPOTrainer`` running one of this project's algorithms (see the module doc).

    Args:
        model: A model or its path, as TRL takes it.
        offload_config: The algorithm and its settings (`GRPOConfig`; ``tau``, the dual
            controller, ``lambda0``, the reward weights...).
        tasks: The training tasks; the dataset is `task_dataset` of them unless
            ``train_dataset`` is given (it needs a ``task_index`` column into ``tasks``).
        args: TRL's ``GRPOConfig`` (`trl_args` builds one from ``offload_config``).
        cloud_model: The cloud (default: the simulated cloud seeded by ``offload_config.seed``).
        env_id: The text-view environment each completion is scored in.
        env_kwargs: More environment arguments (e.g. ``offload_marker``).
        **kwargs: Passed to TRL (``processing_class``, ``peft_config``, ``callbacks``...).

    ``history`` holds one record per generated batch: ``lambda`` (the one its advantages used),
    ``cloud_requests`` (J_c over its completions, averaged over processes), ``cloud_usage``
    (granted), ``reward``, ``accuracy`` and ``kept_prompts``; the same values are logged to TRL's
    metrics as ``offload/...``, so they reach TensorBoard or W&B with ``report_to``.
    """

    def __init__(
        self,
        model: Any,
        *,
        offload_config: GRPOConfig,
        tasks: Sequence[Task],
        args: Any,
        train_dataset: Any = None,
        cloud_model: Any = None,
        env_id: str = "OffloadStream-v0",
        env_kwargs: dict[str, Any] | None = None,
        processing_class: Any = None,
        **kwargs: Any,
    ) -> None:
        if args.num_generations != offload_config.group_size:
            raise ValueError(
                f"args.num_generations ({args.num_generations}) must equal the group size "
                f"of offload_config ({offload_config.group_size}); trl_args sets both"
            )
        self.offload_config = offload_config
        self.spec = offload_config.spec
        self.controller: DualController | None = (
            make_controller(offload_config) if self.spec.dual else None
        )
        self._fixed_lam = offload_config.lambda0
        self.history: list[dict[str, Any]] = []
        if processing_class is None:
            from transformers import AutoTokenizer

            processing_class = AutoTokenizer.from_pretrained(
                model if isinstance(model, str) else model.config._name_or_path
            )
        self.scorer = OffloadScorer(tasks, self.spec, offload_config, processing_class,
                                    cloud_model=cloud_model, env_id=env_id,
                                    env_kwargs=dict(env_kwargs or {}))  # fmt: skip
        super().__init__(
            model=model,
            reward_funcs=[self.scorer],  # type: ignore[list-item]
            args=args,
            train_dataset=train_dataset if train_dataset is not None else task_dataset(tasks),
            processing_class=processing_class,
            **kwargs,
        )
        if not self.spec.clip:  # GAPG: the plain ratio
            self.epsilon_low = self.epsilon_high = math.inf

    @property
    def lam(self) -> float:
        """The current dual variable (``lambda0`` for algorithms without a dual controller)."""
        return self.controller.lam if self.controller is not None else self._fixed_lam

    def offload_advantages(self, batch: OffloadBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(advantages (P, G), kept prompts (P,))`` of the algorithm on ``batch``: the
        controller observes the batch first (the price controller prices it), then the
        advantage uses the current lambda."""
        if self.controller is not None:
            self.controller.observe(batch.rewards, batch.asked)
        adv = self.spec.advantage(batch, self.offload_config, self.lam)
        keep = (torch.ones(batch.rewards.shape[0]) if self.spec.prompt_filter is None
                else self.spec.prompt_filter(batch, self.offload_config).float())  # fmt: skip
        return adv, keep

    def dual_step(self, usage: float) -> None:
        """The dual update after a batch's advantages (no-op without a controller)."""
        if self.controller is not None:
            self.controller.update(usage)

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        if self.model is None or not self.model.training:
            return out
        last = self.scorer.last
        device = self.accelerator.device
        local = torch.tensor(np.stack([last[k] for k in ("rewards", "asked", "correct",
                                                          "offloaded")], axis=1),
                             dtype=torch.float32, device=device)  # fmt: skip
        every = self.accelerator.gather(local).cpu()  # (N, 4), the processes' rows in order
        g = int(self.num_generations or 1)
        batch = OffloadBatch(*(every[:, j].reshape(-1, g) for j in range(4)))
        adv, keep = self.offload_advantages(batch)
        lam = self.lam  # the lambda these advantages used (before the dual step)
        n = len(inputs)
        part = slice(self.accelerator.process_index * n, (self.accelerator.process_index + 1) * n)
        out["advantages"] = adv.reshape(-1)[part].to(device)
        if self.spec.prompt_filter is not None:
            kept = keep.repeat_interleave(g)[part].to(device)
            out["completion_mask"] = out["completion_mask"] * kept[:, None].to(
                out["completion_mask"].dtype
            )
            count = self.accelerator.gather(out["completion_mask"].sum()).sum()
            out["num_items_in_batch"] = count
        usage = float(batch.asked.mean())
        record = {
            "step": len(self.history) + 1,
            "algorithm": self.offload_config.algorithm,
            "lambda": lam,
            "cloud_requests": usage,
            "cloud_usage": float(batch.offloaded.mean()),
            "reward": float(batch.rewards.mean()),
            "accuracy": float(batch.correct.mean()),
            "kept_prompts": float(keep.mean()),
        }
        self.dual_step(usage)
        self.history.append(record)
        for key in ("lambda", "cloud_requests", "cloud_usage", "accuracy", "kept_prompts"):
            self._metrics["train"][f"offload/{key}"].append(record[key])
        return out
