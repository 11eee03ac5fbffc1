"""Per-token log-probabilities of a rollout batch: the forward pass of the policy update.

A GRPO batch holds G responses to each of its P prompts, and the prompt is most of each row (in
the demo, 59 of 94 real tokens in the math group and 171 of 204 in the code group). Run whole,
every prompt goes through the model G times. `token_logp` runs each prompt once, repeats its
key/value cache over the group's G rows and runs only the responses on top of it. A causal model
gives the same conditionals either way: the G copies of a prompt's hidden states are identical,
and the cache's repeat sums their gradients back, so the loss and its gradient are the same (to
float rounding) at a fraction of the compute. Batches whose rows of a group differ in their
prompt part, group size 1, and models whose ``forward`` takes no cache take the whole-row path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from offload_agents.decoding import cache_argument, forward_params


@dataclass(frozen=True)
class LogpSettings:
    """How `token_logp` runs a model.

    Attributes:
        temperature: The sampling temperature the log-probabilities are taken at.
        chunk: Rows per forward (0: all in one); the shared-prompt path rounds it up to whole
            groups.
        group_size: G, the rows per prompt (consecutive rows of the batch).
        logits_to_keep: Whether the model's forward takes ``logits_to_keep``.
        cache_arg: The forward's key/value cache argument, or None (whole rows only).
        share_prompts: Run each group's prompt once (when the batch allows it).
    """

    temperature: float
    chunk: int
    group_size: int
    logits_to_keep: bool = False
    cache_arg: str | None = None
    share_prompts: bool = True

    @classmethod
    def for_model(cls, model: Any, **fields: Any) -> LogpSettings:
        """Settings with the forward's arguments read from ``model``'s signature."""
        return cls(logits_to_keep="logits_to_keep" in forward_params(model),
                   cache_arg=cache_argument(model), **fields)  # fmt: skip


def _spans(mask: torch.Tensor, attention: torch.Tensor, start: int) -> tuple[Any, Any]:
    """Each row's one-past-last response token (``start`` for a row with none) and first real
    token (where its left padding ends)."""
    width = mask.shape[1]
    resp = mask[:, start:] > 0
    ends = torch.where(resp.any(1), width - resp.flip(1).int().argmax(1), start)
    return ends, attention.int().argmax(1)


def token_logp(
    model: Any, seqs: torch.Tensor, attention: torch.Tensor, mask: torch.Tensor, start: int,
    settings: LogpSettings,
) -> torch.Tensor:  # fmt: skip
    """(B, T - start) log-probabilities of ``seqs[:, start:]`` under ``model`` at the sampling
    temperature, right on every response token of ``mask`` (positions past a row's response
    may hold any value; the loss masks them). Rows go through the model in chunks sorted by
    length, each cut to its own first real token and last response token, so the batch's
    padding costs no compute."""
    if _can_share(seqs, attention, start, settings):
        return _shared_logp(model, seqs, attention, mask, start, settings)
    rows, width = seqs.shape
    ends, firsts = _spans(mask, attention, start)
    order = torch.argsort(ends, stable=True)
    parts = []
    for idx in order.split(settings.chunk or rows):
        lo, hi = min(int(firsts[idx].min()), start - 1), int(ends[idx].max())
        part = _whole_rows(model, seqs[idx, lo:hi], attention[idx, lo:hi], start - lo, settings)
        parts.append(torch.nn.functional.pad(part, (0, width - hi)))
    return torch.cat(parts)[torch.argsort(order)]


def _can_share(seqs: torch.Tensor, attention: torch.Tensor, start: int, s: LogpSettings) -> bool:
    """Whether every group of G consecutive rows has one prompt part (ids and padding)."""
    g, rows = s.group_size, seqs.shape[0]
    if not s.share_prompts or s.cache_arg is None or g < 2 or rows % g or start < 1:
        return False
    for t in (seqs[:, :start], attention[:, :start]):
        grouped = t.reshape(rows // g, g, start)
        if not bool((grouped == grouped[:, :1]).all()):
            return False
    return True


def _shared_logp(
    model: Any, seqs: torch.Tensor, attention: torch.Tensor, mask: torch.Tensor, start: int,
    s: LogpSettings,
) -> torch.Tensor:  # fmt: skip
    """`token_logp` with each group's prompt run once: groups sorted by their longest response,
    ``chunk`` rows (whole groups) per forward."""
    rows, width = seqs.shape
    g = s.group_size
    ends, firsts = _spans(mask, attention, start)
    order = torch.argsort(ends.reshape(rows // g, g).max(1).values, stable=True)
    per = max(1, -(-(s.chunk or rows) // g))  # groups per forward, rounded up
    parts, row_order = [], []
    for groups in order.split(per):
        idx = (groups[:, None] * g + torch.arange(g)).reshape(-1)
        lo, hi = min(int(firsts[idx].min()), start - 1), int(ends[idx].max())
        part = _prompt_once(model, seqs[idx, lo:hi], attention[idx, lo:hi], start - lo, s)
        parts.append(torch.nn.functional.pad(part, (0, width - hi)))
        row_order.append(idx)
    return torch.cat(parts)[torch.argsort(torch.cat(row_order))]


def _prompt_once(
    model: Any, seqs: torch.Tensor, attention: torch.Tensor, start: int, s: LogpSettings
) -> torch.Tensor:
    """Log-probabilities of ``seqs[:, start:]``: the prompt part of each group of G rows run
    once, its cache repeated G times, the response part run on top."""
    g = s.group_size
    if seqs.shape[1] == start:  # no response token in these rows
        return seqs.new_zeros(seqs.shape[0], 0, dtype=torch.float32)
    positions = (attention.long().cumsum(1) - 1).clamp(min=0)
    kwargs = {"logits_to_keep": 1} if s.logits_to_keep else {}
    out = model(input_ids=seqs[::g, :start], attention_mask=attention[::g, :start],
                position_ids=positions[::g, :start], use_cache=True, **kwargs)  # fmt: skip
    logits = out.logits[:, -1:].repeat_interleave(g, 0)  # predicts the token at ``start``
    name = s.cache_arg or ""
    cache = getattr(out, name, None)
    if seqs.shape[1] - start > 1:
        if cache is None:  # e.g. gradient checkpointing turns the cache off
            return _whole_rows(model, seqs, attention, start, s)
        rest = model(input_ids=seqs[:, start:-1], attention_mask=attention[:, :-1],
                     position_ids=positions[:, start:-1], use_cache=True,
                     **{name: repeat_cache(cache, g)}).logits  # fmt: skip
        logits = torch.cat([logits, rest], dim=1)
    return _gather(logits, seqs[:, start:], s.temperature)


def repeat_cache(cache: Any, g: int) -> Any:
    """``cache`` with each row repeated ``g`` times (transformers' Cache objects, or the legacy
    tuple of (key, value) per layer)."""
    if hasattr(cache, "batch_repeat_interleave"):
        cache.batch_repeat_interleave(g)
        return cache
    return tuple(tuple(t.repeat_interleave(g, 0) for t in layer) for layer in cache)


def _whole_rows(
    model: Any, seqs: torch.Tensor, attention: torch.Tensor, start: int, s: LogpSettings
) -> torch.Tensor:
    """Log-probabilities of ``seqs[:, start:]``, every row run whole; logits are computed only
    for those positions where the model supports it (``logits_to_keep``, as TRL)."""
    keep = seqs.shape[1] - start + 1
    kwargs = {"logits_to_keep": keep} if s.logits_to_keep else {}
    # Prompts are left-padded: positions count real tokens only, as in `generate`, or the
    # update would score a different conditional than the one that was sampled.
    positions = (attention.long().cumsum(1) - 1).clamp(min=0)
    logits = model(input_ids=seqs, attention_mask=attention, position_ids=positions,
                   **kwargs).logits  # fmt: skip
    return _gather(logits[:, -keep:-1], seqs[:, start:], s.temperature)


def _gather(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, targets[..., None]).squeeze(-1)


__all__ = ["LogpSettings", "cache_argument", "repeat_cache", "token_logp"]
