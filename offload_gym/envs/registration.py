"""Environment ids, registered with Gymnasium on `import offload_gym`."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS: dict[str, tuple[str, dict[str, object]]] = {
    "OffloadMath-v0": ("offload_gym.envs.text:OffloadTextEnv", {"domain": "math"}),
    "OffloadMathRouter-v0": ("offload_gym.envs.router:OffloadRouterEnv", {"domain": "math"}),
    "OffloadCode-v0": ("offload_gym.envs.text:OffloadTextEnv", {"domain": "code"}),
    "OffloadCodeRouter-v0": ("offload_gym.envs.router:OffloadRouterEnv", {"domain": "code"}),
    "OffloadStream-v0": ("offload_gym.envs.text:OffloadTextEnv", {"domain": "stream"}),
    "OffloadStreamRouter-v0": (
        "offload_gym.envs.router:OffloadRouterEnv",
        {"domain": "stream"},
    ),
}
"""id -> (entry point, default kwargs)."""


def register_envs() -> None:
    """Register every id once (idempotent)."""
    for env_id, (entry_point, kwargs) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, kwargs=dict(kwargs))


def list_envs() -> list[str]:
    return list(ENV_IDS)
