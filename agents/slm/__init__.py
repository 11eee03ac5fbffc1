"""Small local language models: load any HF causal LM, or build and warm-start a tiny one."""

from offload_agents.slm.kit import (
    TinyLMConfig,
    build_slm,
    build_tiny_model,
    build_tokenizer,
    load_local_lm,
    training_tasks,
    warm_start,
)
from offload_agents.slm.template import HELP_REQUEST, SPECIAL_TOKENS, format_prompt

__all__ = [
    "HELP_REQUEST",
    "SPECIAL_TOKENS",
    "TinyLMConfig",
    "build_slm",
    "build_tiny_model",
    "build_tokenizer",
    "format_prompt",
    "load_local_lm",
    "training_tasks",
    "warm_start",
]
