"""LoRA adapters for the RL phase (``GRPOConfig.lora_rank > 0``)."""

from __future__ import annotations

from typing import Any


def add_lora(model: Any, rank: int, alpha: float) -> Any:
    """Put rank-``rank`` LoRA adapters (scale ``alpha / rank``, no dropout) on every linear
    layer of ``model`` but its output head, in place, with ``peft``; only the adapters stay
    trainable. Returns ``model``."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError as exc:
        raise ImportError(
            "lora_rank > 0 needs peft: pip install 'offload-gym[lora]' (or pip install peft)"
        ) from exc
    import warnings

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0,  # type: ignore[arg-type]
                        target_modules="all-linear")  # fmt: skip
    with warnings.catch_warnings():  # GPT-2's Conv1D layers: peft flips fan_in_fan_out itself
        warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*")
        inject_adapter_in_model(config, model)
    return model
