"""The GRPO-family trainer: it only orchestrates. Rollouts come from `RolloutCollector`, the
maths from `offload_agents.grpo.functional`, the algorithm from its registered spec
(`offload_agents.grpo.algorithms`) and lambda from a dual controller
(`offload_agents.grpo.dual`). The trainer never asks which algorithm it runs."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections import Counter
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from offload_agents._torch import torch_threads
from offload_agents.grpo import functional as F
from offload_agents.grpo.adapters import add_lora
from offload_agents.grpo.anchor import AnchorSource, anchor_loss, encode_anchor
from offload_agents.grpo.checkpoint import (
    LIVE_CLOUD,
    dump_env_state,
    load_env_state,
    read_checkpoint,
    write_checkpoint,
)
from offload_agents.grpo.config import GRPOConfig
from offload_agents.grpo.dual import DualController, make_controller
from offload_agents.grpo.logprobs import LogpSettings, token_logp
from offload_agents.grpo.rollout import Rollout, RolloutCollector
from offload_agents.grpo.tb_log import TENSORBOARD_SCALARS, tensorboard_writer
from offload_gym.models.generation import context_window


class GRPOTrainer:
    """Train a causal LM on a text-view offload environment with one of the GRPO family.

    Args:
        model: A Hugging Face causal LM (the local model).
        tokenizer: Its tokenizer (with a pad token and the offload marker).
        config: The algorithm and its hyper-parameters.
        env_kwargs: Extra arguments of the environment (e.g. ``switch_point``).
        log_path: Optional JSONL file; one line per training step, flushed as it goes.
        tensorboard_dir: Optional TensorBoard log directory: every step's lambda, training
            requests and granted usage, reward, accuracy, loss, gradient norm, clip fraction and
            kept prompts as ``offload/...`` scalars, flushed each step (needs ``tensorboard``).
        anchor: The answer anchor's source (`offload_agents.grpo.anchor.AnchorSource`, e.g. the
            kit's `offload_agents.slm.skill.WorkedAnswers`), needed when
            ``config.anchor_coef > 0``.
        accelerator: An ``accelerate.Accelerator`` for data-parallel training under
            ``accelerate launch``: each process collects its own prompts (its own seeds), the
            gradients are averaged across processes, and the dual update uses the usage averaged
            across processes. Logs are written by the main process.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: GRPOConfig,
        *,
        env_kwargs: dict[str, Any] | None = None,
        log_path: str | PathLike[str] | None = None,
        accelerator: Any | None = None,
        tensorboard_dir: str | PathLike[str] | None = None,
        anchor: AnchorSource | None = None,
    ) -> None:
        if config.anchor_coef > 0 and anchor is None:
            raise ValueError("anchor_coef > 0 needs an anchor source: GRPOTrainer(anchor=...), e.g."
                             " offload_agents.slm.skill.WorkedAnswers for a kit model")  # fmt: skip
        self.anchor = anchor
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.raw_model = model
        self.accelerator = accelerator
        self.rank = accelerator.process_index if accelerator is not None else 0
        cfg = config
        self.spec = cfg.spec
        self.collector = self._collector(env_kwargs)
        self.reference = None
        if cfg.beta > 0:  # the reference is the model as given (before any adapter)
            self.reference = copy.deepcopy(model).eval()
            for p in self.reference.parameters():
                p.requires_grad_(False)
        if cfg.lora_rank > 0:
            add_lora(model, cfg.lora_rank, cfg.lora_alpha)
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=cfg.lr)
        if accelerator is not None:
            self.model, self.optimizer = accelerator.prepare(model, self.optimizer)
        self.controller: DualController | None = make_controller(cfg) if self.spec.dual else None
        self._lam = cfg.lambda0
        self._logp_settings = LogpSettings.for_model(
            self.raw_model, temperature=cfg.temperature, chunk=cfg.update_chunk,
            group_size=cfg.group_size, share_prompts=cfg.share_prompts)  # fmt: skip
        self._update_timings: dict[str, float] = {}
        self._anchor_loss: float | None = None
        self.step_count = 0
        self.history: list[dict[str, Any]] = []
        self.timings: list[dict[str, float]] = []
        """Per step, seconds in ``generate``, ``scoring`` (env step: grading, cloud, rewards),
        ``forward_backward``, ``optimizer``, ``other`` and ``total`` (kept apart from
        `history`, which a resumed run reproduces exactly)."""
        self.log_path = Path(log_path) if log_path is not None else None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = tensorboard_writer(tensorboard_dir) if self.rank == 0 else None

    def _collector(self, env_kwargs: dict[str, Any] | None) -> RolloutCollector:
        """The rollout collector: P * G sub-environments under the algorithm's budget."""
        cfg = self.config
        budget, budget_mode = self.spec.env_budget(cfg.tau)
        if "reward_weights" in (env_kwargs or {}):
            raise ValueError("env_kwargs must not set reward_weights: the algorithm's spec "
                             "gives the environment its reward weights")  # fmt: skip
        kwargs = {"num_tasks": cfg.num_tasks, "budget": budget, "budget_mode": budget_mode,
                  "task_seed": cfg.seed, "reward_weights": self.spec.reward_weights(cfg),
                  **(env_kwargs or {})}  # fmt: skip
        return RolloutCollector(
            self.model, self.tokenizer, env_id=cfg.env_id, prompts=cfg.prompts_per_step,
            group_size=cfg.group_size, env_kwargs=kwargs, max_new_tokens=cfg.max_new_tokens,
            min_new_tokens=cfg.min_new_tokens, temperature=cfg.temperature, seed=cfg.seed,
            rank=self.rank, greedy_probe=cfg.budget_signal == "greedy",
            batch_budget=self.spec.batch_budget(cfg.tau), share_prompts=cfg.share_prompts,
        )  # fmt: skip

    @property
    def lam(self) -> float:
        """The current dual variable (``lambda0`` for algorithms without a dual controller)."""
        return self.controller.lam if self.controller is not None else self._lam

    # ------------------------------------------------------------------ algorithm pieces
    def advantages(self, batch: Rollout) -> torch.Tensor:
        """(P, G) advantages for the batch under the configured algorithm."""
        return self.spec.advantage(batch, self.config, self.lam)

    def kept_prompts(self, batch: Rollout) -> torch.Tensor:
        """(P,) 1 for the prompts the algorithm's filter keeps (all without a filter)."""
        if self.spec.prompt_filter is None:
            return torch.ones(batch.rewards.shape[0])
        return self.spec.prompt_filter(batch, self.config).float()

    # ------------------------------------------------------------------ one step
    def _token_logp(self, model: Any, batch: Rollout, start: int) -> torch.Tensor:
        """(B, T - start) log-probabilities of the tokens at positions ``start..T-1`` under
        ``model`` at the sampling temperature (0 past each row's response), each group's
        prompt run once (`offload_agents.grpo.logprobs.token_logp`)."""
        return token_logp(model, batch.sequences, batch.attention_mask, batch.response_mask,
                          start, self._logp_settings)  # fmt: skip

    def step(self) -> dict[str, Any]:
        """Collect one batch from the environments and update on it."""
        start = time.perf_counter()
        record = self.update(self.collector.collect())
        split = {**self.collector.timings, **self._update_timings}
        split["total"] = time.perf_counter() - start
        split["other"] = split["total"] - sum(v for k, v in split.items() if k != "total")
        self.timings.append(split)
        return record

    def _backward_step(self, loss: torch.Tensor) -> tuple[float, float]:
        """Backward, clip, optimizer step; returns the gradient norm and the optimizer's
        seconds."""
        self.optimizer.zero_grad()
        if self.accelerator is not None:
            self.accelerator.backward(loss)
            norm = self.accelerator.clip_grad_norm_(self.model.parameters(), 1.0)
        else:
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        t = time.perf_counter()
        self.optimizer.step()
        return float(norm), time.perf_counter() - t

    def update(self, batch: Rollout) -> dict[str, Any]:
        """``num_iterations`` policy-gradient passes over ``batch`` (dropout off; behaviour
        log-probs kept from before the first pass), then the dual update."""
        cfg = self.config
        if self.controller is not None:  # a controller may price the batch before its advantages
            self.controller.observe(batch.rewards, batch.asked)
        keep = self.kept_prompts(batch)  # (P,): dropped prompts leave the denominators too
        losses, grad_norm, clipped = self._policy_passes(batch, keep)
        greedy = None if batch.greedy_asked is None else float(batch.greedy_asked.mean())
        usage = float(batch.asked.mean())
        signal = greedy if cfg.budget_signal == "greedy" and greedy is not None else usage
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            usage, signal = (float(self.accelerator.reduce(torch.tensor(v), reduction="mean"))
                             for v in (usage, signal))  # fmt: skip
        lam_before = self.lam
        if self.controller is not None:
            self.controller.update(signal)
        self.step_count += 1
        record = {
            "step": self.step_count,
            "algorithm": cfg.algorithm,
            "task_group": _main_group(batch),
            "loss": losses[0],
            "reward": float(batch.rewards.mean()),
            "accuracy": float(batch.correct.mean()),
            "cloud_requests": usage,
            "cloud_usage": float(batch.offloaded.mean()),
            "cloud_refused": 0.0 if batch.refused is None else float(batch.refused.mean()),
            "greedy_requests": greedy,
            "lambda": lam_before,
            "grad_norm": grad_norm,
            "clip_fraction": clipped,
            "kept_prompts": float(keep.mean()),
            "anchor_loss": self._anchor_loss,
            "response_tokens": float(batch.response_mask.sum() / batch.response_mask.shape[0]),
        }
        self._log(record)
        return record

    def _policy_passes(
        self, batch: Rollout, keep: torch.Tensor
    ) -> tuple[list[float], float, float]:
        """The optimisation passes over one batch: the losses, the last gradient norm and the
        share of clipped tokens in the last pass (timings in ``_update_timings``)."""
        cfg = self.config
        adv = self.advantages(batch).reshape(-1)  # (B,)
        start = max(1, batch.prompt_len)
        mask = batch.response_mask[:, start:] * keep.repeat_interleave(cfg.group_size)[:, None]
        clip = cfg.clip_eps if self.spec.clip else math.inf
        self.model.eval()  # dropout off in the policy update, as TRL
        t0 = time.perf_counter()
        with torch.no_grad():
            ref = None if self.reference is None else self._token_logp(self.reference, batch, start)
        losses, clipped, opt_time, grad_norm = [], 0.0, 0.0, 0.0
        old = torch.empty(0)
        anchor = self._anchor_rows(batch)
        self._anchor_loss = None
        for i in range(cfg.num_iterations):
            logp = self._token_logp(self.model, batch, start)
            if i == 0:  # the behaviour policy: the model before any update (no extra forward)
                old = logp.detach()
            loss = F.policy_loss(logp, old, adv, mask, clip_eps=clip, ref_logp=ref,
                                 beta=cfg.beta, length_norm=cfg.length_norm)  # fmt: skip
            if anchor is not None:
                ce = anchor_loss(self.model, anchor, cfg.anchor_chunk)
                if i == 0:  # the first pass's (the model the step's batch was sampled from)
                    self._anchor_loss = float(ce.detach())
                loss = loss + cfg.anchor_coef * ce
            grad_norm, seconds = self._backward_step(loss)
            opt_time += seconds
            losses.append(float(loss.detach()))
            ratio = torch.exp(logp.detach() - old)
            clipped = float(F.masked_mean(((ratio - 1).abs() > clip).float(), mask))
        total = time.perf_counter() - t0
        self._update_timings = {"forward_backward": total - opt_time, "optimizer": opt_time}
        return losses, grad_norm, clipped

    def _anchor_rows(self, batch: Rollout) -> dict[str, torch.Tensor] | None:
        """The step's anchor rows, encoded (None without an anchor): drawn for the batch's
        task group, deterministic by the step index (and the process: each process of a
        distributed run draws its own rows)."""
        if self.anchor is None or self.config.anchor_coef <= 0:
            return None
        world = self.accelerator.num_processes if self.accelerator is not None else 1
        index = self.step_count * world + self.rank
        rows = self.anchor(_main_group(batch), self.config.anchor_rows, index)
        return encode_anchor(self.tokenizer, rows, context_window(self.raw_model) or 2048)

    def _log(self, record: dict[str, Any]) -> None:
        """Keep a step's record; write it to the JSONL log and TensorBoard, flushed."""
        self.history.append(record)
        if self.log_path is not None and self.rank == 0:
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
                fh.flush()
        if self._tb is not None:
            for key in TENSORBOARD_SCALARS:
                if record.get(key) is not None:  # greedy_requests only where the probe ran
                    self._tb.add_scalar(f"offload/{key}", record[key], self.step_count)
            self._tb.flush()

    def train(
        self, steps: int, *, progress: bool = True, desc: str | None = None
    ) -> list[dict[str, Any]]:
        """Run ``steps`` training steps (a progress bar, labelled ``desc`` or the algorithm's
        name, shows reward, usage and lambda)."""
        from tqdm.auto import tqdm

        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        label = desc or self.config.algorithm
        bar = tqdm(range(steps), desc=label, disable=not progress, leave=False)
        out = []
        with torch_threads(self.config.threads):
            for _ in bar:
                rec = self.step()
                out.append(rec)
                bar.set_postfix(reward=f"{rec['reward']:.2f}", usage=f"{rec['cloud_requests']:.2f}",
                                lam=f"{rec['lambda']:.3f}")  # fmt: skip
        return out

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str | PathLike[str]) -> Path:
        """Save everything a resumed run needs to continue exactly: model, optimizer, lambda,
        step, history, the sampler's counter and the environments' states (their generators,
        episodes, ledgers and the shared cloud cache). Written atomically."""
        out = self._rank_path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "config": dataclasses.asdict(self.config),
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lambda": self.lam,
            "dual": None if self.controller is None else self.controller.state_dict(),
            "step": self.step_count,
            "history": self.history,
            "collector": dump_env_state(self.collector.state(), self._live_objects()),
        }
        return write_checkpoint(out, state)

    def load_checkpoint(self, path: str | PathLike[str], *, trusted: bool = False) -> None:
        """Restore a checkpoint written by `save_checkpoint` for the same configuration.
        Loading runs no code from the file (see `read_checkpoint`); ``trusted=True`` loads
        environment state holding other classes (your own cloud model) with plain pickle."""
        state = read_checkpoint(self._rank_path(path))
        saved = state["config"]
        if saved != dataclasses.asdict(self.config):
            diff = {k: (saved.get(k), v) for k, v in dataclasses.asdict(self.config).items()
                    if saved.get(k) != v}  # fmt: skip
            raise ValueError(f"checkpoint config differs from this trainer's: {diff}")
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.controller is not None:
            self.controller.load_state_dict(state["dual"])
        if not isinstance(state["step"], int) or state["step"] < 0:
            raise ValueError(f"checkpoint {path}: step must be an int >= 0, got {state['step']!r}")
        self.step_count = state["step"]
        self.history = list(state["history"])
        self.collector.restore(load_env_state(state["collector"], trusted=trusted,
                                              live=self._live_objects()))  # fmt: skip

    def _live_objects(self) -> dict[str, Any]:
        """What a checkpoint refers to instead of holding: the cloud model behind the shared
        cache (a network client, its credentials, a loaded LLM) is this trainer's own, passed
        back in on load, never rebuilt from the file."""
        return {LIVE_CLOUD: self.collector.cloud.cloud}

    def _rank_path(self, path: str | PathLike[str]) -> Path:
        """Each process of a distributed run keeps its own environments: one file per rank."""
        p = Path(path)
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            return p.with_name(f"{p.stem}.rank{self.rank}{p.suffix}")
        return p

    def close(self) -> None:
        self.collector.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _main_group(batch: Rollout) -> str:
    """The task group of most of the batch's prompts (the first of them on a tie)."""
    return Counter(batch.groups).most_common(1)[0][0]
