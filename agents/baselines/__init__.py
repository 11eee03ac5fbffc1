"""Routing baselines for the router view."""

from offload_agents.baselines.oracle import Oracle
from offload_agents.baselines.pacer import BudgetPacer
from offload_agents.baselines.router import TrainedRouter
from offload_agents.baselines.sb3 import EPISODE_KEYWORDS, SB3Agent, episode_metrics_callback
from offload_agents.baselines.simple import AlwaysCloud, AlwaysLocal, RandomOffload
from offload_agents.baselines.threshold import ConfidenceThreshold

__all__ = [
    "EPISODE_KEYWORDS",
    "AlwaysCloud",
    "AlwaysLocal",
    "BudgetPacer",
    "ConfidenceThreshold",
    "Oracle",
    "RandomOffload",
    "SB3Agent",
    "TrainedRouter",
    "episode_metrics_callback",
]
