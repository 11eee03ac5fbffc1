"""The demo's routing baselines: a prompt-only router, the privileged reference, the ceiling."""

import numpy as np
import pytest

from offload_agents.baselines.prompt_router import PromptRouter, top_share
from offload_agents.grpo.routers import Calibration, route_by, routing_ceiling
from offload_gym.tasks.base import Task


def _tasks(labels):
    """Tasks whose prompt shows a two-digit term (hard) or not, with a given difficulty label."""
    out = []
    for i, label in enumerate(labels):
        a, b = (10 + i % 7, i % 9) if i % 2 else (i % 9, (i + 3) % 9)
        out.append(Task(f"t{i}", "math", f"Compute {a} + {b}.", str(a + b), difficulty=label))
    return out


def _calibration(n=120):
    tasks = _tasks([3 if i % 2 else 1 for i in range(n)])
    hard = np.array([i % 2 == 1 for i in range(n)])
    return Calibration(tasks, np.full(n, 0.8), ~hard, np.ones(n, bool))


def test_the_prompt_router_reads_the_prompt_not_the_difficulty_label():
    calib = _calibration()
    tasks = _tasks([2] * 40)  # every label the same: only the text tells the tasks apart
    relabelled = _tasks([5 - (i % 5) for i in range(40)])  # the same prompts, other labels
    conf = np.full(40, 0.8)
    sent = route_by("prompt", calib, tasks, conf, 0.3)
    assert sent.sum() == 12  # floor(0.3 * 40): the budget's share, exactly
    assert all(int(t.prompt.split()[1]) >= 10 for t, s in zip(tasks, sent, strict=True) if s)
    assert (route_by("prompt", calib, relabelled, conf, 0.3) == sent).all()
    # the privileged reference reads the label: with every label equal it cannot rank
    privileged = route_by("privileged", calib, relabelled, conf, 0.3)
    assert not (privileged == sent).all()


def test_a_single_class_calibration_routes_by_confidence():
    calib = _calibration()
    calib = Calibration(calib.tasks, calib.confidences, np.ones(120, bool), np.ones(120, bool))
    conf = np.linspace(0.1, 0.9, 10)
    for kind in ("prompt", "privileged"):
        assert (
            route_by(kind, calib, _tasks([1] * 10), conf, 0.3).tolist() == [True] * 3 + [False] * 7
        )
    with pytest.raises(ValueError, match="unknown router kind"):
        route_by("oracle", _calibration(), _tasks([1] * 4), np.ones(4), 0.5)


def test_prompt_router_refuses_bad_input():
    router = PromptRouter()
    with pytest.raises(RuntimeError, match="fit"):
        router.scores(["a"], [0.5])
    with pytest.raises(ValueError, match="single class"):
        router.fit(["a", "b"], [0.5, 0.5], [True, True], [True, True], 0.3)
    with pytest.raises(ValueError, match="one entry a task"):
        router.fit(["a", "b"], [0.5], [True, False], [True, True], 0.3)
    with pytest.raises(ValueError, match="rate"):
        router.fit(["a", "b"], [0.5, 0.5], [True, False], [True, True], 1.5)
    with pytest.raises(ValueError, match="ngram_range"):
        PromptRouter(ngram_range=(3, 2))


def test_top_share_and_the_ceiling_by_hand():
    assert top_share([0.5, 0.5, 0.1], 0.67).tolist() == [True, True, False]
    assert top_share([0.2, 0.9], 0.0).tolist() == [False, False]
    # 10 tasks, 3 calls: own right on 4; the cloud gains on 2 -> 0.6; on 5 -> capped at 0.7
    local = [1] * 4 + [0] * 6
    assert routing_ceiling(local, [1] * 4 + [1, 1] + [0] * 4, 0.3) == pytest.approx(0.6)
    assert routing_ceiling(local, [0] * 4 + [1] * 5 + [0], 0.3) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="one outcome per task"):
        routing_ceiling([1, 0], [1], 0.3)
