"""Task streams: a sequence of task groups (math, then code) with switch points between them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from offload_gym.tasks.base import Task, TaskGenerator
from offload_gym.tasks.registry import list_generators, make_generator

MAX_GROUP_SIZE = 100_000
"""Most tasks a generator group draws per episode. Each episode's tasks are drawn at ``reset``
(about 20 microseconds a task: 100,000 tasks take about 2 s), so a larger size is refused with a
clear error instead of a ``reset`` that seems to hang (``num_tasks=10**9`` would take hours and
tens of GB)."""

Order = Literal["random", "given", "difficulty"]
_ORDERS = ("random", "given", "difficulty")


@dataclass(frozen=True)
class TaskGroup:
    """One phase of a stream.

    Attributes:
        name: The group's name, reported as ``info["task_group"]`` (e.g. ``"math"``).
        source: A fixed sequence of tasks, or one or more procedural generators. Generator groups
            draw fresh tasks every episode (random indices from the episode's RNG).
        size: Tasks per episode. Defaults to ``len(source)`` for a fixed source; required for
            generators.
        order: ``"random"`` (shuffled each episode), ``"given"`` (source order; for generators,
            the draw order) or ``"difficulty"`` (ascending: a curriculum).
        weights: For several generators, the probability of each (uniform by default).
    """

    name: str
    source: Sequence[Task] | TaskGenerator | Sequence[TaskGenerator]
    size: int | None = None
    order: Order = "random"
    weights: Sequence[float] | None = None
    _generators: tuple[TaskGenerator, ...] = field(init=False, repr=False, default=())
    _probs: np.ndarray | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"TaskGroup.name must be a non-empty string, got {self.name!r}")
        if self.order not in _ORDERS:
            raise ValueError(f"TaskGroup.order must be one of {_ORDERS}, got {self.order!r}")
        src = self.source
        gens: tuple[TaskGenerator, ...] = ()
        if isinstance(src, TaskGenerator):
            gens = (src,)
        elif isinstance(src, Sequence) and src and all(isinstance(s, TaskGenerator) for s in src):
            gens = tuple(src)  # type: ignore[arg-type]
        elif isinstance(src, Sequence) and not isinstance(src, str):
            if not src:
                raise ValueError(f"TaskGroup {self.name!r}: source is empty")
            bad = [type(t).__name__ for t in src if not isinstance(t, Task)]
            if bad:
                raise TypeError(
                    f"TaskGroup {self.name!r}: source must hold Task objects or TaskGenerators, "
                    f"found {sorted(set(bad))}"
                )
            if self.size is not None and not 1 <= self.size <= len(src):
                raise ValueError(
                    f"TaskGroup {self.name!r}: size must be in [1, {len(src)}], got {self.size}"
                )
        else:
            raise TypeError(
                f"TaskGroup {self.name!r}: source must be a sequence of Task, a TaskGenerator or "
                f"a sequence of TaskGenerators, got {type(src).__name__}"
            )
        if gens:
            if self.size is None or self.size < 1:
                raise ValueError(
                    f"TaskGroup {self.name!r}: a generator group needs size >= 1, got {self.size}"
                )
            if self.size > MAX_GROUP_SIZE:
                raise ValueError(
                    f"TaskGroup {self.name!r}: size {self.size} is above the maximum of "
                    f"{MAX_GROUP_SIZE:,} tasks per episode (tasks are drawn at reset); use "
                    "several episodes or several groups"
                )
            weights = (
                np.ones(len(gens)) if self.weights is None else np.asarray(self.weights, float)
            )
            if weights.shape != (len(gens),) or (weights < 0).any() or weights.sum() <= 0:
                raise ValueError(
                    f"TaskGroup {self.name!r}: weights must be {len(gens)} non-negative numbers "
                    f"with a positive sum, got {self.weights!r}"
                )
            object.__setattr__(self, "_probs", weights / weights.sum())
        object.__setattr__(self, "_generators", gens)

    @property
    def episode_size(self) -> int:
        if self.size is not None:
            return self.size
        return len(self.source)  # type: ignore[arg-type]

    def draw(self, rng: np.random.Generator) -> list[Task]:
        """The group's tasks for one episode, drawn from ``rng``."""
        n = self.episode_size
        if self._generators:
            which = rng.choice(len(self._generators), size=n, p=self._probs)
            indices = rng.integers(0, 2**62, size=n)
            tasks = [self._generators[w][int(i)] for w, i in zip(which, indices, strict=True)]
            if self.order == "difficulty":
                tasks.sort(key=lambda t: t.difficulty)
            return tasks
        tasks = list(self.source)  # type: ignore[arg-type]
        if self.order == "random":
            perm = rng.permutation(len(tasks))
            tasks = [tasks[i] for i in perm[:n]]
        elif self.order == "difficulty":
            tasks = sorted(tasks, key=lambda t: t.difficulty)[:n]
        else:
            tasks = tasks[:n]
        return tasks


class TaskStream:
    """An ordered sequence of `TaskGroup`; one episode is one pass over all groups.

    >>> from offload_gym.tasks import math_stream
    >>> stream = math_stream(num_tasks=10, seed=0)
    >>> len(stream), stream.group_names
    (10, ('math',))
    """

    def __init__(self, groups: Sequence[TaskGroup]) -> None:
        if not groups:
            raise ValueError("TaskStream needs at least one TaskGroup")
        for g in groups:
            if not isinstance(g, TaskGroup):
                raise TypeError(f"TaskStream groups must be TaskGroup, got {type(g).__name__}")
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise ValueError(f"TaskStream group names must be unique, got {names}")
        self.groups = tuple(groups)

    @classmethod
    def from_tasks(cls, tasks: Sequence[Task], *, name: str | None = None) -> TaskStream:
        """A one-group stream over fixed tasks, in the given order."""
        tasks = list(tasks)
        if not tasks:
            raise ValueError("cannot build a TaskStream from an empty task list")
        return cls([TaskGroup(name or tasks[0].domain, tasks, order="given")])

    def __len__(self) -> int:
        return sum(g.episode_size for g in self.groups)

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    @property
    def switch_points(self) -> tuple[int, ...]:
        """Step indices at which a new group starts (excluding 0)."""
        points, total = [], 0
        for g in self.groups[:-1]:
            total += g.episode_size
            points.append(total)
        return tuple(points)

    def draw(self, rng: np.random.Generator) -> tuple[list[Task], list[int]]:
        """One episode: the tasks in order, and the group index of each."""
        tasks: list[Task] = []
        group_of: list[int] = []
        for k, g in enumerate(self.groups):
            drawn = g.draw(rng)
            tasks.extend(drawn)
            group_of.extend([k] * len(drawn))
        return tasks, group_of

    def __repr__(self) -> str:
        parts = ", ".join(f"{g.name}:{g.episode_size}" for g in self.groups)
        return f"TaskStream({parts})"


def math_stream(
    num_tasks: int = 100,
    *,
    seed: int = 0,
    families: Sequence[str] | None = None,
    min_difficulty: int = 1,
    max_difficulty: int = 5,
    order: Order = "random",
) -> TaskStream:
    """A one-group stream of procedural math tasks drawn fresh each episode.

    Args:
        num_tasks: Tasks per episode.
        seed: Seed of the generators (tasks are a function of it and the episode's RNG).
        families: Math families to mix uniformly (all registered math families by default).
        min_difficulty: Lowest difficulty.
        max_difficulty: Highest difficulty.
        order: Order within the episode (``"difficulty"`` gives an easy-to-hard curriculum).
    """
    group = _procedural_group("math", num_tasks, seed, families, min_difficulty, max_difficulty,
                              order)  # fmt: skip
    return TaskStream([group])


def code_stream(
    num_tasks: int = 100,
    *,
    seed: int = 0,
    families: Sequence[str] | None = None,
    min_difficulty: int = 1,
    max_difficulty: int = 5,
    order: Order = "random",
) -> TaskStream:
    """A one-group stream of procedural code tasks drawn fresh each episode (arguments as in
    `math_stream`)."""
    group = _procedural_group("code", num_tasks, seed, families, min_difficulty, max_difficulty,
                              order)  # fmt: skip
    return TaskStream([group])


def math_code_stream(
    num_tasks: int = 100,
    *,
    switch_point: int | None = None,
    seed: int = 0,
    min_difficulty: int = 1,
    max_difficulty: int = 5,
    order: Order = "random",
) -> TaskStream:
    """The continual-learning stream: a ``math`` group, then a ``code`` group.

    Args:
        num_tasks: Tasks per episode, both groups together.
        switch_point: The step at which code starts (``num_tasks // 2`` by default).
        seed: Seed of the generators.
        min_difficulty: Lowest difficulty.
        max_difficulty: Highest difficulty.
        order: Order within each group.
    """
    switch = num_tasks // 2 if switch_point is None else switch_point
    if not 1 <= switch < num_tasks:
        raise ValueError(
            f"switch_point must be in [1, num_tasks - 1] = [1, {num_tasks - 1}], got {switch}"
        )
    args = (seed, None, min_difficulty, max_difficulty, order)
    return TaskStream(
        [
            _procedural_group("math", switch, *args),
            _procedural_group("code", num_tasks - switch, *args),
        ]
    )


def _procedural_group(
    domain: str,
    size: int,
    seed: int,
    families: Sequence[str] | None,
    min_difficulty: int,
    max_difficulty: int,
    order: Order,
) -> TaskGroup:
    names = list(families) if families is not None else list_generators(domain)
    if not names:
        raise ValueError(f"families must name at least one {domain} family")
    gens = [
        make_generator(n, seed=seed, min_difficulty=min_difficulty, max_difficulty=max_difficulty)
        for n in names
    ]
    wrong = [g.name for g in gens if g.domain != domain]
    if wrong:
        raise ValueError(f"families {wrong} are not {domain} families")
    return TaskGroup(domain, gens, size=size, order=order)
