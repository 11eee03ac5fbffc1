"""Co-PLMs: co-tuning a server LLM and heterogeneous device SLMs through distilled proxy models
(seed paper 002), with its baselines and evaluation (exact match, Rouge-L)."""

from offload_agents.coplms.config import DOMAINS, CoPLMsConfig, DeviceSpec, ModelSpec
from offload_agents.coplms.experiment import make_evaluator, write_report
from offload_agents.coplms.losses import mutual_losses, token_kl
from offload_agents.coplms.methods import DEFAULT_METHODS, METHODS, prepare, run_method
from offload_agents.coplms.runner import run_experiment

__all__ = [
    "DEFAULT_METHODS",
    "DOMAINS",
    "METHODS",
    "CoPLMsConfig",
    "DeviceSpec",
    "ModelSpec",
    "make_evaluator",
    "mutual_losses",
    "prepare",
    "run_experiment",
    "run_method",
    "token_kl",
    "write_report",
]
