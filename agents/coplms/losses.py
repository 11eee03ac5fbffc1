"""The losses of Co-PLMs as pure tensor functions.

Deep mutual learning between two models that share a vocabulary: each is trained on the task
(next-token cross-entropy on the answer tokens) plus the KL divergence from its partner's
next-token distribution (the partner's distribution is a fixed target for that update):

    L_a = CE(a) + alpha * T^2 * KL(softmax(z_b / T) || softmax(z_a / T))
    L_b = CE(b) + alpha * T^2 * KL(softmax(z_a / T) || softmax(z_b / T))

averaged over the answer tokens (``mask`` 1). The architectures may differ (GPT-2 and Llama
style, different widths and depths): only the distributions over the shared vocabulary meet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def token_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Mean over masked positions of KL(teacher || student) on next-token distributions at
    ``temperature``, scaled by T^2 (so gradients keep their size as T changes). The teacher is
    detached.

    Shapes: logits (B, T, V), mask (B, T).

    >>> z = torch.tensor([[[0.0, 0.0]]])
    >>> float(token_kl(z, z, torch.ones(1, 1)))
    0.0
    >>> s, t = torch.tensor([[[0.0, 0.0]]]), torch.tensor([[[0.0, 1e4]]])  # uniform vs one-hot
    >>> round(float(token_kl(s, t, torch.ones(1, 1))), 4)  # log 2
    0.6931
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"logits differ in shape: {tuple(student_logits.shape)} vs "
            f"{tuple(teacher_logits.shape)} (the models must share a vocabulary)"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)  # (B, T)
    m = mask.to(kl.dtype)
    return (kl * m).sum() / m.sum().clamp(min=1.0) * temperature**2


def answer_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy where ``labels`` != -100 (labels aligned with the inputs, as
    Hugging Face causal LMs take them: position t predicts label t + 1)."""
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        labels[:, 1:].reshape(-1),
        ignore_index=-100,
    )


def next_token_mask(labels: torch.Tensor) -> torch.Tensor:
    """(B, T-1) mask of the positions whose next token is an answer token."""
    return (labels[:, 1:] != -100).float()


def mutual_losses(
    logits_a: torch.Tensor,
    logits_b: torch.Tensor,
    labels: torch.Tensor,
    *,
    alpha: float,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_a, L_b)`` of deep mutual learning (module docstring) for two models' logits on the
    same batch."""
    mask = next_token_mask(labels)
    za, zb = logits_a[:, :-1], logits_b[:, :-1]
    loss_a = answer_ce(logits_a, labels) + alpha * token_kl(za, zb, mask, temperature=temperature)
    loss_b = answer_ce(logits_b, labels) + alpha * token_kl(zb, za, mask, temperature=temperature)
    return loss_a, loss_b
