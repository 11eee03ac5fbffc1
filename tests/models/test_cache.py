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


def test_the_key_holds_the_task_not_its_id_alone():
    """Two tasks that share an id got one cached answer: the key now holds what they ask."""
    import dataclasses

    a = make_generator("arithmetic", seed=1).take(1)[0]
    b = dataclasses.replace(a, prompt=a.prompt + " (edited)", answer=a.answer + "1")
    cloud = SimulatedCloud()
    assert cache_key(cloud, a, None) != cache_key(cloud, b, None)
    assert cache_key(cloud, a, None) == cache_key(SimulatedCloud(), a, None)  # stable
    counting = CachedCloud(Counting())
    counting.answer(a)
    counting.answer(b)
    assert counting.cloud.calls == 2


def test_a_torn_last_jsonl_line_is_skipped_with_a_warning_and_appends_stay_readable(
    tmp_path, tasks
):
    path = tmp_path / "c.jsonl"
    first = CachedCloud(SimulatedCloud(), path=path)
    first.answer(tasks[0])
    first.answer(tasks[1])
    whole = path.read_text()
    path.write_text(whole + whole.splitlines()[0][:25])  # a kill -9 in the middle of a write
    with pytest.warns(RuntimeWarning, match=r"c.jsonl:3: skipped a torn last line"):
        second = CachedCloud(SimulatedCloud(), path=path)
    assert second.answer(tasks[0]).cached and second.answer(tasks[1]).cached
    second.answer(tasks[2])  # the next write drops the fragment and appends a whole line
    assert path.read_text().splitlines()[:2] == whole.splitlines()
    assert len(path.read_text().splitlines()) == 3
    third = CachedCloud(SimulatedCloud(), path=path)  # loads cleanly, with all three answers
    assert all(third.answer(t).cached for t in tasks[:3])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [(3, float("nan"), "cost=nan"), (3, -1.0, "cost=-1.0"), (1, 2.5, "prompt_tokens=2.5"),
     (4, float("inf"), "latency_s=inf"), (0, 7, "text=7"), (2, -3, "completion_tokens=-3")],
)  # fmt: skip
def test_tampered_rows_are_clear_errors_naming_file_and_line(
    tmp_path, tasks, field, value, message
):
    import json

    for name in ("c.jsonl", "c.sqlite"):
        path = tmp_path / name
        CachedCloud(SimulatedCloud(), path=path).answer(tasks[0])
        if name.endswith(".jsonl"):
            rec = json.loads(path.read_text())
            rec["response"][field] = value
            path.write_text(json.dumps(rec) + "\n")
            where = "c.jsonl:1"
        else:
            with sqlite3.connect(path) as db:
                (text,) = db.execute("SELECT response FROM responses").fetchone()
                row = json.loads(text)
                row[field] = value
                db.execute("UPDATE responses SET response = ?", (json.dumps(row),))
            where = "c.sqlite key"
        with pytest.raises(ValueError, match=rf"{where}.*bad cache entry \({message}"):
            cache = CachedCloud(SimulatedCloud(), path=path)
            cache.answer(tasks[0])


def test_openai_keys_hold_the_endpoint():
    from offload_gym.models.openai_cloud import OpenAICloud

    task = make_generator("arithmetic", seed=1).take(1)[0]
    a = OpenAICloud(model="m", base_url="http://127.0.0.1:1/v1", api_key="k")
    b = OpenAICloud(model="m", base_url="http://127.0.0.1:2/v1", api_key="k")
    same = OpenAICloud(model="m", base_url="http://127.0.0.1:1/v1", api_key="other")
    assert a.cache_key(task) != b.cache_key(task)
    assert a.cache_key(task) == same.cache_key(task)  # the API key is not part of it
