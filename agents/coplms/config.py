"""Configuration of the Co-PLMs experiment: models, devices, schedules and loss weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from offload_gym.validation import require_ints

Arch = Literal["gpt2", "llama"]

DOMAINS: dict[str, tuple[str, ...]] = {
    "math": ("arithmetic", "fractions", "linear_equations", "polynomials", "derivatives"),
    "word": ("word_problems",),
    "code": ("code_arithmetic", "code_lists", "code_strings", "code_algorithms"),
}
"""Task families of each device domain."""


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


@dataclass(frozen=True)
class DeviceSpec:
    """One edge device: its domain and its SLM's architecture."""

    domain: str
    slm: ModelSpec

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {sorted(DOMAINS)}, got {self.domain!r}")


def _default_devices() -> tuple[DeviceSpec, ...]:
    return (
        DeviceSpec("math", ModelSpec("gpt2", n_layer=2, n_embd=96, n_head=4)),
        DeviceSpec("code", ModelSpec("llama", n_layer=2, n_embd=64, n_head=4)),
        DeviceSpec("word", ModelSpec("gpt2", n_layer=1, n_embd=128, n_head=4)),
    )


@dataclass(frozen=True)
class CoPLMsConfig:
    """Every weight and schedule of Co-PLMs and its baselines.

    Attributes:
        devices: The edge devices (K >= 2), each with its domain and SLM architecture.
        server: The server LLM (the largest model).
        dpm: The distilled proxy models' shared architecture (the only parameters that travel).
        rounds: Communication rounds.
        local_steps: Domain-specific tuning steps of each SLM per round (DST).
        mutual_steps: On-device mutual-learning steps (SLM <-> DPM) per round.
        server_steps: Server-side mutual-learning steps (LLM <-> each DPM) per round.
        batch_size: Sequences per step.
        lr: AdamW learning rate of every model.
        alpha: Weight of the KL term on the device.
        beta: Weight of the KL term on the server.
        temperature: Distillation temperature T.
        train_per_device: Private training tasks of each device.
        server_tasks: Tasks the server holds (a mix of every domain, disjoint from the devices').
        eval_per_device: Held-out tasks of each device.
        max_difficulty: Hardest task difficulty drawn.
        max_new_tokens: Longest generated answer at evaluation.
        vocab_size: Size of the shared tokenizer's vocabulary.
        seed: Seeds data, initialisation and batch order.
    """

    devices: tuple[DeviceSpec, ...] = field(default_factory=_default_devices)
    server: ModelSpec = ModelSpec("gpt2", n_layer=2, n_embd=128, n_head=4)
    dpm: ModelSpec = ModelSpec("gpt2", n_layer=1, n_embd=64, n_head=2)
    rounds: int = 3
    local_steps: int = 20
    mutual_steps: int = 10
    server_steps: int = 10
    batch_size: int = 8
    lr: float = 3e-3
    alpha: float = 1.0
    beta: float = 1.0
    temperature: float = 1.0
    train_per_device: int = 300
    server_tasks: int = 150
    eval_per_device: int = 20
    max_difficulty: int = 2
    max_new_tokens: int = 48
    vocab_size: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.devices) < 2:
            raise ValueError("Co-PLMs needs at least 2 devices")
        require_ints(self, ("rounds", "batch_size", "train_per_device", "server_tasks",
                            "eval_per_device", "max_new_tokens", "max_difficulty"))  # fmt: skip
        require_ints(self, ("local_steps", "mutual_steps", "server_steps"), minimum=0)
        for name in ("alpha", "beta"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.lr <= 0 or self.temperature <= 0:
            raise ValueError("lr and temperature must be > 0")
        if len({d.slm.arch for d in self.devices}) < 2:
            raise ValueError("the devices' SLMs must not all share one architecture")

    @classmethod
    def quick(cls) -> CoPLMsConfig:
        """The 10-minute CPU version."""
        return cls(rounds=2, local_steps=10, mutual_steps=5, server_steps=5,
                   train_per_device=100, server_tasks=60, eval_per_device=10,
                   max_new_tokens=32)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)
