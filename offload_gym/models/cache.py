"""A response cache in front of any cloud model: each question is asked (and paid) at most once.

Keys: a cloud model may define ``cache_key(task, partial) -> str`` (the real backends hash their
model name, the prompt and the sampling parameters into it); otherwise the key hashes the model's
class name and settings (its repr), the task's id, domain, prompt, reference answer and
difficulty, and the partial response: never the task id alone. Entries live in memory (least
recently used dropped first) and, with ``path``, on disk: in SQLite (any suffix but ``.jsonl``;
safe with several threads and processes writing at once) or in an append-only JSONL file. Each
answer is written to disk as soon as it arrives, so a crash loses no paid answer; a JSONL line
torn by a kill mid-write is skipped with a warning, and a stored row that fails validation (a NaN
or negative cost, a count that is not a count) is a clear error naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

from offload_gym.models.base import CloudModel, CloudResponse, pair_partials
from offload_gym.tasks.base import Task


def cache_key(cloud: Any, task: Task, partial: str | None) -> str:
    """The cache key of a question to ``cloud`` (its own ``cache_key`` when it has one)."""
    own = getattr(cloud, "cache_key", None)
    if callable(own):
        return str(own(task, partial))
    # A model's repr identifies its settings when the class defines one (dataclasses do); the
    # default repr holds a memory address, which would make every run's keys new.
    ident = repr(cloud) if type(cloud).__repr__ is not object.__repr__ else ""
    # Everything of the task that can change an answer, not its id alone: two tasks that share
    # an id (two datasets, an edited prompt) must not share an answer.
    content = [task.id, task.domain, task.prompt, task.answer, task.difficulty]
    raw = json.dumps([type(cloud).__qualname__, ident, content, partial or ""], default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


class ResponseStore(Protocol):
    """Persistent storage of cached responses."""

    def load(self) -> Iterator[tuple[str, CloudResponse]]: ...

    def get(self, key: str) -> CloudResponse | None: ...

    def put(self, key: str, response: CloudResponse) -> None: ...

    def close(self) -> None: ...


class SQLiteStore:
    """Responses in an SQLite database (WAL journal, one connection per thread, waits up to
    ``timeout`` seconds for another writer), committed on every write."""

    def __init__(self, path: str | PathLike[str], *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self._local = threading.local()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT "
                "NULL, created REAL NOT NULL)"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=self.timeout)
                self._wal(db)
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"{self.path}: not a usable SQLite cache ({exc})") from None
            self._local.db = db
        with db:  # a transaction: committed on success, rolled back on error
            yield db

    def _wal(self, db: sqlite3.Connection) -> None:
        """Switch to the WAL journal. SQLite answers "database is locked" at once, without its
        busy wait, when another process opens the same new file at that moment (two writers
        starting together): retried until ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def load(self) -> Iterator[tuple[str, CloudResponse]]:
        with self._connect() as db:
            rows = db.execute("SELECT key, response FROM responses ORDER BY created").fetchall()
        for key, text in rows:
            yield key, _decode(text, f"{self.path} key {key}")

    def get(self, key: str) -> CloudResponse | None:
        with self._connect() as db:
            row = db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else _decode(row[0], f"{self.path} key {key}")

    def put(self, key: str, response: CloudResponse) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO responses (key, response, created) VALUES (?, ?, ?)",
                (key, json.dumps(list(response._replace(cached=False))), time.time()),
            )

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


class JSONLStore:
    """Responses appended to a JSONL file (one line per answer, flushed as written)."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def load(self) -> Iterator[tuple[str, CloudResponse]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            lines = fh.readlines()
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{self.path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                if lineno == len(lines) and not line.endswith("\n"):  # torn by a kill mid-write
                    warnings.warn(f"{where}: skipped a torn last line (an interrupted write)",
                                  RuntimeWarning, stacklevel=2)  # fmt: skip
                    continue
                raise ValueError(f"{where}: bad cache entry ({exc})") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("key"), str):
                raise ValueError(f"{where}: bad cache entry (expected an object with a key)")
            yield rec["key"], _validated(rec.get("response"), where)

    def get(self, key: str) -> CloudResponse | None:
        return None  # everything was loaded into memory at start

    def put(self, key: str, response: CloudResponse) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if _ends_without_newline(self.path):  # a torn fragment (skipped at load): drop it
                _drop_torn_tail(self.path)
            with self.path.open("a", encoding="utf-8") as fh:
                rec = {"key": key, "response": list(response._replace(cached=False))}
                fh.write(json.dumps(rec) + "\n")
                fh.flush()

    def close(self) -> None:
        pass


def _ends_without_newline(path: Path) -> bool:
    """Whether ``path`` ends in a torn line (so the next append starts on a line of its own)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            if fh.tell() == 0:
                return False
            fh.seek(-1, 2)
            return fh.read(1) != b"\n"
    except FileNotFoundError:
        return False


def _drop_torn_tail(path: Path) -> None:
    """Cut the file after its last complete line (the torn fragment that follows it cannot be
    parsed and held no usable answer)."""
    with path.open("rb+") as fh:
        data = fh.read()
        fh.truncate(data.rfind(b"\n") + 1)


def _decode(text: str, where: str) -> CloudResponse:
    try:
        return _validated(json.loads(text), where)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: bad cache entry ({exc})") from None


def _validated(fields: Any, where: str) -> CloudResponse:
    """A stored response, checked field by field: a tampered or damaged row (NaN or negative
    cost, a count that is not a count) is a clear error naming where it is, never a crash in
    ``env.step`` or a ledger charged a nonsense amount."""
    if not isinstance(fields, list) or not 5 <= len(fields) <= len(CloudResponse._fields):
        raise ValueError(f"{where}: bad cache entry (expected a list of 5-7 response fields)")
    r = CloudResponse(*fields)

    def count(v: Any) -> bool:
        return type(v) is int and v >= 0

    def amount(v: Any) -> bool:
        return type(v) in (int, float) and math.isfinite(v) and v >= 0

    problems = [name for name, ok in (
        ("text", isinstance(r.text, str)), ("prompt_tokens", count(r.prompt_tokens)),
        ("completion_tokens", count(r.completion_tokens)), ("cost", amount(r.cost)),
        ("latency_s", amount(r.latency_s)), ("cached", type(r.cached) is bool),
        ("unconfirmed_attempts", count(r.unconfirmed_attempts))) if not ok]  # fmt: skip
    if problems:
        bad = ", ".join(f"{n}={getattr(r, n)!r}" for n in problems)
        raise ValueError(f"{where}: bad cache entry ({bad}: counts must be integers >= 0, cost "
                         "and latency finite numbers >= 0, text a string)")  # fmt: skip
    return r


def open_store(path: str | PathLike[str]) -> ResponseStore:
    """`JSONLStore` for a ``.jsonl`` path, `SQLiteStore` otherwise."""
    return JSONLStore(path) if str(path).endswith(".jsonl") else SQLiteStore(path)


class CachedCloud:
    """Wraps a `CloudModel`; repeated questions are answered from the cache.

    A cached answer is returned with ``cached=True`` and its original tokens and cost, so budget
    accounting is unchanged by caching (the cache saves real calls, not accounted spend).
    Concurrent callers asking the same question wait for one call.

    Args:
        cloud: The model to ask on a miss.
        path: Optional file for the disk cache: SQLite unless it ends in ``.jsonl``. Existing
            entries are used; new ones are written as they arrive.
        max_entries: Bound on the in-memory entries (least recently used dropped first; the
            disk keeps everything).
        concurrency: Threads `answer_many` uses for the misses of a batch (a cloud with its own
            ``answer_many`` is given the whole batch of misses instead).
    """

    def __init__(
        self,
        cloud: CloudModel,
        *,
        path: str | PathLike[str] | None = None,
        max_entries: int = 100_000,
        concurrency: int = 8,
    ) -> None:
        if not isinstance(cloud, CloudModel):
            raise TypeError(f"cloud must implement CloudModel (quote, answer), got {cloud!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.cloud = cloud
        self.max_entries = max_entries
        self.concurrency = concurrency
        self.hits = 0
        self.misses = 0
        self._mem: OrderedDict[str, CloudResponse] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.path = Path(path) if path is not None else None
        self.store: ResponseStore | None = open_store(path) if path is not None else None
        if self.store is not None:
            for key, response in self.store.load():
                self._remember(key, response)

    def _remember(self, key: str, response: CloudResponse) -> None:
        with self._lock:
            self._mem[key] = response._replace(cached=False)
            self._mem.move_to_end(key)
            while len(self._mem) > self.max_entries:
                self._mem.popitem(last=False)

    def _lookup(self, key: str) -> CloudResponse | None:
        with self._lock:
            hit = self._mem.get(key)
            if hit is not None:
                self._mem.move_to_end(key)
                return hit
        if self.store is not None:  # evicted from memory, or written by another process
            hit = self.store.get(key)
            if hit is not None:
                self._remember(key, hit)
        return hit

    def quote(self, task: Task, partial: str | None = None) -> float:
        hit = self._lookup(cache_key(self.cloud, task, partial))
        return hit.cost if hit is not None else self.cloud.quote(task, partial)

    def answer(self, task: Task, partial: str | None = None) -> CloudResponse:
        key = cache_key(self.cloud, task, partial)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one call per question, even with concurrent askers
            hit = self._lookup(key)
            if hit is not None:
                with self._lock:
                    self.hits += 1
                return hit._replace(cached=True)
            response = self.cloud.answer(task, partial)
            with self._lock:
                self.misses += 1
            self._remember(key, response)
            if self.store is not None:
                self.store.put(key, response)
        return response

    def answer_many(
        self, tasks: Sequence[Task], partials: Sequence[str | None] | None = None
    ) -> list[CloudResponse]:
        """Answers for a batch; the misses are asked in parallel (``concurrency`` threads)."""
        pairs = pair_partials(tasks, partials)
        if self.concurrency == 1 or len(tasks) < 2:
            return [self.answer(t, p) for t, p in pairs]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda pair: self.answer(*pair), pairs))

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def __len__(self) -> int:
        return len(self._mem)

    def __getstate__(self) -> dict[str, Any]:
        # Locks and connections do not pickle (checkpoints pickle environments with their
        # cache); they are recreated on load.
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_key_locks"] = {}
        state["store"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self.store = open_store(self.path) if self.path is not None else None
