"""Evaluate a causal LM as the local model of the text view: one greedy response per task,
graded by the environment (verifier, sandbox, budget ledger)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from offload_agents.evaluation import step_record
from offload_agents.slm.template import HELP_REQUEST, format_prompt
from offload_gym.models.hf import generate_batch
from offload_gym.tasks import Task, TaskGroup, TaskStream, code_stream, math_stream


def eval_stream(n_per_group: int, seed: int) -> TaskStream:
    """A fixed math-then-code evaluation stream (its own seed: unseen in training)."""
    math_tasks = math_stream(n_per_group, seed=seed).draw(np.random.default_rng(seed))[0]
    code_tasks = code_stream(n_per_group, seed=seed).draw(np.random.default_rng(seed))[0]
    return TaskStream([TaskGroup("math", math_tasks, order="given"),
                       TaskGroup("code", code_tasks, order="given")])  # fmt: skip


def generate_responses(
    model: Any, tokenizer: Any, tasks: Sequence[Task], *, max_new_tokens: int, batch_size: int = 32
) -> tuple[list[str], list[float]]:
    """Greedy responses (help requests kept) and their geometric-mean token probability (the
    model's confidence)."""
    out = generate_batch(model, tokenizer, [format_prompt(t.prompt) for t in tasks],
                         max_new_tokens=max_new_tokens, batch_size=batch_size,
                         keep_special_tokens=True)  # fmt: skip
    return [text for text, _, _ in out], [math.exp(mean) for _, mean, _ in out]


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
