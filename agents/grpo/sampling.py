"""Sampling a GRPO group: G responses to each of P prompts, each prompt run through the model once.

``model.generate`` on the P x G rows of a step runs every prompt G times in its first forward
and carries Hugging Face's general decoding machinery through every token. `sample_groups`
runs each prompt once, repeats its key/value cache over the group's G rows, and then samples
all rows together with a plain loop: softmax at the temperature, one seeded multinomial draw
per row and token (no top-k, no top-p, as the collector samples), end-of-text suppressed before
``min_new_tokens``, rows padded once they end, stopping when every row has ended. The cache and
the attention mask are allocated once for the longest response and written in place
(`offload_agents.decoding.preallocate`). The draws come from a `torch.Generator` seeded by the
caller; torch's global RNG is not touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from offload_agents.decoding import LiveRows, preallocate, prefill
from offload_agents.grpo.logprobs import repeat_cache
from offload_gym.models.generation import Generation


def sample_groups(
    model: Any,
    tokenizer: Any,
    prompt_ids: Sequence[Sequence[int]],
    group_size: int,
    *,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    min_new_tokens: int = 0,
) -> Generation | None:
    """``group_size`` sampled responses to each prompt (rows ``p * G .. p * G + G - 1`` answer
    prompt ``p``), as `offload_gym.models.generation.generate_tokens` returns them; None when
    the model takes no key/value cache argument (the caller then uses ``generate``)."""
    if not temperature > 0:
        raise ValueError(f"sample_groups samples: temperature must be > 0, got {temperature}")
    pre = prefill(model, tokenizer, prompt_ids, max_new_tokens)
    if pre is None:
        return None
    ids, attention, room = pre.ids, pre.attention, pre.room
    device = ids.device
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        cache = preallocate(repeat_cache(pre.cache, group_size), room)
        new = _decode(model, pre.cache_arg, cache, pre.logits.repeat_interleave(group_size, 0),
                      pre.positions[:, -1:].repeat_interleave(group_size, 0),
                      attention.repeat_interleave(group_size, 0), tokenizer, room, temperature,
                      min_new_tokens, gen)  # fmt: skip
    prompt_rows = ids.repeat_interleave(group_size, 0)
    mask = attention.repeat_interleave(group_size, 0)
    ones = torch.ones(mask.shape[0], new.shape[1], dtype=mask.dtype, device=device)
    return Generation(torch.cat([prompt_rows, new], 1), torch.cat([mask, ones], 1),
                      ids.shape[1], None)  # fmt: skip


def _decode(
    model: Any, cache_arg: str, cache: Any, logits: torch.Tensor, last_pos: torch.Tensor,
    attention: torch.Tensor, tokenizer: Any, room: int, temperature: float, min_new: int,
    gen: torch.Generator,
) -> torch.Tensor:  # fmt: skip
    """The sampling loop: (B, n) new tokens, ``n <= room``. Rows that have ended leave the
    model's batch (`LiveRows`), but every draw is still made over all B rows (an ended row's
    distribution is a point mass on padding): ``torch.multinomial`` draws one sample per row
    from noise laid out over the whole (B, vocabulary) tensor, so each live row gets the same
    draws whether or not the ended rows are still computed (tested)."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    fill = pad if pad is not None else eos
    rows, vocab = logits.shape
    done = torch.zeros(rows, dtype=torch.bool, device=logits.device)
    probs = torch.zeros(rows, vocab, device=logits.device)
    probs[:, fill] = 1.0  # the ended rows' point mass
    live = LiveRows(cache, attention, last_pos, room)
    tokens = []
    for i in range(room):
        scaled = logits.float() / temperature
        if i < min_new and eos is not None:
            scaled[:, eos] = -torch.inf
        probs[live.index] = torch.softmax(scaled, -1)
        nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        nxt = torch.where(done, torch.full_like(nxt, fill), nxt)
        tokens.append(nxt)
        done |= nxt == eos
        if bool(done.all()) or i == room - 1:
            break
        ended = done.index_select(0, live.index)
        if live.should_drop(ended):
            gone = live.index[ended]
            live.drop(ended)
            probs[gone] = 0.0
            probs[gone, fill] = 1.0
        live.last = live.last + 1
        out = model(input_ids=nxt.index_select(0, live.index)[:, None],
                    attention_mask=live.mask[:, : live.width + i + 1], position_ids=live.last,
                    use_cache=True, **{cache_arg: live.cache})  # fmt: skip
        live.cache, logits = getattr(out, cache_arg), out.logits[:, -1]
    return torch.stack(tokens, 1)


__all__ = ["sample_groups"]
