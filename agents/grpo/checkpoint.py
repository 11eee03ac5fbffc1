"""The trainer's checkpoint file: a hash-checked ``torch.save`` payload, and the environments'
state pickled with an allowlist of classes, so loading a checkpoint runs no code from the file
(``trusted=True`` lifts the allowlist for your own classes)."""

from __future__ import annotations

import hashlib
import io
import pickle
from os import PathLike
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_MAGIC = b"offload-gym checkpoint v1 sha256="
"""First bytes of a checkpoint file, followed by the SHA-256 of the payload and a newline."""


def read_checkpoint(path: str | PathLike[str]) -> dict[str, Any]:
    """The state saved by `GRPOTrainer.save_checkpoint`, after checking that the file is one
    and that its payload is intact (a clear ValueError naming the file otherwise: missing,
    empty, truncated, corrupted). The payload is read with ``torch.load(weights_only=True)``
    (tensors, numbers, strings, containers: no code runs); the environments' state inside it
    stays bytes until `load_env_state` reads it."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read checkpoint {p}: {exc.strerror or exc}") from None
    if not data:
        raise ValueError(f"checkpoint {p} is empty")
    header, sep, payload = data.partition(b"\n")
    if not header.startswith(CHECKPOINT_MAGIC) or not sep:
        raise ValueError(f"{p} is not an offload-gym checkpoint (or one from before v1)")
    digest = header[len(CHECKPOINT_MAGIC) :].decode(errors="replace")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ValueError(f"checkpoint {p} is corrupted or truncated: its content hash differs")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"checkpoint {p} holds more than tensors and plain values: "
                         f"{str(exc).splitlines()[0]}") from None  # fmt: skip
    if not isinstance(state, dict) or "config" not in state:
        raise ValueError(f"checkpoint {p} does not hold a trainer state")
    return state


_STATE_CALLABLES = frozenset({
    ("collections", "OrderedDict"), ("collections", "deque"), ("numpy", "dtype"),
    ("numpy", "ndarray"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
})  # fmt: skip
"""The functions and classes outside the state modules that environment state needs."""
STATE_MODULES = (
    "offload_gym.tasks.", "offload_gym.envs.", "offload_gym.budget", "offload_gym.models.base",
    "offload_gym.models.cache", "offload_gym.models.simulated",
    "offload_gym.scoring.grade", "gymnasium.spaces.", "gymnasium.wrappers.",
    "gymnasium.envs.registration", "numpy.random.",
)  # fmt: skip
"""Modules whose classes (data: tasks, generators, configs, ledgers, simulated and cached
clouds, spaces, wrappers, generators' bit states) a checkpoint's environment state may hold.
Network clients are not among them: the cloud behind the cache is a live object (`LIVE_CLOUD`)
that the caller passes back in."""
LIVE_CLOUD = "live:cloud"
"""The checkpoint's reference to the cloud model behind the shared cache."""


class _StatePickler(pickle.Pickler):
    def __init__(self, file: Any, live: dict[str, Any]) -> None:
        super().__init__(file)
        self._ids = {id(obj): name for name, obj in live.items()}

    def persistent_id(self, obj: Any) -> str | None:
        return self._ids.get(id(obj))


def dump_env_state(state: Any, live: dict[str, Any] | None = None) -> bytes:
    """Pickle environment state, writing each object of ``live`` as a reference by its name
    (the live cloud model is not stored: `load_env_state` takes it from the caller)."""
    buffer = io.BytesIO()
    _StatePickler(buffer, live or {}).dump(state)
    return buffer.getvalue()


class _StateUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, live: dict[str, Any], *, trusted: bool = False) -> None:
        super().__init__(file)
        self._live, self._trusted = live, trusted

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, str) and pid in self._live:
            return self._live[pid]
        raise pickle.UnpicklingError(
            f"the state refers to a live object {pid!r} that the "
            f"caller did not pass (it passed {sorted(self._live)})"
        )

    def find_class(self, module: str, name: str) -> Any:
        if self._trusted or (module, name) in _STATE_CALLABLES:
            return super().find_class(module, name)
        if module.startswith(STATE_MODULES) or module + "." in STATE_MODULES:
            obj = super().find_class(module, name)
            if isinstance(obj, type):
                return obj
        raise pickle.UnpicklingError(
            f"{module}.{name} is not a class a checkpoint's environment state may hold; load "
            "checkpoints that hold your own classes with trusted=True (only ones you wrote)"
        )


def load_env_state(
    data: bytes, *, trusted: bool = False, live: dict[str, Any] | None = None
) -> Any:
    """The environments' state pickled in a checkpoint. Only the classes of `STATE_MODULES`
    (and numpy's array and generator reconstructors) are looked up: no other module is
    imported and no other function is called, so a tampered file cannot run code, and no
    network client is ever built from it (the cloud model is a reference resolved from
    ``live``, the caller's own objects by name); anything else is a ValueError saying what it
    held. ``trusted=True`` uses plain pickle (for state holding your own classes, from
    checkpoints you wrote), with the same ``live`` references.

    >>> import pickle
    >>> load_env_state(pickle.dumps({"calls": 3}))
    {'calls': 3}
    >>> load_env_state(b"cos\\nsystem\\n(S'echo pwned'\\ntR.")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: checkpoint state refused: os.system is not a class a checkpoint's ...
    """
    try:
        return _StateUnpickler(io.BytesIO(data), live or {}, trusted=trusted).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"checkpoint state refused: {exc}") from None


def write_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (a temporary file, then a rename), behind
    `CHECKPOINT_MAGIC` and the payload's SHA-256, which `read_checkpoint` checks."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(CHECKPOINT_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
                    + payload)  # fmt: skip
    tmp.replace(path)
    return path
