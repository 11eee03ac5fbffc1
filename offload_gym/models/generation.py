"""Generation with Hugging Face causal LMs, shared by the in-process models
(`offload_gym.models.hf`) and the agents that train them: the device and dtype (``"auto"``:
CUDA with bfloat16 when available, else CPU with float32), prompts fitted to the context
window, batched generation with per-token log-probabilities (`generate_tokens`), and the mask
of the response's tokens."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; other names pass."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def dtype_kwarg() -> str:
    """``from_pretrained``'s dtype argument: ``dtype`` since transformers 4.56, before that
    ``torch_dtype``."""
    import transformers
    from packaging.version import Version

    return "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"


def decode_keeping_specials(tokenizer: Any, ids: Any) -> str:
    """A response's text with its special tokens kept (the offload marker is one), the
    end-of-text removed."""
    return tokenizer.decode(ids, skip_special_tokens=False).replace(tokenizer.eos_token, "")


def context_window(model: Any) -> int | None:
    """The model's context window (``n_positions`` / ``max_position_embeddings`` of its config),
    or None where it declares none."""
    cfg = getattr(model, "config", None)
    window = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
    return window if isinstance(window, int) else None


def fit_prompts(
    model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int
) -> list[list[int]]:
    """Token ids of ``prompts``; a prompt that alone fills the model's context window is cut
    from the left (its end, where the question is, kept) to leave ``min(max_new_tokens,
    window // 2)`` positions for the answer, with a warning. Prompts that fit are never cut
    (`context_room` caps the new tokens instead)."""
    ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    window = context_window(model)
    if window is None:
        return ids
    keep = window - max(1, min(max_new_tokens, window // 2))
    cut = [i for i, row in enumerate(ids) if len(row) >= window]
    if cut:
        warnings.warn(
            f"{len(cut)} prompt(s) of up to {max(len(ids[i]) for i in cut)} tokens fill the "
            f"model's context window of {window}; cut from the left to their last {keep} tokens",
            stacklevel=3,
        )
        for i in cut:
            ids[i] = ids[i][-keep:]
    return ids


def context_room(model: Any, prompt_tokens: int, max_new_tokens: int) -> int:
    """``max_new_tokens``, cut so that prompt + response fit the model's context window
    (``n_positions`` / ``max_position_embeddings`` of its config, where it has one).

    Raises:
        ValueError: The prompt alone fills the window.
    """
    window = context_window(model)
    if window is None:
        return max_new_tokens
    room = window - prompt_tokens
    if room < 1:
        raise ValueError(
            f"a prompt of {prompt_tokens} tokens leaves no room in the model's context window "
            f"of {window} tokens; shorten the prompts or use a model with a longer window"
        )
    return min(max_new_tokens, room)


def _generate_kwargs(
    tokenizer: Any, max_new_tokens: int, temperature: float, suppress: Sequence[str]
) -> dict[str, Any]:
    """``generate`` arguments: greedy at temperature 0, else plain sampling (no top-k); the
    token sequences of ``suppress`` banned."""
    kwargs: dict[str, Any] = {
        "do_sample": temperature > 0,
        "max_new_tokens": max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "output_scores": True,
        "return_dict_in_generate": True,
    }
    if temperature > 0:
        kwargs.update(temperature=temperature, top_k=0)
    banned = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in suppress]
    if any(not ids for ids in banned):
        raise ValueError(f"suppress: every string must encode to tokens, got {list(suppress)!r}")
    if banned:
        kwargs["bad_words_ids"] = banned
    return kwargs


class Generation(NamedTuple):
    """One batch from `generate_tokens`.

    Attributes:
        sequences: (B, T) prompt ids (left-padded) followed by the new tokens.
        attention_mask: (B, T) 0 on the prompt padding, 1 elsewhere.
        prompt_len: Length of the padded prompt part; responses start there.
        scores: (B, n, V) the processed next-token logits of the n new positions, when asked.
    """

    sequences: Any
    attention_mask: Any
    prompt_len: int
    scores: Any = None


def generate_tokens(
    model: Any,
    tokenizer: Any,
    ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
    min_new_tokens: int = 0,
    suppress: Sequence[str] = (),
    scores: bool = False,
    device: str | None = None,
) -> Generation:
    """The one generation path of the project (the rollout, `generate_batch` and so the HF
    models and the LM evaluation): left-pad the prompt ``ids``, cap the new tokens to the
    context window, and generate greedily at temperature 0, else by plain sampling (no top-k)
    seeded from ``seed`` with torch's global RNG forked, not touched. ``suppress`` lists
    strings the model may not write; ``min_new_tokens`` suppresses end-of-text before it."""
    import torch

    tokenizer.padding_side = "left"
    model.eval()
    device = device or str(next(model.parameters()).device)
    enc = tokenizer.pad({"input_ids": [list(row) for row in ids]}, return_tensors="pt",
                        padding=True)  # fmt: skip
    enc = {key: v.to(device) for key, v in enc.items()}
    prompt_len = enc["input_ids"].shape[1]
    room = context_room(model, prompt_len, max_new_tokens)
    kwargs = _generate_kwargs(tokenizer, room, temperature, suppress)
    kwargs["output_scores"] = scores
    if min_new_tokens:
        kwargs["min_new_tokens"] = min(min_new_tokens, room)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = model.generate(**enc, **kwargs)
    n_new = gen.sequences.shape[1] - prompt_len
    mask = enc["attention_mask"]
    ones = torch.ones(mask.shape[0], n_new, dtype=mask.dtype, device=mask.device)
    return Generation(gen.sequences, torch.cat([mask, ones], dim=1), prompt_len,
                      torch.stack(gen.scores, dim=1) if scores else None)  # fmt: skip


def response_mask(sequences: Any, prompt_len: int, ends: Sequence[int], pad_id: int | None) -> Any:
    """(B, T) float mask, 1 on each row's response up to and including its first ``ends``
    token (end-of-text, or the closing tag of a help request); the prompt, padding that is not
    an end token, and everything after are 0.

    >>> import torch
    >>> seqs = torch.tensor([[9, 9, 1, 2, 0, 5], [9, 9, 3, 7, 7, 7]])
    >>> response_mask(seqs, 2, ends=[0], pad_id=7).tolist()
    [[0.0, 0.0, 1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]
    """
    import torch

    resp = sequences[:, prompt_len:]
    own_end = torch.zeros_like(resp, dtype=torch.bool)
    for token in ends:
        own_end |= resp == token
    stop = own_end | (resp == pad_id) if pad_id is not None else own_end
    n = resp.shape[1]
    none = torch.full((resp.shape[0],), n, dtype=torch.long, device=resp.device)
    first = torch.where(stop.any(1), stop.int().argmax(1), none)
    idx = torch.arange(n, device=resp.device)[None, :]
    keep = (idx < first[:, None]) | ((idx == first[:, None]) & own_end)
    mask = torch.zeros(sequences.shape, dtype=torch.float32, device=resp.device)
    mask[:, prompt_len:] = keep.float()
    return mask


def generate_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int = 32,
    device: str | None = None,
    temperature: float = 0.0,
    seed: int = 0,
    keep_special_tokens: bool = False,
    suppress: Sequence[str] = (),
) -> list[tuple[str, float, int]]:
    """Generate for every prompt, ``batch_size`` at a time, through `generate_tokens` (batch
    ``k`` seeded ``seed + k``); inputs go to ``device`` (default: the model's). A prompt that
    alone fills the context window is cut from the left with a warning (`fit_prompts`).
    Returns ``(text, mean token log-prob, tokens)`` per prompt, the response counted up to
    and including its first end-of-text. With ``keep_special_tokens`` the text keeps special
    tokens such as the offload marker (end-of-text removed)."""
    out: list[tuple[str, float, int]] = []
    for k, start in enumerate(range(0, len(prompts), batch_size)):
        ids = fit_prompts(model, tokenizer, prompts[start : start + batch_size], max_new_tokens)
        g = generate_tokens(model, tokenizer, ids, max_new_tokens=max_new_tokens,
                            temperature=temperature, seed=seed + k, suppress=suppress,
                            scores=True, device=device)  # fmt: skip
        new = g.sequences[:, g.prompt_len :]
        token_logp = g.scores.float().log_softmax(-1).gather(-1, new[..., None]).squeeze(-1)
        alive = response_mask(g.sequences, g.prompt_len, [tokenizer.eos_token_id],
                              None)[:, g.prompt_len :] > 0  # fmt: skip
        for b in range(new.shape[0]):
            row = new[b][alive[b]]
            text = (decode_keeping_specials(tokenizer, row) if keep_special_tokens
                    else tokenizer.decode(row, skip_special_tokens=True))  # fmt: skip
            out.append((text, float(token_logp[b][alive[b]].mean()), int(alive[b].sum())))
    return out
