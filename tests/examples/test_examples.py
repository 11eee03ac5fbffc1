"""Every script in examples/ runs with tiny settings."""

import importlib.util
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_router_rollout(capsys):
    rows = _load("router_rollout").main(["--episodes", "4", "--num-tasks", "50"])
    by = {r["policy"]: r for r in rows}
    assert by["local"]["cloud_usage"] == 0.0
    assert all(r["cloud_usage"] <= 0.3 + 1e-9 for r in rows)
    # The local model's confidence carries information: using it beats random offloading.
    assert by["confidence"]["accuracy"] > by["random"]["accuracy"] > by["local"]["accuracy"]
    assert "confidence" in capsys.readouterr().out


def test_train_ppo_router(capsys):
    rows = _load("train_ppo_router").main(["--timesteps", "512", "--episodes", "1"])
    assert set(rows) == {"ppo", "random"}
    assert all(r["cloud_usage"] <= 0.3 + 1e-9 for r in rows.values())
    assert "accuracy" in capsys.readouterr().out


def test_coplms_local_model(tmp_path, capsys):
    summary = _load("coplms_local_model").main(["--out", str(tmp_path), "--tiny", "--tasks", "6"])
    assert (tmp_path / "device0-polynomials" / "config.json").exists()
    assert (tmp_path / "device2-code_arithmetic" / "config.json").exists()
    assert 0.0 <= summary["routed_accuracy"] <= 1.0 and summary["cloud_usage"] <= 0.3 + 1e-9
    assert "routed_accuracy" in capsys.readouterr().out


def _within_budget_with_scalars(results, log_dir) -> dict[str, list[float]]:
    """The example compared PPO with random offloading within the budget, and wrote one
    TensorBoard run: its scalars by tag."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert set(results) == {"ppo", "random"}
    assert all(r["cloud_usage"] <= 0.3 + 1e-9 for r in results.values())
    (run,) = log_dir.iterdir()
    events = EventAccumulator(str(run))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_cleanrl_ppo_router(tmp_path, capsys):
    argv = ["--total-timesteps", "512", "--num-envs", "2", "--num-steps", "64",
            "--eval-episodes", "1", "--log-dir", str(tmp_path)]  # fmt: skip
    results = _load("cleanrl_ppo_router").main(argv)
    scalars = _within_budget_with_scalars(results, tmp_path)
    assert {"charts/accuracy", "charts/cloud_usage", "charts/budget_error"} <= set(scalars)
    assert {"losses/policy_loss", "losses/value_loss"} <= set(scalars)
    # 512 steps of 100-task episodes on 2 envs: 4 finished episodes, each logged once
    usage, errors = scalars["charts/cloud_usage"], scalars["charts/budget_error"]
    assert len(usage) == 4 and all(u <= 0.3 + 1e-6 for u in usage)
    assert all(abs(e - (u - 0.3)) < 1e-6 for e, u in zip(errors, usage, strict=True))
    assert "accuracy" in capsys.readouterr().out


def test_sb3_router_logs_accuracy_and_usage(tmp_path, capsys):
    argv = ["--timesteps", "2048", "--episodes", "1", "--log-dir", str(tmp_path)]
    scalars = _within_budget_with_scalars(_load("sb3_router").main(argv), tmp_path)
    assert {"rollout/accuracy", "rollout/cloud_usage", "rollout/budget_error"} <= set(scalars)
    usage = scalars["rollout/cloud_usage"]
    assert usage and all(0.0 <= u <= 0.3 + 1e-6 for u in usage)
    assert "accuracy" in capsys.readouterr().out


def test_record_episode_statistics_clashes_with_sb3s_monitor():
    """The pitfall docs/agents.md warns about, kept true: if SB3 or Gymnasium ever stop
    clashing, the warning should go."""
    import gymnasium as gym
    import pytest
    from stable_baselines3.common.env_util import make_vec_env

    import offload_gym  # noqa: F401

    env = make_vec_env(
        "OffloadMathRouter-v0", n_envs=1, wrapper_class=gym.wrappers.RecordEpisodeStatistics
    )
    env.reset()
    with pytest.raises(Exception):  # noqa: B017 (whatever SB3 or Gymnasium raises)
        for _ in range(200):
            env.step([0])
    env.close()
