"""The offload environments: text view and router view."""

from offload_gym.envs.config import DEFAULT_OFFLOAD_MARKER, EnvConfig
from offload_gym.envs.info import EpisodeSummary, RewardComponents, StepInfo
from offload_gym.envs.offload_env import OffloadEnv, offload_env
from offload_gym.envs.registration import ENV_IDS, list_envs, register_envs
from offload_gym.envs.reward import REWARD_COMPONENTS, combine_reward
from offload_gym.envs.router import ROUTER_FEATURES, OffloadRouterEnv
from offload_gym.envs.spaces import PromptText
from offload_gym.envs.text import OffloadTextEnv

__all__ = [
    "DEFAULT_OFFLOAD_MARKER",
    "ENV_IDS",
    "REWARD_COMPONENTS",
    "ROUTER_FEATURES",
    "EnvConfig",
    "EpisodeSummary",
    "OffloadEnv",
    "OffloadRouterEnv",
    "OffloadTextEnv",
    "PromptText",
    "RewardComponents",
    "StepInfo",
    "combine_reward",
    "list_envs",
    "offload_env",
    "register_envs",
]
