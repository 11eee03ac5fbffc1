"""The GRPO-family trainer: it only orchestrates. Rollouts come from `RolloutCollector`, the
maths from `offload_agents.grpo.functional`, and the algorithm from `GRPOConfig`."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import time
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

from offload_agents.grpo import functional as F
from offload_agents.grpo.config import GRPOConfig
from offload_agents.grpo.rollout import Rollout, RolloutCollector


class GRPOTrainer:
    """Train a causal LM on a text-view offload environment with one of the GRPO family.

    Args:
        model: A Hugging Face causal LM (the local model).
        tokenizer: Its tokenizer (with a pad token and the offload marker).
        config: The algorithm and its hyper-parameters.
        env_kwargs: Extra arguments of the environment (e.g. ``switch_point``).
        log_path: Optional JSONL file; one line per training step, flushed as it goes.
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
    ) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.raw_model = model
        self.accelerator = accelerator
        self.rank = accelerator.process_index if accelerator is not None else 0
        cfg = config
        kwargs = {
            "num_tasks": cfg.num_tasks,
            "budget": cfg.budget,
            "budget_mode": "soft" if cfg.algorithm == "dagrpo" else "hard",
            "task_seed": cfg.seed,
            **(env_kwargs or {}),
        }
        self.collector = RolloutCollector(
            model,
            tokenizer,
            env_id=cfg.env_id,
            prompts=cfg.prompts_per_step,
            group_size=cfg.group_size,
            env_kwargs=kwargs,
            max_new_tokens=cfg.max_new_tokens,
            min_new_tokens=cfg.min_new_tokens,
            temperature=cfg.temperature,
            seed=cfg.seed,
            rank=self.rank,
        )
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
        self.reference = None
        if cfg.beta > 0:
            self.reference = copy.deepcopy(model).eval()
            for p in self.reference.parameters():
                p.requires_grad_(False)
        if accelerator is not None:
            self.model, self.optimizer = accelerator.prepare(model, self.optimizer)
        self.lam = cfg.lambda0
        self._update_timings: dict[str, float] = {}
        self.step_count = 0
        self.history: list[dict[str, Any]] = []
        self.timings: list[dict[str, float]] = []
        """Per step, seconds in ``generate``, ``scoring`` (env step: grading, cloud, rewards),
        ``forward_backward``, ``optimizer``, ``other`` and ``total`` (kept apart from
        `history`, which a resumed run reproduces exactly)."""
        self.log_path = Path(log_path) if log_path is not None else None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ algorithm pieces
    def rewards(self, components: dict[str, np.ndarray]) -> np.ndarray:
        """The algorithm's reward from the environment's reward parts."""
        cfg = self.config
        if cfg.algorithm in ("collab", "gapg"):
            return (
                cfg.alpha_a * components["correct_local"]
                + cfg.alpha_c * components["correct_cloud"]
            )
        return components["correct"]

    def advantages(self, batch: Rollout) -> torch.Tensor:
        """(P, G) advantages for the batch under the configured algorithm."""
        cfg = self.config
        if cfg.algorithm == "dagrpo":
            return F.dual_advantage(batch.rewards, batch.cloud, self.lam)
        adv = F.group_advantages(batch.rewards, normalize=cfg.normalize)
        if cfg.algorithm == "gapg":
            adv = adv * cfg.group_size / (cfg.group_size - 1)
            adv = adv * self._gapg_keep(batch)[:, None]
        return adv

    def _gapg_keep(self, batch: Rollout) -> torch.Tensor:
        """GAPG's prompt filter: prompts with mixed outcomes, plus up to rho * |mixed| prompts
        where no local rollout is right but the cloud is."""
        r = batch.rewards
        mixed = (r.max(dim=1).values != r.min(dim=1).values).float()
        local_right = ((batch.correct > 0) & (batch.offloaded == 0)).any(dim=1)
        cloud_right = ((batch.correct > 0) & (batch.offloaded > 0)).any(dim=1)
        rescue = (~local_right & cloud_right).float() * (1 - mixed)
        budget = int(self.config.gapg_rho * mixed.sum().item())
        keep = mixed.clone()
        for i in torch.nonzero(rescue).flatten().tolist()[:budget]:
            keep[i] = 1.0
        return keep

    # ------------------------------------------------------------------ one step
    def _token_logp(self, model: Any, batch: Rollout) -> torch.Tensor:
        logits = model(input_ids=batch.sequences, attention_mask=batch.attention_mask).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        return logp.gather(-1, batch.sequences[:, 1:, None]).squeeze(-1)  # (B, T-1)

    def step(self) -> dict[str, Any]:
        """Collect one batch from the environments and update on it."""
        start = time.perf_counter()
        record = self.update(self.collector.collect(self.rewards))
        split = {**self.collector.timings, **self._update_timings}
        split["total"] = time.perf_counter() - start
        split["other"] = split["total"] - sum(v for k, v in split.items() if k != "total")
        self.timings.append(split)
        return record

    def update(self, batch: Rollout) -> dict[str, Any]:
        """One policy-gradient step on ``batch``, then the dual update (DA-GRPO)."""
        cfg = self.config
        adv = self.advantages(batch).reshape(-1)  # (B,)
        mask = batch.response_mask[:, 1:]
        self.model.train()
        t0 = time.perf_counter()
        # Dropout draws from torch's global RNG: fork it, seeded by (seed, step), so training is
        # reproducible and resumable and the caller's RNG state is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed * 7919 + self.step_count)
            logp = self._token_logp(self.model, batch)
            ref = None
            if self.reference is not None:
                with torch.no_grad():
                    ref = self._token_logp(self.reference, batch)
            loss = F.policy_loss(
                logp,
                logp.detach(),
                adv,
                mask,
                clip_eps=cfg.effective_clip,
                ref_logp=ref,
                beta=cfg.beta,
                length_norm=cfg.length_norm,
            )
            self.optimizer.zero_grad()
            if self.accelerator is not None:
                self.accelerator.backward(loss)
                grad_norm = float(self.accelerator.clip_grad_norm_(self.model.parameters(), 1.0))
            else:
                loss.backward()
                grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0))
            t1 = time.perf_counter()
            self.optimizer.step()
        self._update_timings = {"forward_backward": t1 - t0, "optimizer": time.perf_counter() - t1}
        usage = float(batch.cloud.mean())
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            usage = float(self.accelerator.reduce(torch.tensor(usage), reduction="mean"))
        lam_before = self.lam
        if cfg.algorithm == "dagrpo":
            self.lam = F.dual_update(self.lam, usage, cfg.tau, cfg.eta_lambda)
        self.step_count += 1
        record = {
            "step": self.step_count,
            "algorithm": cfg.algorithm,
            "task_group": max(set(batch.groups), key=batch.groups.count),
            "loss": float(loss.detach()),
            "reward": float(batch.rewards.mean()),
            "accuracy": float(batch.correct.mean()),
            "cloud_requests": usage,
            "cloud_usage": float(batch.offloaded.mean()),
            "lambda": lam_before,
            "grad_norm": grad_norm,
            "response_tokens": float(mask.sum() / mask.shape[0]),
        }
        self.history.append(record)
        if self.log_path is not None and self.rank == 0:
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
                fh.flush()
        return record

    def train(self, steps: int, *, progress: bool = True) -> list[dict[str, Any]]:
        """Run ``steps`` training steps (a progress bar shows reward, usage and lambda)."""
        from tqdm.auto import tqdm

        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        bar = tqdm(range(steps), desc=self.config.algorithm, disable=not progress, leave=False)
        out = []
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
            "step": self.step_count,
            "history": self.history,
            "collector": pickle.dumps(self.collector.state()),
        }
        tmp = out.with_suffix(out.suffix + ".tmp")
        torch.save(state, tmp)
        tmp.replace(out)
        return out

    def load_checkpoint(self, path: str | PathLike[str]) -> None:
        """Restore a checkpoint written by `save_checkpoint` for the same configuration."""
        # Our own checkpoint: it holds pickled environment state, so it is loaded in full.
        state = torch.load(self._rank_path(path), map_location="cpu", weights_only=False)
        saved = state["config"]
        if saved != dataclasses.asdict(self.config):
            diff = {k: (saved.get(k), v) for k, v in dataclasses.asdict(self.config).items()
                    if saved.get(k) != v}  # fmt: skip
            raise ValueError(f"checkpoint config differs from this trainer's: {diff}")
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lam = state["lambda"]
        self.step_count = state["step"]
        self.history = list(state["history"])
        self.collector.restore(pickle.loads(state["collector"]))

    def _rank_path(self, path: str | PathLike[str]) -> Path:
        """Each process of a distributed run keeps its own environments: one file per rank."""
        p = Path(path)
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            return p.with_name(f"{p.stem}.rank{self.rank}{p.suffix}")
        return p

    def close(self) -> None:
        self.collector.close()
