"""The GRPO family as small specs registered by name; the trainer only orchestrates.

An `AlgorithmSpec` says what differs between the algorithms: the environment's reward weights
(the environment computes the reward; the trainer never recomputes it), the advantage, the
budget the environment enforces while training, whether the PPO clip applies, an optional
prompt filter, and whether a dual controller runs. A new algorithm is a new spec passed to
`register_algorithm`, with no edit to the trainer.

Built in:

- ``dagrpo``: reward = correctness; A = A_r - lambda A_c (mean-centred, no std); soft budget (every
  request granted: lambda does the holding); clip; dual controller (``GRPOConfig.dual``).
- ``grpo``: task tuning only: reward = correctness, std-normalised advantages, no cloud.
- ``collab``: collaboration-aware tuning: Dr. GRPO (mean-centred) with GAPG's fixed hierarchical
  reward alpha_a / alpha_c, soft budget as DA-GRPO (no paper gives it a cap; its usage is free to
  drift, which is GAPG's observation about fixed shaping), clip.
- ``gapg``: the hierarchical reward, mean-centred advantages scaled by G/(G-1), no clip, GAPG's
  prompt filter (dropped prompts leave the batch and the loss's denominators), hard budget per
  training batch (GAPG's paper: calls beyond the 30% budget are answered locally).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import torch

from offload_agents.grpo import functional as F
from offload_agents.grpo.config import GRPOConfig

BudgetMode = Literal["none", "soft", "hard"]


class OutcomeBatch(Protocol):
    """What an algorithm reads of a batch: (P, G) tensors built from the environments'
    outputs (`offload_agents.grpo.rollout.Rollout` in the project's trainer,
    `offload_agents.trl.OffloadBatch` under TRL)."""

    @property
    def rewards(self) -> torch.Tensor: ...  # the environments' rewards
    @property
    def asked(self) -> torch.Tensor: ...  # 1 where the response asked for the cloud
    @property
    def correct(self) -> torch.Tensor: ...  # 1 where the final answer was right
    @property
    def offloaded(self) -> torch.Tensor: ...  # 1 where the cloud answered


WeightsFn = Callable[[GRPOConfig], dict[str, float]]
AdvantageFn = Callable[[OutcomeBatch, GRPOConfig, float], torch.Tensor]
FilterFn = Callable[[OutcomeBatch, GRPOConfig], torch.Tensor]


@dataclass(frozen=True)
class AlgorithmSpec:
    """One algorithm of the family.

    Attributes:
        name: Registry name (``GRPOConfig.algorithm``).
        reward_weights: ``reward_weights(config) -> {part: weight}``: the environment's
            ``reward_weights`` while training (`offload_gym.envs.reward.REWARD_COMPONENTS`), so
            the reward each step returns is the algorithm's.
        advantage: ``advantage(batch, config, lam) -> (P, G)``.
        budget_mode: ``"none"`` (no cloud: budget 0), ``"soft"`` (every request granted) or
            ``"hard"`` (per training batch, requests beyond ``floor(tau * B)`` are answered
            locally, which requests drawn at random: GAPG's "calls beyond the budget are
            answered locally").
        clip: Whether the PPO clip applies (``False``: the plain ratio, as GAPG).
        prompt_filter: Optional ``filter(batch, config) -> (P,)`` 0/1 mask of kept prompts.
        dual: Whether lambda is updated by the configured dual controller.
        description: One line for listings.
    """

    name: str
    reward_weights: WeightsFn
    advantage: AdvantageFn
    budget_mode: BudgetMode
    clip: bool = True
    prompt_filter: FilterFn | None = None
    dual: bool = False
    description: str = ""

    def env_budget(self, tau: float) -> tuple[float, str]:
        """The environment's ``(budget, budget_mode)`` while training (a hard budget is held
        per batch, `batch_budget`, not by each sub-environment's ledger)."""
        if self.budget_mode == "none":
            return 0.0, "hard"
        return 1.0, "soft"

    def batch_budget(self, tau: float) -> float | None:
        """The share of each training batch's responses the cloud may answer (``tau`` under a
        hard budget: requests beyond it are answered locally, `offload_gym.budget.grant_batch`);
        None: no batch cap."""
        return tau if self.budget_mode == "hard" else None


_REGISTRY: dict[str, AlgorithmSpec] = {}


def register_algorithm(spec: AlgorithmSpec) -> AlgorithmSpec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"algorithm {spec.name!r} is already registered")
    if spec.budget_mode not in ("none", "soft", "hard"):
        raise ValueError(f"budget_mode must be 'none', 'soft' or 'hard', got {spec.budget_mode!r}")
    _REGISTRY[spec.name] = spec
    return spec


def get_algorithm(name: str) -> AlgorithmSpec:
    if name not in _REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; registered: {list_algorithms()}")
    return _REGISTRY[name]


def list_algorithms() -> tuple[str, ...]:
    return tuple(_REGISTRY)


# ---------------------------------------------------------------------------- pieces
def correctness(config: GRPOConfig) -> dict[str, float]:
    """1 for a correct final answer (local or cloud), else 0.

    >>> correctness(GRPOConfig())
    {'correct': 1.0}
    """
    return {"correct": 1.0}


def hierarchical(config: GRPOConfig) -> dict[str, float]:
    """GAPG's fixed shaping: alpha_a for a correct local answer, alpha_c for a correct
    cloud-completed one."""
    return {"correct_local": float(config.alpha_a), "correct_cloud": float(config.alpha_c)}


def dual_advantage(batch: OutcomeBatch, config: GRPOConfig, lam: float) -> torch.Tensor:
    return F.dual_advantage(batch.rewards, batch.asked, lam)


def std_advantage(batch: OutcomeBatch, config: GRPOConfig, lam: float) -> torch.Tensor:
    return F.group_advantages(batch.rewards, normalize="std")


def centred_advantage(batch: OutcomeBatch, config: GRPOConfig, lam: float) -> torch.Tensor:
    return F.group_advantages(batch.rewards, normalize="none")


def gapg_advantage(batch: OutcomeBatch, config: GRPOConfig, lam: float) -> torch.Tensor:
    """Mean-centred rewards scaled by G/(G-1) (GAPG's unbiased estimator)."""
    g = batch.rewards.shape[1]
    return F.group_advantages(batch.rewards, normalize="none") * g / (g - 1)


def gapg_filter(batch: OutcomeBatch, config: GRPOConfig) -> torch.Tensor:
    """GAPG's prompt filter: keep prompts with mixed outcomes, plus up to
    ``rho * |mixed|`` prompts where no local rollout is right but the cloud is."""
    r = batch.rewards
    mixed = (r.max(dim=1).values != r.min(dim=1).values).float()
    local_right = ((batch.correct > 0) & (batch.offloaded == 0)).any(dim=1)
    cloud_right = ((batch.correct > 0) & (batch.offloaded > 0)).any(dim=1)
    rescue = (~local_right & cloud_right).float() * (1 - mixed)
    budget = int(config.gapg_rho * mixed.sum().item())
    keep = mixed.clone()
    for i in torch.nonzero(rescue).flatten().tolist()[:budget]:
        keep[i] = 1.0
    return keep


_BUILT_IN = (
    AlgorithmSpec("dagrpo", correctness, dual_advantage, "soft", dual=True,
                  description="A_r - lambda A_c with a dual controller"),
    AlgorithmSpec("grpo", correctness, std_advantage, "none",
                  description="task tuning only (no cloud)"),
    AlgorithmSpec("collab", hierarchical, centred_advantage, "soft",
                  description="Dr. GRPO + fixed hierarchical reward"),
    AlgorithmSpec("gapg", hierarchical, gapg_advantage, "hard", clip=False,
                  prompt_filter=gapg_filter,
                  description="GAPG: hierarchical reward, filter, no clip"),
)  # fmt: skip
for _spec in _BUILT_IN:
    register_algorithm(_spec)
