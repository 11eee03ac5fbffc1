import json
import shutil
import subprocess
from pathlib import Path

import pytest

from offload_agents.cli import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "OffloadMath-v0" in out and "OffloadMathRouter-v0" in out and "word_problems" in out
    assert main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "OffloadMathRouter-v0" in data["envs"] and data["task_families"]["fractions"] == "math"


@pytest.mark.parametrize(("policy", "usage"), [("local", 0.0), ("cloud", 0.3), ("random", None)])
def test_rollout_router(capsys, policy, usage):
    args = ["rollout", "--policy", policy, "--num-tasks", "20", "--episodes", "2"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 40 and 0.0 <= summary["accuracy"] <= 1.0
    if usage is not None:
        assert summary["cloud_usage"] == pytest.approx(usage)
    assert summary["cloud_usage"] <= 0.3 + 1e-9


def test_rollout_text_view_and_render(capsys):
    assert main(["rollout", "--env", "OffloadMath-v0", "--num-tasks", "5", "--render"]) == 0
    out = capsys.readouterr().out
    assert out.count("[") >= 5 and '"steps": 5' in out


def test_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["rollout", "--budget", "1.5"])
    assert exc.value.code == 2 and "[0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["rollout", "--num-tasks", "zero"])
    with pytest.raises(SystemExit):
        main(["frobnicate"])
    assert main(["rollout", "--env", "CartPole-v1"]) == 2
    assert "registered" in capsys.readouterr().err


def test_console_script_is_installed():
    exe = shutil.which("offload-gym")
    assert exe, "offload-gym console script not on PATH; install with pip install -e ."
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "list" in out and "rollout" in out


def test_compare_end_to_end(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--env", "OffloadStreamRouter-v0", "--agents", "local,random,threshold,oracle",
            "--budget", "0.3", "--episodes", "1", "--seeds", "2", "--num-tasks", "20",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "| oracle |" in table and "APGR" in table
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["budget"] == 0.3 and data["config"]["env"] == "OffloadStreamRouter-v0"
    for name in ("local", "random", "threshold", "oracle"):
        m = data["agents"][name]
        for key in ("accuracy", "local_accuracy", "cloud_usage", "budget_error",
                    "post_switch_accuracy", "forgetting", "apgr", "n_seeds"):  # fmt: skip
            assert key in m, key
        assert m["n_seeds"] == 2 and m["forgetting"] is None
    assert data["agents"]["local"]["apgr"] is None and data["agents"]["oracle"]["apgr"] > 0.5
    for png in ("accuracy_vs_usage.png", "usage_over_stream.png", "group_accuracy.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![accuracy_vs_usage](accuracy_vs_usage.png)" in (out / "results.md").read_text()
    assert len((out / "logs" / "oracle.jsonl").read_text().splitlines()) == 40
    # the first agent is the primary: paired comparisons of it against every other agent
    assert data["config"]["primary"] == "local"
    rows = data["comparisons"]
    assert [(c["a"], c["b"]) for c in rows] == [("local", "random"), ("local", "threshold"),
                                                 ("local", "oracle")]  # fmt: skip
    for c in rows:
        assert (
            c["n_tasks"] == 40 and c["n_seeds"] == 2 and c["ci95"][0] <= c["diff"] <= c["ci95"][1]
        )
        assert 0.0 <= c["p"] <= 1.0 and c["mde80"] >= 0
    assert "## Paired comparisons against local" in (out / "results.md").read_text()
    # stats recomputes the same from the saved per-task logs
    assert main(["stats", str(out), "--json", str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text())["comparisons"] == rows
    assert main(["compare", "--agents", "local,random", "--primary", "oracle", "--out",
                 str(tmp_path / "x"), "--num-tasks", "5", "--quiet"]) == 2  # fmt: skip
    assert "--primary 'oracle' is not one of --agents" in capsys.readouterr().err


def test_evaluate_errors(tmp_path, capsys):
    base = ["--out", str(tmp_path), "--num-tasks", "5", "--quiet"]
    assert main(["evaluate", "--agent", "nope", *base]) == 2
    assert "valid agents" in capsys.readouterr().err
    assert main(["evaluate", "--agent", "local", "--env", "OffloadMath-v0", *base]) == 2
    assert "Router-v0" in capsys.readouterr().err
    assert main(["evaluate", "--agent", "local", "--env", "Nope-v0", *base]) == 2
    with pytest.raises(SystemExit):
        main(["compare", "--episodes", "0", *base])
    assert main(["evaluate", "--agent", "random", *base]) == 0


def test_serve_and_rollout_against_it_twice_pay_once(tmp_path, capsys):
    """`offload-gym serve` in its own process; the rollout's cloud is that server, cached."""
    import urllib.request

    exe = shutil.which("offload-gym")
    proc = subprocess.Popen([exe, "serve", "--port", "0", "--quiet"], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        line = proc.stdout.readline()
        url = line.split(" on ")[1].split(" ")[0]
        args = ["rollout", "--policy", "cloud", "--num-tasks", "10", "--cloud", "openai",
                "--cloud-url", url, "--cloud-model", "offload-gym", "--cloud-send-task",
                "--cloud-cache", str(tmp_path / "cache.sqlite"), "--no-counterfactuals",
                "--ledger", str(tmp_path / "ledger.jsonl")]  # fmt: skip

        def served():
            with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as r:
                return json.loads(r.read())["requests"]

        assert main(args) == 0
        first = json.loads(capsys.readouterr().out)
        assert first["cloud_usage"] == pytest.approx(0.3) and served() == 3
        rows = [json.loads(x) for x in (tmp_path / "ledger.jsonl").read_text().splitlines()]
        assert [r["granted"] for r in rows] == [True] * 3 + [False] * 7  # 3 calls, 7 refused
        assert {r["episode"] for r in rows} == {0} and rows[2]["cost_used"] > 0
        assert main(args) == 0
        second = json.loads(capsys.readouterr().out)
        assert second == first and served() == 3  # answered from the cache: no new request
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert main(["rollout", "--cloud", "openai", "--cloud-url", "http://127.0.0.1:1/v1"]) == 2
    assert "--cloud-model" in capsys.readouterr().err
    assert main(["rollout", "--cloud", "./no/such/model"]) == 2
    assert "no model at" in capsys.readouterr().err


def test_every_demo_config_field_is_a_flag_with_its_doc_and_default(capsys):
    import dataclasses

    from offload_agents.cli import build_parser
    from offload_agents.cli._configflags import config_from_flags
    from offload_agents.grpo.experiment import DemoConfig

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    for f in dataclasses.fields(DemoConfig):
        assert f"--{f.name.replace('_', '-')}" in out, f.name
    assert "0.48-0.52 over this run's 24 steps. (default: 0.0)" in " ".join(out.split())
    args = build_parser().parse_args(["demo", "--out", "x", "--seeds", "0,1", "--methods",
                                      "dagrpo-pid,grpo", "--pid-ki", "0.3"])  # fmt: skip
    cfg = config_from_flags(DemoConfig.quick(), args, args.config_fields)
    assert cfg.seeds == (0, 1) and cfg.methods == ("dagrpo-pid", "grpo") and cfg.pid_ki == 0.3
    assert cfg.slm_steps == DemoConfig.quick().slm_steps  # untouched fields keep quick's value


def test_demo_flag_errors_are_clear(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path), "--seeds", "zero"])
    assert exc.value.code == 2 and "--seeds" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--methods", "ppo"]) == 2
    assert "unknown methods" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--quick", "--preset", "paper"]) == 2
    assert "--quick is --preset quick" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path), "--preset", "long"])
    assert exc.value.code == 2 and "invalid choice: 'long'" in capsys.readouterr().err


def test_demo_workers_flag_reaches_the_run_and_zero_means_one_per_threads_cores(
    tmp_path, monkeypatch
):
    import os

    from offload_agents.grpo import experiment

    seen = []

    def fake_run(out, cfg, *, workers, **kwargs):
        seen.append((cfg.threads, workers))
        raise SystemExit(0)  # stop before the report

    monkeypatch.setattr(experiment, "run_demo", fake_run)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    cases = ((["--workers", "3"], (1, 3)), (["--workers", "0", "--threads", "1"], (1, 4)),
             (["--workers", "0", "--threads", "2"], (2, 2)), ([], (1, 4)))  # fmt: skip
    for flags, want in cases:
        with pytest.raises(SystemExit):
            main(["demo", "--out", str(tmp_path), "--seeds", "0,1,2,3,4", *flags])
        assert seen.pop() == want, flags
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path), "--workers", "-1"])
    assert exc.value.code == 2


def test_version_module_entry_and_defaults_in_help(capsys):
    import sys

    from offload_gym import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"offload-gym {__version__}"
    run = subprocess.run([sys.executable, "-m", "offload_agents", "--version"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert run.stdout.strip() == f"offload-gym {__version__}"
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "tasks per episode (default: 100)" in text and "(default: 0.3)" in text


def test_a_typo_in_a_subcommand_flag_shows_that_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["rollout", "--num-taks", "5"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "usage: offload-gym rollout" in err
    assert "unrecognized arguments: --num-taks 5" in err


def test_mistakes_end_in_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--port", "99999"])
    assert exc.value.code == 2 and "0-65535" in capsys.readouterr().err
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert main(["evaluate", "--agent", "local", "--out", str(a_file), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err and "Traceback" not in err
    assert main(["rollout", "--cloud", "openai", "--cloud-url", "http://127.0.0.1:1/v1"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_used_out_needs_overwrite(tmp_path, capsys):
    args = ["evaluate", "--agent", "local", "--episodes", "1", "--seeds", "1", "--num-tasks", "5",
            "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_interrupted_compare_keeps_the_agents_that_finished(tmp_path, capsys, monkeypatch):
    import offload_agents

    real = offload_agents.evaluate
    done = []

    def stop_at_second(agent, *args, **kwargs):
        if done:
            raise KeyboardInterrupt
        done.append(agent)
        return real(agent, *args, **kwargs)

    monkeypatch.setattr(offload_agents, "evaluate", stop_at_second)
    args = ["compare", "--agents", "local,random", "--episodes", "1", "--seeds", "1",
            "--num-tasks", "5", "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert main(args) == 130
    data = json.loads((tmp_path / "results.json").read_text())
    assert list(data["agents"]) == ["local"] and data["config"]["interrupted"] is True
    assert "kept the results of ['local']" in capsys.readouterr().err


def test_a_network_cloud_is_cached_in_the_user_cache_dir_by_default(tmp_path, capsys):
    from offload_agents.cli import default_cloud_cache

    exe = shutil.which("offload-gym")
    proc = subprocess.Popen([exe, "serve", "--port", "0", "--quiet"], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        url = proc.stdout.readline().split(" on ")[1].split(" ")[0]
        # No --cloud-send-task: the server asks for the task in /v1/models.
        args = ["rollout", "--policy", "cloud", "--num-tasks", "5", "--cloud", "openai",
                "--cloud-url", url, "--cloud-model", "offload-gym", "--budget", "1.0",
                "--no-counterfactuals"]  # fmt: skip
        assert main(args) == 0
        first = capsys.readouterr()
        assert str(default_cloud_cache()) in first.err and default_cloud_cache().exists()
        # every task went to the cloud; right answers mean it was sent the tasks
        assert json.loads(first.out)["accuracy"] >= 0.6
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert main(args) == 0  # the server is down: every answer comes from the cache
    assert json.loads(capsys.readouterr().out) == json.loads(first.out)
    assert main([*args, "--no-cloud-cache", "--cloud-retries", "0", "--cloud-timeout", "2"]) == 2
    assert "error:" in capsys.readouterr().err


def test_tensorboard_logs_for_sb3_training(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    args = ["compare", "--agents", "ppo", "--timesteps", "64", "--episodes", "1", "--seeds", "1",
            "--num-tasks", "5", "--out", str(tmp_path / "out"), "--quiet",
            "--tensorboard", str(tmp_path / "tb")]  # fmt: skip
    assert main(args) == 0
    assert list((tmp_path / "tb").glob("PPO_*/events.out.tfevents.*"))


def test_an_interrupted_compare_resumes_and_refuses_other_settings(tmp_path, capsys, monkeypatch):
    import offload_agents

    real = offload_agents.evaluate
    calls = []

    def stop_at_second(agent, *args, **kwargs):
        calls.append(agent.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(agent, *args, **kwargs)

    monkeypatch.setattr(offload_agents, "evaluate", stop_at_second)
    args = ["compare", "--agents", "local,random", "--episodes", "1", "--seeds", "2",
            "--num-tasks", "5", "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert main(args) == 130
    assert main([*args[:-3], "--num-tasks", "6", "--out", str(tmp_path), "--quiet"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main(args) == 0  # resumed: no --overwrite needed
    data = json.loads((tmp_path / "results.json").read_text())
    assert list(data["agents"]) == ["local", "random"] and "interrupted" not in data["config"]
    assert main(args) == 2  # finished results now need --overwrite
    assert main([*args, "--fresh"]) == 2 and main([*args, "--overwrite"]) == 0


def test_train_checkpoints_resumes_and_saves_a_loadable_model(tmp_path, capsys):
    import json

    from offload_agents.slm import TinyLMConfig, build_slm, load_local_lm

    tiny = TinyLMConfig(vocab_size=400, n_layer=1, n_embd=32, n_head=2, n_positions=384)
    model_dir = build_slm(tmp_path / "slm", config=tiny, n_per_family=2, progress=False)
    out = tmp_path / "run"
    flags = ["train", "--model", str(model_dir), "--out", str(out), "--checkpoint-every", "1",
             "--num-tasks", "6", "--group-size", "2", "--prompts-per-step", "2",
             "--max-new-tokens", "8", "--algorithm", "dagrpo", "--dual", "pid", "--quiet"]  # fmt: skip
    assert main([*flags, "--steps", "2"]) == 0
    first = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in first] == [1, 2] and (out / "checkpoint.pt").exists()
    load_local_lm(out / "model")  # a Hugging Face model folder
    # A finished run is not silently overwritten; with --overwrite it resumes from step 2, and
    # a step logged after the last checkpoint (a crash between them) is dropped and redone.
    assert main([*flags, "--steps", "3"]) == 2
    with (out / "train.jsonl").open("a") as fh:
        fh.write(json.dumps({**first[-1], "step": 3, "loss": 123.0}) + "\n")
    assert main([*flags, "--steps", "3", "--overwrite"]) == 0
    assert "resuming from" in capsys.readouterr().err
    resumed = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed] == [1, 2, 3] and resumed[:2] == first
    assert resumed[2]["loss"] != 123.0
    # Other settings than the checkpoint's are a clear error, not a silent mix.
    assert main([*flags, "--steps", "4", "--overwrite", "--lr", "0.5"]) == 2
    assert "checkpoint config differs" in capsys.readouterr().err


def test_train_with_the_answer_anchor(tmp_path):
    import json

    from offload_agents.slm import TinyLMConfig, build_slm

    tiny = TinyLMConfig(vocab_size=400, n_layer=1, n_embd=32, n_head=2, n_positions=384)
    model_dir = build_slm(tmp_path / "slm", config=tiny, n_per_family=2, progress=False)
    out = tmp_path / "run"
    assert main(["train", "--model", str(model_dir), "--out", str(out), "--steps", "1",
                 "--num-tasks", "4", "--group-size", "2", "--prompts-per-step", "2",
                 "--max-new-tokens", "8", "--anchor-coef", "1", "--anchor-rows", "2",
                 "--quiet"]) == 0  # fmt: skip
    (record,) = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert record["anchor_loss"] > 0


def test_every_coplms_field_is_a_flag(capsys):
    """Scalars and the nested model specs (``ARCH:LAYERSxWIDTH[:HEADS]``, devices as
    ``DOMAIN=SPEC,...``) are flags; defaults shown in their one-line form; a bad spec is one
    line, exit 2."""
    import dataclasses

    from offload_agents.cli import build_parser
    from offload_agents.cli._configflags import config_from_flags
    from offload_agents.coplms import CoPLMsConfig, DeviceSpec, ModelSpec

    argv = [
        "coplms",
        "--out",
        "x",
        "--rounds",
        "2",
        "--lr",
        "0.01",
        "--server",
        "gpt2:3x96",
        "--dpm",
        "llama:1x32:2",
        "--devices",
        "polynomials=gpt2:1x64,code=llama:2x32",
        "--public-domains",
        "arithmetic,code_arithmetic",
    ]
    args = build_parser().parse_args(argv)
    cfg = config_from_flags(CoPLMsConfig(), args, args.config_fields)
    assert cfg.rounds == 2 and cfg.lr == 0.01
    assert cfg.public_domains == ("arithmetic", "code_arithmetic")
    assert cfg.server == ModelSpec("gpt2", 3, 96, 4) and cfg.dpm == ModelSpec("llama", 1, 32, 2)
    assert cfg.devices == (DeviceSpec("polynomials", ModelSpec("gpt2", 1, 64, 4)),
                           DeviceSpec("code", ModelSpec("llama", 2, 32, 4)))  # fmt: skip
    assert set(args.config_fields) == {f.name for f in dataclasses.fields(CoPLMsConfig)} - {"seed"}
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["coplms", "--out", "x", "--server", "gpt2:big"])
    assert exc.value.code == 2 and "ARCH:LAYERSxWIDTH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["coplms", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: gpt2:4x128:4)" in shown and "polynomials=gpt2:2x96:4" in shown


def test_coplms_first_seed_moves_the_seeds_off_the_evaluation_ones(tmp_path, monkeypatch, capsys):
    """``--seeds 2 --first-seed 100`` runs seeds 100 and 101 (tuning seeds); a negative first
    seed is one line naming what was expected."""
    import offload_agents.coplms as coplms
    from offload_agents.cli import build_parser

    got = {}

    def fake_run(cfg, seeds, **kwargs):
        got["seeds"], got["methods"] = seeds, kwargs["methods"]
        return {"seeds": list(seeds)}

    def fake_report(result, out):
        md = Path(out) / "results.md"
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text("report")
        return {"md": md}

    monkeypatch.setattr(coplms, "run_experiment", fake_run)
    monkeypatch.setattr(coplms, "write_report", fake_report)
    assert main(["coplms", "--out", str(tmp_path), "--seeds", "2", "--first-seed", "100"]) == 0
    assert got["seeds"] == (100, 101)
    # The full run's defaults: 5 seeds and the methods of its primary and server comparisons;
    # --quick runs one seed of every method.
    assert main(["coplms", "--out", str(tmp_path / "b")]) == 0
    assert got["seeds"] == (0, 1, 2, 3, 4) and got["methods"] == ("coplms", "standalone", "server")
    assert main(["coplms", "--quick", "--out", str(tmp_path / "c")]) == 0
    assert got["seeds"] == (0,) and got["methods"] == coplms.METHODS
    assert main(["coplms", "--out", str(tmp_path / "d"), "--methods", "coplms,fedmkt"]) == 0
    assert got["methods"] == ("coplms", "fedmkt")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["coplms", "--out", "x", "--first-seed", "-1"])
    assert "expected an integer >= 0, got -1" in capsys.readouterr().err


def test_a_killed_compare_resumes_only_with_the_same_settings(tmp_path, capsys):
    """A kill -9 leaves logs and no results: resuming with another --budget (or other models)
    is one clear error naming the differences, not a report that mixes budgets."""
    out = tmp_path / "run"
    args = ["compare", "--agents", "local,random", "--episodes", "1", "--seeds", "2",
            "--num-tasks", "5", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    saved = json.loads((out / "run.json").read_text())
    assert saved["budget"] == 0.3 and saved["models"]["cloud"] == "simulated"
    for name in ("results.json", "results.md"):  # as if killed before the report
        (out / name).unlink()
    assert main([*args, "--budget", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "budget: 0.3 then, 0.5 now" in err and "--fresh" in err
    assert main([*args, "--cloud-model", "other"]) == 2
    assert "models:" in capsys.readouterr().err
    assert main(args) == 0  # the same settings resume
    (out / "run.json").unlink()
    for name in ("results.json", "results.md"):
        (out / name).unlink()
    assert main(args) == 2  # logs whose settings are unknown
    assert "settings were not saved" in capsys.readouterr().err
    assert main([*args, "--budget", "0.5", "--fresh"]) == 0
    assert json.loads((out / "results.json").read_text())["config"]["budget"] == 0.5


def test_cli_errors_name_what_was_wrong(capsys, tmp_path):
    """Each bad input is one line that says what was expected (issue 27's CLI list)."""
    from offload_agents.cli import main

    with pytest.raises(SystemExit):
        main(["demo", "--out", str(tmp_path / "o"), "--seeds", "a"])
    err = capsys.readouterr().err
    assert "--seeds: 'a' is not INT" in err and "parse_tuple" not in err
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(tmp_path / "o"), "--seeds", "0,,1"])
    assert "no empty item" in capsys.readouterr().err
    assert main(["compare", "--agents", "local,,cloud", "--out", str(tmp_path / "c")]) == 2
    assert "has an empty name" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0.0", "--port", "0", "--recognise-seeds", "0"]) == 2
    assert "--host '0.0.0.0.0'" in capsys.readouterr().err
    from offload_gym.models.backends import make_local

    with pytest.raises(ValueError, match="no model at 'does/not/exist'"):
        make_local("does/not/exist")


def test_an_error_starts_its_own_line_after_open_progress_bars(tmp_path, capsys, monkeypatch):
    import sys

    from tqdm import tqdm

    import offload_agents
    from offload_gym.models.base import CloudError

    def unreachable(agent, *args, **kwargs):
        bar = tqdm(total=10, desc="local on env", file=sys.stderr)  # left open, as mid-run
        bar.update(3)
        raise CloudError("http://127.0.0.1:9", "connection refused")

    monkeypatch.setattr(offload_agents, "evaluate", unreachable)
    args = ["compare", "--agents", "local", "--episodes", "1", "--seeds", "1", "--num-tasks", "5",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    before, sep, after = err.rpartition("error: ")
    assert sep and "local on env" in before and before.endswith("\n")  # the bar's line ended
    assert "connection refused" in after and after.count("\n") == 1  # one line
