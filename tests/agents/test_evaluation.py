import json

import pytest

from offload_agents import evaluate


def test_logs_are_written_as_they_go(tmp_path):
    path = tmp_path / "logs" / "random.jsonl"
    res = evaluate("random", "OffloadMathRouter-v0", episodes=2, seeds=(0, 1),
                   env_kwargs={"num_tasks": 10}, log_path=path, progress=False)  # fmt: skip
    lines = path.read_text().splitlines()
    assert len(lines) == 40 == len(res.logs)
    first = json.loads(lines[0])
    for key in ("agent", "seed", "episode", "step", "task_id", "offloaded", "correct",
                "local_correct", "cloud_correct", "score", "cost", "task_group"):  # fmt: skip
        assert key in first
    assert res.metrics["n_seeds"] == 2 and len(res.per_seed) == 2


def test_interrupted_run_keeps_its_steps(tmp_path):
    path = tmp_path / "crash.jsonl"

    def flaky(obs, calls=[0]):  # noqa: B006 - a counter on purpose
        calls[0] += 1
        if calls[0] > 7:
            raise KeyboardInterrupt
        return 0

    with pytest.raises(KeyboardInterrupt):
        evaluate(flaky, "OffloadMathRouter-v0", env_kwargs={"num_tasks": 10}, log_path=path,
                 progress=False)  # fmt: skip
    assert len(path.read_text().splitlines()) == 7


def test_same_seeds_same_results():
    a = evaluate("threshold", "OffloadMathRouter-v0", env_kwargs={"num_tasks": 30}, progress=False)
    b = evaluate("threshold", "OffloadMathRouter-v0", env_kwargs={"num_tasks": 30}, progress=False)
    assert a.logs == b.logs


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown env"):
        evaluate("local", "NoSuchEnv-v0", progress=False)
    with pytest.raises(ValueError, match="episodes"):
        evaluate("local", "OffloadMathRouter-v0", episodes=0, progress=False)
    with pytest.raises(ValueError, match="seeds"):
        evaluate("local", "OffloadMathRouter-v0", seeds=(), progress=False)


def test_any_env_id_including_the_text_view(tmp_path):
    def responder(obs):
        return "<unknown> I need external assistance </unknown>" if "x" in obs["prompt"] else "42"

    res = evaluate(responder, "OffloadMath-v0", env_kwargs={"num_tasks": 10}, progress=False)
    assert res.metrics["steps"] == 10 and res.metrics["apgr"] is None
    assert res.logs[0]["local_correct"] is None
    saved = json.loads(res.save_metrics(tmp_path / "m.json").read_text())
    assert saved["env_id"] == "OffloadMath-v0" and saved["metrics"]["steps"] == 10


def test_a_killed_run_resumes_from_its_log_without_redoing_finished_seeds(tmp_path):
    from offload_agents.baselines import ConfidenceThreshold

    fits = []

    class Counting(ConfidenceThreshold):
        def fit(self, env_id, env_kwargs, seed):
            fits.append(seed)
            super().fit(env_id, env_kwargs, seed)

    kw = {"episodes": 2, "seeds": (0, 1, 2), "env_kwargs": {"num_tasks": 10}, "progress": False}
    fresh = evaluate(Counting(), "OffloadMathRouter-v0", **kw)
    path = tmp_path / "log.jsonl"
    evaluate(Counting(), "OffloadMathRouter-v0", log_path=path, **kw)
    lines = path.read_text().splitlines()
    # As a kill -9 leaves it: seed 0 complete, seed 1 half done, a torn last line.
    path.write_text("\n".join(lines[:20] + lines[20:31]) + "\n" + lines[31][:17])
    fits.clear()
    resumed = evaluate(Counting(), "OffloadMathRouter-v0", log_path=path, resume=True, **kw)
    assert fits == [1, 2]  # seed 0 came from the log
    assert resumed.logs == fresh.logs and resumed.metrics == fresh.metrics
    assert [json.loads(x) for x in path.read_text().splitlines()] == fresh.logs  # no duplicates
    fits.clear()
    evaluate(Counting(), "OffloadMathRouter-v0", log_path=path, **kw)  # resume off: all redone
    assert fits == [0, 1, 2]
