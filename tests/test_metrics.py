"""Metrics on hand-computed logs."""

import numpy as np
import pytest

from offload_gym import metrics


def rec(correct, offloaded, group="math", local=None, cloud=None, score=None, ep=0, cost=0.0):
    return {
        "correct": correct,
        "offloaded": offloaded,
        "task_group": group,
        "local_correct": local,
        "cloud_correct": cloud,
        "score": score,
        "episode": ep,
        "seed": 0,
        "cost": cost,
    }


LOG = [
    rec(True, False, local=True, cloud=True, score=0.1),
    rec(True, True, local=False, cloud=True, score=0.9, cost=0.01),
    rec(False, False, local=False, cloud=False, score=0.5),
    rec(False, True, "code", local=True, cloud=False, score=0.7, cost=0.02),
    rec(True, False, "code", local=True, cloud=True, score=0.2),
    rec(False, False, "code", local=False, cloud=True, score=0.3),
]


def test_accuracies_and_usage():
    assert metrics.overall_accuracy(LOG) == pytest.approx(3 / 6)
    assert metrics.local_accuracy(LOG) == pytest.approx(2 / 4)
    assert metrics.cloud_usage(LOG) == pytest.approx(2 / 6)
    assert metrics.group_accuracy(LOG) == {
        "math": pytest.approx(2 / 3),
        "code": pytest.approx(1 / 3),
    }
    assert metrics.post_switch_accuracy(LOG) == pytest.approx(1 / 3)
    assert metrics.post_switch_accuracy(LOG[:3]) is None
    assert metrics.cost_per_correct(LOG) == pytest.approx(0.03 / 3)
    assert metrics.overall_accuracy([]) is None


def test_budget_tracking_error_by_window_and_episode():
    log = [rec(True, k < 2) for k in range(4)] + [rec(True, False, ep=1) for _ in range(2)]
    # Windows of 2: [1, 1] -> |1 - .5|, [0, 0] -> .5, episode 1: [0, 0] -> .5
    assert metrics.budget_tracking_errors(log, 0.5, window=2) == [0.5, 0.5, 0.5]
    assert metrics.budget_tracking_error(log, 0.25, window=4) == pytest.approx((0.25 + 0.25) / 2)
    with pytest.raises(ValueError):
        metrics.budget_tracking_errors(log, 0.5, window=0)


def test_forgetting():
    assert metrics.forgetting(0.8, 0.6) == (pytest.approx(0.25), pytest.approx(0.2))
    assert metrics.forgetting(0.0, 0.0).relative is None


def test_routing_curve_apgr_cpt_by_hand():
    lc = [r["local_correct"] for r in LOG]
    cc = [r["cloud_correct"] for r in LOG]
    sc = [r["score"] for r in LOG]
    curve = metrics.routing_curve(lc, cc, sc)
    # Order by score: gains (cloud - local) = +1 (0.9), -1 (0.7), 0 (0.5), +1 (0.3), 0, 0.
    # local acc = 3/6; accuracies: 3, 4, 3, 3, 4, 4, 4 over 6.
    assert np.allclose(curve.accuracy * 6, [3, 4, 3, 3, 4, 4, 4])
    acc_local, acc_cloud = 3 / 6, 4 / 6
    # PGR: 0, 1, 0, 0, 1, 1, 1; trapezoid with step 1/6: (0.5 + .5 + 0 + .5 + 1 + 1) / 6
    assert metrics.apgr(curve, acc_local, acc_cloud) == pytest.approx(3.5 / 6)
    assert metrics.cpt(curve, acc_local, acc_cloud, 0.5) == pytest.approx(1 / 6)
    assert metrics.apgr(curve, 0.7, 0.6) is None and metrics.pgr(0.5, 0.7, 0.7) is None
    with pytest.raises(ValueError):
        metrics.routing_curve([1], [1, 0], [0.5])


def test_oracle_curve_dominates_random():
    rng = np.random.default_rng(0)
    lc = rng.random(500) < 0.5
    cc = rng.random(500) < 0.9
    oracle = metrics.routing_curve(lc, cc, (cc & ~lc).astype(float))
    rand = metrics.routing_curve(lc, cc, rng.random(500))
    assert (oracle.accuracy >= rand.accuracy - 1e-12).all()
    acc_l, acc_c = lc.mean(), cc.mean()
    assert metrics.apgr(oracle, acc_l, acc_c) > metrics.apgr(rand, acc_l, acc_c)
    assert metrics.apgr(rand, acc_l, acc_c) == pytest.approx(0.5, abs=0.08)


def test_summarize():
    s = metrics.summarize(LOG, 0.3, window=3)
    assert s["accuracy"] == pytest.approx(0.5) and s["apgr"] == pytest.approx(3.5 / 6)
    assert s["always_local_accuracy"] == pytest.approx(0.5) and s["steps"] == 6
    no_cf = [dict(r, cloud_correct=None) for r in LOG]
    assert metrics.summarize(no_cf, 0.3)["apgr"] is None
