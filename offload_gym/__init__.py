"""offload-gym: Gymnasium environments for cloud-edge language models.

Importing the package registers the environment ids with Gymnasium::

    import gymnasium as gym
    import offload_gym  # noqa: F401

    env = gym.make("OffloadMathRouter-v0", budget=0.3)
"""

from offload_gym.budget import BudgetLedger
from offload_gym.envs import (
    ENV_IDS,
    ROUTER_FEATURES,
    EnvConfig,
    OffloadRouterEnv,
    OffloadTextEnv,
    list_envs,
    register_envs,
)
from offload_gym.models import CachedCloud, SimulatedCloud, SimulatedLocal
from offload_gym.scoring import compare, extract_answer, grade_response, is_equivalent
from offload_gym.tasks import Task, TaskGroup, TaskStream, math_stream

__version__ = "0.1.0"

register_envs()

__all__ = [
    "ENV_IDS",
    "ROUTER_FEATURES",
    "BudgetLedger",
    "CachedCloud",
    "EnvConfig",
    "OffloadRouterEnv",
    "OffloadTextEnv",
    "SimulatedCloud",
    "SimulatedLocal",
    "Task",
    "TaskGroup",
    "TaskStream",
    "__version__",
    "compare",
    "extract_answer",
    "grade_response",
    "is_equivalent",
    "list_envs",
    "math_stream",
    "register_envs",
]
