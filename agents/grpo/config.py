"""Configuration of the GRPO-family trainer; the algorithms differ only in these fields."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from offload_gym._validation import require_ints

Algorithm = Literal["dagrpo", "grpo", "collab", "gapg"]
ALGORITHMS = ("dagrpo", "grpo", "collab", "gapg")


@dataclass
class GRPOConfig:
    """One trainer, four algorithms.

    Attributes:
        algorithm: ``"dagrpo"`` (A_r - lambda A_c with the dual update), ``"grpo"`` (task tuning
            only: std-normalised advantages, no cloud), ``"collab"`` (Dr. GRPO with GAPG's fixed
            hierarchical reward alpha_a / alpha_c), ``"gapg"`` (that reward, mean-only advantages
            scaled by 1/(G-1), no clip, prompt filtering, hard budget cap).
        env_id: Text-view environment to train on.
        num_tasks: Tasks per episode of the stream.
        group_size: G, responses sampled per prompt.
        prompts_per_step: P, prompts (task groups) per training step.
        max_new_tokens: Longest response.
        min_new_tokens: Shortest response (end-of-text is suppressed before it); 0 lets the
            model stop at once. Benchmarks set it to ``max_new_tokens`` to force equal lengths.
        temperature: Sampling temperature.
        lr: AdamW learning rate.
        clip_eps: PPO clip range (ignored by GAPG, which does not clip).
        beta: Weight of the k3 KL to the initial policy (0 disables the reference model).
        tau: Cloud budget: target usage (dagrpo) or hard cap (gapg, collab).
        lambda0: Initial dual variable (dagrpo).
        eta_lambda: Dual step size (dagrpo).
        alpha_a: Reward of a correct local answer (collab, gapg).
        alpha_c: Reward of a correct cloud-completed answer (collab, gapg).
        gapg_rho: GAPG keeps up to rho * |mixed| prompts where no local rollout is right but the
            cloud is.
        seed: Seeds the stream, the sampling and the initialisation.
    """

    algorithm: Algorithm = "dagrpo"
    env_id: str = "OffloadStream-v0"
    num_tasks: int = 100
    group_size: int = 8
    prompts_per_step: int = 4
    max_new_tokens: int = 64
    min_new_tokens: int = 0
    temperature: float = 1.0
    lr: float = 1e-4
    clip_eps: float = 0.2
    beta: float = 0.0
    tau: float = 0.3
    lambda0: float = 0.5
    eta_lambda: float = 0.01
    alpha_a: float = 1.0
    alpha_c: float = 0.4
    gapg_rho: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        require_ints(self, ("num_tasks", "group_size", "prompts_per_step", "max_new_tokens"))
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens must be in [0, max_new_tokens={self.max_new_tokens}], "
                f"got {self.min_new_tokens!r}"
            )
        if self.group_size < 2:
            raise ValueError("group_size must be >= 2: advantages are relative within a group")
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {self.tau}")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("clip_eps", "beta", "lambda0", "eta_lambda", "gapg_rho"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 0 <= self.alpha_c <= self.alpha_a:
            raise ValueError("the hierarchical reward needs 0 <= alpha_c <= alpha_a")

    # The pieces each algorithm plugs in --------------------------------------------------------
    @property
    def uses_cloud(self) -> bool:
        return self.algorithm != "grpo"

    @property
    def budget(self) -> float:
        """The env's call budget: none for grpo; soft (lambda does the holding) for dagrpo."""
        if self.algorithm == "grpo":
            return 0.0
        return 1.0 if self.algorithm == "dagrpo" else self.tau

    @property
    def normalize(self) -> Literal["std", "none"]:
        return "std" if self.algorithm == "grpo" else "none"

    @property
    def length_norm(self) -> Literal["sequence", "token"]:
        return "sequence" if self.algorithm in ("grpo", "dagrpo") else "token"

    @property
    def effective_clip(self) -> float:
        return math.inf if self.algorithm == "gapg" else self.clip_eps
