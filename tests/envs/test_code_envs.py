"""The code and math-to-code stream environments."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import offload_gym  # noqa: F401

MARKER = "<unknown> I need external assistance </unknown>"


def test_code_text_view_runs_the_tests():
    env = gym.make("OffloadCode-v0", num_tasks=4, budget=0.5)
    obs, info = env.reset(seed=0)
    assert info["domain"] == "code" and "```python" in obs["prompt"]
    task = env.unwrapped.task
    _, r, _, _, info = env.step(task.solution)
    assert r == 1.0 and info["grading"] == "passed"
    _, r, _, _, info = env.step(
        f"```python\ndef {env.unwrapped.task.entry_point}(*a):\n    return None\n```"
    )
    assert r == 0.0 and info["grading"] in ("failed", "error")
    _, r, _, _, info = env.step("Too hard. " + MARKER)
    assert info["offloaded"] and info["correct"] == bool(r)


def test_code_attack_through_the_env_is_contained():
    env = gym.make("OffloadCode-v0", num_tasks=2)
    env.reset(seed=0)
    _, r, _, _, info = env.step("```python\nimport os\nos._exit(0)\n```")
    assert r == 0.0 and not info["correct"]
    assert info.get("episode_summary") is None  # the env is still mid-episode and usable
    _, r, terminated, _, info = env.step(env.unwrapped.task.solution)
    assert terminated and r == 1.0 and info["episode_summary"]["grading_failures"] == 0


def test_code_router_view_counterfactuals():
    env = gym.make("OffloadCodeRouter-v0", num_tasks=30, budget=0.5)
    obs, _ = env.reset(seed=0)
    assert obs[1] == 1.0 and obs[0] == 0.0
    rows = []
    done = False
    while not done:
        obs, r, done, _, info = env.step(int(obs[3] < 0.5))
        rows.append(info)
    assert all(
        i["correct"] == (i["cloud_correct"] if i["offloaded"] else i["local_correct"]) for i in rows
    )
    assert np.mean([i["cloud_correct"] for i in rows]) > np.mean([i["local_correct"] for i in rows])


@pytest.mark.parametrize("switch_point", [None, 3, 9])
def test_stream_switches_from_math_to_code(switch_point):
    kwargs = {"num_tasks": 12}
    if switch_point is not None:
        kwargs["switch_point"] = switch_point
    env = gym.make("OffloadStreamRouter-v0", **kwargs)
    obs, info = env.reset(seed=0)
    groups, domains, positions = [info["task_group"]], [info["domain"]], [obs[9]]
    done = False
    while not done:
        obs, _, done, _, info = env.step(0)
        if not done:
            groups.append(env.unwrapped._tasks[env.unwrapped._t].domain)
            positions.append(obs[9])
        domains.append(info["domain"])
    switch = 6 if switch_point is None else switch_point
    assert env.unwrapped.stream.switch_points == (switch,)
    assert domains[1:] == ["math"] * switch + ["code"] * (12 - switch)
    assert positions[:switch] == [0.0] * switch and positions[switch:] == [1.0] * (12 - switch)


def test_stream_text_view_reports_groups():
    env = gym.make("OffloadStream-v0", num_tasks=4, switch_point=2)
    _, info = env.reset(seed=1)
    seen = [info["task_group"]]
    for _ in range(4):
        _, _, done, _, info = env.step(env.unwrapped.task.solution)
        seen.append(info["task_group"])
        assert info["correct"]
    assert seen[1:] == ["math", "math", "code", "code"]


@pytest.mark.parametrize("switch_point", [0, 12, -1])
def test_bad_switch_point(switch_point):
    with pytest.raises(ValueError, match="switch_point"):
        gym.make("OffloadStream-v0", num_tasks=12, switch_point=switch_point)


def test_a_shared_grade_memo_grades_a_repeated_response_once_across_envs(monkeypatch):
    """Two envs on the same tasks sharing a `GradeMemo` (as a GRPO collector's sub-envs do)
    run the sandbox once for one response, and give the same verdicts as envs that do not."""
    import sys

    from offload_gym.scoring import GradeMemo

    module = sys.modules["offload_gym.envs.offload_env"]  # the package exports a function so named

    calls = []
    real = module.grade_response
    monkeypatch.setattr(module, "grade_response", lambda *a, **k: calls.append(a) or real(*a, **k))
    memo = GradeMemo(size=8)
    shared = [gym.make("OffloadCode-v0", num_tasks=2, grade_memo=memo) for _ in range(2)]
    alone = [gym.make("OffloadCode-v0", num_tasks=2) for _ in range(2)]
    for env in shared + alone:
        env.reset(seed=3)
    results = {}
    for name, envs in (("shared", shared), ("alone", alone)):
        calls.clear()
        rewards = []
        for _ in range(2):  # both envs answer each task the same: right, then wrong
            task = envs[0].unwrapped.task
            wrong = f"```python\ndef {task.entry_point}(*a):\n    return None\n```"
            text = task.solution if not rewards else wrong
            rewards.append([float(env.step(text)[1]) for env in envs])
        results[name] = (rewards, len(calls))
    assert results["shared"][0] == results["alone"][0] == [[1.0, 1.0], [0.0, 0.0]]
    assert results["shared"][1] == 2 and results["alone"][1] == 4
    assert len(memo) == 2
    with pytest.raises(ValueError, match="grade_memo must be None or"):
        gym.make("OffloadCode-v0", num_tasks=2, grade_memo={})
