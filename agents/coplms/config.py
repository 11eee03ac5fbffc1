"""Configuration of the Co-PLMs experiment: models, devices, schedules and loss weights."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from offload_gym.validation import require_ints

Arch = Literal["gpt2", "llama"]

DOMAINS: dict[str, tuple[str, ...]] = {
    "polynomials": ("polynomials",),
    "derivatives": ("derivatives",),
    "code": ("code_arithmetic", "code_lists"),
    "math": ("arithmetic", "fractions", "linear_equations", "polynomials", "derivatives"),
    "word": ("word_problems",),
    "code_all": ("code_arithmetic", "code_lists", "code_strings", "code_algorithms"),
    "arithmetic": ("arithmetic",),
    "linear_equations": ("linear_equations",),
    "code_arithmetic": ("code_arithmetic",),
    "code_lists": ("code_lists",),
}
"""Task families of each device (or public) domain. The devices' defaults use the first three,
the families in which the skilled-SLM recipe gives tiny models real skill
(`offload_agents.slm.skill`); the single-family domains after ``code_all`` let the public data
and the devices split a domain (`CoPLMsConfig.public_domains`); ``math``, ``word`` and
``code_all`` are there for wider experiments (tiny models learn little of some of them)."""

_SPEC = re.compile(r"^(gpt2|llama):(\d+)x(\d+)(?::(\d+))?$")


@dataclass(frozen=True)
class ModelSpec:
    """A model architecture sized for the shared tokenizer.

    Attributes:
        arch: ``"gpt2"`` or ``"llama"``.
        n_layer: Transformer blocks.
        n_embd: Width.
        n_head: Attention heads.
        n_positions: Longest sequence.
    """

    arch: Arch = "gpt2"
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 2
    n_positions: int = 384

    def __post_init__(self) -> None:
        if self.arch not in ("gpt2", "llama"):
            raise ValueError(f"arch must be 'gpt2' or 'llama', got {self.arch!r}")
        for name in ("n_layer", "n_embd", "n_head", "n_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")

    @classmethod
    def from_flag(cls, text: str) -> ModelSpec:
        """``ARCH:LAYERSxWIDTH[:HEADS]`` (heads 4 where omitted), as the command line writes it.

        >>> ModelSpec.from_flag("llama:2x64")
        ModelSpec(arch='llama', n_layer=2, n_embd=64, n_head=4, n_positions=384)
        """
        m = _SPEC.match(text.strip())
        if not m:
            raise ValueError(f"a model is ARCH:LAYERSxWIDTH[:HEADS] (e.g. gpt2:2x96), got {text!r}")
        arch, layers, width, heads = m.groups()
        return cls(cast(Arch, arch), int(layers), int(width), int(heads or 4))

    def flag(self) -> str:
        """The spec as `from_flag` reads it."""
        return f"{self.arch}:{self.n_layer}x{self.n_embd}:{self.n_head}"


@dataclass(frozen=True)
class DeviceSpec:
    """One edge device: its domain and its SLM's architecture."""

    domain: str
    slm: ModelSpec

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {sorted(DOMAINS)}, got {self.domain!r}")

    @classmethod
    def from_flag(cls, text: str) -> DeviceSpec:
        """``DOMAIN=ARCH:LAYERSxWIDTH[:HEADS]``.

        >>> DeviceSpec.from_flag("code=gpt2:1x128:4").slm.n_embd
        128
        """
        domain, sep, spec = text.strip().partition("=")
        if not sep:
            raise ValueError(f"a device is DOMAIN=ARCH:LAYERSxWIDTH (e.g. code=llama:2x64), "
                             f"got {text!r}")  # fmt: skip
        return cls(domain, ModelSpec.from_flag(spec))

    def flag(self) -> str:
        return f"{self.domain}={self.slm.flag()}"

    @property
    def families(self) -> tuple[str, ...]:
        return DOMAINS[self.domain]


def _default_devices() -> tuple[DeviceSpec, ...]:
    return (
        DeviceSpec("polynomials", ModelSpec("gpt2", n_layer=2, n_embd=96, n_head=4)),
        DeviceSpec("derivatives", ModelSpec("llama", n_layer=2, n_embd=96, n_head=4)),
        DeviceSpec("code_arithmetic", ModelSpec("llama", n_layer=3, n_embd=64, n_head=4)),
    )


@dataclass(frozen=True)
class CoPLMsConfig:
    """Every weight, size and schedule of Co-PLMs and its baselines.

    Every model starts from a *public checkpoint*: trained with the skilled-SLM recipe
    (`offload_agents.slm.skill`: one token per character, short worked steps, fresh tasks) on
    public data covering every device's domain, the server's LLM for ``server_pretrain_steps``
    and the SLMs and the DPM for ``slm_pretrain_steps`` (built once, cached; 0 starts from a
    random initialisation). The devices then hold little private data each.

    Attributes:
        devices: The edge devices (K >= 2), each with its domain and SLM architecture.
        server: The server LLM (the largest model).
        dpm: The distilled proxy models' shared architecture (the only parameters that travel).
        rounds: Communication rounds.
        local_steps: Domain-specific tuning steps of each SLM per round (DST).
        mutual_steps: On-device mutual-learning steps (SLM <-> DPM) per round.
        server_steps: Server-side steps per round (mutual learning LLM <-> each DPM; the LLM's
            own tuning in the server-only reference).
        batch_size: Sequences per step.
        lr: AdamW learning rate of every model during co-tuning.
        alpha: Weight of the KL term on the device.
        beta: Weight of the KL term on the server.
        temperature: Distillation temperature T.
        train_per_device: Private training tasks of each device (few: the low-data regime).
        server_tasks: Public tasks the server tunes on during co-tuning (every domain).
        eval_per_device: Held-out tasks of each device (prompts seen by no model in training).
        min_difficulty: Easiest difficulty of the public data (the public checkpoints' and
            the server's tasks), and of the devices' unless ``device_min_difficulty`` is set.
        max_difficulty: Hardest difficulty of the public data (and of the devices' unless
            ``device_max_difficulty`` is set).
        device_min_difficulty: Easiest difficulty of each device's private data, queries and
            held-out tasks (0: ``min_difficulty``). A device span beyond the public one gives
            each device a private domain the server's data lacks (knowledge that can only
            reach the server through the proxies), while the public data keeps the skills it
            builds on.
        device_max_difficulty: Hardest difficulty of the devices' data (0: ``max_difficulty``).
        public_domains: Domains of the public data (the public checkpoints' training and the
            server's tasks; names of `DOMAINS`). Empty (the default): every device's domain,
            so a device knows nothing the server lacks. Naming other domains gives each device
            whose domain is not among them a private domain, learned from its own data and
            reaching the server only through the proxies, while the public domains carry the
            skills it builds on (for example ``arithmetic`` under ``polynomials``).
        max_new_tokens: Longest generated answer at evaluation (characters). The default
            holds every reference answer of the default devices' span (a derivatives task at
            difficulty 3 needs up to about 110; tested); `prepare` warns where it does not.
        server_pretrain_steps: Steps of the server LLM's public checkpoint (0: random init).
        slm_pretrain_steps: Steps of each SLM's and the DPM's public checkpoint (0: random).
        dpm_distill_steps: Steps distilling the public server LLM into the DPM before
            co-tuning (the *distilled* proxy model; 0: the DPM's own checkpoint as it is).
        unlabeled_per_device: Queries without references each device also holds. Where > 0,
            each round the device's DPM answers them (greedy) and its on-device mutual
            learning draws from the labelled tasks and these DPM-labelled queries alike (the
            same number of steps and rows): how a teacher reaches a device with few labels.
            0: labelled tasks only.
        aggregate: How the server combines the uploaded DPMs: ``"average"`` (the default, our
            reading of the paper's server side: the proxies are averaged, weighted by each
            device's data, into one global DPM that learns mutually with the LLM and goes back
            to every device) or ``"none"`` (each device's DPM learns with the LLM on its own
            and goes back to its device; the earlier reading).
        pretrain_batch: Fresh public tasks per pretraining step.
        threads: Torch threads of every training and evaluation job (the public checkpoints',
            each method's run). The numbers depend on it (reductions split over threads add in
            another order), not on how many jobs run side by side (``workers`` of
            `run_experiment`, one per ``threads`` cores by default).
        seed: Seeds the private data, the held-out tasks and the batch order.
    """

    devices: tuple[DeviceSpec, ...] = field(default_factory=_default_devices)
    server: ModelSpec = ModelSpec("gpt2", n_layer=4, n_embd=128, n_head=4)
    dpm: ModelSpec = ModelSpec("gpt2", n_layer=2, n_embd=128, n_head=4)
    rounds: int = 3
    local_steps: int = 20
    mutual_steps: int = 20
    server_steps: int = 30
    batch_size: int = 16
    lr: float = 5e-4
    alpha: float = 1.0
    beta: float = 1.0
    temperature: float = 1.0
    train_per_device: int = 64
    server_tasks: int = 3000
    eval_per_device: int = 100
    min_difficulty: int = 1
    max_difficulty: int = 2
    device_min_difficulty: int = 0
    device_max_difficulty: int = 3
    public_domains: tuple[str, ...] = ()
    max_new_tokens: int = 128
    server_pretrain_steps: int = 3000
    slm_pretrain_steps: int = 800
    dpm_distill_steps: int = 200
    unlabeled_per_device: int = 0
    aggregate: Literal["average", "none"] = "average"
    pretrain_batch: int = 32
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.devices) < 2:
            raise ValueError("Co-PLMs needs at least 2 devices")
        require_ints(self, ("rounds", "batch_size", "train_per_device", "server_tasks",
                            "eval_per_device", "max_new_tokens", "min_difficulty",
                            "max_difficulty", "pretrain_batch", "threads"))  # fmt: skip
        require_ints(self, ("device_min_difficulty", "device_max_difficulty"), minimum=0)
        require_ints(self, ("local_steps", "mutual_steps", "server_steps", "server_pretrain_steps",
                            "slm_pretrain_steps", "dpm_distill_steps", "unlabeled_per_device"),
                     minimum=0)  # fmt: skip
        if not 1 <= self.min_difficulty <= self.max_difficulty <= 5:
            raise ValueError("need 1 <= min_difficulty <= max_difficulty <= 5, got "
                             f"{self.min_difficulty}, {self.max_difficulty}")  # fmt: skip
        lo, hi = self.device_difficulty
        if not (1 <= lo <= hi <= 5 and self.device_min_difficulty >= 0
                and self.device_max_difficulty >= 0):  # fmt: skip
            got = f"{self.device_min_difficulty}, {self.device_max_difficulty}"
            raise ValueError(
                "the devices' difficulties need 1 <= device_min_difficulty <= "
                f"device_max_difficulty <= 5 (0: the public one), got {got}"
            )
        unknown = [d for d in self.public_domains if d not in DOMAINS]
        if unknown:
            raise ValueError(f"unknown public_domains {unknown}; choose from {sorted(DOMAINS)}")
        if self.aggregate not in ("average", "none"):
            raise ValueError(f"aggregate must be 'average' or 'none', got {self.aggregate!r}")
        for name in ("alpha", "beta"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.lr <= 0 or self.temperature <= 0:
            raise ValueError("lr and temperature must be > 0")
        if len({d.slm.arch for d in self.devices}) < 2:
            raise ValueError("the devices' SLMs must not all share one architecture")

    @property
    def device_difficulty(self) -> tuple[int, int]:
        """The devices' (easiest, hardest) difficulty: their own, or the public span."""
        return (self.device_min_difficulty or self.min_difficulty,
                self.device_max_difficulty or self.max_difficulty)  # fmt: skip

    @property
    def families(self) -> tuple[str, ...]:
        """Every family of every device's domain."""
        return tuple(dict.fromkeys(f for d in self.devices for f in d.families))

    @property
    def public(self) -> tuple[str, ...]:
        """The public data's domains: `public_domains`, or every device's domain."""
        return self.public_domains or tuple(dict.fromkeys(d.domain for d in self.devices))

    @property
    def public_families(self) -> tuple[str, ...]:
        """Every family of the public data (the public checkpoints' and the server's)."""
        return tuple(dict.fromkeys(f for d in self.public for f in DOMAINS[d]))

    @classmethod
    def quick(cls) -> CoPLMsConfig:
        """The few-minute CPU version (smaller public checkpoints, 2 rounds, fewer tasks, a
        one-layer proxy: a smoke test of every method, not a result)."""
        return cls(dpm=ModelSpec("gpt2", n_layer=1, n_embd=128, n_head=4),
                   rounds=2, local_steps=10, mutual_steps=10, server_steps=12,
                   train_per_device=32, server_tasks=400, eval_per_device=16,
                   server_pretrain_steps=100, slm_pretrain_steps=60,
                   dpm_distill_steps=40)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)
