"""The demo experiment end to end with tiny settings."""

import json

import pytest

from offload_agents.grpo.experiment import DemoConfig, run_demo, write_demo_report

TINY = DemoConfig(seeds=(0,), steps_per_group=1, group_size=2, prompts_per_step=2,
                  max_new_tokens=8, eval_per_group=3, slm_steps=2, slm_batch=4, slm_layers=1,
                  slm_width=32, threads=1)  # fmt: skip


def test_demo_end_to_end(tmp_path):
    result = run_demo(tmp_path / "out", TINY, cache_dir=tmp_path / "cache", progress=False)
    names = set(result["agents"])
    assert names == {"local", "cloud", "dagrpo", "dagrpo-pid", "grpo", "collab", "gapg",
                     "grpo+random", "grpo+router"}  # fmt: skip
    for name, m in result["agents"].items():
        assert m["steps"] == 6, name  # 3 math + 3 code evaluation tasks
    assert result["agents"]["cloud"]["cloud_usage"] == 1.0
    assert result["agents"]["local"]["cloud_usage"] == 0.0
    assert result["agents"]["cloud"]["eval_requests"] == 1.0
    assert result["agents"]["local"]["eval_requests"] == 0.0
    forgetting = result["agents"]["dagrpo"]["forgetting"]
    for view in ("with_cloud", "local"):
        f = forgetting[view]
        assert f["absolute"] == pytest.approx(f["after_math"] - f["end"])
    assert len(result["traces"]["dagrpo"]["lambda"][0]) == 2  # one per training step
    tracking = result["agents"]["dagrpo"]["training"]
    assert 0.0 <= tracking["tracking_error"] <= 1.0 and len(tracking["per_seed"]) == 1
    assert "training" not in result["agents"]["local"]
    paths = write_demo_report(result, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert set(data["agents"]) == names and "traces" in data
    assert (tmp_path / "out" / "training.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "train" / "dagrpo-seed0.jsonl").exists()
    assert len(paths["steps"].read_text().splitlines()) == 6 * len(names)
    md = paths["md"].read_text()
    assert "training requests J_c" in md and "eval granted" in md
    assert 0.0 <= result["config"]["eval_seen_in_warm_start"] <= 1.0
    assert result["slm"]["config"]["steps"] == 2
    # The cached SLM is reused.
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_demo_subset_of_algorithms_and_dual_step(tmp_path):
    import dataclasses

    import pytest

    cfg = dataclasses.replace(TINY, eta_lambda=0.5, methods=("dagrpo",))
    result = run_demo(tmp_path / "out", cfg, cache_dir=tmp_path / "cache", progress=False)
    assert set(result["agents"]) == {"local", "cloud", "dagrpo"}  # no grpo: no composites
    lam = result["traces"]["dagrpo"]["lambda"][0]
    usage = result["traces"]["dagrpo"]["cloud_requests"][0]
    assert lam[1] == pytest.approx(max(0.0, lam[0] + 0.5 * (usage[0] - cfg.tau)))


def test_demo_config_refuses_unknown_methods():
    with pytest.raises(ValueError, match="unknown methods"):
        DemoConfig(methods=("dagrpo", "ppo"))
