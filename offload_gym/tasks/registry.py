"""Registry of procedural task families, by name."""

from __future__ import annotations

from typing import Any

from offload_gym.tasks.base import Task, TaskGenerator, build_config

_GENERATORS: dict[str, type[TaskGenerator]] = {}


def register_generator(cls: type[TaskGenerator]) -> type[TaskGenerator]:
    """Class decorator: register a family under ``cls.name``; duplicate names are refused."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} must define a non-empty class attribute `name`")
    if name in _GENERATORS:
        raise ValueError(
            f"a task family named {name!r} is already registered ({_GENERATORS[name].__name__})"
        )
    _GENERATORS[name] = cls
    return cls


def list_generators(domain: str | None = None) -> list[str]:
    """Names of the registered families, optionally only those of one domain."""
    return sorted(n for n, c in _GENERATORS.items() if domain is None or c.domain == domain)


def get_generator_class(name: str) -> type[TaskGenerator]:
    try:
        return _GENERATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown task family {name!r}; registered families: {list_generators()}"
        ) from None


def make_generator(name: str, *, seed: int = 0, **config: Any) -> TaskGenerator:
    """Instantiate a registered family: ``make_generator("fractions", seed=1, max_difficulty=3)``.

    Unknown config keys raise ``ValueError`` listing the valid ones.
    """
    cls = get_generator_class(name)
    return cls(build_config(cls.config_class, config), seed=seed)


def worked_steps(task: Task) -> list[str] | None:
    """``task``'s solution as steps of one binary operation each, by its family
    (`TaskGenerator.worked_steps`); None for a family without that form or a task that names
    no registered family.

    >>> worked_steps(make_generator("polynomials", seed=1, max_difficulty=1)[0])
    ['2*2=4', '4+0=4']
    """
    cls = _GENERATORS.get(str(task.metadata.get("family")))
    return None if cls is None else cls.worked_steps(task)
