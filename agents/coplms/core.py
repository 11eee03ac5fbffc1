"""Building blocks of Co-PLMs: models of each architecture on one shared tokenizer, domain data,
training steps (task, mutual, server-side), FedAvg, communication accounting and evaluation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from offload_agents.coplms.config import DOMAINS, ModelSpec
from offload_agents.coplms.losses import answer_ce, mutual_losses, next_token_mask, token_kl
from offload_agents.slm.kit import FAST_GELU, encode_answers
from offload_agents.slm.skill import prompt_digest, worked_steps
from offload_agents.slm.template import format_prompt
from offload_gym.tasks import Task, make_generator


def build_model(spec: ModelSpec, tokenizer: Any, *, seed: int) -> Any:
    """A freshly initialised causal LM of ``spec``'s architecture for the shared tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        eos = tokenizer.eos_token_id
        common = {"vocab_size": len(tokenizer), "bos_token_id": eos, "eos_token_id": eos,
                  "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
        if spec.arch == "gpt2":
            # No dropout: it would draw from torch's global RNG (and these runs are short).
            gpt2 = GPT2Config(n_positions=spec.n_positions, n_embd=spec.n_embd,
                             n_layer=spec.n_layer, n_head=spec.n_head, resid_pdrop=0.0,
                              embd_pdrop=0.0, attn_pdrop=0.0, activation_function=FAST_GELU,
                              **common)  # fmt: skip
            return GPT2LMHeadModel(gpt2)
        cfg = LlamaConfig(hidden_size=spec.n_embd, intermediate_size=spec.n_embd * 4,
                          num_hidden_layers=spec.n_layer, num_attention_heads=spec.n_head,
                          num_key_value_heads=spec.n_head,
                          max_position_embeddings=spec.n_positions, **common)  # fmt: skip
        return LlamaForCausalLM(cfg)


def parameter_bytes(model: Any) -> int:
    """Bytes to send a model's parameters (its state dict as stored: float32 here)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def domain_tasks(
    domain: str,
    n: int,
    *,
    seed: int,
    min_difficulty: int = 1,
    max_difficulty: int,
    exclude: set[str] | None = None,
    max_draws: int = 50_000,
) -> list[Task]:
    """``n`` tasks of ``domain``, its families interleaved (deterministic in ``seed``), with
    distinct prompts none of which is in ``exclude`` (digests, `prompt_digest`). Where a
    family's task space runs out within ``max_draws`` draws the other families fill its share
    (fewer than ``n`` only when all run out)."""
    families = DOMAINS[domain]
    taken: set[str] = set(exclude or ())
    lists = []
    for f in families:
        gen = make_generator(f, seed=seed, min_difficulty=min_difficulty,
                             max_difficulty=max_difficulty)  # fmt: skip
        out: list[Task] = []
        i = 0
        while len(out) < n and i < max_draws:
            t = gen[i]
            i += 1
            key = prompt_digest(t.prompt)
            if key not in taken:
                taken.add(key)
                out.append(t)
        lists.append(out)
    return interleave(lists)[:n]


def interleave(lists: Sequence[Sequence[Task]]) -> list[Task]:
    """Round-robin over ``lists``; one that runs out leaves its turns to the rest.

    >>> interleave([[1, 2, 3], [10], [20, 21]])
    [1, 10, 20, 2, 21, 3]
    """
    return [x[i] for i in range(max(map(len, lists), default=0)) for x in lists if i < len(x)]


class Batches:
    """An endless stream of shuffled batches over ``tasks`` (epoch after epoch), the loss on
    the target only: by default the skilled-SLM format (`worked_steps`: short steps then
    ``####`` and the answer; a code task's function body), or ``targets`` (one per task, e.g.
    a teacher's answers to unlabeled queries)."""

    def __init__(
        self,
        tokenizer: Any,
        tasks: Sequence[Task],
        batch_size: int,
        *,
        seed: int,
        max_len: int,
        targets: Sequence[str] | None = None,
    ) -> None:
        if not tasks:
            raise ValueError("no tasks to train on")
        if targets is not None and len(targets) != len(tasks):
            raise ValueError(f"one target per task: {len(targets)} for {len(tasks)}")
        self.tokenizer, self.tasks = tokenizer, list(tasks)
        self.targets = list(targets) if targets is not None else [worked_steps(t) for t in tasks]
        self.batch_size, self.max_len = batch_size, max_len
        self.rng = np.random.default_rng(seed)
        self._it = self._epochs()

    def _epochs(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            order = self.rng.permutation(len(self.tasks))
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                prompts = [format_prompt(self.tasks[i].prompt) for i in rows]
                answers = [self.targets[i] for i in rows]
                yield encode_answers(self.tokenizer, prompts, answers, self.max_len)

    def __next__(self) -> dict[str, torch.Tensor]:
        return next(self._it)

    def __iter__(self) -> Batches:
        return self


def _logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def _update(opts: Sequence[torch.optim.Optimizer], loss: torch.Tensor, models: Sequence[Any]):
    for opt in opts:
        opt.zero_grad()
    loss.backward()
    for m in models:
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    for opt in opts:
        opt.step()


def task_steps(model: Any, opt: torch.optim.Optimizer, batches: Batches, steps: int) -> float:
    """``steps`` of next-token cross-entropy on the answers; returns the last loss."""
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        batch = next(batches)
        loss = answer_ce(_logits(model, batch), batch["labels"])
        _update([opt], loss, [model])
    return float(loss.detach())


def mutual_steps(
    a: Any,
    b: Any,
    opt_a: torch.optim.Optimizer | None,
    opt_b: torch.optim.Optimizer | None,
    batches: Batches,
    steps: int,
    *,
    alpha: float,
    temperature: float,
) -> float:
    """Deep mutual learning between ``a`` and ``b`` on the same batches. A model whose optimizer
    is None is a frozen teacher (one-way distillation into the other). Returns the last loss."""
    a.train()
    b.train()
    total = torch.tensor(float("nan"))
    for _ in range(steps):
        batch = next(batches)
        la, lb = mutual_losses(_logits(a, batch), _logits(b, batch), batch["labels"],
                               alpha=alpha, temperature=temperature)  # fmt: skip
        pairs = [(opt, loss, m) for opt, loss, m in ((opt_a, la, a), (opt_b, lb, b))
                 if opt is not None]  # fmt: skip
        total = sum((loss for _, loss, _ in pairs), torch.tensor(0.0))
        _update([o for o, _, _ in pairs], total, [m for _, _, m in pairs])
    return float(total.detach())


def server_steps(
    llm: Any,
    dpms: Sequence[Any],
    opt_llm: torch.optim.Optimizer | None,
    opt_dpms: Sequence[torch.optim.Optimizer],
    batches: Batches,
    steps: int,
    *,
    beta: float,
    temperature: float,
) -> float:
    """Server-side mutual learning on the server's data: each DPM learns from the LLM
    (CE + beta KL(LLM || DPM)) and the LLM from the DPMs (CE + beta * mean_k KL(DPM_k || LLM)).
    With ``opt_llm`` None the LLM is a frozen teacher (one-way distillation)."""
    models = [llm, *dpms]
    for m in models:
        m.train()
    total = torch.tensor(float("nan"))
    for _ in range(steps):
        batch = next(batches)
        mask = next_token_mask(batch["labels"])
        z_llm = _logits(llm, batch)
        losses, z_dpms = [], []
        for dpm in dpms:
            z = _logits(dpm, batch)
            z_dpms.append(z)
            kl = token_kl(z[:, :-1], z_llm[:, :-1], mask, temperature=temperature)
            losses.append(answer_ce(z, batch["labels"]) + beta * kl)
        opts = list(opt_dpms)
        trained = list(dpms)
        if opt_llm is not None:
            llm_loss = answer_ce(z_llm, batch["labels"])
            if dpms:
                kls = [token_kl(z_llm[:, :-1], z[:, :-1], mask, temperature=temperature)
                       for z in z_dpms]  # fmt: skip
                llm_loss = llm_loss + beta * torch.stack(kls).mean()
            losses.append(llm_loss)
            opts.append(opt_llm)
            trained.append(llm)
        total = torch.stack(losses).sum()
        _update(opts, total, trained)
    return float(total.detach())


def fedavg(models: Sequence[Any], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """The weighted average of models of one architecture (FedAvg), as a state dict."""
    if len(models) != len(weights) or not models:
        raise ValueError("one weight per model, at least one model")
    w = torch.tensor(weights, dtype=torch.float64)
    w = w / w.sum()
    states = [m.state_dict() for m in models]
    avg = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            stacked = torch.stack([s[key].double() for s in states])
            avg[key] = (w.view(-1, *[1] * first.dim()) * stacked).sum(0).to(first.dtype)
        else:
            avg[key] = first.clone()
    return avg
