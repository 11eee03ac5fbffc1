"""The maths of the GRPO family as pure tensor functions (shapes in comments).

Notation: a batch holds P prompts, each with a group of G sampled responses; tensors of
per-response values have shape (P, G); per-token tensors have shape (B, T) with B = P * G.

- `group_advantages`: A_i = r_i - mean_j r_j, divided by std_j r_j for GRPO (DeepSeekMath), not
  for Dr. GRPO / GAPG.
- `dual_advantage`: DA-GRPO's A_hat = A_r - lambda * A_c, with A_c the group-centred cloud flags.
- `dual_update`: lambda <- max(0, lambda + eta * (J_c - tau)).
- `clipped_surrogate`: the PPO/GRPO clipped objective per token.
- `k3_kl`: the k3 estimator of KL(pi || pi_ref): exp(ref - logp) - (ref - logp) - 1.
- `masked_mean`: token averages that ignore masked tokens (the cloud's tokens carry no gradient).
"""

from __future__ import annotations

from typing import Literal

import torch

Normalization = Literal["std", "none"]


def group_advantages(
    rewards: torch.Tensor, *, normalize: Normalization = "std", eps: float = 1e-4
) -> torch.Tensor:
    """Group-relative advantages of rewards shaped (P, G).

    >>> group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), normalize="none")
    tensor([[ 0.5000, -0.5000, -0.5000,  0.5000]])
    >>> group_advantages(torch.tensor([[1.0, 0.0]]))  # std (unbiased) = 0.7071
    tensor([[ 0.7070, -0.7070]])
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (prompts, group), got shape {tuple(rewards.shape)}")
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if normalize == "none":
        return centred
    if normalize != "std":
        raise ValueError(f"normalize must be 'std' or 'none', got {normalize!r}")
    std = rewards.std(dim=1, keepdim=True) if rewards.shape[1] > 1 else torch.zeros_like(centred)
    return centred / (std + eps)


def dual_advantage(
    rewards: torch.Tensor, cloud: torch.Tensor, lam: float | torch.Tensor
) -> torch.Tensor:
    """DA-GRPO's advantage A_hat = A_r - lambda * A_c, both group-centred without std division.

    Args:
        rewards: (P, G) task rewards r_i.
        cloud: (P, G) 1 where response i asked for the cloud, else 0.
        lam: The dual variable lambda >= 0.

    >>> r, c = torch.tensor([[1.0, 1.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    >>> dual_advantage(r, c, 0.5)
    tensor([[ 0.2500,  0.7500, -0.7500, -0.2500]])
    """
    if rewards.shape != cloud.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and cloud {tuple(cloud.shape)} differ")
    a_r = group_advantages(rewards, normalize="none")
    a_c = group_advantages(cloud.to(rewards.dtype), normalize="none")
    return a_r - lam * a_c


def dual_update(lam: float, usage: float, tau: float, eta: float) -> float:
    """One dual-ascent step: ``max(0, lam + eta * (usage - tau))``.

    >>> dual_update(0.5, usage=0.5, tau=0.3, eta=0.1)
    0.52
    >>> dual_update(0.01, usage=0.0, tau=0.3, eta=0.1)
    0.0
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    return max(0.0, round(lam + eta * (usage - tau), 12))


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1 (over ``dim``, or over everything)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1.0)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    clip_eps: float = 0.2,
) -> torch.Tensor:
    """Per-token clipped objective (to maximise): ``min(rho A, clip(rho, 1-eps, 1+eps) A)``.

    Args:
        logp: (B, T) log-probabilities of the sampled tokens under the current policy.
        old_logp: (B, T) the same under the sampling policy (no gradient).
        advantages: (B,) or (B, T) advantages (broadcast over tokens).

    >>> ratio_15 = torch.log(torch.tensor([[1.5]]))  # rho = 1.5, clipped to 1.2
    >>> clipped_surrogate(ratio_15, torch.tensor([[0.0]]), torch.tensor([2.0]))
    tensor([[2.4000]])
    """
    if advantages.dim() == 1:
        advantages = advantages[:, None]
    ratio = torch.exp(logp - old_logp)
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return torch.minimum(ratio * advantages, clipped * advantages)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || pi_ref): ``exp(d) - d - 1`` with ``d = ref - logp``.

    >>> k3_kl(torch.tensor([0.0]), torch.tensor([0.0]))
    tensor([0.])
    """
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_eps: float = 0.2,
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    length_norm: Literal["sequence", "token"] = "token",
) -> torch.Tensor:
    """The GRPO-family loss to minimise, over the tokens where ``mask`` is 1 (the policy's own
    tokens: the prompt and the cloud's answer are masked out).

    ``length_norm="sequence"`` averages tokens within each response, then responses (GRPO);
    ``"token"`` averages all tokens of the batch together (Dr. GRPO, no 1/|o| per response).
    """
    per_token = clipped_surrogate(logp, old_logp, advantages, clip_eps)
    if ref_logp is not None and beta > 0:
        per_token = per_token - beta * k3_kl(logp, ref_logp)
    if length_norm == "sequence":
        return -masked_mean(masked_mean(per_token, mask, dim=1), (mask.sum(1) > 0).float())
    if length_norm == "token":
        return -masked_mean(per_token, mask)
    raise ValueError(f"length_norm must be 'sequence' or 'token', got {length_norm!r}")
