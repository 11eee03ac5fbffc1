"""The response cache: SQLite on disk, one call per question, safe with threads and processes."""

import multiprocessing as mp
import pickle
import sqlite3
import threading
import time

import pytest

from offload_gym.models import CachedCloud, SimulatedCloud
from offload_gym.models.cache import SQLiteStore, cache_key
from offload_gym.tasks import make_generator


@pytest.fixture(scope="module")
def tasks():
    return make_generator("arithmetic", seed=1).take(12)


class Counting(SimulatedCloud):
    def answer(self, task, partial=None):
        self.calls = getattr(self, "calls", 0) + 1
        return super().answer(task, partial)


def test_sqlite_cache_persists_every_answer_as_it_arrives(tmp_path, tasks):
    path = tmp_path / "cache.sqlite"
    cloud = Counting()
    cache = CachedCloud(cloud, path=path)
    first = cache.answer(tasks[0], "partial work")
    # On disk before any close: a crash now would lose nothing.
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 1
    again = CachedCloud(Counting(), path=path)
    hit = again.answer(tasks[0], "partial work")
    assert hit.cached and hit._replace(cached=False) == first
    assert getattr(again.cloud, "calls", 0) == 0
    assert not again.answer(tasks[0]).cached  # another partial is another question


def test_keys_separate_model_settings(tmp_path, tasks):
    assert cache_key(SimulatedCloud(seed=0), tasks[0], None) != cache_key(
        SimulatedCloud(seed=1), tasks[0], None
    )
    assert cache_key(SimulatedCloud(), tasks[0], None) == cache_key(SimulatedCloud(), tasks[0], "")

    class Own(SimulatedCloud):
        def cache_key(self, task, partial):
            return f"own:{task.id}"

    assert cache_key(Own(), tasks[0], None) == f"own:{tasks[0].id}"


def test_concurrent_askers_of_one_question_pay_once(tasks):
    class Slow(SimulatedCloud):
        calls = 0

        def answer(self, task, partial=None):
            type(self).calls += 1
            time.sleep(0.05)
            return super().answer(task, partial)

    cache = CachedCloud(Slow(), concurrency=4)
    threads = [threading.Thread(target=cache.answer, args=(tasks[1],)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Slow.calls == 1 and cache.hits == 5 and cache.misses == 1


def test_answer_many_runs_misses_in_parallel(tasks):
    class Slow(SimulatedCloud):
        inflight = peak = 0
        lock = threading.Lock()

        def answer(self, task, partial=None):
            with Slow.lock:
                Slow.inflight += 1
                Slow.peak = max(Slow.peak, Slow.inflight)
            time.sleep(0.05)
            with Slow.lock:
                Slow.inflight -= 1
            return super().answer(task, partial)

    cache = CachedCloud(Slow(), concurrency=8)
    out = cache.answer_many(tasks[:8])
    assert [r.text for r in out] == [SimulatedCloud().answer(t).text for t in tasks[:8]]
    assert Slow.peak > 1  # calls overlapped, not one after another
    with pytest.raises(ValueError, match="partials"):
        cache.answer_many(tasks[:2], [None])


def _writer(path, start, stop, seed):
    tasks = make_generator("arithmetic", seed=1).take(stop)
    cache = CachedCloud(SimulatedCloud(seed=seed), path=path)
    for t in tasks[start:stop]:
        cache.answer(t)
    cache.close()


def test_concurrent_writer_processes(tmp_path):
    path = tmp_path / "shared.sqlite"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 0, 30, 0)),
             ctx.Process(target=_writer, args=(path, 10, 40, 0))]  # fmt: skip
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(SQLiteStore(path)) == 40  # the 20 shared questions stored once


def test_pickles_without_its_locks_and_reopens_its_store(tmp_path, tasks):
    cache = CachedCloud(SimulatedCloud(), path=tmp_path / "c.sqlite")
    cache.answer(tasks[2])
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.answer(tasks[2]).cached
    clone.answer(tasks[3])
    assert len(SQLiteStore(tmp_path / "c.sqlite")) == 2


def test_bad_cache_files_are_clear_errors(tmp_path):
    path = tmp_path / "bad.sqlite"
    path.write_text("this is not a database")
    with pytest.raises(ValueError, match="not a usable SQLite cache"):
        CachedCloud(SimulatedCloud(), path=path)
    with pytest.raises(ValueError, match="concurrency"):
        CachedCloud(SimulatedCloud(), concurrency=0)
