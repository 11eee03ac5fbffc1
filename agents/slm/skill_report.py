"""The skill table of a model: accuracy per family and difficulty on prompts it never saw in
training (`skill_table`, `skill_markdown`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from offload_agents.slm.samplers import prompt_digest
from offload_gym.protocol import asks_cloud
from offload_gym.tasks import Task, make_generator


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
        asked = [asks_cloud(x)[0] for x in texts]
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
