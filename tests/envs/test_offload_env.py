"""Behaviour of the two views: budget, grading, reward parts, errors that leave the env usable."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import offload_gym  # noqa: F401
from offload_gym.envs import PromptText
from offload_gym.models import SimulatedCloud, SimulatedLocal
from offload_gym.tasks import Task, TaskGroup, TaskStream, make_generator

MARKER = "<unknown> I need external assistance </unknown>"


def _run(env, action_fn):
    obs, info = env.reset(seed=0)
    infos, rewards = [], []
    done = False
    while not done:
        obs, r, term, trunc, info = env.step(action_fn(env, obs))
        infos.append(info)
        rewards.append(r)
        done = term or trunc
    return infos, rewards


@pytest.mark.parametrize("budget", [0.0, 0.1, 0.3, 1.0])
def test_router_hard_budget_is_never_exceeded(budget):
    env = gym.make("OffloadMathRouter-v0", budget=budget, num_tasks=40)
    infos, _ = _run(env, lambda e, o: 1)
    used = sum(i["offloaded"] for i in infos)
    assert used == int(budget * 40 + 1e-9)
    assert sum(i["offload_refused"] for i in infos) == 40 - used
    assert infos[-1]["budget_left"] == 0.0
    assert infos[-1]["episode_summary"]["ledger"]["calls_used"] == used


def test_action_masks_follow_the_hard_budget():
    env = gym.make("OffloadMathRouter-v0", budget=0.1, num_tasks=20).unwrapped
    env.reset(seed=0)
    masks = []
    for _ in range(4):
        masks.append(env.action_masks().tolist())
        env.step(1)
    assert masks == [[True, True], [True, True], [True, False], [True, False]]
    soft = gym.make("OffloadMathRouter-v0", budget=0.1, num_tasks=20, budget_mode="soft").unwrapped
    soft.reset(seed=0)
    for _ in range(5):
        assert soft.action_masks().tolist() == [True, True]
        soft.step(1)


def test_soft_budget_allows_and_reports():
    env = gym.make("OffloadMathRouter-v0", budget=0.2, num_tasks=10, budget_mode="soft")
    infos, _ = _run(env, lambda e, o: 1)
    assert all(i["offloaded"] for i in infos)
    assert [i["over_budget"] for i in infos] == [False] * 2 + [True] * 8


def test_cost_budget_caps_spend():
    cloud = SimulatedCloud()
    env = gym.make(
        "OffloadMathRouter-v0", budget=1.0, cost_budget=0.02, num_tasks=30, cloud_model=cloud
    )
    infos, _ = _run(env, lambda e, o: 1)
    assert sum(i["cost"] for i in infos) <= 0.02 + 1e-12
    assert 0 < sum(i["offloaded"] for i in infos) < 30


def test_router_counterfactuals_are_consistent():
    env = gym.make("OffloadMathRouter-v0", num_tasks=60, budget=0.5)
    rng = np.random.default_rng(0)
    infos, rewards = _run(env, lambda e, o: int(rng.integers(0, 2)))
    for info, r in zip(infos, rewards, strict=True):
        expected = info["cloud_correct"] if info["offloaded"] else info["local_correct"]
        assert info["correct"] == expected and r == float(expected)
    local_acc = np.mean([i["local_correct"] for i in infos])
    cloud_acc = np.mean([i["cloud_correct"] for i in infos])
    assert cloud_acc > local_acc


def test_router_observation_features():
    env = gym.make("OffloadMathRouter-v0", num_tasks=10, budget=0.5).unwrapped
    obs, info = env.reset(seed=1)
    assert obs[0] == 1.0 and obs[1] == 0.0
    assert obs[2] == pytest.approx((info["difficulty"] - 1) / 4)
    assert obs[3] == pytest.approx(info["local_confidence"])
    assert obs[4] == 1.0 and obs[7] == pytest.approx(0.5)
    obs, *_ = env.step(1)
    assert obs[4] == pytest.approx(4 / 5) and obs[5] == 1.0 and obs[6] == 1.0
    assert obs[8] == pytest.approx(0.1)


def test_counterfactuals_off_does_not_ask_the_cloud():
    class Counting(SimulatedCloud):
        calls = 0

        def answer(self, task, partial=None):
            Counting.calls += 1
            return super().answer(task, partial)

    env = gym.make(
        "OffloadMathRouter-v0", num_tasks=5, counterfactuals=False, cloud_model=Counting()
    )
    infos, _ = _run(env, lambda e, o: 0)
    assert Counting.calls == 0 and all(i["cloud_correct"] is None for i in infos)


def test_text_view_grades_and_offloads():
    env = gym.make("OffloadMath-v0", num_tasks=6, budget=0.5)
    obs, _ = env.reset(seed=0)
    assert obs["prompt"] == env.unwrapped.task.prompt
    answer = env.unwrapped.task.answer
    _, r, _, _, info = env.step(f"Thinking... so it is \\boxed{{{answer}}}")
    assert r == 1.0 and info["correct"] and not info["offloaded"]
    _, r, _, _, info = env.step("I tried 2 + 2 = 4. " + MARKER)
    assert info["offloaded"] and info["reward_components"]["offloaded"] == 1.0
    assert info["cost"] > 0 and info["correct"] == bool(r)
    _, r, _, _, info = env.step("The answer is 123456789.")
    assert r == 0.0 and not info["correct"] and info["answer"] == "123456789"


def test_text_view_refused_offload_keeps_the_local_answer():
    env = gym.make("OffloadMath-v0", num_tasks=4, budget=0.0)
    env.reset(seed=0)
    answer = env.unwrapped.task.answer
    _, r, _, _, info = env.step(f"<answer>{answer}</answer> {MARKER}")
    assert info["offload_requested"] and info["offload_refused"] and not info["offloaded"]
    assert r == 1.0


def test_over_long_response_is_truncated():
    env = gym.make("OffloadMath-v0", num_tasks=3, max_response_chars=50)
    env.reset(seed=0)
    answer = env.unwrapped.task.answer
    _, r, _, _, info = env.step("x" * 60 + f"<answer>{answer}</answer>")
    assert info["response_truncated"] is True and r == 0.0
    _, _, _, _, info = env.step("short")
    assert info["response_truncated"] is False


def test_wrong_actions_raise_and_leave_the_env_usable():
    router = gym.make("OffloadMathRouter-v0", num_tasks=3).unwrapped
    router.reset(seed=0)
    for bad, err in [
        ("1", TypeError),
        (1.0, TypeError),
        (True, TypeError),
        (2, ValueError),
        (-1, ValueError),
        (None, TypeError),
    ]:
        with pytest.raises(err, match="Discrete"):
            router.step(bad)
    router.step(np.int64(1))
    router.step(np.array(0))
    text = gym.make("OffloadMath-v0", num_tasks=3).unwrapped
    text.reset(seed=0)
    with pytest.raises(TypeError, match="PromptText"):
        text.step(5)
    _, _, _, _, info = text.step("ok")
    assert info["step"] == 0


def test_step_after_the_end_needs_reset():
    env = gym.make("OffloadMathRouter-v0", num_tasks=2).unwrapped
    env.reset(seed=0)
    env.step(0)
    _, _, terminated, _, info = env.step(0)
    assert terminated and "episode_summary" in info and "episode" not in info
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=1)
    env.step(0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budgett": 0.3}, r"unknown environment argument\(s\) \['budgett'\]; valid: \['budget'"),
        ({"budget": 1.3}, "budget must be a fraction"),
        ({"budget_mode": "strict"}, "budget_mode"),
        ({"reward_weights": {"correctness": 1.0}}, "valid components"),
        ({"local_model": {"skil": {"math": 0.5}}}, "SimulatedLocal argument"),
        ({"cloud_model": object()}, "CloudModel"),
        ({"num_tasks": 0}, "num_tasks"),
        ({"tasks": 42}, "tasks must be"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("OffloadMathRouter-v0", **kwargs)


def test_bad_render_mode():
    from offload_gym.envs import OffloadTextEnv

    with pytest.raises(ValueError, match="render_mode"):
        OffloadTextEnv(render_mode="human")


def test_user_tasks_and_streams():
    tasks = [
        Task(
            id=f"u{i}",
            domain="math",
            prompt=f"What is {i} + {i}?\n$x$ \\frac{{1}}{{2}}",
            answer=str(2 * i),
            difficulty=1 + i % 5,
        )
        for i in range(5)
    ]
    env = gym.make("OffloadMath-v0", tasks=tasks)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    ids = [info["task_id"]]
    for _ in range(4):
        obs, *_, info = env.step("<answer>0</answer>")
        ids.append(env.unwrapped.task.id)
    assert ids == ["u0", "u1", "u2", "u3", "u4"]  # the given order
    stream = TaskStream(
        [
            TaskGroup("easy", make_generator("arithmetic", max_difficulty=1), size=3),
            TaskGroup("hard", make_generator("fractions", min_difficulty=5), size=2),
        ]
    )
    env = gym.make("OffloadMathRouter-v0", tasks=stream)
    _, info = env.reset(seed=0)
    groups = [info["task_group"]]
    for _ in range(4):
        obs, *_, info = env.step(0)
        groups.append(info["task_group"])
    assert groups == ["easy"] * 4 + ["hard"]  # reset, then the tasks of steps 1-4
    assert obs[9] == 1.0  # group_position of the fifth task: the second (last) group


def test_prompt_longer_than_the_limit_is_refused_clearly():
    tasks = [Task(id="long", domain="math", prompt="x" * 100, answer="1")]
    env = gym.make("OffloadMath-v0", tasks=tasks, max_prompt_chars=50)
    with pytest.raises(ValueError, match="max_prompt_chars"):
        env.reset(seed=0)


def test_reward_weights_express_gapg_and_penalties():
    weights = {"correct_local": 1.0, "correct_cloud": 0.4, "cost": -10.0}
    env = gym.make("OffloadMathRouter-v0", num_tasks=30, budget=1.0, reward_weights=weights)
    infos, rewards = _run(env, lambda e, o: int(e.unwrapped._t % 2))
    for info, r in zip(infos, rewards, strict=True):
        c = info["reward_components"]
        assert r == pytest.approx(c["correct_local"] + 0.4 * c["correct_cloud"] - 10 * c["cost"])
    assert any(i["offloaded"] and i["correct"] for i in infos)


def test_local_model_parameters_change_outcomes():
    strong = gym.make(
        "OffloadMathRouter-v0",
        num_tasks=100,
        local_model=SimulatedLocal(skill={"math": 1.0}, difficulty_slope=0.0),
    )
    infos, _ = _run(strong, lambda e, o: 0)
    assert all(i["local_correct"] for i in infos)
    weak = gym.make(
        "OffloadMathRouter-v0",
        num_tasks=100,
        local_model={"skill": {"math": 0.0}, "min_skill": 0.0},
    )
    infos, _ = _run(weak, lambda e, o: 0)
    assert not any(i["local_correct"] for i in infos)


def test_render_ansi():
    env = gym.make("OffloadMathRouter-v0", num_tasks=3, budget=1.0, render_mode="ansi")
    env.reset(seed=0)
    assert "episode start" in env.render()
    env.step(1)
    text = env.render()
    assert "-> cloud" in text and "1/3" in text


def test_prompt_text_space():
    space = PromptText(40)
    assert space.contains("a b\n$\\frac{1}{2}$ ÷ π\tdef f():")
    assert not space.contains("x" * 41) and not space.contains(3)
    assert space.contains(space.sample())


@pytest.mark.parametrize("reported", [-1.0, float("nan"), float("inf"), 1e303])
def test_a_cloud_reporting_an_impossible_cost_cannot_crash_or_skew_the_step(reported):
    """Negative or non-finite costs bill the quote; absurd ones are capped by it. The reward's
    cost is what the ledger charged, and the ledger entry is always settled."""
    from offload_gym.models import CloudResponse

    class Faulty(SimulatedCloud):
        def answer(self, task, partial=None):
            r = super().answer(task, partial)
            return CloudResponse(r.text, r.prompt_tokens, r.completion_tokens, reported,
                                 r.latency_s)  # fmt: skip

    cloud = Faulty()
    env = gym.make("OffloadMathRouter-v0", budget=1.0, num_tasks=3, cloud_model=cloud,
                   reward_weights={"correct": 1.0, "cost": -1.0})  # fmt: skip
    infos, rewards = _run(env, lambda e, o: 1)
    ledger = infos[-1]["episode_summary"]["ledger"]
    assert ledger["calls_used"] == 3 and all(np.isfinite(rewards))
    costs = [i["reward_components"]["cost"] for i in infos]
    quotes = [cloud.quote(t) for t in env.unwrapped._tasks]
    assert all(0.0 <= c <= q + 1e-12 for c, q in zip(costs, quotes, strict=True))
    assert ledger["cost_used"] == pytest.approx(sum(costs))


@pytest.mark.parametrize(("env_id", "key", "value", "view"), [
    ("OffloadMath-v0", "local_model", {}, "router-view"),
    ("OffloadMath-v0", "counterfactuals", False, "router-view"),
    ("OffloadStream-v0", "usage_window", 5, "router-view"),
    ("OffloadMathRouter-v0", "offload_marker", "[HELP]", "text-view"),
    ("OffloadCodeRouter-v0", "max_response_chars", 10, "text-view"),
])  # fmt: skip
def test_each_view_refuses_the_other_views_arguments(env_id, key, value, view):
    with pytest.raises(ValueError, match=f"{key} is a {view} argument"):
        gym.make(env_id, **{key: value})


def test_grades_are_memoised_by_task_content_not_by_id_alone():
    """Two tasks with one id (generators of different difficulty share id schemes) are graded
    each against its own answer."""
    from offload_gym.tasks.base import Task

    a = Task(id="same", domain="math", prompt="1+1?", answer="2")
    b = Task(id="same", domain="math", prompt="1+2?", answer="3")
    env = gym.make("OffloadMath-v0", tasks=[a, b], budget=0.0)
    env.reset(seed=0)
    _, _, _, _, first = env.step("<answer>2</answer>")
    _, _, _, _, second = env.step("<answer>2</answer>")
    assert first["correct"] and not second["correct"]


@pytest.mark.parametrize("env_id", ["OffloadMath-v0", "OffloadStreamRouter-v0"])
def test_every_info_key_is_in_the_typed_contract(env_id):
    from typing import get_type_hints

    from offload_gym.envs import RewardComponents, StepInfo

    keys, parts = set(get_type_hints(StepInfo)), set(get_type_hints(RewardComponents))
    env = gym.make(env_id, num_tasks=4, budget=0.5)
    _, info = env.reset(seed=0)
    seen = [info]
    done = False
    while not done:
        action = 1 if "Router" in env_id else "<unknown> help </unknown>"
        _, _, done, _, info = env.step(action)
        seen.append(info)
        assert set(info["reward_components"]) == parts
    assert all(set(i) <= keys for i in seen), [set(i) - keys for i in seen]
    assert "episode_summary" in seen[-1]


def test_the_text_view_reveals_the_cloud_answer_and_the_reference_after_the_step():
    from offload_gym.protocol import HELP_REQUEST

    env = gym.make("OffloadMath-v0", budget=0.3, num_tasks=10)
    env.reset(seed=0)
    reference = env.unwrapped.task.answer
    _, _, _, _, info = env.step(HELP_REQUEST)
    assert info["offloaded"] and info["cloud_answer"] and info["reference"] == reference
    _, _, _, _, info = env.step("42")
    assert info["cloud_answer"] is None and isinstance(info["reference"], str)
    for _ in range(8):
        *_, terminated, _, info = env.step("0")
    assert terminated and "reference" in info  # what a student reads once the episode is over
    assert env.unwrapped.task is None and env.unwrapped.task_group is None  # no raise
    assert hasattr(env.unwrapped, "task")  # so hasattr and getattr(..., None) are safe


def test_can_offload_answers_as_the_ledger_would_grant():
    """A hard budget of one call: granted once, then refused, and the refusal is what
    `can_offload` predicted; a soft budget always grants; no task, no offload."""
    hard = gym.make("OffloadMath-v0", num_tasks=3, budget=1 / 3, budget_mode="hard")
    hard.reset(seed=0)
    base = hard.unwrapped
    asks = "<unknown> I need help </unknown>"
    predicted, refused = [], []
    for _ in range(3):
        predicted.append(base.can_offload("x"))
        _, _, _, _, info = hard.step(asks)
        refused.append(info["offload_refused"])
    assert predicted == [True, False, False] and refused == [False, True, True]
    assert base.can_offload() is False  # the episode is over
    soft = gym.make("OffloadMath-v0", num_tasks=3, budget=1 / 3, budget_mode="soft")
    soft.reset(seed=0)
    for _ in range(2):
        soft.step(asks)
    assert soft.unwrapped.can_offload()
