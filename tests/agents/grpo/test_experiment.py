"""The demo experiment end to end with tiny settings."""

import json

import numpy as np
import pytest

from offload_agents.grpo.experiment import DemoConfig, run_demo, write_demo_report

TINY = DemoConfig(seeds=(0,), methods=("dagrpo", "grpo", "collab", "gapg"), steps_per_group=1, group_size=2, prompts_per_step=2,
                  max_new_tokens=8, eval_per_group=3, calib_per_group=4, slm_steps=2, slm_batch=4, slm_layers=1,
                  slm_width=32, threads=1)  # fmt: skip


def test_demo_end_to_end(tmp_path):
    result = run_demo(tmp_path / "out", TINY, cache_dir=tmp_path / "cache", progress=False)
    names = set(result["agents"])
    assert names == {"local", "cloud-unlimited", "dagrpo", "grpo", "collab", "gapg",
                     "grpo+random", "grpo+router", "grpo+router-privileged",
                     "dagrpo+rank"}  # fmt: skip
    # the DA-GRPO model ranked by its own asking probability sends exactly the budget's share
    ranked = result["logs"]["dagrpo+rank"]
    assert sum(r["offloaded"] for r in ranked) == int(0.3 * 6)
    for name, m in result["agents"].items():
        assert m["steps"] == 6, name  # 3 math + 3 code evaluation tasks
    assert result["agents"]["cloud-unlimited"]["cloud_usage"] == 1.0
    assert result["agents"]["local"]["cloud_usage"] == 0.0
    assert result["agents"]["cloud-unlimited"]["eval_requests"] == 1.0
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
    assert "| math: J_c | 95% CI | code: J_c |" in md and "n/a (one seed)" in md
    assert set(data["agents"]["dagrpo"]["training"]["by_group"]) == {"group1", "group2"}
    # paired comparisons of the primary (the first method) against every other agent
    assert data["config"]["primary"] == "dagrpo"
    assert {c["b"] for c in data["comparisons"]} == names - {"dagrpo"}
    assert all(c["a"] == "dagrpo" and c["n_tasks"] == 6 for c in data["comparisons"])
    assert "## Paired comparisons against dagrpo" in md
    # forgetting: per-task probe records saved, and the paired change per method and view
    probes = [json.loads(line) for line in paths["probes"].read_text().splitlines()]
    # methods x (after math, end) x views x math tasks, + each model's own answers on all tasks
    assert len(probes) == 4 * 2 * 2 * 3 + 4 * 6
    assert {p["agent"] for p in probes} >= {"dagrpo@after-math:local", "gapg@end:with_cloud"}
    rows = data["forgetting_comparisons"]
    assert len(rows) == 4 * 2
    for row in rows:
        method, view = row["a"].split("@")[0], row["a"].split(":")[1]
        f = data["agents"][method]["forgetting"][view]
        assert row["diff"] == pytest.approx(-f["absolute"])
    assert "negative: forgetting" in md
    # the routing ceiling: from each model's own outcomes and the cloud's, at least its own
    own = [p for p in probes if p["agent"] == "grpo@end:own-all"]
    cloud = result["logs"]["cloud-unlimited"]
    ceiling = data["agents"]["grpo"]["ceiling"]
    gain = sum(c["correct"] and not o["correct"] for o, c in zip(own, cloud, strict=True))
    n_calls = int(0.3 * 6)
    assert ceiling["accuracy"] == pytest.approx((sum(o["correct"] for o in own)
                                                 + min(n_calls, gain)) / 6)  # fmt: skip
    assert data["agents"]["grpo+router"]["ceiling"] == ceiling
    assert data["agents"]["dagrpo+rank"]["ceiling"] == data["agents"]["dagrpo"]["ceiling"]
    assert "## Routing ceiling" in md and "| grpo+router-privileged |" in md
    assert ceiling["accuracy"] >= ceiling["own"] and "ceiling" not in data["agents"]["local"]
    assert 0.0 <= result["config"]["eval_seen_in_warm_start"] <= 1.0
    assert result["slm"]["config"]["steps"] == 2
    # The cached SLM is reused.
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_demo_subset_of_algorithms_and_dual_step(tmp_path):
    import dataclasses

    import pytest

    cfg = dataclasses.replace(TINY, eta_lambda=0.5, methods=("dagrpo",))
    result = run_demo(tmp_path / "out", cfg, cache_dir=tmp_path / "cache", progress=False)
    # no grpo: no routers; the DA-GRPO model ranked by its own asking is there
    assert set(result["agents"]) == {"local", "cloud-unlimited", "dagrpo", "dagrpo+rank"}
    lam = result["traces"]["dagrpo"]["lambda"][0]
    usage = result["traces"]["dagrpo"]["cloud_requests"][0]
    assert lam[1] == pytest.approx(max(0.0, lam[0] + 0.5 * (usage[0] - cfg.tau)))


def test_demo_writes_tensorboard_logs_per_method_and_seed(tmp_path):
    import dataclasses

    pytest.importorskip("tensorboard")
    cfg = dataclasses.replace(TINY, methods=("dagrpo-pid",))
    run_demo(tmp_path / "out", cfg, cache_dir=tmp_path / "cache", progress=False,
             tensorboard_dir=tmp_path / "tb")  # fmt: skip
    assert list((tmp_path / "tb" / "dagrpo-pid-seed0").glob("events.out.tfevents.*"))


def test_demo_config_refuses_unknown_methods():
    with pytest.raises(ValueError, match="unknown methods"):
        DemoConfig(methods=("dagrpo", "ppo"))
    with pytest.raises(ValueError, match="primary 'gapg' is not one of the run's methods"):
        DemoConfig(methods=("dagrpo", "grpo"), primary="gapg")
    assert DemoConfig(methods=("grpo", "dagrpo")).primary_method == "grpo"


def test_demo_lambda_min_reaches_the_feedback_controllers_only():
    cfg = DemoConfig(methods=("dagrpo", "dagrpo-price", "dagrpo-pid"), lambda_min=-1.0)
    assert cfg.grpo("dagrpo-price", 0).lambda_min == -1.0
    assert cfg.grpo("dagrpo-pid", 0).lambda_min == -1.0
    assert cfg.grpo("dagrpo", 0).lambda_min == 0.0  # the paper's ascent stays >= 0
    with pytest.raises(ValueError, match="lambda_min must be a finite number <= 0"):
        DemoConfig(lambda_min=0.2)


def test_the_demo_fields_the_trainer_shares_keep_its_name_and_type_and_reach_it():
    """Every re-declared field is a GRPOConfig field of the same type, and a value other than
    both defaults set on the demo's config is the value every method's trainer gets."""
    import dataclasses
    import typing

    from offload_agents.grpo.config import GRPOConfig
    from offload_agents.grpo.demo_config import METHODS, PASSED_TO_GRPO

    demo_types = typing.get_type_hints(DemoConfig)
    grpo_types = typing.get_type_hints(GRPOConfig)
    grpo_fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    assert set(PASSED_TO_GRPO) <= grpo_fields
    for name in PASSED_TO_GRPO:
        assert demo_types[name] == grpo_types[name], name
    shared = {f.name for f in dataclasses.fields(DemoConfig)} & grpo_fields
    set_per_method = {"budget_signal", "lambda_min", "eta_lambda", "seed"}
    assert shared - set_per_method == set(PASSED_TO_GRPO)  # none forgotten
    assert demo_types["budget_signal"] == grpo_types["budget_signal"]
    odd = {"tau": 0.17, "group_size": 3, "prompts_per_step": 5, "max_new_tokens": 77,
           "lr": 3.3e-4, "beta": 0.02, "anchor_coef": 0.7, "anchor_rows": 9, "lora_rank": 2,
           "lora_alpha": 5.0, "num_iterations": 3, "lambda0": 0.6, "pid_kp": 1.3,
           "pid_ki": 0.07, "threads": 1}  # fmt: skip
    assert set(odd) == set(PASSED_TO_GRPO)
    cfg = DemoConfig(methods=tuple(METHODS), **odd)
    for method in METHODS:
        got = cfg.grpo(method, seed=4)
        assert {k: getattr(got, k) for k in odd} == odd, method
        assert got.seed == 4 and got.num_tasks == 2 * cfg.steps_per_group


def test_demo_flag_takes_a_negative_lambda_min():
    from offload_agents.cli import build_parser

    args = build_parser().parse_args(["demo", "--quick", "--out", "x", "--lambda-min", "-1"])
    assert args.lambda_min == -1.0


def test_interrupted_demo_keeps_finished_seeds_and_resumes_them(tmp_path, monkeypatch):
    import dataclasses

    from offload_agents.grpo import experiment

    cfg = dataclasses.replace(TINY, seeds=(0, 1), methods=("dagrpo",))
    real = experiment._run_seed
    calls, armed = [], [True]

    def interrupt_on_seed_1(*args, **kwargs):
        calls.append(args[4])
        if args[4] == 1 and armed[0]:
            armed[0] = False
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "_run_seed", interrupt_on_seed_1)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_demo(out, cfg, cache_dir=tmp_path / "cache", progress=False)
    assert len(list((out / experiment.PARTIAL_DIR).glob("seed0-*.json"))) == 1
    resumed = run_demo(out, cfg, cache_dir=tmp_path / "cache", progress=False)
    assert calls == [0, 1, 1]  # seed 0 was not run again
    monkeypatch.setattr(experiment, "_run_seed", real)
    fresh = run_demo(tmp_path / "fresh", cfg, cache_dir=tmp_path / "cache", progress=False)
    assert resumed["agents"] == fresh["agents"] and resumed["traces"] == fresh["traces"]
    other = dataclasses.replace(cfg, eta_lambda=0.5)  # other settings never reuse a partial
    monkeypatch.setattr(experiment, "_run_seed", interrupt_on_seed_1)
    calls.clear()
    run_demo(out, other, cache_dir=tmp_path / "cache", progress=False)
    assert calls == [0, 1]
    write_demo_report(resumed, out)
    assert not (out / experiment.PARTIAL_DIR).exists()
    train_log = (out / "train" / "dagrpo-seed1.jsonl").read_text().splitlines()
    assert len(train_log) == 2  # one line per step of the last run, not appended to earlier ones


def test_evaluation_tasks_are_held_out_from_the_warm_start():
    from offload_agents.grpo.experiment import demo_stream, heldout_stream
    from offload_agents.slm.skill import prompt_digest

    cfg = DemoConfig()
    seen_tasks, _ = demo_stream(cfg, 200, 7).draw(np.random.default_rng(0))
    seen = {prompt_digest(t.prompt) for t in seen_tasks}
    stream = heldout_stream(cfg, 40, 7, seen)
    tasks, groups = stream.draw(np.random.default_rng(0))
    keys = [prompt_digest(t.prompt) for t in tasks]
    assert len(tasks) == 80 and len(set(keys)) == 80 and not set(keys) & seen
    assert {t.difficulty for t, g in zip(tasks, groups, strict=True) if g == 0} <= {1, 2}
    assert {t.difficulty for t, g in zip(tasks, groups, strict=True) if g == 1} == {2, 3}
    assert stream.draw(np.random.default_rng(5))[0] == tasks  # a fixed stream
    narrow = DemoConfig(code_families=("code_lists",), code_difficulty=(1, 1))
    with pytest.raises(ValueError, match="prompts unseen in the warm start"):
        heldout_stream(narrow, 500, 7, set())
    with pytest.raises(ValueError, match="math_difficulty"):
        DemoConfig(math_difficulty=(3, 2))


def test_replay_mixes_the_first_groups_tasks_into_later_training_groups_only():
    from offload_agents.grpo.demo_config import demo_stream, heldout_stream

    cfg = DemoConfig(replay=0.25)
    plain = demo_stream(cfg, 400, 7).draw(np.random.default_rng(0))
    assert plain == demo_stream(cfg, 400, 7, replay=0.0).draw(np.random.default_rng(0))
    tasks, groups = demo_stream(cfg, 400, 7, replay=0.25).draw(np.random.default_rng(0))
    first = [t for t, g in zip(tasks, groups, strict=True) if g == 0]
    later = [t for t, g in zip(tasks, groups, strict=True) if g == 1]
    assert all(t.domain == "math" for t in first)
    replayed = sum(t.domain == "math" for t in later)
    assert 0.18 < replayed / len(later) < 0.32  # 0.25 of 400 draws, about +-0.02 SD
    assert {t.difficulty for t in later if t.domain == "math"} <= {1, 2}  # the math spans
    held, held_groups = heldout_stream(cfg, 40, 7, set()).draw(np.random.default_rng(0))
    assert all(t.domain == "code" for t, g in zip(held, held_groups, strict=True) if g == 1)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"replay must be a share in \[0, 1\)"):
            DemoConfig(replay=bad)


def test_the_dual_step_size_follows_the_written_rule_unless_set():
    assert DemoConfig().eta == pytest.approx(0.5 / (0.1 * 12))
    assert DemoConfig(steps_per_group=24, lambda0=1.0).eta == pytest.approx(1.0 / 2.4)
    assert DemoConfig(eta_lambda=0.01).eta == 0.01
    assert DemoConfig().grpo("dagrpo", 0).eta_lambda == pytest.approx(0.5 / 1.2)
    with pytest.raises(ValueError, match="eta_lambda must be >= 0"):
        DemoConfig(eta_lambda=0.0, lambda0=0.0)


def test_presets_main_and_paper_seeds_are_fresh_and_the_paper_preset_triples_the_steps():
    from offload_agents.grpo.demo_config import DemoConfig

    main, paper = DemoConfig.preset("main"), DemoConfig.preset("paper")
    assert paper.steps_per_group == 3 * main.steps_per_group
    assert not set(main.seeds) & set(paper.seeds)
    tuning, earlier = {7, 8}, {0, 1, 2, 3, 4, 5, 6, 9, 10}
    assert not (set(main.seeds) | set(paper.seeds)) & (tuning | earlier)
    assert paper.eta < main.eta  # eta_rule: the same move over a longer group
    assert DemoConfig.preset("quick") == DemoConfig.quick()
    with pytest.raises(ValueError, match="unknown preset 'long'"):
        DemoConfig.preset("long")
