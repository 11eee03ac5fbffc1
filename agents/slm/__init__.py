"""Small local language models: load any HF causal LM, or build and warm-start a tiny one (the
skilled-SLM kit, `offload_agents.slm.skill`, or the earlier BPE kit, `offload_agents.slm.kit`)."""

from offload_agents.slm.kit import (
    TinyLMConfig,
    build_slm,
    build_tiny_model,
    build_tokenizer,
    load_local_lm,
    training_tasks,
    warm_start,
)
from offload_agents.slm.skill import (
    SkillConfig,
    build_skilled_slm,
    char_tokenizer,
    skill_table,
    train_skilled_slm,
    worked_steps,
)
from offload_agents.slm.template import HELP_REQUEST, SPECIAL_TOKENS, format_prompt

__all__ = [
    "HELP_REQUEST",
    "SPECIAL_TOKENS",
    "SkillConfig",
    "TinyLMConfig",
    "build_skilled_slm",
    "build_slm",
    "build_tiny_model",
    "build_tokenizer",
    "char_tokenizer",
    "format_prompt",
    "load_local_lm",
    "skill_table",
    "train_skilled_slm",
    "training_tasks",
    "warm_start",
    "worked_steps",
]
