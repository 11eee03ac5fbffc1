"""Registry-wide checks: every offload id passes Gymnasium's checker and is deterministic; router
ids also pass SB3's checker. New ids are covered automatically."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import offload_gym

OFFLOAD_IDS = sorted(
    env_id
    for env_id, spec in gym.registry.items()
    if isinstance(spec.entry_point, str) and spec.entry_point.startswith("offload_gym.")
)
ROUTER_IDS = [i for i in OFFLOAD_IDS if gym.spec(i).entry_point.endswith("OffloadRouterEnv")]
SMALL = {"num_tasks": 12}


def test_expected_ids_are_registered():
    assert {"OffloadMath-v0", "OffloadMathRouter-v0"} <= set(OFFLOAD_IDS)


@pytest.mark.parametrize("env_id", OFFLOAD_IDS)
def test_gymnasium_check_env(env_id):
    env = gym.make(env_id, **SMALL)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", ROUTER_IDS)
def test_sb3_check_env(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(gym.make(env_id, **SMALL), warn=True)


def _policy(env_id, obs, rng, env):
    if env_id in ROUTER_IDS:
        return int(rng.integers(0, 2))
    task = env.unwrapped.task
    r = rng.random()
    if r < 0.3:
        return f"Step by step... <answer>{task.answer}</answer>"
    if r < 0.6:
        return "I cannot solve this. <unknown> I need external assistance </unknown>"
    return f"The answer is {rng.integers(-50, 50)}."


def _rollout(env_id, seed):
    env = gym.make(env_id, **SMALL)
    rng = np.random.default_rng(123)
    obs, info = env.reset(seed=seed)
    trace = [(repr(obs), sorted(info.items()))]
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(_policy(env_id, obs, rng, env))
        trace.append((repr(obs), reward, terminated, truncated, repr(sorted(info.items()))))
        done = terminated or truncated
    return trace


@pytest.mark.parametrize("env_id", OFFLOAD_IDS)
def test_seeded_rollouts_are_identical(env_id):
    a, b = _rollout(env_id, seed=42), _rollout(env_id, seed=42)
    assert a == b
    assert len(a) == SMALL["num_tasks"] + 1
    assert _rollout(env_id, seed=43) != a


def test_make_with_module_prefix_needs_no_import():
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('offload_gym:OffloadMath-v0', num_tasks=3)\n"
        "obs, info = env.reset(seed=0)\n"
        "print(type(env.unwrapped).__name__, info['task_id'].split('/')[0] != '')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "OffloadTextEnv True"


@pytest.mark.parametrize("env_id", OFFLOAD_IDS)
def test_info_keys(env_id):
    env = gym.make(env_id, **SMALL)
    _, info = env.reset(seed=0)
    for key in ("task_id", "domain", "difficulty", "budget_left", "task_group"):
        assert key in info
    action = 1 if env_id in ROUTER_IDS else "<answer>0</answer>"
    _, _, _, _, info = env.step(action)
    for key in (
        "task_id",
        "domain",
        "difficulty",
        "correct",
        "offloaded",
        "budget_left",
        "cost",
        "reward_components",
        "task_group",
    ):
        assert key in info, key
    assert set(info["reward_components"]) == set(offload_gym.envs.REWARD_COMPONENTS)
    if env_id in ROUTER_IDS:
        assert {"local_correct", "cloud_correct", "local_confidence"} <= set(info)
    else:
        assert info["response_truncated"] is False


# ---------------------------------------------------------------------------- ecosystem plumbing
@pytest.mark.parametrize("env_id", ROUTER_IDS)
def test_sb3_make_vec_env_with_default_arguments(env_id):
    """SB3's make_vec_env asks for render_mode="rgb_array" by default: the status line drawn
    on an image. (The text ids' ``Text`` observations are outside what SB3's vector envs
    store.)"""
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(env_id, n_envs=2, env_kwargs=SMALL)
    assert venv.reset().shape == (2, *venv.observation_space.shape)
    assert venv.get_attr("render_mode") == ["rgb_array", "rgb_array"]
    frames = venv.env_method("render")
    assert all(f.shape == (64, 640, 3) and f.dtype == np.uint8 for f in frames)
    assert (frames[0] < 128).any()  # text was drawn
    venv.close()


@pytest.mark.parametrize("algo", ["ppo", "dqn", "maskable-ppo"])
def test_sb3_learns_on_make_vec_env_with_default_arguments(algo):
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("OffloadMathRouter-v0", n_envs=2, seed=0, env_kwargs=SMALL)
    if algo == "ppo":
        model = PPO("MlpPolicy", venv, n_steps=8, batch_size=8, n_epochs=1, seed=0)
    elif algo == "dqn":
        model = DQN("MlpPolicy", venv, learning_starts=4, buffer_size=100, seed=0)
    else:
        from sb3_contrib import MaskablePPO

        model = MaskablePPO("MlpPolicy", venv, n_steps=8, batch_size=8, n_epochs=1, seed=0)
    model.learn(total_timesteps=32)
    assert model.num_timesteps >= 32
    venv.close()


@pytest.mark.parametrize("env_id", OFFLOAD_IDS)
def test_record_episode_statistics_single_and_vector(env_id):
    """No info key a standard wrapper owns: the env's own end-of-episode summary is
    ``episode_summary``, so RecordEpisodeStatistics can write ``episode``."""
    from gymnasium.wrappers import RecordEpisodeStatistics
    from gymnasium.wrappers.vector import RecordEpisodeStatistics as VectorRecord

    env = RecordEpisodeStatistics(gym.make(env_id, num_tasks=3))
    env.reset(seed=0)
    for _ in range(3):
        _, _, terminated, _, info = env.step(env.action_space.sample())
    assert terminated and info["episode"]["l"] == 3 and "ledger" in info["episode_summary"]
    env.close()

    venv = VectorRecord(gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", num_tasks=3))
    venv.reset(seed=0)
    for _ in range(3):
        _, _, terminated, _, info = venv.step(venv.action_space.sample())
    assert terminated.all() and list(info["episode"]["l"]) == [3, 3]
    venv.close()


def _same_obs(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_obs(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return tuple(a) == tuple(b)


@pytest.mark.parametrize("env_id", ["OffloadMath-v0", "OffloadMathRouter-v0"])
def test_make_vec_sync_and_async_observe_the_same(env_id):
    """Under one seed the async vector env (shared memory, the default) observes exactly what
    the sync one does, after reset and after steps (it once repeated zeroed prompts). Workers
    are spawned: forking a process whose torch thread pool has started (earlier tests) can
    deadlock the child. One text and one router id (each spawn imports the package anew)."""
    envs = [gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", num_tasks=3),
            gym.make_vec(env_id, num_envs=2, vectorization_mode="async", num_tasks=3,
                         vector_kwargs={"context": "spawn"})]  # fmt: skip
    try:
        obs = [e.reset(seed=0)[0] for e in envs]
        assert _same_obs(*obs)
        if "prompt" in obs[0]:
            assert all(len(p) > 0 and set(p) != {"0"} for p in obs[1]["prompt"])
        for _ in range(2):
            act = envs[0].action_space.sample()
            steps = [e.step(act) for e in envs]
            assert _same_obs(steps[0][0], steps[1][0])
            assert np.array_equal(steps[0][1], steps[1][1])  # rewards
    finally:
        for e in envs:
            e.close()


@pytest.mark.parametrize("env_id", OFFLOAD_IDS)
def test_reset_options_budget_is_honoured_and_unknown_keys_refused(env_id):
    env = gym.make(env_id, num_tasks=10, budget=0.3)
    env.reset(seed=0, options={"budget": 0.9})
    assert env.unwrapped.ledger.calls_allowed == 9
    env.reset(seed=0)  # options apply to their own episode
    assert env.unwrapped.ledger.calls_allowed == 3
    with pytest.raises(ValueError, match=r"unknown reset options \['foo'\].*\['budget'\]"):
        env.reset(seed=0, options={"foo": 1})
    with pytest.raises(ValueError, match="fraction"):
        env.reset(seed=0, options={"budget": 1.5})
    env.reset(seed=0, options=None)
    env.close()


def test_reset_budget_option_caps_the_episode():
    """With budget 0.9 from reset options, 9 of 10 offloads are granted; the 10th is refused."""
    env = gym.make("OffloadMathRouter-v0", num_tasks=10, budget=0.1)
    env.reset(seed=0, options={"budget": 0.9})
    infos = [env.step(1)[-1] for _ in range(10)]
    assert sum(i["offloaded"] for i in infos) == 9 and infos[-1]["offload_refused"]
    env.close()


def test_the_arguments_table_names_every_environment_argument():
    """docs/environments.md's table of `gym.make` arguments lists every `EnvConfig` field (and
    nothing that is not one, besides Gymnasium's ``render_mode``)."""
    import dataclasses
    import re
    from pathlib import Path

    from offload_gym.envs.config import EnvConfig

    doc = (Path(__file__).resolve().parents[2] / "docs" / "environments.md").read_text()
    table = doc.split("| argument | default | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", table, flags=re.M))
    fields = {f.name for f in dataclasses.fields(EnvConfig)}
    assert documented - {"render_mode"} == fields
