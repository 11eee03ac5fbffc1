"""Decoding loops of our own around a model's key/value cache: the cache written in place
(`preallocate`), and greedy decoding (`greedy_tokens`) for the evaluations.

``model.generate`` carries Hugging Face's general decoding machinery through every token and
computes every row of a batch until the longest one ends. `greedy_tokens` runs the same
arithmetic as greedy ``generate`` (each prompt's forward once, then one token a step from the
cache, the argmax of the float32 logits with suppressed tokens at -inf) in a plain loop, and
drops the rows that have ended from the batch once a quarter of it has (`_GrowingLayer.keep`),
so a batch's short answers stop costing compute when they end. The evaluations' greedy responses
are the same tokens as ``generate``'s (tested on GPT-2 and Llama, and on the demo's 300
evaluation tasks, docs/benchmarks.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from transformers.cache_utils import DynamicLayer

from offload_gym.models.generation import context_room

_CACHE_ARGS = ("cache", "past_key_values")  # transformers >= 5.x, and before


def forward_params(model: Any) -> Any:
    """The parameters of ``model.forward``'s signature (empty where it has none)."""
    try:
        return inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}


def cache_argument(model: Any) -> str | None:
    """The name of ``model.forward``'s key/value cache argument (``cache`` in transformers 5,
    ``past_key_values`` before), or None when it takes none."""
    params = forward_params(model)
    return next((name for name in _CACHE_ARGS if name in params), None)


class _GrowingLayer(DynamicLayer):
    """One layer's key/value cache in buffers allocated once for the whole decode: each token
    is written in place and the layer's ``keys``/``values`` are views of the filled part. The
    default layer concatenates, copying the whole cache at every token (``torch.cat`` was 18%
    of three code steps' CPU time in the profiler, 1% after); the attention reads the same
    values either way, a little slower from the strided views, so a code step's sampling
    gained about 0.07 s (docs/benchmarks.md)."""

    def __init__(self, layer: Any, room: int) -> None:
        super().__init__()
        keys, values = layer.keys, layer.values
        b, h, n, d = keys.shape
        self._k = keys.new_empty(b, h, n + room, d)
        self._v = values.new_empty(b, h, n + room, values.shape[-1])
        self._k[:, :, :n], self._v[:, :, :n] = keys, values
        self._n = n
        self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]
        self.is_initialized, self.device = True, keys.device

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        n, m = self._n, key_states.shape[-2]
        if n + m > self._k.shape[2]:
            raise RuntimeError(f"the decode cache holds {self._k.shape[2]} positions, "
                               f"{n + m} needed")  # fmt: skip
        self._k[:, :, n : n + m], self._v[:, :, n : n + m] = key_states, value_states
        self._n = n + m
        self.keys, self.values = self._k[:, :, : n + m], self._v[:, :, : n + m]
        return self.keys, self.values

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the batch rows ``rows`` (indices, in order)."""
        self._k, self._v = self._k.index_select(0, rows), self._v.index_select(0, rows)
        self.keys, self.values = self._k[:, :, : self._n], self._v[:, :, : self._n]


def preallocate(cache: Any, room: int) -> Any:
    """``cache`` (a transformers ``DynamicCache``) with each layer's buffers allocated for
    ``room`` more positions (`_GrowingLayer`); any other cache is returned as it is."""
    layers = getattr(cache, "layers", None)
    if not layers or not all(type(layer) is DynamicLayer and layer.is_initialized
                             for layer in layers):  # fmt: skip
        return cache
    cache.layers = [_GrowingLayer(layer, room) for layer in layers]
    return cache


def greedy_tokens(
    model: Any,
    tokenizer: Any,
    prompt_ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    banned: Sequence[int] = (),
) -> tuple[list[list[int]], list[list[float]]] | None:
    """Greedy responses to the ``prompt_ids`` (left-padded together, new tokens capped to the
    context window): each row's new tokens up to and including its first end-of-text, and each
    token's log-probability under the distribution greedy ``generate`` scores (float32 logits,
    the ``banned`` token ids at -inf). None when the model's forward takes no key/value cache
    (the caller then uses ``generate``)."""
    pre = prefill(model, tokenizer, prompt_ids, max_new_tokens)
    if pre is None:
        return None
    with torch.no_grad():
        cache = preallocate(pre.cache, pre.room)
        state = LiveRows(cache, pre.attention, pre.positions[:, -1:], pre.room)
        return _greedy_loop(model, pre.cache_arg, state, pre.logits, tokenizer.eos_token_id,
                            list(banned), pre.room)  # fmt: skip


class Prefill(NamedTuple):
    """The prompts' forward of a decode: left-padded ``ids`` and ``attention``, real-token
    ``positions``, the new tokens' ``room`` in the context window, the last position's
    ``logits``, and the key/value ``cache`` under the forward's ``cache_arg``."""

    ids: torch.Tensor
    attention: torch.Tensor
    positions: torch.Tensor
    room: int
    logits: torch.Tensor
    cache: Any
    cache_arg: str


def prefill(
    model: Any, tokenizer: Any, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int
) -> Prefill | None:
    """Left-pad ``prompt_ids`` and run them through ``model`` once (eval mode, no grad); None
    when the forward takes or returns no key/value cache."""
    cache_arg = cache_argument(model)
    if cache_arg is None:
        return None
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    enc = tokenizer.pad({"input_ids": [list(r) for r in prompt_ids]}, return_tensors="pt",
                        padding=True)  # fmt: skip
    ids, attention = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    room = context_room(model, ids.shape[1], max_new_tokens)
    positions = (attention.long().cumsum(1) - 1).clamp(min=0)
    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=attention, position_ids=positions,
                    use_cache=True)  # fmt: skip
    cache = getattr(out, cache_arg)
    if cache is None:
        return None
    return Prefill(ids, attention, positions, room, out.logits[:, -1], cache, cache_arg)


class LiveRows:
    """A decode's live rows: their indices in the batch (``index``), attention mask for every
    position the decode may reach (``mask``), last positions (``last``) and cache; `drop`
    removes ended rows, where the cache allows it (``can_drop``: a `preallocate`-d cache)."""

    def __init__(self, cache: Any, attention: torch.Tensor, last: torch.Tensor, room: int):
        rows = attention.shape[0]
        self.cache, self.last, self.width = cache, last, attention.shape[1]
        self.mask = torch.cat([attention, attention.new_ones(rows, room)], 1)
        self.index = torch.arange(rows, device=attention.device)
        layers = getattr(cache, "layers", None) or []
        self.can_drop = bool(layers) and all(isinstance(x, _GrowingLayer) for x in layers)

    def should_drop(self, ended: torch.Tensor) -> bool:
        """Whether to drop now: a quarter of the live rows have ended (each drop copies the
        cache, so a few rows ending leave it alone)."""
        return self.can_drop and 4 * int(ended.sum()) >= len(ended)

    def drop(self, ended: torch.Tensor) -> torch.Tensor:
        """Remove the live rows flagged in ``ended``; return the kept rows' positions among
        the live rows."""
        keep = (~ended).nonzero().squeeze(1)
        for layer in self.cache.layers:
            layer.keep(keep)
        self.mask, self.last = self.mask.index_select(0, keep), self.last.index_select(0, keep)
        self.index = self.index.index_select(0, keep)
        return keep


def _greedy_loop(
    model: Any, cache_arg: str, s: LiveRows, logits: torch.Tensor, eos: int | None,
    banned: list[int], room: int,
) -> tuple[list[list[int]], list[list[float]]]:  # fmt: skip
    rows = logits.shape[0]
    tokens: list[list[int]] = [[] for _ in range(rows)]
    logps: list[list[float]] = [[] for _ in range(rows)]
    ended = torch.zeros(rows, dtype=torch.bool, device=logits.device)
    for i in range(room):
        scores = logits.float()
        if banned:
            scores[:, banned] = -torch.inf
        nxt = scores.argmax(-1)
        chosen = torch.log_softmax(scores, -1).gather(1, nxt[:, None]).squeeze(1)
        for r, t, lp, e in zip(s.index.tolist(), nxt.tolist(), chosen.tolist(), ended.tolist(),
                               strict=True):  # fmt: skip
            if not e:
                tokens[r].append(t)
                logps[r].append(lp)
        if eos is not None:
            ended |= nxt == eos
        if bool(ended.all()) or i == room - 1:
            break
        if s.should_drop(ended):
            keep = s.drop(ended)
            nxt, ended = nxt.index_select(0, keep), ended.index_select(0, keep)
        s.last = s.last + 1
        out = model(input_ids=nxt[:, None], attention_mask=s.mask[:, : s.width + i + 1],
                    position_ids=s.last, use_cache=True, **{cache_arg: s.cache})  # fmt: skip
        s.cache, logits = getattr(out, cache_arg), out.logits[:, -1]
    return tokens, logps


__all__ = [
    "LiveRows",
    "Prefill",
    "cache_argument",
    "forward_params",
    "greedy_tokens",
    "preallocate",
    "prefill",
]
