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
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

from offload_agents._torch import torch_threads
from offload_agents.slm.kit import FAST_GELU
from offload_agents.slm.template import HELP_REQUEST, SPECIAL_TOKENS, format_prompt
from offload_gym import seeding
from offload_gym.tasks import Task, make_generator
from offload_gym.validation import require_ints

PAD, EOS = "<pad>", "<|endoftext|>"
MATH_FAMILIES = ("polynomials", "derivatives")
CODE_FAMILIES = ("code_arithmetic", "code_lists")
FORMAT_VERSION = 4
"""Version of the prompt template, the target format and the model build; part of the cache
key of a built model, so a cached model never meets a format it was not trained on (4: the
GELU is PyTorch's fused tanh GELU, the same function as GPT-2's written-out one)."""
DEFAULT_WEIGHTS = {"polynomials": 1.5, "derivatives": 2.5, "code_arithmetic": 0.75,
                   "code_lists": 0.6}  # fmt: skip
"""Family weights of the default recipe: math-heavy, since code reaches its skill on less data
(and its prompts cost twice a math prompt's characters)."""
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


# ---------------------------------------------------------------------------- answer format
def reverse_digits(text: str) -> str:
    """Every run of digits written least-significant digit first.

    >>> reverse_digits("12*-34=-408")
    '21*-43=-804'
    """
    return re.sub(r"\d+", lambda m: m.group()[::-1], text)


def _horner(coeffs: Sequence[int], point: int) -> list[str]:
    """Steps evaluating the polynomial (constant term first) at ``point`` by Horner's rule."""
    acc = coeffs[-1]
    steps = []
    for c in reversed(coeffs[:-1]):
        t = acc * point
        steps += [f"{acc}*{point}={t}", f"{t}+{c}={t + c}"]
        acc = t + c
    return steps or [f"{acc}={acc}"]


def _generic_steps(task: Task) -> list[str]:
    """The reference solution's lines, labels (``Expand:``) and spaces removed."""
    lines = [ln for ln in (task.solution or "").splitlines() if "<answer>" not in ln]
    return [re.sub(r"^[A-Za-z' ]+:\s*", "", ln).replace(" ", "") for ln in lines if ln.strip()]


_LIN = re.compile(r"^(?:(-?\d*)x)?\s*(?:([+-])?\s*(\d+))?$")


def _parse_lin(text: str) -> tuple[int, int] | None:
    """``(a, b)`` of ``"ax + b"`` as the generators print it (``"-x + 3"``, ``"7"``, ``"4x"``)."""
    m = _LIN.match(text.strip())
    if not m or not text.strip():
        return None
    coef, sign, const = m.groups()
    a = 0 if coef is None else int(coef + "1") if coef in ("", "-") else int(coef)
    b = 0 if const is None else (-1 if sign == "-" else 1) * int(const)
    return a, b


def _linear_steps(equation: str, x: int) -> list[str] | None:
    """``a(x + b) = cx + d`` or ``ax + b = cx + d``: expand, subtract constants and
    coefficients, divide, one operation a step.

    >>> _linear_steps("4x + 10 = -18", -7)
    ['-18+-10=-28', '-28/4=-7']
    >>> _linear_steps("3(x - 16) = 5x + 10", -29)
    ['3*-16=-48', '10+48=58', '3+-5=-2', '58/-2=-29']
    """
    lhs, _, rhs = equation.partition(" = ")
    steps = []
    m = re.match(r"^(-?\d+)\(x ([+-]) (\d+)\)$", lhs)
    if m:
        a, b = int(m.group(1)), (-1 if m.group(2) == "-" else 1) * int(m.group(3))
        steps.append(f"{a}*{b}={a * b}")
        left: tuple[int, int] | None = (a, a * b)
    else:
        left = _parse_lin(lhs)
    right = _parse_lin(rhs)
    if left is None or right is None or left[0] == right[0]:
        return None
    (a, b), (c, d) = left, right
    # Subtractions are written as additions of the negation (``d+-b``), the same operation
    # Horner's steps use, and ``a-0`` is skipped: fewer kinds of step to learn.
    steps += [f"{d}+{-b}={d - b}"] if b else []
    steps += [f"{a}+{-c}={a - c}"] if c else []
    return [*steps, f"{d - b}/{a - c}={x}"]


def math_steps(task: Task) -> list[str]:
    """One binary operation per step where the family's metadata allows (polynomials and
    single-factor derivatives by Horner's rule), else the reference solution's lines."""
    meta = task.metadata
    family = meta.get("family")
    if family == "polynomials" and meta.get("question") == "value":
        return _horner(meta["coefficients"], meta["point"])
    if family == "polynomials" and meta.get("question") == "degree":
        da, db = (len(f) - 1 for f in meta["factors"])
        return [f"{da}+{db}={da + db}"]
    if family == "linear_equations" and "equation" in meta:
        steps = _linear_steps(meta["equation"], meta["x"])
        if steps is not None:
            return steps
    if family == "derivatives" and len(meta.get("factors", ())) == 1:
        c = meta["factors"][0]
        deriv = [k * c[k] for k in range(1, len(c))]
        steps = [f"{k}*{c[k]}={k * c[k]}" for k in range(len(c) - 1, 0, -1) if c[k]]
        return steps + _horner(deriv or [0], meta["point"])
    return _generic_steps(task)


def worked_steps(task: Task) -> str:
    """The target the kit teaches for ``task``: for math, short steps (digits reversed) then
    ``####`` and the answer; for code, the function body (unindented; the grader continues the
    signature with it).

    >>> from offload_gym.tasks import make_generator
    >>> t = make_generator("polynomials", seed=1, max_difficulty=1)[0]
    >>> t.prompt, worked_steps(t)
    ('Let p(x) = 2x. What is p(2)?', '2*2=4;4+0=4####4')
    """
    if task.domain == "code":
        body = task.answer[len(task.code_prefix) :] if task.code_prefix else task.answer
        return "\n".join(
            ln[4:] if ln.startswith("    ") else ln for ln in body.strip("\n").splitlines()
        )
    return reverse_digits(";".join(math_steps(task))) + "####" + task.answer


# ---------------------------------------------------------------------------- recipe
@dataclass(frozen=True)
class SkillConfig:
    """The recipe of a skilled tiny SLM (defaults: 0.89M parameters, 10-12 minutes on 2 CPU
    cores; linear equations are left out of the default families: with these steps the model
    reached 5% at difficulty 1, its errors in signed two-digit additions).

    Attributes:
        math_families: Math generators to train on.
        code_families: Code generators to train on.
        family_weights: Relative share of each family in the data (``{}``: uniform; arithmetic
            needs a larger share, its errors are multiplication-table slips).
        min_difficulty: Lowest difficulty drawn.
        max_difficulty: Highest difficulty drawn.
        steps: Optimiser steps.
        batch_size: Fresh tasks per step.
        lr: Peak AdamW learning rate (linear warm-up, then cosine decay to 10%).
        warmup: Warm-up steps.
        help_rate: Share of targets replaced by the help request at ``max_difficulty``
            (`help_floor` at ``min_difficulty``, linear between), so the model starts out able
            to ask.
        help_floor: Share of help-request targets at ``min_difficulty`` (0: the model never
            asks on the easiest tasks, so a policy gradient there never sees an asking sample).
        drill_rows: Extra rows per step of operation drills (`drill_target`): single steps
            taken from fresh math tasks' worked steps, loss on the results only. The model's
            errors are in those steps (signed one-digit additions), and a drill costs a tenth of
            a task's tokens. 0 turns drills off.
        drill_ops: Steps per drill row.
        n_layer: Transformer blocks.
        n_embd: Width.
        n_head: Attention heads.
        n_positions: Longest sequence (prompt + response, in characters).
        threads: torch intra-op threads while training (1 is fastest for a model this small
            and leaves a core to other work).
        seed: Seeds the data, the initialisation and the help targets.
    """

    math_families: tuple[str, ...] = MATH_FAMILIES
    code_families: tuple[str, ...] = CODE_FAMILIES
    family_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    min_difficulty: int = 1
    max_difficulty: int = 3
    steps: int = 1400
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 50
    help_rate: float = 0.4
    help_floor: float = 0.0
    drill_rows: int = 0
    drill_ops: int = 8
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 512
    threads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        require_ints(self, ("min_difficulty", "max_difficulty", "steps", "batch_size", "warmup",
                            "drill_ops", "n_layer", "n_embd", "n_head", "n_positions",
                            "threads"))  # fmt: skip
        require_ints(self, ("drill_rows",), minimum=0)
        if self.drill_rows and not self.math_families:
            raise ValueError("drill_rows > 0 needs math_families (drills are their steps)")
        if not 1 <= self.min_difficulty <= self.max_difficulty <= 5:
            raise ValueError(
                "need 1 <= min_difficulty <= max_difficulty <= 5, got "
                f"{self.min_difficulty}, {self.max_difficulty}"
            )
        if not self.math_families + self.code_families:
            raise ValueError("SkillConfig needs at least one family")
        unknown = set(self.family_weights) - set(self.families)
        if unknown:
            raise ValueError(f"family_weights names families not trained on: {sorted(unknown)}")
        if any(w < 0 for w in self.family_weights.values()):
            raise ValueError("family_weights must be >= 0")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.help_rate <= 1.0:
            raise ValueError(f"help_rate must be in [0, 1], got {self.help_rate}")
        if not 0.0 <= self.help_floor <= self.help_rate:
            raise ValueError(f"help_floor must be in [0, help_rate={self.help_rate}], got "
                             f"{self.help_floor}")  # fmt: skip

    @property
    def families(self) -> tuple[str, ...]:
        return self.math_families + self.code_families

    def key(self) -> str:
        """A short hash of the recipe (cache key of a built model)."""
        payload = json.dumps([FORMAT_VERSION, asdict(self)], sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]


def help_share(difficulty: int, cfg: SkillConfig) -> float:
    """Share of targets at ``difficulty`` that are the help request.

    >>> help_share(1, SkillConfig()), help_share(3, SkillConfig())
    (0.0, 0.4)
    >>> help_share(1, SkillConfig(help_floor=0.1)), help_share(2, SkillConfig(help_floor=0.1))
    (0.1, 0.25)
    """
    span = cfg.max_difficulty - cfg.min_difficulty
    if span == 0:
        return cfg.help_floor
    slope = (cfg.help_rate - cfg.help_floor) / span
    return round(cfg.help_floor + slope * (difficulty - cfg.min_difficulty), 12)


def _derived_seed(seed: int, stream: int) -> int:
    """An independent integer seed for sub-stream ``stream`` of ``seed`` (generators take ints)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def prompt_digest(prompt: str) -> str:
    """The key under which a training prompt is recorded (first 16 hex digits of its SHA-1)."""
    return hashlib.sha1(prompt.encode()).hexdigest()[:16]


class TaskSampler:
    """Fresh tasks for every batch slot: a (family, difficulty) drawn per slot, the generator's
    next unused index for it. Deterministic by ``seed``."""

    def __init__(self, cfg: SkillConfig, *, seed: int) -> None:
        names = cfg.families
        w = np.array([cfg.family_weights.get(n, 1.0) for n in names], dtype=float)
        if w.sum() <= 0:
            raise ValueError("family_weights give every family weight 0")
        self.names, self.probs = names, w / w.sum()
        self.difficulties = list(range(cfg.min_difficulty, cfg.max_difficulty + 1))
        # One generator per (family, difficulty). They share ``seed``, so a task id
        # (family/seed/index) names a different task at each difficulty: the sampler tells tasks
        # apart by (family, difficulty, index).
        self.gens = {
            (n, d): make_generator(n, seed=seed, min_difficulty=d, max_difficulty=d)
            for n in names
            for d in self.difficulties
        }
        self.next_index = dict.fromkeys(self.gens, 0)
        self.rng = np.random.default_rng(seed)

    def take(self, n: int) -> list[Task]:
        out = []
        for _ in range(n):
            name = self.names[int(self.rng.choice(len(self.names), p=self.probs))]
            key = (name, self.difficulties[int(self.rng.integers(len(self.difficulties)))])
            out.append(self.gens[key][self.next_index[key]])
            self.next_index[key] += 1
        return out


class WorkedAnswers:
    """An answer-anchor source for the GRPO trainer (`offload_agents.grpo.anchor`): fresh tasks
    of a task group's families, drawn as the warm start draws them (the recipe's family weights
    and difficulties), with the kit's worked answers as targets and never the help request.

    ``groups`` maps a task group's name to its families. A call ``(group, n, index)`` draws
    ``n`` tasks from generators seeded by ``(seed, index)`` alone, so a resumed run draws the
    same rows at the same step. ``exclude``: `prompt_digest` keys of prompts never to draw (an
    experiment's evaluation tasks, so that they stay held out).

    >>> src = WorkedAnswers(SkillConfig(), {"math": ("polynomials",)}, seed=0)
    >>> rows = src("math", 2, 0)
    >>> rows == src("math", 2, 0), rows != src("math", 2, 1), len(rows)
    (True, True, 2)
    """

    def __init__(
        self,
        cfg: SkillConfig,
        groups: Mapping[str, Sequence[str]],
        *,
        seed: int,
        exclude: Collection[str] = frozenset(),
    ) -> None:
        self.exclude = frozenset(exclude)
        self.configs: dict[str, SkillConfig] = {}
        for name, families in groups.items():
            unknown = set(families) - set(cfg.families)
            if unknown or not families:
                raise ValueError(f"anchor group {name!r}: families {sorted(families)} must be "
                                 f"among the recipe's {list(cfg.families)}")  # fmt: skip
            weights = {f: cfg.family_weights.get(f, 1.0) for f in families}
            math_f = tuple(f for f in cfg.math_families if f in families)
            code_f = tuple(f for f in cfg.code_families if f in families)
            self.configs[name] = replace(cfg, math_families=math_f, code_families=code_f,
                                         family_weights=weights)  # fmt: skip
        self.seed = seed

    def __call__(self, group: str, n: int, index: int) -> list[tuple[str, str]]:
        if group not in self.configs:
            raise ValueError(f"no anchor families for task group {group!r}; "
                             f"known: {list(self.configs)}")  # fmt: skip
        sampler = TaskSampler(
            self.configs[group], seed=seeding.derive(self.seed, index, stride=seeding.ANCHOR_STRIDE)
        )
        rows: list[tuple[str, str]] = []
        for _ in range(EXCLUDE_TRIES):
            rows += [(t.prompt, worked_steps(t)) for t in sampler.take(n - len(rows))
                     if prompt_digest(t.prompt) not in self.exclude]  # fmt: skip
            if len(rows) == n:
                return rows
        raise ValueError(f"anchor group {group!r}: fewer than {n} prompts outside the excluded "
                         f"set in {EXCLUDE_TRIES} draws of {n}")  # fmt: skip


EXCLUDE_TRIES = 100
"""Rounds of draws `WorkedAnswers` makes to fill a call's rows outside its excluded prompts."""
DRILL_PROMPT = "Drill:\n"
_STEP = re.compile(r"^-?\d+[+*/]-?\d+=-?\d+$")


def drill_target(steps: Sequence[str]) -> tuple[str, list[bool]]:
    """A drill row's target: ``steps`` (digits reversed, as in `worked_steps`) joined by ``;``,
    and a per-character loss mask that is true on each result and its ``;`` (the operands are
    given, the model learns to compute).

    >>> text, mask = drill_target(["-6+1=-5", "8+5=13"])
    >>> text
    '-6+1=-5;8+5=31'
    >>> "".join(c if m else "." for c, m in zip(text, mask))
    '.....-5;....31'
    """
    text = ";".join(reverse_digits(s) for s in steps)
    mask, on = [], False
    for ch in text:
        if ch == "=":
            on = True
            mask.append(False)
            continue
        mask.append(on)
        if ch == ";":
            on = False
    return text, mask


class DrillSampler:
    """Operation drills: single steps (`math_steps` with one binary operation each) drawn from
    fresh math tasks, shuffled into rows. Its generators are seeded apart from the training
    tasks' (``seed`` should differ from the `TaskSampler`'s)."""

    def __init__(self, cfg: SkillConfig, *, seed: int) -> None:
        weights = {k: v for k, v in cfg.family_weights.items() if k in cfg.math_families}
        math_only = replace(cfg, code_families=(), family_weights=weights)
        self.tasks = TaskSampler(math_only, seed=seed)
        self.rng = np.random.default_rng(seed)
        self.pool: list[str] = []

    def take(self, rows: int, ops: int) -> list[tuple[str, list[bool]]]:
        need = rows * ops
        while len(self.pool) < need:
            for t in self.tasks.take(16):
                self.pool += [s for s in math_steps(t) if _STEP.match(s)]
        order = self.rng.permutation(len(self.pool))
        chosen = [self.pool[i] for i in order[:need]]
        self.pool = [self.pool[i] for i in order[need:]]
        return [drill_target(chosen[r * ops : (r + 1) * ops]) for r in range(rows)]


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
    drills = DrillSampler(cfg, seed=_derived_seed(cfg.seed, 2)) if cfg.drill_rows else None
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


# ---------------------------------------------------------------------------- skill table
def unseen_tasks(
    family: str, difficulty: int, n: int, *, seed: int, seen: set[str], max_draws: int = 20_000
) -> tuple[list[Task], int]:
    """Up to ``n`` tasks of ``family`` at ``difficulty`` whose prompts are not in ``seen``
    (distinct prompts, generator seeded by ``seed``); also returns how many draws were needed."""
    gen = make_generator(family, seed=seed, min_difficulty=difficulty, max_difficulty=difficulty)
    out: list[Any] = []
    prompts: set[str] = set()
    i = 0
    while len(out) < n and i < max_draws:
        t = gen[i]
        i += 1
        key = prompt_digest(t.prompt)
        if key in seen or key in prompts:
            continue
        prompts.add(key)
        out.append(t)
    return out, i


def skill_table(
    model: Any,
    tokenizer: Any,
    families: Iterable[str],
    difficulties: Iterable[int],
    *,
    n: int = 100,
    seed: int = 12_345,
    seen: set[str] | None = None,
    max_new_tokens: int = 160,
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """Local accuracy (greedy answers graded by the project's verifiers and sandbox, help
    requests counted as wrong) per family and difficulty, on prompts never seen in training.

    Returns one row per (family, difficulty): ``accuracy``, ``asked`` (share of help
    requests), ``n`` (tasks graded; fewer than asked for when the task space is small),
    ``seen_share`` (share of draws rejected as seen in training) and ``accuracy_all``
    (accuracy on the first ``n`` draws, seen or not: what a stream of fresh draws meets. Where
    a task space is small the two differ in kind, not only in luck: the unseen draws are then
    the rarer kinds of question).
    """
    from offload_agents.lm_eval import generate_responses
    from offload_gym.scoring import grade_response

    def grade(tasks: list[Task]) -> tuple[float, float]:
        texts, _ = generate_responses(model, tokenizer, tasks, max_new_tokens=max_new_tokens,
                                      batch_size=batch_size)  # fmt: skip
        asked = [SPECIAL_TOKENS[0] in x for x in texts]
        right = [not a and grade_response(t, x).correct
                 for t, x, a in zip(tasks, texts, asked, strict=True)]  # fmt: skip
        return float(np.mean(right)), float(np.mean(asked))

    rows = []
    for family in families:
        for d in difficulties:
            gen = make_generator(family, seed=seed, min_difficulty=d, max_difficulty=d)
            acc_all, _ = grade([gen[i] for i in range(n)])
            tasks, draws = unseen_tasks(family, d, n, seed=seed, seen=seen or set())
            if not tasks:
                rows.append({"family": family, "difficulty": d, "accuracy": None, "asked": None,
                             "n": 0, "seen_share": 1.0, "accuracy_all": acc_all})  # fmt: skip
                continue
            acc, asked = grade(tasks)
            rows.append({"family": family, "difficulty": d, "accuracy": acc, "asked": asked,
                         "n": len(tasks), "seen_share": 1 - len(tasks) / draws,
                         "accuracy_all": acc_all})  # fmt: skip
    return rows


def skill_markdown(rows: list[dict[str, Any]]) -> str:
    """The skill table as Markdown: one row per family, one column per difficulty (accuracy
    on unseen prompts, with the share of help requests in parentheses, then the accuracy on all
    draws where the rows have it).

    >>> print(skill_markdown([{"family": "polynomials", "difficulty": 1, "accuracy": 0.5,
    ...                        "asked": 0.0, "n": 10, "seen_share": 0.2, "accuracy_all": 0.7}]))
    | family | d1 |
    |---|---|
    | polynomials | 0.50 (0.00) / 0.70 |
    """
    diffs = sorted({r["difficulty"] for r in rows})
    fams = list(dict.fromkeys(r["family"] for r in rows))
    cell = {(r["family"], r["difficulty"]): r for r in rows}
    out = ["| family | " + " | ".join(f"d{d}" for d in diffs) + " |",
           "|---|" + "---|" * len(diffs)]  # fmt: skip
    for f in fams:
        parts = []
        for d in diffs:
            r = cell.get((f, d))
            ok = r is not None and r["accuracy"] is not None
            text = f"{r['accuracy']:.2f} ({r['asked']:.2f})" if ok and r is not None else "n/a"
            if r is not None and r.get("accuracy_all") is not None:
                text += f" / {r['accuracy_all']:.2f}"
            parts.append(text)
        out.append(f"| {f} | " + " | ".join(parts) + " |")
    return "\n".join(out)
