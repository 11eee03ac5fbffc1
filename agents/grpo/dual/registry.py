"""The registry of dual controllers: a name and a factory from a `GRPOConfig`.

A new controller is a new module: a class with the `DualController` methods and a factory
decorated with ``@register_dual("name")``; ``GRPOConfig(dual="name")`` then selects it, with no
edit to the trainer, the config or this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class DualController(Protocol):
    """What the trainers call: ``observe`` on each batch before its advantages, ``update`` with
    the batch's budget signal after the policy update, and a state for checkpoints."""

    lam: float

    def observe(self, rewards: Any, cloud: Any) -> None: ...

    def update(self, usage: float) -> float: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


DualFactory = Callable[[Any], DualController]
_REGISTRY: dict[str, DualFactory] = {}


def register_dual(name: str) -> Callable[[DualFactory], DualFactory]:
    """Decorator: register ``factory(config) -> DualController`` under ``name`` (unique)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a dual controller's name must be a non-empty string, got {name!r}")

    def add(factory: DualFactory) -> DualFactory:
        if name in _REGISTRY:
            raise ValueError(f"dual controller {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return add


def list_duals() -> tuple[str, ...]:
    """The registered controllers' names, in registration order."""
    return tuple(_REGISTRY)


def make_controller(config: Any) -> DualController:
    """The controller a `GRPOConfig` asks for (``config.dual``)."""
    if config.dual not in _REGISTRY:
        raise ValueError(f"dual must be one of {list_duals()}, got {config.dual!r}")
    return _REGISTRY[config.dual](config)
