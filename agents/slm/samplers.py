"""Fresh tasks for the kit's training and the GRPO trainer's answer anchor: `TaskSampler`
(a new task for every batch slot), `WorkedAnswers` (anchor rows of a task group, never the help
request), `DrillSampler` (operation drills) and `prompt_digest`, the key of a seen prompt."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

import numpy as np

from offload_agents.slm.recipe import SkillConfig
from offload_agents.slm.targets import _STEP, drill_target, math_steps, worked_steps
from offload_gym import seeding
from offload_gym.tasks import Task, make_generator


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
