"""TensorBoard logging of the trainer's per-step records."""

from __future__ import annotations

from os import PathLike
from typing import Any

TENSORBOARD_SCALARS = ("lambda", "cloud_requests", "greedy_requests", "cloud_usage", "reward",
                       "accuracy", "loss", "grad_norm", "clip_fraction",
                       "kept_prompts", "anchor_loss")  # fmt: skip
"""The training record's values written to TensorBoard (as ``offload/<key>``)."""


def tensorboard_writer(log_dir: str | PathLike[str] | None) -> Any:
    """A ``SummaryWriter`` for ``log_dir`` (None: no TensorBoard), or a clear error when the
    ``tensorboard`` package is missing."""
    if log_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ImportError(
            "TensorBoard logging needs the tensorboard package: pip install tensorboard "
            "(or pip install 'offload-gym[tensorboard]')"
        ) from exc
    return SummaryWriter(log_dir=str(log_dir))
