"""offload_agents: agents for the offload environments.

Routing baselines and Stable-Baselines3 agents for the router view, the evaluation harness, and
(in later milestones) DA-GRPO and its GRPO-family baselines and Co-PLMs.
"""

from functools import partial

from offload_agents.base import Agent, FunctionAgent, list_agents, make_agent, register_agent
from offload_agents.baselines import (
    EPISODE_KEYWORDS,
    AlwaysCloud,
    AlwaysLocal,
    BudgetPacer,
    ConfidenceThreshold,
    Oracle,
    RandomOffload,
    SB3Agent,
    TrainedRouter,
    episode_metrics_callback,
)
from offload_agents.evaluation import EvalResult, evaluate, run_episode

for _name, _factory in (
    ("local", AlwaysLocal),
    ("cloud", AlwaysCloud),
    ("random", RandomOffload),
    ("threshold", ConfidenceThreshold),
    ("router", TrainedRouter),
    ("oracle", Oracle),
    ("pacer", BudgetPacer),
    ("ppo", partial(SB3Agent, "ppo")),
    ("dqn", partial(SB3Agent, "dqn")),
    ("maskable-ppo", partial(SB3Agent, "maskable-ppo")),
):
    register_agent(_name, _factory)

__all__ = [
    "EPISODE_KEYWORDS",
    "Agent",
    "AlwaysCloud",
    "AlwaysLocal",
    "BudgetPacer",
    "ConfidenceThreshold",
    "EvalResult",
    "FunctionAgent",
    "Oracle",
    "RandomOffload",
    "SB3Agent",
    "TrainedRouter",
    "episode_metrics_callback",
    "evaluate",
    "list_agents",
    "make_agent",
    "register_agent",
    "run_episode",
]
