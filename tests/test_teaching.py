"""The teaching kit: solutions work with small settings; starters stop at their TODO."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

TEACHING = Path(__file__).resolve().parents[1] / "docs" / "teaching"


def load(name):
    spec = importlib.util.spec_from_file_location(name, TEACHING / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exercise_1_threshold_router():
    out = load("ex1_threshold_solution").run(tau=0.3, episodes=2, num_tasks=50)
    assert abs(out["threshold"]["usage"] - 0.3) < 0.08
    assert out["threshold"]["accuracy"] > out["random"]["accuracy"]
    with pytest.raises(NotImplementedError):
        load("ex1_threshold_starter").calibrate(np.array([0.1, 0.9]), 0.5)


def test_exercise_1_a_tighter_hard_budget_caps_the_calibrated_router():
    out = load("ex1_threshold_solution").run(tau=0.2, episodes=2, num_tasks=50,
                                             calibration_rate=0.3)  # fmt: skip
    assert out["threshold"]["usage"] <= 0.2 + 1e-9


def test_exercise_2_dual_update():
    out = load("ex2_dual_solution").run(tau=0.3, steps=600)
    assert abs(out["usage_second_half"] - 0.3) < 0.1
    assert 0.0 < out["lambda_second_half"] < 1.0
    assert min(out["lambda"]) >= 0.0
    with pytest.raises(NotImplementedError):
        load("ex2_dual_starter").dual_update(0.5, 0.5, 0.3, 0.1)


def test_exercise_3_budget_sweep():
    out = load("ex3_budget_sweep_solution").run(budgets=(0.1, 0.3), episodes=1, num_tasks=50)
    assert out["apgr"] == pytest.approx(out["apgr_library"])
    usages = [u for u, _ in out["points"].values()]
    assert usages == sorted(usages)
    with pytest.raises(NotImplementedError):
        load("ex3_budget_sweep_starter").area_under_pgr(np.zeros(2), np.zeros(2), 0.0, 1.0)


def test_the_notebooks_are_built_from_the_exercise_files_with_no_outputs():
    nbformat = pytest.importorskip("nbformat")
    build = load("build_notebooks")
    assert len(build.sources()) == 6
    for path in build.sources():
        committed = nbformat.read(path.with_suffix(".ipynb"), as_version=4)
        assert committed == build.notebook(path), f"rebuild {path.with_suffix('.ipynb').name}"
        code = [c for c in committed.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.parametrize("name", ["ex1_threshold_solution", "ex2_dual_solution",
                                  "ex3_budget_sweep_solution"])  # fmt: skip
def test_each_solution_notebook_runs(name):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(TEACHING / f"{name}.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(TEACHING)}}).execute()  # fmt: skip
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    printed = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    assert printed.strip(), "the exercise's last cell prints its result"
