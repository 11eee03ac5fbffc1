"""The documentation site builds with no warnings (broken links, missing references) and its
pages carry their headings and plots."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("mkdocs") is None, reason="mkdocs is in the dev extra")
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    index = (site / "index.html").read_text()
    assert "offload-gym" in index and "A first rollout" in index
    results = (site / "results" / "index.html").read_text()
    assert "Routing baselines" in results
    for img in ("router-math/accuracy_vs_usage.png", "router-stream/group_accuracy.png"):
        assert (site / "results" / img).exists(), img
    api = (site / "api" / "offload_gym" / "index.html").read_text()
    assert "BudgetLedger" in api and "OffloadRouterEnv" in api
