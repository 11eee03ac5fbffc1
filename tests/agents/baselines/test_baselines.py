"""Each baseline's defining behaviour on the router view."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from offload_agents import (
    Agent,
    ConfidenceThreshold,
    FunctionAgent,
    SB3Agent,
    evaluate,
    list_agents,
    make_agent,
    register_agent,
)

ENV = "OffloadMathRouter-v0"
KW = {"budget": 0.3, "num_tasks": 100}


@pytest.fixture(scope="module")
def results():
    names = ["local", "cloud", "random", "threshold", "router", "pacer", "oracle"]
    return {
        n: evaluate(n, ENV, episodes=4, seeds=(0, 1), env_kwargs=KW, progress=False) for n in names
    }


def test_registry_has_every_cli_name():
    expected = {"local", "cloud", "random", "threshold", "router", "oracle", "pacer", "ppo", "dqn",
                "maskable-ppo"}  # fmt: skip
    assert expected <= set(list_agents())
    with pytest.raises(ValueError, match="valid agents"):
        make_agent("gpt-router")
    with pytest.raises(ValueError, match="already registered"):
        register_agent("local", Agent)


def test_local_never_offloads_and_hard_budgets_hold(results):
    assert results["local"].metrics["cloud_usage"] == 0.0
    for name, res in results.items():
        for seed_metrics in res.per_seed:
            assert seed_metrics["cloud_usage"] <= 0.3 + 1e-9, name
        per_episode = {}
        for r in res.logs:
            per_episode.setdefault((r["seed"], r["episode"]), []).append(r["offloaded"])
        assert all(sum(v) <= 30 for v in per_episode.values()), name


def test_random_hits_its_rate(results):
    logs = results["random"].logs
    requested = np.mean([r["action"] for r in logs])
    assert abs(requested - 0.3) < 0.05  # 800 steps: standard error ~0.016


@pytest.mark.parametrize("name", ["threshold", "router"])
def test_calibrated_baselines_hit_their_target_usage(results, name):
    assert abs(results[name].metrics["cloud_usage"] - 0.3) < 0.05


def test_oracle_bounds_every_agent(results):
    oracle = results["oracle"].metrics
    for name, res in results.items():
        assert res.metrics["accuracy"] <= oracle["accuracy"] + 1e-12, name
    # Every oracle offload helps: cloud right where local was wrong.
    off = [r for r in results["oracle"].logs if r["offloaded"]]
    assert off and all(r["cloud_correct"] and not r["local_correct"] for r in off)


def test_informed_baselines_beat_random(results):
    rand = results["random"].metrics["accuracy"]
    for name in ("threshold", "router", "pacer"):
        assert results[name].metrics["accuracy"] > rand + 0.03, name
    assert results["router"].metrics["apgr"] > results["random"].metrics["apgr"] + 0.1


def test_pacer_prices_usage_toward_the_budget():
    agent = make_agent("pacer")
    res = evaluate(agent, ENV, episodes=3, env_kwargs={**KW, "budget_mode": "soft"}, progress=False)
    # Soft budget: nothing caps it but its own price.
    assert abs(res.metrics["cloud_usage"] - 0.3) < 0.1
    assert len(agent.lambda_trace) == 300 and min(agent.lambda_trace) >= 0.0


def test_threshold_with_a_fixed_threshold_needs_no_fit():
    agent = ConfidenceThreshold(threshold=0.5)
    res = evaluate(agent, ENV, env_kwargs=KW, progress=False)
    assert res.metrics["steps"] == 100
    with pytest.raises(RuntimeError, match="fit"):
        ConfidenceThreshold().act(np.zeros(10), {})


def test_custom_function_agent_and_plain_callables():
    res = evaluate(lambda obs: int(obs[3] < 0.3), ENV, env_kwargs=KW, progress=False)
    assert res.metrics["steps"] == 100
    assert isinstance(FunctionAgent(lambda o: 0), Agent)
    with pytest.raises(TypeError):
        FunctionAgent(3)  # type: ignore[arg-type]


def test_oracle_needs_the_router_view():
    with pytest.raises(ValueError, match="router-view"):
        make_agent("oracle").reset(gym.make("OffloadMath-v0", num_tasks=2))


@pytest.mark.parametrize("algo", ["ppo", "dqn", "maskable-ppo"])
def test_sb3_agents_train_and_act(algo, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    agent = SB3Agent(
        algo, total_timesteps=256, algo_kwargs={"n_steps": 128} if "ppo" in algo else {}
    )
    res = evaluate(agent, ENV, env_kwargs={**KW, "num_tasks": 20}, progress=False)
    assert res.metrics["steps"] == 20 and res.metrics["cloud_usage"] <= 0.3 + 1e-9
    assert not list(tmp_path.glob("SB3-*"))  # SB3's quiet logger leaves no temp folders
    with pytest.raises(ValueError, match="algo"):
        SB3Agent("a2c")


def test_sb3_training_bar_names_the_agent_and_the_seed(capsys):
    from offload_agents import SB3Agent

    agent = SB3Agent("ppo", total_timesteps=64, progress_bar=True,
                     algo_kwargs={"n_steps": 32, "batch_size": 32})  # fmt: skip
    agent.fit("OffloadMathRouter-v0", {"budget": 0.3, "num_tasks": 20}, seed=3)
    assert "ppo seed 3: train" in capsys.readouterr().err
