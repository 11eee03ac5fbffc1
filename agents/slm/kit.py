"""Build, warm-start, save and load small causal LMs that run on a CPU with no downloads.

- `build_tokenizer`: a byte-level BPE tokenizer trained locally on generator text, with pad,
  end-of-text and the offload marker as special tokens.
- `build_tiny_model`: a GPT-2-style model of about 1-5M parameters for that tokenizer.
- `warm_start`: supervised training on the generators' reference solutions, so the model starts
  with real but partial skill.
- `load_local_lm`: any Hugging Face causal LM and its tokenizer, from a path (or a hub name where
  the network allows), with the marker added as special tokens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

from offload_agents.slm.template import HELP_REQUEST, SPECIAL_TOKENS, format_prompt
from offload_gym.tasks import Task, list_generators, make_generator

FAST_GELU = "gelu_pytorch_tanh"
"""The activation of the kits' GPT-2 models: PyTorch's fused tanh GELU, the same function as
GPT-2's ``gelu_new`` (which transformers writes out in several elementwise operations, about 3x
slower forward and backward on CPU)."""

PAD, EOS = "<pad>", "<|endoftext|>"


@dataclass(frozen=True)
class TinyLMConfig:
    """Size of the tiny model (defaults: about 1.1M parameters with a 2,000-token vocabulary).

    Attributes:
        vocab_size: BPE vocabulary size.
        n_layer: Transformer blocks.
        n_embd: Width.
        n_head: Attention heads.
        n_positions: Longest sequence.
    """

    vocab_size: int = 2000
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 512

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_embd", "n_head", "n_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")


def training_tasks(
    n_per_family: int = 200, *, seed: int = 0, max_difficulty: int = 5
) -> list[Task]:
    """Tasks of every registered family (math and code), for tokenizer and warm-start data."""
    tasks = []
    for name in list_generators():
        gen = make_generator(name, seed=seed, max_difficulty=max_difficulty)
        tasks += gen.take(n_per_family)
    return tasks


def task_text(task: Task) -> str:
    """Prompt (in the template) followed by the reference solution."""
    return format_prompt(task.prompt) + (task.solution or task.answer)


def build_tokenizer(
    texts: Iterable[str], vocab_size: int = 2000, *, split_digits: bool = False
) -> Any:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for transformers.

    With ``split_digits`` every digit is its own token (as in Llama and PaLM tokenizers). It is
    off by default: in one trial with `build_slm`'s recipe it did not help (30 unseen
    difficulty-1 tasks per family: arithmetic still 0%, polynomials 23%, derivatives 10%, the
    other math families 3%, and code arithmetic fell to 13% against 83-100% for the other code
    families).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if split_digits
        else byte_level
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS, *SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        bos_token=EOS,
        additional_special_tokens=list(SPECIAL_TOKENS),
    )


def build_tiny_model(tokenizer: Any, config: TinyLMConfig | None = None, *, seed: int = 0) -> Any:
    """A freshly initialised GPT-2-style causal LM sized for ``tokenizer``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = config or TinyLMConfig()
    model_cfg = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        activation_function=FAST_GELU,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # seeded; the caller's global RNG is left alone
        torch.manual_seed(seed)
        return GPT2LMHeadModel(model_cfg)


def help_probability(difficulty: int, help_rate: float) -> float:
    """Share of warm-start targets at ``difficulty`` replaced by the help request: 0 at
    difficulty 1, rising linearly to ``help_rate`` at 5."""
    return help_rate * (difficulty - 1) / 4


def encode_answers(
    tokenizer: Any, prompts: Sequence[str], answers: Sequence[str], max_len: int
) -> dict[str, torch.Tensor]:
    """A right-padded batch of ``prompt + answer + end-of-text`` with labels on the answer
    tokens only (-100 on the prompt and the padding)."""
    tokenizer.padding_side = "right"
    full = [p + a + tokenizer.eos_token for p, a in zip(prompts, answers, strict=True)]
    enc = tokenizer(full, return_tensors="pt", padding=True, truncation=True, max_length=max_len)
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    for row, p in enumerate(prompts):
        n_prompt = len(tokenizer(p)["input_ids"])
        labels[row, : min(n_prompt, labels.shape[1])] = -100  # learn the answer only
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": labels}  # fmt: skip


def _batches(
    tokenizer: Any,
    tasks: Sequence[Task],
    batch_size: int,
    max_len: int,
    rng: np.random.Generator,
    help_rate: float = 0.0,
) -> Iterable[dict[str, torch.Tensor]]:
    order = rng.permutation(len(tasks))
    for start in range(0, len(order), batch_size):
        chunk = [tasks[i] for i in order[start : start + batch_size]]
        prompts = [format_prompt(t.prompt) for t in chunk]
        answers = [
            HELP_REQUEST if rng.random() < help_probability(t.difficulty, help_rate)
            else (t.solution or t.answer)
            for t in chunk
        ]  # fmt: skip
        yield encode_answers(tokenizer, prompts, answers, max_len)


def warm_start(
    model: Any,
    tokenizer: Any,
    tasks: Sequence[Task],
    *,
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 3e-3,
    max_len: int = 384,
    seed: int = 0,
    progress: bool = True,
    help_rate: float = 0.0,
) -> list[float]:
    """Supervised fine-tuning on ``tasks``' reference solutions (loss on the answer tokens only).

    With ``help_rate`` > 0, a share of the targets (`help_probability`, more on harder tasks) is
    the help request instead, so the model starts out able to ask for the cloud, which RL then
    shapes. Returns the training loss of every step.
    """
    if not tasks:
        raise ValueError("warm_start needs at least one task")
    tokenizer.padding_side = "right"
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):  # dropout draws here; the caller's RNG is restored
        torch.manual_seed(seed)
        return _train(model, tokenizer, tasks, epochs, batch_size, lr, max_len, rng, progress,
                      help_rate)  # fmt: skip


def _train(
    model: Any, tokenizer: Any, tasks: Sequence[Task], epochs: int, batch_size: int, lr: float,
    max_len: int, rng: np.random.Generator, progress: bool, help_rate: float,
) -> list[float]:  # fmt: skip
    """`warm_start`'s loop: AdamW with a one-cycle schedule; the loss of every step."""
    from tqdm.auto import tqdm

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(tasks) / batch_size)
    if steps >= 20:
        sched: Any = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=steps, pct_start=0.1
        )
    else:  # too few steps for a warm-up phase
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    losses = []
    model.train()
    bar = tqdm(total=steps, desc="warm start", disable=not progress, leave=False)
    for _ in range(epochs):
        for batch in _batches(tokenizer, tasks, batch_size, max_len, rng, help_rate):
            loss = model(**batch).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    model.eval()
    return losses


def build_slm(
    out_dir: str | PathLike[str],
    *,
    config: TinyLMConfig | None = None,
    n_per_family: int = 300,
    epochs: int = 5,
    max_difficulty: int = 2,
    seed: int = 0,
    progress: bool = True,
    help_rate: float = 0.4,
    lr: float = 3e-3,
) -> Path:
    """Build a tokenizer and a tiny model, warm-start it (with help requests on a share of the
    harder tasks, see `warm_start`), and save both with ``save_pretrained`` into ``out_dir``
    (load them back with `load_local_lm`).

    The defaults (easy tasks only, 3,000 of them, 5 epochs; about 7 minutes on 2 CPU cores)
    gave, on unseen difficulty-1 tasks: code families 83-100% (the templates are learnable),
    math families 0-17% (polynomials 17%, word problems 10%, arithmetic 0%). One epoch over 600
    mixed-difficulty tasks gave 0% everywhere.
    """
    cfg = config or TinyLMConfig()
    tasks = training_tasks(n_per_family, seed=seed, max_difficulty=max_difficulty)
    tokenizer = build_tokenizer((task_text(t) for t in tasks), cfg.vocab_size)
    model = build_tiny_model(tokenizer, cfg, seed=seed)
    warm_start(model, tokenizer, tasks, epochs=epochs, seed=seed, progress=progress,
               max_len=cfg.n_positions, help_rate=help_rate, lr=lr)  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def load_local_lm(name_or_path: str | PathLike[str], *, device: str = "cpu") -> tuple[Any, Any]:
    """Load any Hugging Face causal LM and its tokenizer (``from_pretrained``), make sure the
    offload marker tokens and a pad token exist, and return ``(model, tokenizer)``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(name_or_path)
    missing = [t for t in SPECIAL_TOKENS if t not in tokenizer.get_vocab()]
    added = tokenizer.add_special_tokens({"additional_special_tokens": missing}) if missing else 0
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if added:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device), tokenizer  # type: ignore[arg-type]
