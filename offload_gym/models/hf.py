"""Hugging Face causal LMs as the local model (router view) or as the cloud, in-process.

Both load any causal LM by path or hub name (``from_pretrained``; or take a loaded model and
tokenizer), use the tokenizer's chat template when it has one (a plain ``Question:/Answer:``
template otherwise), generate in batches, and pick the device and dtype (``"auto"``: CUDA with
bfloat16 when available, else CPU with float32). `TransformersLocal` reports its confidence as
the geometric mean of its tokens' probabilities; `TransformersCloud` bills exact token counts
with a price table.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from typing import Any, NamedTuple

from offload_gym import seeding
from offload_gym.models.base import CloudResponse, LocalResponse, pair_partials
from offload_gym.models.openai_cloud import PARTIAL_PREFIX, SYSTEM_PROMPTS, PriceTable
from offload_gym.tasks.base import Task

_DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; other names pass."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def _dtype_kwarg() -> str:
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


class _Generator:
    """Shared machinery: a model, its tokenizer, prompts and batched generation."""

    def __init__(
        self,
        model: str | PathLike[str] | Any,
        tokenizer: Any | None,
        *,
        device: str,
        dtype: str,
        max_new_tokens: int,
        temperature: float,
        batch_size: int,
        system_prompts: Mapping[str, str] | None,
        seed: int,
        prompt_format: Callable[[Task, str | None], str] | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, self.device)
        if isinstance(model, str | PathLike):
            self.name = str(model)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = AutoModelForCausalLM.from_pretrained(model, **{_dtype_kwarg(): torch_dtype})
        else:
            if tokenizer is None:
                raise ValueError("pass the tokenizer with a loaded model")
            self.name = getattr(model.config, "_name_or_path", "") or type(model).__name__
            model = model.to(torch_dtype)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model = model.to(self.device).eval()  # type: ignore[arg-type]
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = float(temperature)
        self.batch_size = batch_size
        self.system_prompts = dict(system_prompts) if system_prompts else {}
        self.seed = seed
        self.prompt_format = prompt_format
        self._calls = 0

    def prompt(self, task: Task, partial: str | None = None) -> str:
        if self.prompt_format is not None:
            return self.prompt_format(task, partial)
        user = task.prompt + (f"\n\n{PARTIAL_PREFIX}{partial}" if partial else "")
        system = self.system_prompts.get(task.domain, self.system_prompts.get("math"))
        if getattr(self.tokenizer, "chat_template", None):
            msgs = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": user}
            ]
            return str(self.tokenizer.apply_chat_template(msgs, tokenize=False,
                                                          add_generation_prompt=True))  # fmt: skip
        head = f"{system}\n" if system else ""
        return f"{head}Question: {user}\nAnswer:\n"

    def prompt_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, prompts: Sequence[str]) -> list[tuple[str, float, int]]:
        """``(text, mean token log-prob, tokens)`` per prompt, in batches."""
        self._calls += 1
        return generate_batch(self.model, self.tokenizer, prompts,
                              max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                              device=self.device, temperature=self.temperature,
                              seed=seeding.derive(self.seed, self._calls,
                                                 stride=seeding.SAMPLER_STRIDE))  # fmt: skip

    def ident(self) -> str:
        return json.dumps([self.name, self.max_new_tokens, self.temperature, self.seed])


_GENERATION_ARGS = ("device", "dtype", "max_new_tokens", "temperature", "batch_size",
                    "system_prompts", "seed", "prompt_format")  # fmt: skip


def _generation_args(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The `_Generator` settings among a constructor's arguments."""
    return {k: arguments[k] for k in _GENERATION_ARGS}


class TransformersLocal:
    """A Hugging Face causal LM as the router view's local model.

    Args:
        model: A path or hub name (loaded with ``from_pretrained``), or a loaded model.
        tokenizer: Its tokenizer (loaded from ``model`` when it is a path).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        max_new_tokens: Longest answer.
        temperature: 0 for greedy decoding (deterministic), > 0 to sample.
        batch_size: Prompts per ``generate`` call in `answer_batch`.
        system_prompts: Instructions by task domain (default: ask for ``<answer>`` tags or a
            code block, as the verifiers read them).
        seed: Seeds sampling (forked from torch's global RNG, which is left untouched).
        prompt_format: ``f(task, partial) -> str`` replacing the default prompt (e.g. the
            template a model was fine-tuned with, such as `offload_agents.slm.format_prompt`).
        max_memo: Answers remembered by task id (the router view asks once per task).
    """

    def __init__(
        self,
        model: str | PathLike[str] | Any,
        tokenizer: Any | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        batch_size: int = 16,
        system_prompts: Mapping[str, str] | None = SYSTEM_PROMPTS,
        seed: int = 0,
        max_memo: int = 10_000,
        prompt_format: Callable[[Task, str | None], str] | None = None,
    ) -> None:
        self.gen = _Generator(model, tokenizer, **_generation_args(locals()))
        self.deterministic = temperature == 0
        self.max_memo = max_memo
        self._memo: OrderedDict[str, LocalResponse] = OrderedDict()

    def __repr__(self) -> str:
        return f"TransformersLocal({self.gen.name!r}, device={self.gen.device!r})"

    def answer(self, task: Task) -> LocalResponse:
        hit = self._memo.get(task.id)
        return hit if hit is not None else self.answer_batch([task])[0]

    def answer_batch(self, tasks: Sequence[Task]) -> list[LocalResponse]:
        """Answers for several tasks, generated in batches (and remembered by task id, so an
        environment stepping through them afterwards does not generate again)."""
        import math

        todo = [t for t in {t.id: t for t in tasks}.values() if t.id not in self._memo]
        start = time.perf_counter()
        results = self.gen.generate([self.gen.prompt(t) for t in todo]) if todo else []
        per_task = (time.perf_counter() - start) / max(1, len(todo))
        for task, (text, mean_logp, n) in zip(todo, results, strict=True):
            conf = math.exp(mean_logp) if n else 0.0
            self._memo[task.id] = LocalResponse(text, min(1.0, max(0.0, conf)), n, per_task)
            while len(self._memo) > self.max_memo:
                self._memo.popitem(last=False)
        return [self._memo[t.id] for t in tasks]


class TransformersCloud:
    """A Hugging Face causal LM as the cloud, in-process (or behind ``offload-gym serve``).

    Costs come from exact token counts (the prompt as tokenized, the tokens generated) and the
    price table; `quote` bounds them with ``max_new_tokens``. Arguments as `TransformersLocal`,
    plus ``prices``.
    """

    def __init__(
        self,
        model: str | PathLike[str] | Any,
        tokenizer: Any | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        batch_size: int = 8,
        system_prompts: Mapping[str, str] | None = SYSTEM_PROMPTS,
        prices: PriceTable | Mapping[str, float] | None = None,
        seed: int = 0,
        prompt_format: Callable[[Task, str | None], str] | None = None,
    ) -> None:
        self.gen = _Generator(model, tokenizer, **_generation_args(locals()))
        self.prices = prices if isinstance(prices, PriceTable) else PriceTable(**(prices or {}))
        self.deterministic = temperature == 0

    def __repr__(self) -> str:
        return f"TransformersCloud({self.gen.name!r}, device={self.gen.device!r})"

    def cache_key(self, task: Task, partial: str | None = None) -> str:
        raw = json.dumps([self.gen.ident(), self.gen.prompt(task, partial)])
        return "hf:" + hashlib.sha256(raw.encode()).hexdigest()

    def quote(self, task: Task, partial: str | None = None) -> float:
        n = self.gen.prompt_tokens(self.gen.prompt(task, partial))
        return self.prices.cost(n, self.gen.max_new_tokens)

    def answer(self, task: Task, partial: str | None = None) -> CloudResponse:
        return self.answer_many([task], [partial])[0]

    def answer_many(
        self, tasks: Sequence[Task], partials: Sequence[str | None] | None = None
    ) -> list[CloudResponse]:
        """Answers for a batch, generated together."""
        prompts = [self.gen.prompt(t, p) for t, p in pair_partials(tasks, partials)]
        start = time.perf_counter()
        results = self.gen.generate(prompts)
        latency = (time.perf_counter() - start) / max(1, len(prompts))
        out = []
        for prompt, (text, _, n) in zip(prompts, results, strict=True):
            n_in = self.gen.prompt_tokens(prompt)
            out.append(CloudResponse(text, n_in, n, self.prices.cost(n_in, n), latency))
        return out
