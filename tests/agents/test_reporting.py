"""What a report and a plot say about themselves: smoke runs are marked, one seed has no spread,
methods with equal values stay distinguishable."""

from __future__ import annotations

from offload_agents.cli.experiments import _mark_smoke
from offload_agents.plots import style
from offload_agents.stats import mean_pm


def test_a_smoke_run_says_so_in_its_report_and_on_the_console(tmp_path, capsys):
    md = tmp_path / "results.md"
    md.write_text("# Results\n", encoding="utf-8")
    _mark_smoke(md, "--quick")
    text = md.read_text(encoding="utf-8")
    assert text.startswith("> **Smoke run** (`--quick`)") and text.endswith("# Results\n")
    assert "Smoke run" in capsys.readouterr().err


def test_one_seed_shows_no_spread():
    assert mean_pm(0.5, 0.0, 1) == "0.500"
    assert mean_pm(0.5, 0.02, 2) == "0.500 ± 0.020"


def test_the_first_ten_methods_have_ten_distinct_styles():
    looks = {(style(i)["color"], style(i)["marker"], style(i)["ls"]) for i in range(10)}
    markers = {style(i)["marker"] for i in range(10)}
    assert len(looks) == 10 and len(markers) == 10
