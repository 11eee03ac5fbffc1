"""Tiny local LMs with real, partial skill: the recipe under which a ~1M-parameter model learns
to compute on two CPU cores in minutes.

What makes the difference (measured; see docs/dagrpo.md, "The skilled SLM"):

- **one token per character** (`char_tokenizer`): a byte-level vocabulary with no merges, so
  every digit is its own token and numbers are never split arbitrarily;
- **short worked steps** (`worked_steps`): one binary operation per step
  (``2*-4=-8;-8*-1=8;8-2=6####6``), polynomials by Horner's rule, with every number of the steps
  written least-significant digit first (the order in which carries propagate) and the final
  answer after ``####`` in the usual order; code tasks are answered with the function body only;
- **fresh data**: every batch slot is a newly generated task (the generators are addressable by
  index), never epochs over a small set; prompts seen in training are recorded so that skill is
  measured on prompts never seen (`SkilledSLM.seen`);
- loss on the target only, AdamW with warm-up and cosine decay, no dropout, one torch thread.

The pieces live apart: the recipe (`offload_agents.slm.recipe`), the targets
(`offload_agents.slm.targets`), the samplers (`offload_agents.slm.samplers`) and the skill table
(`offload_agents.slm.skill_report`); this module tokenizes, builds, trains and saves, and
re-exports the others' public names.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

from offload_agents._torch import torch_threads
from offload_agents.slm.kit import FAST_GELU
from offload_agents.slm.recipe import (  # noqa: F401  (re-exported)
    CODE_FAMILIES,
    DEFAULT_WEIGHTS,
    FORMAT_VERSION,
    MATH_FAMILIES,
    SkillConfig,
    help_share,
)
from offload_agents.slm.samplers import (  # noqa: F401  (re-exported)
    EXCLUDE_TRIES,
    DrillSampler,
    TaskSampler,
    WorkedAnswers,
    prompt_digest,
)
from offload_agents.slm.skill_report import (  # noqa: F401  (re-exported)
    skill_markdown,
    skill_table,
    unseen_tasks,
)
from offload_agents.slm.targets import (  # noqa: F401  (re-exported)
    DRILL_PROMPT,
    drill_target,
    math_steps,
    reverse_digits,
    worked_steps,
)
from offload_agents.slm.template import HELP_REQUEST, SPECIAL_TOKENS, format_prompt
from offload_gym import seeding

PAD, EOS = "<pad>", "<|endoftext|>"
SEEN_FILE = "seen_prompts.txt"
RECIPE_FILE = "skill_recipe.json"


# ---------------------------------------------------------------------------- tokenizer
def char_tokenizer() -> Any:
    """A byte-level tokenizer with no merges (one token per byte: every ASCII character, so every
    digit, is a token), with pad, end-of-text and the offload marker as special tokens.

    >>> tok = char_tokenizer()
    >>> tok.convert_ids_to_tokens(tok("12+3")["input_ids"])
    ['1', '2', '+', '3']
    >>> tok.decode(tok("def f(x):\\n    return -x")["input_ids"])
    'def f(x):\\n    return -x'
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, EOS, *SPECIAL_TOKENS]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {s: i for i, s in enumerate(specials)}
    vocab.update({ch: len(specials) + i for i, ch in enumerate(alphabet)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        bos_token=EOS,
        additional_special_tokens=list(SPECIAL_TOKENS),
    )


def build_char_model(tokenizer: Any, cfg: SkillConfig) -> Any:
    """A freshly initialised GPT-2-style model (no dropout) for the character tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return GPT2LMHeadModel(
            GPT2Config(
                vocab_size=len(tokenizer), n_positions=cfg.n_positions, n_embd=cfg.n_embd,
                n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                attn_pdrop=0.0, activation_function=FAST_GELU, bos_token_id=tokenizer.eos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
            )
        )  # fmt: skip


def encode_supervised(
    tokenizer: Any,
    prompts: list[str],
    targets: list[str],
    max_len: int,
    masks: list[list[bool] | None] | None = None,
) -> dict:
    """Right-padded ``prompt + target + end-of-text`` with labels on the target only (and,
    where ``masks`` gives a row one flag per target token, only on the flagged ones)."""
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    t_ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
    masks = masks or [None] * len(targets)
    rows, keep = [], []
    for p, t, m in zip(p_ids, t_ids, masks, strict=True):
        if m is not None and len(m) != len(t):
            raise ValueError(f"a target mask needs one flag per token: {len(m)} for {len(t)}")
        flags = [False] * len(p) + (list(m) if m is not None else [True] * len(t)) + [True]
        rows.append((p + t + [tokenizer.eos_token_id])[:max_len])
        keep.append(flags[:max_len])
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    mask = torch.zeros_like(ids)
    for i, (row, flags) in enumerate(zip(rows, keep, strict=True)):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        labels[i, : len(row)] = torch.where(torch.tensor(flags), ids[i, : len(row)], -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _accumulate(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    targets: list[str],
    cfg: SkillConfig,
    chunks: int = 6,
    masks: list[list[bool] | None] | None = None,
) -> float:
    """Gradient of the mean target-token loss over the batch, computed in ``chunks``
    micro-batches of similar lengths (sorted), so little compute goes to padding."""
    model.zero_grad(set_to_none=True)
    masks = masks or [None] * len(targets)
    lengths = [len(p) + len(t) for p, t in zip(prompts, targets, strict=True)]
    order = np.argsort(lengths)
    encoded = []
    for part in np.array_split(order, chunks):
        if len(part):
            encoded.append(encode_supervised(tokenizer, [prompts[i] for i in part],
                                   [targets[i] for i in part], cfg.n_positions,
                                   [masks[i] for i in part]))  # fmt: skip
    n_target = sum(int((enc["labels"][:, 1:] != -100).sum()) for enc in encoded)
    total = 0.0
    for enc in encoded:
        labels = enc.pop("labels")
        logits = model(**enc).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
            ignore_index=-100, reduction="sum",
        ) / max(1, n_target)  # fmt: skip
        loss.backward()
        total += float(loss.detach())
    return total


@dataclass
class SkilledSLM:
    """A trained skilled SLM: model, tokenizer, the training losses and the digests of every
    prompt seen in training."""

    model: Any
    tokenizer: Any
    losses: list[float]
    seen: set[str]
    config: SkillConfig
    seconds: float = 0.0

    def save(self, out_dir: str | PathLike[str]) -> Path:
        """``save_pretrained`` of model and tokenizer, plus the recipe and the seen prompts."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        (out / SEEN_FILE).write_text("\n".join(sorted(self.seen)) + "\n", encoding="utf-8")
        final = float(np.mean(self.losses[-20:])) if self.losses else None
        recipe = {"config": asdict(self.config), "seconds": self.seconds, "final_loss": final}
        (out / RECIPE_FILE).write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
        return out


def load_seen(path: str | PathLike[str]) -> set[str]:
    """The training-prompt digests saved beside a skilled SLM (empty for other models)."""
    f = Path(path) / SEEN_FILE
    return set(f.read_text(encoding="utf-8").split()) if f.exists() else set()


def train_skilled_slm(
    cfg: SkillConfig | None = None,
    *,
    progress: bool = True,
    model: Any = None,
    desc: str = "skilled SLM",
) -> SkilledSLM:
    """Build the character tokenizer and model and train them on fresh tasks (`SkillConfig`).

    ``model``: a causal LM of another architecture to train instead (built for
    `char_tokenizer`'s vocabulary; ``cfg``'s size fields then only bound the sequence length).
    torch's intra-op threads are set to ``cfg.threads`` for the run and restored after.
    """
    from tqdm.auto import tqdm

    cfg = cfg or SkillConfig()
    tokenizer = char_tokenizer()
    if model is None:
        model = build_char_model(tokenizer, cfg)
    elif model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise ValueError(f"the model has fewer embeddings than the {len(tokenizer)} tokens")
    sampler = TaskSampler(cfg, seed=cfg.seed)
    drills = DrillSampler(cfg, seed=seeding.spawn(cfg.seed, 2)) if cfg.drill_rows else None
    rng = np.random.default_rng([cfg.seed, 1])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.98))

    def schedule(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    losses: list[float] = []
    seen: set[str] = set()
    start = time.perf_counter()
    model.train()
    with torch_threads(cfg.threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, leave=False)
        for _ in bar:
            tasks = sampler.take(cfg.batch_size)
            prompts = [format_prompt(t.prompt) for t in tasks]
            seen.update(prompt_digest(t.prompt) for t in tasks)
            targets = [HELP_REQUEST if rng.random() < help_share(t.difficulty, cfg)
                       else worked_steps(t) for t in tasks]  # fmt: skip
            masks: list[list[bool] | None] = [None] * len(targets)
            if drills is not None:
                for text, mask in drills.take(cfg.drill_rows, cfg.drill_ops):
                    prompts.append(DRILL_PROMPT)
                    targets.append(text)
                    masks.append(mask)
            loss = _accumulate(model, tokenizer, prompts, targets, cfg, masks=masks)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return SkilledSLM(model, tokenizer, losses, seen, cfg, time.perf_counter() - start)


def build_skilled_slm(
    out_dir: str | PathLike[str], cfg: SkillConfig | None = None, *, progress: bool = True
) -> Path:
    """`train_skilled_slm` and save the result into ``out_dir`` (load it with
    `offload_agents.slm.load_local_lm`)."""
    return train_skilled_slm(cfg, progress=progress).save(out_dir)
