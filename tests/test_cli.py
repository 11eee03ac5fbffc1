import json
import shutil
import subprocess

import pytest

from offload_gym.cli import main


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
