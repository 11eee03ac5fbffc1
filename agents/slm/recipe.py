"""The recipe of a skilled tiny SLM (`SkillConfig`): families, weights, difficulties, sizes and
schedule, and its cache key (`SkillConfig.key`, with `FORMAT_VERSION`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from offload_gym.validation import require_ints

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
