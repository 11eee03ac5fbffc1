"""A response cache in front of any cloud model: each (task, partial) is asked at most once."""

from __future__ import annotations

import json
from collections import OrderedDict
from os import PathLike
from pathlib import Path

from offload_gym.models.base import CloudModel, CloudResponse
from offload_gym.tasks.base import Task


class CachedCloud:
    """Wraps a `CloudModel`; repeated questions are answered from memory (and optionally disk).

    A cached answer is returned with ``cached=True`` and its original tokens and cost, so budget
    accounting is unchanged by caching (the cache saves real calls, not accounted spend).

    Args:
        cloud: The model to ask on a miss.
        path: Optional JSONL file; existing entries are loaded and new ones appended (flushed
            after each write, so an interrupted run loses nothing).
        max_entries: Bound on the in-memory entries (least recently used dropped first).
    """

    def __init__(
        self,
        cloud: CloudModel,
        *,
        path: str | PathLike[str] | None = None,
        max_entries: int = 100_000,
    ) -> None:
        if not isinstance(cloud, CloudModel):
            raise TypeError(f"cloud must implement CloudModel (quote, answer), got {cloud!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.cloud = cloud
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._mem: OrderedDict[tuple[str, str], CloudResponse] = OrderedDict()
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.exists():
            with self.path.open(encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                        key = (rec["task_id"], rec["partial"])
                        self._store(key, CloudResponse(*rec["response"]))
                    except (json.JSONDecodeError, KeyError, TypeError) as exc:
                        raise ValueError(f"{self.path}:{lineno}: bad cache entry ({exc})") from None

    def _store(self, key: tuple[str, str], response: CloudResponse) -> None:
        self._mem[key] = response._replace(cached=False)
        self._mem.move_to_end(key)
        while len(self._mem) > self.max_entries:
            self._mem.popitem(last=False)

    def quote(self, task: Task, partial: str | None = None) -> float:
        key = (task.id, partial or "")
        if key in self._mem:
            return self._mem[key].cost
        return self.cloud.quote(task, partial)

    def answer(self, task: Task, partial: str | None = None) -> CloudResponse:
        key = (task.id, partial or "")
        hit = self._mem.get(key)
        if hit is not None:
            self.hits += 1
            self._mem.move_to_end(key)
            return hit._replace(cached=True)
        self.misses += 1
        response = self.cloud.answer(task, partial)
        self._store(key, response)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                rec = {"task_id": key[0], "partial": key[1], "response": list(response)}
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
        return response

    def __len__(self) -> int:
        return len(self._mem)
