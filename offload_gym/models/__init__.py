"""Local and cloud models: protocols, simulated models and a response cache."""

from offload_gym.models.base import (
    CloudError,
    CloudModel,
    CloudResponse,
    LocalModel,
    LocalResponse,
)
from offload_gym.models.cache import CachedCloud
from offload_gym.models.simulated import SimulatedCloud, SimulatedLocal

__all__ = [
    "CachedCloud",
    "CloudError",
    "CloudModel",
    "CloudResponse",
    "LocalModel",
    "LocalResponse",
    "SimulatedCloud",
    "SimulatedLocal",
]
