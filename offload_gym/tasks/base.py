"""The `Task` record and the base class of procedural task generators.

A generator is addressable by index and deterministic: ``gen[i]`` always returns the same task for
the same ``seed`` and config, because every random draw for item ``i`` comes from a stream keyed
by ``(family, seed, i)`` (see `Draws`), whatever was generated before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

from offload_gym.validation import reject_unknown

DOMAINS = ("math", "code")
"""Domains the environments know. A task's domain selects its verifier."""

MIN_DIFFICULTY = 1
_INV_2_53 = 2.0**-53
MAX_DIFFICULTY = 5


@dataclass(frozen=True)
class Task:
    """One problem of a task stream.

    Attributes:
        id: Unique, stable identifier (the cloud cache and the logs key on it).
        domain: ``"math"`` or ``"code"``; selects the verifier.
        prompt: The problem statement shown to the model.
        answer: The reference answer (for math, a string the checker compares against).
        difficulty: 1 (easiest) to 5 (hardest).
        solution: A worked reference solution ending in the answer, when the source has one
            (procedural generators always do; used for supervised warm starts).
        metadata: Free-form details of the source (family, parameters, original fields).
        entry_point: Code tasks: the name of the function under test.
        tests: Code tasks: trusted test source, run by the sandbox against the candidate's
            function (a ``check(candidate)`` function, HumanEval style, or plain asserts).
        code_prefix: Code tasks: code placed before a completion (imports and the function's
            signature and docstring), so that a body-only completion and a complete definition
            both run.
    """

    id: str
    domain: str
    prompt: str
    answer: str
    difficulty: int = 1
    solution: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    entry_point: str = ""
    tests: str = ""
    code_prefix: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Task.id must be a non-empty string, got {self.id!r}")
        if self.domain not in DOMAINS:
            raise ValueError(f"Task.domain must be one of {DOMAINS}, got {self.domain!r}")
        if not isinstance(self.prompt, str) or not self.prompt:
            raise ValueError(f"Task {self.id!r}: prompt must be a non-empty string")
        if not isinstance(self.answer, str):
            raise ValueError(f"Task {self.id!r}: answer must be a string, got {type(self.answer)}")
        if (
            isinstance(self.difficulty, bool)
            or not isinstance(self.difficulty, int | np.integer)
            or not MIN_DIFFICULTY <= self.difficulty <= MAX_DIFFICULTY
        ):
            raise ValueError(
                f"Task {self.id!r}: difficulty must be an integer in "
                f"[{MIN_DIFFICULTY}, {MAX_DIFFICULTY}], got {self.difficulty!r}"
            )
        if self.domain == "code":
            if not self.entry_point.isidentifier():
                raise ValueError(
                    f"code task {self.id!r}: entry_point must name a function, "
                    f"got {self.entry_point!r}"
                )
            if not self.tests.strip():
                raise ValueError(f"code task {self.id!r}: tests must not be empty")

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(frozen=True)
class GeneratorConfig:
    """Config shared by every procedural family.

    Attributes:
        min_difficulty: Lowest difficulty drawn (1-5).
        max_difficulty: Highest difficulty drawn (1-5). Each item draws its difficulty uniformly
            in ``[min_difficulty, max_difficulty]``; set both equal for a fixed difficulty.
    """

    min_difficulty: int = 1
    max_difficulty: int = 5

    def __post_init__(self) -> None:
        for name in ("min_difficulty", "max_difficulty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int in [1, 5], got {value!r}")
            if not MIN_DIFFICULTY <= value <= MAX_DIFFICULTY:
                raise ValueError(f"{name} must be in [1, 5], got {value}")
        if self.min_difficulty > self.max_difficulty:
            raise ValueError(
                f"min_difficulty ({self.min_difficulty}) must be <= max_difficulty "
                f"({self.max_difficulty})"
            )


def build_config(config_cls: type[GeneratorConfig], values: Mapping[str, Any]) -> GeneratorConfig:
    """Build ``config_cls(**values)``, refusing unknown keys with the list of valid ones."""
    reject_unknown(values, (f.name for f in dataclasses.fields(config_cls)), "config key")
    return config_cls(**values)


class Draws:
    """The random source of one generated item: a BLAKE2b counter-mode stream keyed by
    ``(family, seed, index)``.

    Each 64-byte block yields eight uniforms with 53-bit resolution. Keyed hashing gives every
    item an independent, reproducible stream, as ``numpy.random.SeedSequence([seed, index])``
    would, at about a tenth of the cost: building a ``SeedSequence`` and a ``PCG64`` took about
    19 microseconds an item here, a third of an environment step. The API mirrors the
    `numpy.random.Generator` methods the families use (``integers`` with an exclusive ``high``,
    ``random``).
    """

    __slots__ = ("_block", "_buf", "_i", "_key")

    def __init__(self, key: str) -> None:
        self._key = key.encode()
        self._block = 0
        self._buf: list[float] = []
        self._i = 0

    def random(self) -> float:
        """A uniform float in [0, 1)."""
        if self._i == len(self._buf):
            digest = hashlib.blake2b(
                self._key + self._block.to_bytes(4, "little"), digest_size=64
            ).digest()
            self._buf = [(x >> 11) * _INV_2_53 for x in struct.unpack("<8Q", digest)]
            self._block += 1
            self._i = 0
        u = self._buf[self._i]
        self._i += 1
        return u

    def integers(self, low: int, high: int, size: int | None = None) -> Any:
        """Uniform integers in ``[low, high)``; a list when ``size`` is given."""
        if high <= low:
            raise ValueError(f"integers: high ({high}) must be > low ({low})")
        if size is None:
            return low + int(self.random() * (high - low))
        return [low + int(self.random() * (high - low)) for _ in range(size)]


class Draft(NamedTuple):
    """One generated item before it becomes a `Task`: what a family's ``_generate`` returns
    (code families put ``entry_point``, ``tests`` and ``code_prefix`` in ``metadata``; they
    become the task's own fields)."""

    prompt: str
    answer: str
    solution: str
    metadata: dict[str, Any]


class TaskGenerator(ABC):
    """A procedural family of tasks, addressable by index.

    Subclasses set ``name``, ``domain`` and ``config_class`` and implement :meth:`_generate`,
    drawing every random number from the ``rng`` they are given.
    """

    name: ClassVar[str]
    domain: ClassVar[str] = "math"
    config_class: ClassVar[type[GeneratorConfig]] = GeneratorConfig

    def __init__(self, config: GeneratorConfig | None = None, *, seed: int = 0) -> None:
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} expects a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.config = config
        self.seed = int(seed)

    def __getitem__(self, index: int) -> Task:
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or index < 0:
            raise IndexError(f"{self.name}: index must be a non-negative int, got {index!r}")
        index = int(index)
        rng = Draws(f"{self.name}\x1f{self.seed}\x1f{index}")
        cfg = self.config
        difficulty = int(rng.integers(cfg.min_difficulty, cfg.max_difficulty + 1))
        prompt, answer, solution, meta = self._generate(rng, difficulty)
        code_fields = {k: meta.pop(k) for k in ("entry_point", "tests", "code_prefix") if k in meta}
        return Task(
            id=f"{self.name}/{self.seed}/{index}",
            domain=self.domain,
            prompt=prompt,
            answer=answer,
            difficulty=difficulty,
            solution=solution,
            metadata={"family": self.name, "seed": self.seed, "index": index, **meta},
            **code_fields,
        )

    def take(self, n: int, start: int = 0) -> list[Task]:
        """The ``n`` tasks at indices ``start, ..., start + n - 1``: a fixed dataset."""
        return [self[i] for i in range(start, start + n)]

    def __iter__(self) -> Iterator[Task]:
        i = 0
        while True:
            yield self[i]
            i += 1

    @abstractmethod
    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        """One item of ``difficulty``, every random number drawn from ``rng``."""

    @classmethod
    def worked_steps(cls, task: Task) -> list[str] | None:
        """The family's solution of ``task`` as short steps of one binary operation each
        (``"3*4=12"``), read from its metadata; None where the family has no such form (its
        reference ``solution`` serves instead). Tiny models learn to compute from these (the
        skilled-SLM kit, `offload_agents.slm.targets`)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed}, config={self.config})"
