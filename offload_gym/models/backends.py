"""Choose the local and cloud models by name, as the command line does.

- local: ``"simulated"`` (`SimulatedLocal`) or a path or hub name of a Hugging Face causal LM
  (`TransformersLocal`).
- cloud: ``"simulated"`` (`SimulatedCloud`), ``"openai"`` (`OpenAICloud` at ``url`` serving
  ``model``; OpenAI itself when ``url`` is None) or a path or hub name (`TransformersCloud`).
  With ``cache`` the cloud is wrapped in a `CachedCloud` on that file (SQLite).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from offload_gym.models.base import CloudModel, LocalModel
from offload_gym.models.cache import CachedCloud
from offload_gym.models.simulated import SimulatedCloud, SimulatedLocal


def _check_path(spec: str) -> None:
    """A spec that is plainly a path (not a hub name ``org/name``: it starts with ``/``, ``.``
    or ``~``, or has more than one ``/``) must exist: a clear error, not a failed download."""
    looks_like_path = spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or "\\" in spec
    if looks_like_path and not Path(spec).expanduser().exists():
        raise ValueError(f"no model at {spec!r} (expected 'simulated' or a saved model folder)")


def make_local(spec: str = "simulated", **kwargs: Any) -> LocalModel:
    """The local model named by ``spec`` (extra arguments go to its constructor)."""
    if spec == "simulated":
        return SimulatedLocal(**kwargs)
    _check_path(spec)
    from offload_gym.models.hf import TransformersLocal

    return TransformersLocal(spec, **kwargs)


def make_cloud(
    spec: str = "simulated",
    *,
    url: str | None = None,
    model: str | None = None,
    cache: str | PathLike[str] | None = None,
    **kwargs: Any,
) -> CloudModel:
    """The cloud model named by ``spec`` (see the module docstring)."""
    if spec != "openai" and (url is not None or model is not None):
        raise ValueError(f"url and model are for cloud 'openai', not {spec!r}")
    cloud: CloudModel
    if spec == "simulated":
        cloud = SimulatedCloud(**kwargs)
    elif spec == "openai":
        if not model:
            raise ValueError("cloud 'openai' needs the served model's name (--cloud-model)")
        from offload_gym.models.openai_cloud import OpenAICloud

        cloud = OpenAICloud(model, base_url=url, **kwargs)
    else:
        _check_path(spec)
        from offload_gym.models.hf import TransformersCloud

        cloud = TransformersCloud(spec, **kwargs)
    return CachedCloud(cloud, path=cache) if cache is not None else cloud
