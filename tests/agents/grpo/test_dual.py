"""DA-GRPO's dual controllers, checked against values worked out by hand."""

import math

import numpy as np
import pytest
import torch

from offload_agents.grpo import functional as F
from offload_agents.grpo.config import GRPOConfig
from offload_agents.grpo.dual import (
    AscentController,
    PIDController,
    PriceController,
    make_controller,
)


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


def test_price_by_hand_smoothing_and_unpriced_batches():
    c = PriceController(lambda0=0.4, tau=0.3, kp=0.0, ki=0.0, smoothing=0.5)
    both_ask = torch.ones(1, 4)
    c.observe(torch.tensor([[1.0, 0.0, 1.0, 0.0]]), both_ask)
    assert c.lam == 0.4  # every response asked: nothing to price, lambda0 holds
    # asker right, three local answers wrong: gain 0.75, spread 0.75 -> price 1
    r, ask = torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    c.observe(r, ask)
    assert c.price == pytest.approx(1.0) and c.lam == pytest.approx(1.0)
    # asking loses: asker wrong, local right: gain -0.5, spread 0.5; smoothed sums
    # (0.75 + -0.5) / 2 and (0.75 + 0.5) / 2 -> price 0.125 / 0.625 = 0.2
    c.observe(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]))
    assert c.price == pytest.approx(0.2)
    c.observe(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]))  # -> negative price
    c.observe(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]))
    assert c.price < 0 and c.lam == 0.0  # projected onto lambda >= 0


def test_price_feedback_anti_windup_and_errors():
    c = PriceController(lambda0=0.5, tau=0.3, kp=1.0, ki=1.0, smoothing=1.0, lambda_max=2.0)
    for _ in range(50):
        c.update(1.0)
    assert c.lam == 2.0 and c.integral == pytest.approx(2.0)  # integral bounded by lambda_max/ki
    c.update(0.3)  # e = 0: the integral unwinds from its bound, not from 35
    assert c.lam == pytest.approx(2.0) and c.integral == pytest.approx(2.0)
    c.update(0.0)
    assert c.integral == pytest.approx(1.7) and c.lam == pytest.approx(0.5 - 0.3 + 1.7)
    with pytest.raises(ValueError, match="usage"):
        c.update(math.nan)
    with pytest.raises(ValueError, match=r"\(P, G\)"):
        c.observe(torch.ones(4), torch.ones(4))
    with pytest.raises(ValueError, match="finite"):
        c.observe(torch.tensor([[math.nan, 0.0]]), torch.tensor([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="kp"):
        PriceController(lambda0=0.5, tau=0.3, kp=-1.0, ki=0.0)
    assert isinstance(make_controller(GRPOConfig(dual="price")), PriceController)


def _simulated_policy(cfg, seed, *, gain, logit0, steps, cloud_right):
    """The batch usage of a simulated policy under ``cfg``'s controller: one asking logit per
    task kind (``len(gain)`` kinds, all starting at ``logit0``), moved by the dual advantage's
    policy gradient; 4 prompts x 8 samples a step; an answer is right with probability
    ``cloud_right`` when the sample asks and ``cloud_right - gain[kind]`` when it does not."""
    rng = np.random.default_rng(seed)
    theta = np.full(len(gain), logit0)
    c = make_controller(cfg)
    usage = []
    for _ in range(steps):
        kinds = rng.integers(len(gain), size=4)
        p = 1 / (1 + np.exp(-theta[kinds]))
        ask = (rng.random((4, 8)) < p[:, None]).astype(float)
        right = rng.random((4, 8)) < np.where(ask > 0, cloud_right,
                                              cloud_right - gain[kinds][:, None])  # fmt: skip
        r, a = torch.tensor(right.astype(float)), torch.tensor(ask)
        c.observe(r, a)
        adv = F.dual_advantage(r, a, c.lam).numpy()
        for i, k in enumerate(kinds):
            theta[k] += 4.0 * np.mean(adv[i] * (ask[i] - p[i]))
        usage.append(ask.mean())
        c.update(ask.mean())
    return usage


def test_price_controller_tracks_a_learning_policy():
    """A simulated policy (asking logits per task kind, moved by the dual advantage's policy
    gradient: a plant that answers lambda with a lag), 12 task kinds whose cloud gain spans
    0.05-0.9: over the second half of 24 steps the price controller holds mean usage near tau
    across seeds, and the ascent of the paper (eta 0.01) does not."""

    def run(dual, seed):
        gain = np.linspace(0.05, 0.9, 12)
        usage = _simulated_policy(
            GRPOConfig(dual=dual, tau=0.3), seed, gain=gain, logit0=1.0, steps=24, cloud_right=0.95
        )  # asks 73% at the start; fmt: skip
        return abs(np.mean(usage[12:]) - 0.3)

    price = np.mean([run("price", s) for s in range(20)])
    ascent = np.mean([run("ascent", s) for s in range(20)])
    assert price < 0.08 and ascent > 2 * price


def test_a_new_controller_is_a_registered_factory():
    from offload_agents.grpo.dual import list_duals, register_dual, registry

    assert list_duals()[:3] == ("ascent", "pid", "price")

    class Fixed:  # holds lambda where the config puts it
        def __init__(self, lam):
            self.lam = lam

        def observe(self, rewards, cloud):
            pass

        def update(self, usage):
            return self.lam

        def state_dict(self):
            return {"lam": self.lam}

        def load_state_dict(self, state):
            self.lam = state["lam"]

    try:
        register_dual("fixed-test")(lambda cfg: Fixed(cfg.lambda0))
        cfg = GRPOConfig(dual="fixed-test", lambda0=0.7)  # the config accepts it, unedited
        c = make_controller(cfg)
        assert isinstance(c, Fixed) and c.update(0.9) == 0.7
        with pytest.raises(ValueError, match="already registered"):
            register_dual("fixed-test")(lambda cfg: Fixed(0.0))
    finally:
        registry._REGISTRY.pop("fixed-test", None)
    with pytest.raises(ValueError, match="dual must be one of"):
        GRPOConfig(dual="fixed-test")
    with pytest.raises(ValueError, match="non-empty string"):
        register_dual("")


def test_lambda_min_lets_the_feedback_controllers_reward_asking():
    # PID by hand (lambda0 0.5, Kp 2, Ki 0.5, no smoothing): usage 0 gives e = -0.3, I = -0.3,
    # lambda = 0.5 - 0.6 - 0.15 = -0.25, kept at 0 by default and at -0.25 with lambda_min -1
    for lo, want in ((0.0, 0.0), (-1.0, -0.25), (-0.1, -0.1)):
        c = PIDController(lambda0=0.5, tau=0.3, kp=2.0, ki=0.5, smoothing=1.0, lambda_min=lo)
        assert c.update(0.0) == pytest.approx(want)
    # price by hand: price 1 (asker right, three local wrong), Kp 1, Ki 0, usage 0:
    # lambda = 1 - 0.3 = 0.7; Kp 5: 1 - 1.5 = -0.5
    c = PriceController(lambda0=0.5, tau=0.3, kp=5.0, ki=0.0, smoothing=1.0, lambda_min=-2.0)
    c.observe(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    assert c.update(0.0) == pytest.approx(-0.5)
    # the anti-windup bound of the price controller's integral covers the lower bound
    c = PriceController(lambda0=0.5, tau=0.3, kp=0.0, ki=1.0, smoothing=1.0, lambda_min=-3.0,
                        lambda_max=2.0)  # fmt: skip
    for _ in range(50):
        c.update(0.0)
    assert c.integral == pytest.approx(-3.0) and c.lam == pytest.approx(-2.5)
    # a saved negative lambda resumes where allowed and is refused where it is not
    state = c.state_dict()
    again = PriceController(lambda0=0.5, tau=0.3, kp=0.0, ki=1.0, lambda_min=-3.0)
    again.load_state_dict(state)
    assert again.lam == c.lam
    with pytest.raises(ValueError, match=r"lambda must be >= 0"):
        PriceController(lambda0=0.5, tau=0.3, kp=0.0, ki=1.0).load_state_dict(state)


def test_lambda_min_is_checked_where_it_is_set():
    with pytest.raises(ValueError, match="lambda_min must be a finite number <= 0"):
        PIDController(lambda0=0.5, tau=0.3, kp=1.0, ki=0.0, lambda_min=0.5)
    with pytest.raises(ValueError, match="lambda_min must be a finite number <= 0"):
        PriceController(lambda0=0.5, tau=0.3, kp=1.0, ki=0.0, lambda_min=math.nan)
    with pytest.raises(ValueError, match="lambda_min must be a finite number <= 0"):
        GRPOConfig(dual="price", lambda_min=1.0)
    with pytest.raises(ValueError, match="paper's ascent"):
        GRPOConfig(dual="ascent", lambda_min=-1.0)
    assert make_controller(GRPOConfig(dual="pid", lambda_min=-1.0)).lambda_min == -1.0
    assert make_controller(GRPOConfig(dual="price", lambda_min=-1.0)).lambda_min == -1.0


def test_a_negative_lambda_brings_back_a_policy_that_stopped_asking():
    """The simulated policy of the test above, started where the demo's runs end up (asking
    on about 5% of samples, the cloud's gain small on most task kinds): with lambda kept >= 0
    nothing but the reward pushes asking back up, and it stays far below tau; with lambda
    allowed below 0 the controller pushes it up to the budget."""

    def run(lo, seed):
        cfg = GRPOConfig(dual="price", tau=0.3, lambda_min=lo)
        usage = _simulated_policy(cfg, seed, gain=np.linspace(0.0, 0.3, 12), logit0=-3.0,
                                  steps=36, cloud_right=0.9)  # fmt: skip
        return np.mean(usage[18:])

    floor = np.mean([run(0.0, s) for s in range(20)])
    target = np.mean([run(-2.0, s) for s in range(20)])
    assert floor < 0.15 and abs(target - 0.3) < abs(floor - 0.3) / 2, (floor, target)
