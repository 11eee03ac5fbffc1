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
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from typing import Any

from offload_gym import seeding
from offload_gym.models.base import CloudResponse, LocalResponse, pair_partials
from offload_gym.models.chat import PARTIAL_PREFIX, SYSTEM_PROMPTS, PriceTable
from offload_gym.models.generation import (
    dtype_kwarg,
    generate_batch,
    resolve_device,
    resolve_dtype,
)
from offload_gym.tasks.base import Task


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
            model = AutoModelForCausalLM.from_pretrained(model, **{dtype_kwarg(): torch_dtype})
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
