"""The statistics of every report, against cases worked out by hand."""

import json
import math

import numpy as np
import pytest

from offload_agents import stats


def _records(values_by_seed, task_prefix="t", metric="correct"):
    return [{"seed": s, "episode": 0, "step": i, "task_id": f"{task_prefix}{s}-{i}", metric: v}
            for s, values in values_by_seed.items() for i, v in enumerate(values)]  # fmt: skip


@pytest.mark.parametrize(
    ("only_a", "only_b", "expected"),
    [
        (5, 0, 2 / 32),  # 2 * 0.5**5
        (1, 4, 2 * 6 / 32),  # 2 * (C(5,0) + C(5,1)) / 2**5
        (2, 8, 2 * 56 / 1024),  # 2 * (1 + 10 + 45) / 2**10
        (3, 3, 1.0),  # capped at 1
        (0, 0, 1.0),  # no discordant pair
        (0, 1, 1.0),  # 2 * 0.5 = 1
    ],
)
def test_mcnemar_exact_by_hand(only_a, only_b, expected):
    assert stats.mcnemar_exact(only_a, only_b) == pytest.approx(expected, abs=1e-12)
    assert stats.mcnemar_exact(only_b, only_a) == pytest.approx(expected, abs=1e-12)


def test_mcnemar_refuses_negative_counts():
    with pytest.raises(ValueError, match=">= 0"):
        stats.mcnemar_exact(-1, 2)


def test_t_interval_by_hand():
    # mean 0.2, sample SD 0.1 (ddof 1, not 0.0816 of ddof 0), t(0.975, df 2) = 4.302653
    lo, hi = stats.t_interval([0.1, 0.2, 0.3])
    half = 4.302652729749462 * 0.1 / math.sqrt(3)
    assert (lo, hi) == pytest.approx((0.2 - half, 0.2 + half), abs=1e-9)
    # two values: df 1, t = 12.7062
    lo, hi = stats.t_interval([0.0, 0.2])
    half = 12.706204736174703 * math.sqrt(0.02) / math.sqrt(2)
    assert (lo, hi) == pytest.approx((0.1 - half, 0.1 + half), abs=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        stats.t_interval([0.5])


def test_mde_by_hand():
    # (t(0.975, 2) + t(0.8, 2)) * s / sqrt(n) = (4.302653 + 1.060660) * 0.1 / sqrt(3)
    assert stats.mde([0.0, 0.1, 0.2]) == pytest.approx(0.309651, abs=1e-6)
    # more seeds, the same spread: smaller, and it shrinks toward the normal-quantile value
    ten = stats.mde([0.0, 0.1, 0.2] * 10)
    assert ten < stats.mde([0.0, 0.1, 0.2])
    s = np.std([0.0, 0.1, 0.2] * 10, ddof=1)
    assert ten == pytest.approx((2.045230 + 0.854192) * s / math.sqrt(30), abs=1e-5)
    # normal version: (1.959964 + 0.841621) * 0.502519 / sqrt(100)
    assert stats.mde_normal([0.0, 1.0] * 50) == pytest.approx(0.140785, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        stats.mde([0.1])


def test_paired_bootstrap_constant_and_weighted():
    # every resample of a constant seed has the same mean; seeds are weighted by their tasks
    assert stats.paired_bootstrap([[0.0], [1.0, 1.0, 1.0]]) == (0.75, 0.75)


def test_paired_bootstrap_matches_the_normal_approximation():
    # 100 differences of 0 or 1, mean 0.5, SE 0.05: the interval is about 0.5 +- 1.96 * 0.05
    lo, hi = stats.paired_bootstrap([[0.0, 1.0] * 50], samples=4000, seed=3)
    assert lo == pytest.approx(0.402, abs=0.02)
    assert hi == pytest.approx(0.598, abs=0.02)
    assert stats.paired_bootstrap([[0.0, 1.0] * 50], seed=3) == stats.paired_bootstrap(
        [[0.0, 1.0] * 50], seed=3
    )  # deterministic by its seed
    with pytest.raises(ValueError, match="at least one task"):
        stats.paired_bootstrap([[0.1], []])


def test_compare_three_seeds_by_hand():
    a = _records({0: [1, 1, 0, 1], 1: [1, 0, 0, 1], 2: [1, 1, 1, 1]})
    b = _records({0: [0, 1, 0, 0], 1: [1, 0, 1, 1], 2: [0, 1, 1, 1]})
    c = stats.compare(a, b, "da", "router")
    # per-seed differences 0.5, -0.25, 0.25; pooled: a right on 9 of 12, b on 7 of 12
    assert c.per_seed_diff == pytest.approx((0.5, -0.25, 0.25))
    assert c.diff == pytest.approx((9 - 7) / 12)
    # discordant: only a right at s0 t0, s0 t3, s2 t0; only b right at s1 t2
    assert c.discordant == (3, 1)
    assert c.p == pytest.approx(2 * 5 / 16)  # 2 * (C(4,0) + C(4,1)) / 16
    assert c.test == "mcnemar-exact"
    assert c.ci_method == "t over seeds" and c.mde_basis == "seeds"
    assert c.ci95 == pytest.approx(stats.t_interval([0.5, -0.25, 0.25]))
    assert c.mde80 == pytest.approx(stats.mde([0.5, -0.25, 0.25]))  # above the task-level one
    assert (c.n_tasks, c.n_seeds) == (12, 3)
    lo, hi = c.ci95_bootstrap
    assert lo <= c.diff <= hi
    row = c.to_dict()
    assert {"a", "b", "metric", "diff", "ci95", "p", "mde80", "n_tasks", "n_seeds"} <= set(row)
    assert isinstance(row["ci95"], list) and len(row["ci95"]) == 2
    json.dumps(row)  # JSON-ready


def test_mde_is_floored_by_task_sampling():
    # equal accuracy in every seed (seed SD 0) while 8 of 10 tasks per seed differ: the
    # per-seed estimate would claim any difference is detectable; the task-level one does not
    a = _records({0: [1, 0] * 5, 1: [0, 1] * 5})
    b = _records({0: [0, 1] * 5, 1: [1, 0] * 5})
    c = stats.compare(a, b, "x", "y")
    assert c.per_seed_diff == (0.0, 0.0) and c.discordant == (10, 10)
    assert c.mde_basis == "tasks"
    assert c.mde80 == pytest.approx(stats.mde_normal([1.0, -1.0] * 10))


def test_compare_one_seed_uses_the_bootstrap_and_task_level_mde():
    a = _records({0: [1, 0] * 20})
    b = _records({0: [0, 0] * 20})
    c = stats.compare(a, b, "x", "y")
    assert c.ci_method == "bootstrap over tasks" and c.mde_basis == "tasks"
    assert c.ci95 == c.ci95_bootstrap
    assert c.mde80 == pytest.approx(stats.mde_normal([1.0, 0.0] * 20))
    assert c.p == pytest.approx(2 * 0.5**20)


def test_compare_graded_metric_uses_wilcoxon():
    a = _records({0: [0.9, 0.8, 0.7, 0.95, 0.85, 0.6]}, metric="rouge_l")
    b = _records({0: [0.5, 0.4, 0.6, 0.50, 0.45, 0.3]}, metric="rouge_l")
    c = stats.compare(a, b, "x", "y", metric="rouge_l")
    assert c.test == "wilcoxon" and c.discordant is None
    assert c.p == pytest.approx(0.03125)  # all 6 positive: exact 2 / 2**6
    same = stats.compare(a, a, "x", "x2", metric="rouge_l")
    assert same.p == 1.0 and same.diff == 0.0


def test_pairing_refuses_different_tasks_and_steps():
    a = _records({0: [1, 0, 1]})
    b = _records({0: [1, 0, 1]}, task_prefix="u")
    with pytest.raises(ValueError, match="different tasks at seed/episode/step"):
        stats.compare(a, b, "a", "b")
    with pytest.raises(ValueError, match="not evaluated on the same steps: 1 only in a"):
        stats.compare(a, a[:2], "a", "b")
    with pytest.raises(ValueError, match="two records"):
        stats.compare(a + a[:1], a + a[:1], "a", "b")
    with pytest.raises(ValueError, match="no 'correct' value"):
        stats.compare([{"seed": 0, "step": 0}], a, "a", "b")


def test_compare_all_and_table():
    logs = {"p": _records({0: [1, 1, 0], 1: [1, 0, 1]}), "q": _records({0: [0, 1, 0], 1: [1, 0, 0]}),
            "r": _records({0: [1, 1, 1], 1: [1, 1, 1]})}  # fmt: skip
    rows = stats.compare_all(logs, "p")
    assert [(c.a, c.b) for c in rows] == [("p", "q"), ("p", "r")]
    table = stats.comparisons_table(rows)
    assert "| p | q | correct | +0.333 |" in table and "t over seeds" in table
    with pytest.raises(ValueError, match="primary method 'z'"):
        stats.compare_all(logs, "z")
    with pytest.raises(ValueError, match=r"methods \['z'\]"):
        stats.compare_all(logs, "p", against=["z"])
