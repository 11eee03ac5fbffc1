"""Evaluate a causal LM as the local model of the text view: one greedy response per task,
graded by the environment (verifier, sandbox, budget ledger)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from offload_agents.decoding import cache_argument, greedy_tokens
from offload_agents.slm.template import HELP_REQUEST, format_prompt
from offload_gym.envs import offload_env
from offload_gym.metrics import step_record
from offload_gym.models.generation import (
    decode_keeping_specials,
    fit_prompts,
    generate_batch,
    generate_tokens,
)
from offload_gym.protocol import OFFLOAD_MARKER, asks_cloud, check_marker
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
    batch_size: int = 64,
    suppress: Sequence[str] = (),
) -> tuple[list[str], list[float]]:
    """Greedy responses (help requests kept) and their geometric-mean token probability (the
    model's confidence). ``suppress``: strings the model may not write (the offload marker
    forces a local answer). Models with a key/value cache argument decode in our own loop
    (`offload_agents.decoding.greedy_tokens`: the prompts sorted by length, ``batch_size`` at a
    time, ended rows dropped), the same tokens as ``generate``; other models, and a suppressed
    string of several tokens, go through ``generate`` (`generate_batch`)."""
    prompts = [format_prompt(t.prompt) for t in tasks]
    fast = _greedy_responses(model, tokenizer, prompts, max_new_tokens, batch_size, suppress)
    if fast is not None:
        return fast
    out = generate_batch(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                         batch_size=batch_size, keep_special_tokens=True,
                         suppress=suppress)  # fmt: skip
    return [text for text, _, _ in out], [math.exp(mean) for _, mean, _ in out]


def _greedy_responses(
    model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int, batch_size: int,
    suppress: Sequence[str],
) -> tuple[list[str], list[float]] | None:  # fmt: skip
    """`generate_responses` through `greedy_tokens`, or None where it does not apply."""
    banned = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in suppress]
    if any(len(ids) != 1 for ids in banned) or cache_argument(model) is None:
        return None
    ban = [ids[0] for ids in banned]
    ids = fit_prompts(model, tokenizer, prompts, max_new_tokens)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    texts, confs = [""] * len(ids), [0.0] * len(ids)
    for start in range(0, len(order), batch_size):
        part = order[start : start + batch_size]
        got = greedy_tokens(model, tokenizer, [ids[i] for i in part],
                            max_new_tokens=max_new_tokens, banned=ban)  # fmt: skip
        if got is None:
            return None
        for i, tokens, logps in zip(part, *got, strict=True):
            texts[i] = decode_keeping_specials(tokenizer, tokens)
            confs[i] = math.exp(sum(logps) / len(logps)) if logps else math.nan
    return texts, confs


def ask_probabilities(
    model: Any,
    tokenizer: Any,
    tasks: Sequence[Task],
    *,
    marker: str = OFFLOAD_MARKER,
    batch_size: int = 32,
) -> np.ndarray:
    """The model's probability of opening its response with the help request's ``marker`` on
    each task's prompt: the policy's own wish to ask, a routing score (the decision is the
    response's first token in the skilled-SLM format). The marker must be one token of the
    tokenizer (the skilled-SLM kit's tokenizers keep it whole); else a ValueError."""
    import torch

    marker_id = tokenizer.get_vocab().get(marker) if hasattr(tokenizer, "get_vocab") else None
    if marker_id is None:
        raise ValueError(f"ask_probabilities needs the marker {marker!r} as one token of the "
                         "tokenizer (the skilled-SLM kit's tokenizers keep it whole)")  # fmt: skip
    out: list[float] = []
    prompts = [format_prompt(t.prompt) for t in tasks]
    for start in range(0, len(prompts), batch_size):
        ids = fit_prompts(model, tokenizer, prompts[start : start + batch_size], 1)
        g = generate_tokens(model, tokenizer, ids, max_new_tokens=1, scores=True)
        probs = torch.softmax(g.scores[:, 0].float(), dim=-1)[:, marker_id]
        out += probs.tolist()
    return np.asarray(out, dtype=np.float64)


class GreedyMemo:
    """One model's greedy responses by prompt, each decoded once: the evaluations of one model
    state on overlapping tasks (its routed run, its own-answer probe, the forgetting probes,
    the cloud-only reference, a router's calibration) share them. Greedy decoding is a function
    of the weights and the prompt, so sharing changes no response; a memo refuses a model whose
    weights changed after it was made (an optimizer step in between), since its responses
    would be another model's. Pass it as ``evaluate_lm(..., memo=memo)`` to every evaluation of
    the same weights (with the memo's ``max_new_tokens``).
    """

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int) -> None:
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        self._weights = _weights_version(model)
        self._done: dict[tuple[tuple[str, ...], str], tuple[str, float]] = {}
        self.decoded = 0
        """Prompts decoded so far (the rest were shared)."""

    def responses(
        self, tasks: Sequence[Task], suppress: Sequence[str] = ()
    ) -> tuple[list[str], list[float]]:
        """`generate_responses` of ``tasks``, decoding only the prompts not seen before."""
        if _weights_version(self.model) != self._weights:
            raise RuntimeError("the model's weights changed after this GreedyMemo was made; make "
                               "a new memo for the new weights")  # fmt: skip
        ban = tuple(suppress)
        todo = {t.prompt: t for t in tasks if (ban, t.prompt) not in self._done}
        if todo:
            texts, confs = generate_responses(self.model, self.tokenizer, list(todo.values()),
                                              max_new_tokens=self.max_new_tokens,
                                              suppress=ban)  # fmt: skip
            self._done.update(((ban, p), (x, c))
                              for p, x, c in zip(todo, texts, confs, strict=True))  # fmt: skip
            self.decoded += len(todo)
        pairs = [self._done[(ban, t.prompt)] for t in tasks]
        return [x for x, _ in pairs], [c for _, c in pairs]


def _weights_version(model: Any) -> tuple[tuple[int, int], ...]:
    """Identity and in-place version counter of every parameter (an optimizer step, a
    ``load_state_dict`` or any in-place change bumps a counter)."""
    return tuple((id(p), p._version) for p in model.parameters())


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
    memo: GreedyMemo | None = None,
) -> list[dict[str, Any]]:
    """Run the model over ``stream`` in the text view (hard budget ``budget``) and return step
    records. ``route(response, confidence, index)`` may rewrite a response (e.g. replace it by
    the help request) to model an external router in front of the model, or return None for
    the model's local answer.

    A help request the budget cannot grant is answered locally, as GAPG evaluates ("calls
    beyond the budget are answered locally"): the model's greedy response with the offload
    marker suppressed replaces it (generated on demand; the record keeps ``action="cloud"``,
    ``offload_refused=True`` and ``local_fallback=True``).

    ``memo``: a `GreedyMemo` of ``model`` shared with other evaluations of the same weights, so
    each prompt is decoded once across them (None: a memo for this call alone)."""
    if memo is None:
        memo = GreedyMemo(model, tokenizer, max_new_tokens)
    elif memo.model is not model or memo.max_new_tokens != max_new_tokens:
        raise ValueError(f"the memo is of another model or length (max_new_tokens "
                         f"{memo.max_new_tokens}, this call {max_new_tokens})")  # fmt: skip
    tasks, _ = stream.draw(np.random.default_rng(seed))
    responses, confidences = memo.responses(tasks)
    env = gym.make("OffloadStream-v0", tasks=stream, budget=budget, budget_mode="hard")
    env.reset(seed=seed)
    base = offload_env(env)
    marker = base.config.offload_marker
    check_marker(tokenizer, marker)

    local_answer = _LocalAnswers(memo, tasks, responses, marker)

    records = []
    for i, (text, conf) in enumerate(zip(responses, confidences, strict=True)):
        action = route(text, conf, i) if route is not None else text
        if action is None:  # the model's own answer, asking suppressed
            action = local_answer(i)
        asks, partial = asks_cloud(action, marker)
        fallback = asks and not base.can_offload(partial)
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

    def __init__(self, memo: GreedyMemo, tasks: Sequence[Task], responses: list[str],
                 marker: str) -> None:  # fmt: skip
        self.memo, self.tasks, self.responses, self.marker = memo, tasks, responses, marker
        self.forced: dict[int, str] = {}

    def __call__(self, i: int) -> str:
        if not asks_cloud(self.responses[i], self.marker)[0]:
            return self.responses[i]
        if not self.forced:
            asking = [k for k, t in enumerate(self.responses) if asks_cloud(t, self.marker)[0]]
            texts, _ = self.memo.responses([self.tasks[k] for k in asking], suppress=[self.marker])
            self.forced.update(zip(asking, texts, strict=True))
        return self.forced[i]


def always_help(text: str, confidence: float, index: int) -> str:
    """A route that sends every task to the cloud (the cloud-only reference)."""
    return HELP_REQUEST


def never_help(text: str, confidence: float, index: int) -> str | None:
    """A route that keeps every task local: the model's own response where it answers, its
    local answer with asking suppressed where it would ask (None: `evaluate_lm` resolves it)."""
    return None
