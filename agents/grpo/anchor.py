"""The answer anchor: a supervised term beside the policy gradient that keeps the answering skill.

InstructGPT's PPO-ptx (Ouyang et al. 2022) mixes pre-training gradients into PPO so the RL
updates do not cost the model what it already knew. The anchor here is that term with one
change for a policy that decides whether to ask the cloud: its loss is the cross-entropy of
fresh *worked answers* of the current task group, **without the first response token**. The
first token is the decision (the offload marker or the answer's first character); left in, the
anchor, whose targets are all answers, would teach "never ask" and override the dual
controller. Every later token is the answer given that the model answers locally, which the RL
updates of a tiny model otherwise corrupt (measured: its signed additions, docs/results.md).

The loss added to the policy loss is ``anchor_coef * CE``; ``GRPOConfig.anchor_coef = 0``
leaves the trainer as the papers have it. The rows come from an `AnchorSource`: a callable
``source(group, n, index) -> [(prompt, target), ...]`` that returns ``n`` task prompts (as the
environment shows them) with their reference answers for the task group ``group``; ``index``
(the training step) makes the draw deterministic, so a resumed run draws the same rows. The
skilled-SLM kit's `offload_agents.slm.skill.WorkedAnswers` is one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from offload_agents.slm.skill import encode_supervised
from offload_agents.slm.template import format_prompt

AnchorSource = Callable[[str, int, int], Sequence[tuple[str, str]]]


def encode_anchor(
    tokenizer: Any, rows: Sequence[tuple[str, str]], max_len: int
) -> dict[str, torch.Tensor]:
    """Right-padded ``format_prompt(prompt) + target + end-of-text`` ids with labels on the
    target's tokens after its first and on the end-of-text (-100 elsewhere).

    >>> from offload_agents.slm.skill import char_tokenizer
    >>> tok = char_tokenizer()
    >>> enc = encode_anchor(tok, [("1+1?", "2#2")], 64)
    >>> n = len(format_prompt("1+1?"))
    >>> labels = enc["labels"][0]
    >>> (labels[: n + 1] == -100).all().item(), tok.decode(labels[n + 1 : n + 3])
    (True, '#2')
    """
    if not rows:
        raise ValueError("the anchor source returned no rows")
    masks = []
    for _, target in rows:
        n = len(tokenizer(target, add_special_tokens=False)["input_ids"])
        if n < 1:
            raise ValueError(f"an anchor target needs a token after its first, got {target!r}")
        masks.append([False] + [True] * (n - 1))  # the first token is the decision
    return encode_supervised(tokenizer, [format_prompt(p) for p, _ in rows],
                             [t for _, t in rows], max_len, masks)  # fmt: skip


def anchor_loss(model: Any, encoded: dict[str, torch.Tensor], chunk: int = 0) -> torch.Tensor:
    """Mean cross-entropy of the labelled tokens of `encode_anchor`'s rows. With ``chunk`` > 0
    the rows go through the model ``chunk`` at a time, sorted by length and each chunk cut to
    its longest row, so the right padding costs no compute (the rows are right-padded and the
    model causal, so a row's logits do not depend on how far it was padded); the loss is the
    same mean over all labelled tokens."""
    ids, attention, labels = encoded["input_ids"], encoded["attention_mask"], encoded["labels"]
    lengths = attention.sum(1)
    order = torch.argsort(lengths, stable=True)
    total = ids.new_zeros((), dtype=torch.float32)
    for idx in order.split(chunk or len(order)):
        hi = int(lengths[idx].max())
        logits = model(input_ids=ids[idx, :hi], attention_mask=attention[idx, :hi]).logits
        total = total + torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
            labels[idx, 1:hi].reshape(-1),
            ignore_index=-100,
            reduction="sum",
        )
    return total / (labels[:, 1:] != -100).sum().clamp(min=1)


__all__ = ["AnchorSource", "anchor_loss", "encode_anchor"]
