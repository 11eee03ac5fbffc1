"""DA-GRPO's dual controllers, checked against values worked out by hand."""

import math

import numpy as np
import pytest

from offload_agents.grpo.config import GRPOConfig
from offload_agents.grpo.dual import AscentController, PIDController, make_controller


def test_ascent_by_hand_and_projection():
    c = AscentController(lambda0=0.5, tau=0.3, eta=0.1)
    assert c.update(0.9) == pytest.approx(0.56)
    c = AscentController(lambda0=0.01, tau=0.3, eta=0.1)
    assert c.update(0.0) == 0.0  # projected onto lambda >= 0


def test_pid_proportional_integral_derivative_by_hand():
    c = PIDController(lambda0=0.5, tau=0.3, kp=1.0, ki=0.5, kd=2.0, smoothing=1.0)
    # usage 0.5: e = 0.2, I = 0.2, no derivative yet: 0.5 + 0.2 + 0.1 = 0.8
    assert c.update(0.5) == pytest.approx(0.8)
    # usage 0.4: e = 0.1, I = 0.3, de = -0.1: 0.5 + 0.1 + 0.15 - 0.2 = 0.55
    assert c.update(0.4) == pytest.approx(0.55)


def test_pid_smoothing_by_hand():
    c = PIDController(lambda0=0.0, tau=0.3, kp=1.0, ki=0.0, smoothing=0.5)
    c.update(1.0)  # smoothed 1.0: lambda 0.7
    assert c.smoothed == pytest.approx(1.0) and c.lam == pytest.approx(0.7)
    c.update(0.0)  # smoothed 0.5: lambda 0.2
    assert c.smoothed == pytest.approx(0.5) and c.lam == pytest.approx(0.2)


def test_pid_anti_windup_keeps_the_integral_term_in_bounds():
    c = PIDController(lambda0=0.5, tau=0.3, kp=0.0, ki=0.1, smoothing=1.0, lambda_max=2.0)
    for _ in range(1000):
        c.update(1.0)  # far over budget for a long time
    assert c.lam == pytest.approx(2.0)
    assert 0.5 + 0.1 * c.integral == pytest.approx(2.0)  # clamped, not 0.5 + 0.1 * 700
    c.update(0.3)  # back at the budget: lambda does not stay pinned by a wound-up integral
    for _ in range(3):
        c.update(0.0)
    assert c.lam < 2.0
    for _ in range(1000):
        c.update(0.0)
    assert c.lam == 0.0 and 0.5 + 0.1 * c.integral == pytest.approx(0.0)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="finite"):
        PIDController(lambda0=math.nan, tau=0.3, kp=1, ki=1)
    with pytest.raises(ValueError, match="kp"):
        PIDController(lambda0=0.5, tau=0.3, kp=-1, ki=1)
    with pytest.raises(ValueError, match="smoothing"):
        PIDController(lambda0=0.5, tau=0.3, kp=1, ki=1, smoothing=0)
    with pytest.raises(ValueError, match="usage"):
        AscentController(lambda0=0.5, tau=0.3, eta=0.1).update(math.nan)
    c = PIDController(lambda0=0.5, tau=0.3, kp=1, ki=1)
    with pytest.raises(ValueError, match="lambda"):
        c.load_state_dict({**c.state_dict(), "lam": math.inf})


def _track(controller, steps=60, seed=0):
    """A plant where usage falls as lambda rises (usage = 0.9 - 0.5 lambda, clipped, plus
    sampling noise of a batch of 32): the budget 0.3 is held at lambda = 1.2."""
    rng = np.random.default_rng(seed)
    usage = []
    for _ in range(steps):
        p = min(1.0, max(0.0, 0.9 - 0.5 * controller.lam))
        u = rng.binomial(32, p) / 32
        usage.append(u)
        controller.update(u)
    half = usage[steps // 2 :]
    return float(np.mean([abs(u - 0.3) for u in half])), float(np.mean(half))


def test_pid_holds_the_budget_where_slow_ascent_drifts():
    cfg = GRPOConfig(dual="pid")
    pid_err, pid_use = _track(make_controller(cfg))
    asc_err, asc_use = _track(make_controller(GRPOConfig(dual="ascent")))
    assert abs(pid_use - 0.3) < 0.06 and pid_err < 0.1  # near the noise of a 32-sample batch
    assert asc_use > 0.5 and asc_err > 3 * pid_err  # eta 0.01: lambda has barely moved
    assert isinstance(make_controller(cfg), PIDController)
