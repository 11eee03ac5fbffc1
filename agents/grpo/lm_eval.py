"""Evaluate a causal LM as the local model of the text view: one greedy response per task,
graded by the environment (verifier, sandbox, budget ledger)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from offload_agents.evaluation import step_record
from offload_agents.slm.template import HELP_REQUEST, format_prompt
from offload_gym.tasks import Task, TaskGroup, TaskStream, code_stream, math_stream


def eval_stream(n_per_group: int, seed: int) -> TaskStream:
    """A fixed math-then-code evaluation stream (its own seed: unseen in training)."""
    math_tasks = math_stream(n_per_group, seed=seed).draw(np.random.default_rng(seed))[0]
    code_tasks = code_stream(n_per_group, seed=seed).draw(np.random.default_rng(seed))[0]
    return TaskStream([TaskGroup("math", math_tasks, order="given"),
                       TaskGroup("code", code_tasks, order="given")])  # fmt: skip


@torch.no_grad()
def generate_responses(
    model: Any, tokenizer: Any, tasks: Sequence[Task], *, max_new_tokens: int, batch_size: int = 32
) -> tuple[list[str], list[float]]:
    """Greedy responses and their mean token log-probability (the model's confidence)."""
    tokenizer.padding_side = "left"
    model.eval()
    texts, confidences = [], []
    for start in range(0, len(tasks), batch_size):
        chunk = tasks[start : start + batch_size]
        enc = tokenizer([format_prompt(t.prompt) for t in chunk], return_tensors="pt",
                        padding=True)  # fmt: skip
        out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id, output_scores=True,
                             return_dict_in_generate=True)  # fmt: skip
        new = out.sequences[:, enc["input_ids"].shape[1] :]
        scores = torch.stack(out.scores, dim=1).log_softmax(-1)  # (b, n, V)
        token_logp = scores.gather(-1, new[..., None]).squeeze(-1)
        alive = torch.ones_like(new, dtype=torch.bool)
        ended = (new == tokenizer.eos_token_id).cumsum(1) > 0
        alive[:, 1:] = ~ended[:, :-1]
        for b in range(new.shape[0]):
            ids = new[b][alive[b]]
            texts.append(tokenizer.decode(ids, skip_special_tokens=False)
                         .replace(tokenizer.eos_token, ""))  # fmt: skip
            confidences.append(float(token_logp[b][alive[b]].mean().exp()))
    return texts, confidences


def evaluate_lm(
    model: Any,
    tokenizer: Any,
    stream: TaskStream,
    *,
    budget: float,
    max_new_tokens: int = 64,
    route: Callable[[str, float, int], str] | None = None,
    agent: str = "lm",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Run the model over ``stream`` in the text view (hard budget ``budget``) and return step
    records. ``route(response, confidence, index)`` may rewrite a response (e.g. replace it by
    the help request) to model an external router in front of the model."""
    tasks, _ = stream.draw(np.random.default_rng(seed))
    responses, confidences = generate_responses(model, tokenizer, tasks,
                                                max_new_tokens=max_new_tokens)  # fmt: skip
    env = gym.make("OffloadStream-v0", tasks=stream, budget=budget, budget_mode="hard")
    env.reset(seed=seed)
    records = []
    for i, (text, conf) in enumerate(zip(responses, confidences, strict=True)):
        action = route(text, conf, i) if route is not None else text
        _, reward, _, _, info = env.step(action)
        label = "cloud" if info["offload_requested"] else "local"
        rec = step_record(info, label, float(reward), None, agent=agent, seed=seed, episode=0)
        rec["confidence"] = conf
        records.append(rec)
    env.close()
    return records


def always_help(text: str, confidence: float, index: int) -> str:
    """A route that sends every task to the cloud (the cloud-only reference)."""
    return HELP_REQUEST


def never_help(text: str, confidence: float, index: int) -> str:
    """A route that strips help requests: the local model answers everything."""
    return text.replace("<unknown>", "")
