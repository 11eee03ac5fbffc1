"""Evaluate a causal LM as the local model of the text view: one greedy response per task,
graded by the environment (verifier, sandbox, budget ledger)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from offload_agents.slm.template import HELP_REQUEST, format_prompt
from offload_gym.envs import offload_env
from offload_gym.metrics import step_record
from offload_gym.models.hf import generate_batch
from offload_gym.protocol import check_marker
from offload_gym.tasks import Task, TaskGroup, TaskStream, code_stream, math_stream


def eval_stream(n_per_group: int, seed: int) -> TaskStream:
    """A fixed math-then-code evaluation stream (its own seed: unseen in training)."""
    math_tasks = math_stream(n_per_group, seed=seed).draw(np.random.default_rng(seed))[0]
    code_tasks = code_stream(n_per_group, seed=seed).draw(np.random.default_rng(seed))[0]
    return TaskStream([TaskGroup("math", math_tasks, order="given"),
                       TaskGroup("code", code_tasks, order="given")])  # fmt: skip


def generate_responses(
    model: Any,
    tokenizer: Any,
    tasks: Sequence[Task],
    *,
    max_new_tokens: int,
    batch_size: int = 32,
    suppress: Sequence[str] = (),
) -> tuple[list[str], list[float]]:
    """Greedy responses (help requests kept) and their geometric-mean token probability (the
    model's confidence). ``suppress``: strings the model may not write (the offload marker
    forces a local answer)."""
    out = generate_batch(model, tokenizer, [format_prompt(t.prompt) for t in tasks],
                         max_new_tokens=max_new_tokens, batch_size=batch_size,
                         keep_special_tokens=True, suppress=suppress)  # fmt: skip
    return [text for text, _, _ in out], [math.exp(mean) for _, mean, _ in out]


Route = Callable[[str, float, int], "str | None"]
"""``route(response, confidence, index)`` -> the action: a response text (the help request
asks the cloud), or None for the model's own local answer (its greedy response with the help
request suppressed)."""


def evaluate_lm(
    model: Any,
    tokenizer: Any,
    stream: TaskStream,
    *,
    budget: float,
    max_new_tokens: int = 64,
    route: Route | None = None,
    agent: str = "lm",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Run the model over ``stream`` in the text view (hard budget ``budget``) and return step
    records. ``route(response, confidence, index)`` may rewrite a response (e.g. replace it by
    the help request) to model an external router in front of the model, or return None for
    the model's local answer.

    A help request the budget cannot grant is answered locally, as GAPG evaluates ("calls
    beyond the budget are answered locally"): the model's greedy response with the offload
    marker suppressed replaces it (generated on demand; the record keeps ``action="cloud"``,
    ``offload_refused=True`` and ``local_fallback=True``)."""
    tasks, _ = stream.draw(np.random.default_rng(seed))
    responses, confidences = generate_responses(model, tokenizer, tasks,
                                                max_new_tokens=max_new_tokens)  # fmt: skip
    env = gym.make("OffloadStream-v0", tasks=stream, budget=budget, budget_mode="hard")
    env.reset(seed=seed)
    base = offload_env(env)
    marker = base.config.offload_marker
    check_marker(tokenizer, marker)

    local_answer = _LocalAnswers(model, tokenizer, tasks, responses, marker, max_new_tokens)

    records = []
    for i, (text, conf) in enumerate(zip(responses, confidences, strict=True)):
        action = route(text, conf, i) if route is not None else text
        if action is None:  # the model's own answer, asking suppressed
            action = local_answer(i)
        k = action.find(marker)
        fallback = k >= 0 and not base.ledger.can_offload(base.cloud.quote(base.task, action[:k]))
        _, reward, _, _, info = env.step(local_answer(i) if fallback else action)
        label = "cloud" if info["offload_requested"] or fallback else "local"
        rec = step_record(info, label, float(reward), None, agent=agent, seed=seed, episode=0)
        rec["confidence"] = conf
        rec["local_fallback"] = fallback
        rec["offload_refused"] = rec["offload_refused"] or fallback
        records.append(rec)
    env.close()
    return records


class _LocalAnswers:
    """The model's answer without asking, by task index: its greedy response where that does
    not ask; else generated with the marker suppressed, for every asking task at once on the
    first need (one batched call, not one per task)."""

    def __init__(self, model: Any, tokenizer: Any, tasks: Sequence[Task], responses: list[str],
                 marker: str, max_new_tokens: int) -> None:  # fmt: skip
        self.model, self.tokenizer, self.tasks = model, tokenizer, tasks
        self.responses, self.marker, self.max_new_tokens = responses, marker, max_new_tokens
        self.forced: dict[int, str] = {}

    def __call__(self, i: int) -> str:
        if self.marker not in self.responses[i]:
            return self.responses[i]
        if not self.forced:
            asking = [k for k, text in enumerate(self.responses) if self.marker in text]
            texts, _ = generate_responses(self.model, self.tokenizer,
                                          [self.tasks[k] for k in asking],
                                          max_new_tokens=self.max_new_tokens,
                                          suppress=[self.marker])  # fmt: skip
            self.forced.update(zip(asking, texts, strict=True))
        return self.forced[i]


def always_help(text: str, confidence: float, index: int) -> str:
    """A route that sends every task to the cloud (the cloud-only reference)."""
    return HELP_REQUEST


def never_help(text: str, confidence: float, index: int) -> str | None:
    """A route that keeps every task local: the model's own response where it answers, its
    local answer with asking suppressed where it would ask (None: `evaluate_lm` resolves it)."""
    return None
