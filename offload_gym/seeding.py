"""Every seed the project derives from a user's seed comes from `derive`: one formula, the
strides named, so each stream's seeds are visible in one place and never collide by accident.

``derive(seed, index, stride=S, offset=O) == O + S * seed + index``: the seed of item
``index`` of a stream whose blocks of ``S`` seeds start at ``O`` for each user seed. The strides
are larger than the indices each stream uses, so two user seeds never share a derived seed.

>>> derive(2, 3, stride=ROLLOUT_STRIDE)
20003
>>> derive(1, 4, stride=EPISODE_STRIDE, offset=100)
1104
"""

from __future__ import annotations

ROLLOUT_STRIDE = 10_000
"""The rollout's sub-environments: ``rank * RANK_STRIDE + prompt`` within a user seed."""
RANK_STRIDE = 1_000
"""A distributed run's processes within a rollout block."""
SAMPLER_STRIDE = 1_000_003
"""Sampling calls (a prime, so sampler seeds fall apart from every other stream)."""
SAMPLER_RANK_STRIDE = 7_919
"""A distributed run's processes within a sampler block (a prime)."""
ANCHOR_STRIDE = 1_000_033
"""The GRPO trainer's answer-anchor draws, one per training step (a prime)."""
GRANT_STRIDE = 1_000_037
"""A training batch's budget draws (which requests a batch budget grants), one per step (a
prime)."""
EPISODE_STRIDE = 1_000
"""Episodes of an evaluation or a calibration run."""
MODEL_STRIDE = 1_000
"""Model initialisations of a Co-PLMs run (devices 0..K-1, the DPM at 500, the LLM at 999)."""
DATA_STRIDE = 100
"""Data streams of a Co-PLMs run (one per device; the server's at 99)."""


def derive(seed: int, index: int = 0, *, stride: int, offset: int = 0) -> int:
    """``offset + stride * seed + index`` (see the module doc)."""
    return offset + stride * seed + index


def spawn(seed: int, stream: int) -> int:
    """An independent 32-bit seed for sub-stream ``stream`` of ``seed``, hashed by numpy's
    ``SeedSequence([seed, stream])`` rather than laid out by a stride: for streams that must
    not fall in any stride block (the skilled SLM's drill tasks, whose generators also take
    seeds near the user's own).

    >>> spawn(0, 2) == spawn(0, 2) != spawn(0, 3)
    True
    """
    import numpy as np

    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


__all__ = [
    "ANCHOR_STRIDE",
    "DATA_STRIDE",
    "EPISODE_STRIDE",
    "GRANT_STRIDE",
    "MODEL_STRIDE",
    "RANK_STRIDE",
    "ROLLOUT_STRIDE",
    "SAMPLER_RANK_STRIDE",
    "SAMPLER_STRIDE",
    "derive",
    "spawn",
]
