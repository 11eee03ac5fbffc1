"""Controllers of DA-GRPO's dual variable lambda, which holds cloud usage J_c at the budget tau.

- `AscentController` (``dual="ascent"``): the paper's update
  ``lambda <- max(0, lambda + eta * (J_c - tau))``. An integral-only controller: with a small eta
  it lags (lambda needs many steps to reach the value that holds the budget) and then overshoots.
- `PIDController` (``dual="pid"``): a PID Lagrangian (Stooke, Achiam and Abbeel, 2020,
  "Responsive Safety in Reinforcement Learning by PID Lagrangian Methods") on an exponentially
  smoothed J_c: ``lambda = clip(lambda0 + Kp e + Ki I + Kd (e - e_prev), 0, lambda_max)`` with
  ``e = J_smooth - tau`` and ``I`` the running sum of ``e``, clamped so that ``lambda0 + Ki I``
  stays in ``[0, lambda_max]`` (anti-windup: the integral does not keep growing while lambda is
  pinned at a bound).

- `PriceController` (``dual="price"``): feed-forward plus PI feedback. Before each update it
  measures, on the batch itself, the *price* of a cloud call: the reward that asking gains over
  answering locally within the same prompt's group, ``p = sum_i c_i (r_i - mean r) /
  sum_i c_i (c_i - mean c)`` (exponentially smoothed, numerator and denominator apart). At
  ``lambda = p`` the dual advantage gives asking no net push in the batch (the gradient of
  J_r along the asking direction equals lambda times that of J_c: the Lagrangian's stationary
  multiplier); the PI term on the smoothed J_c then pushes asking toward tau in proportion to
  the error: ``lambda = clip(p + Kp e + Ki I, 0, lambda_max)``. The integrator no longer has to
  find the price level, which is what makes plain and PID ascent lag and overshoot.

All are plain Python objects with ``observe(rewards, cloud)`` (called on each batch before its
advantages; a no-op for the first two), ``update(usage) -> lambda`` (after the update) and a
``state_dict`` that a checkpoint saves, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Protocol

from offload_agents.grpo.functional import dual_update

DualKind = Literal["ascent", "pid", "price"]
DUALS = ("ascent", "pid", "price")


class DualController(Protocol):
    lam: float

    def observe(self, rewards: Any, cloud: Any) -> None: ...

    def update(self, usage: float) -> float: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def _lambda(value: float) -> float:
    """A saved lambda, checked: a finite number >= 0 (a multiplier of a constraint)."""
    lam = _finite("lambda", value)
    if lam < 0:
        raise ValueError(f"lambda must be >= 0, got {lam!r}")
    return lam


def _check_feedback(gains: dict[str, float], smoothing: float, lambda_max: float) -> None:
    """Gains finite and >= 0, smoothing in (0, 1], lambda_max > 0 (PID and price)."""
    for name, v in gains.items():
        if _finite(name, v) < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    if not 0 < smoothing <= 1:
        raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
    if not lambda_max > 0:
        raise ValueError(f"lambda_max must be > 0, got {lambda_max}")


ETA_RULE_VIOLATION = 0.1
"""The sustained budget violation |J_c - tau| at which `eta_rule`'s step size moves lambda by
lambda_0 over one task group."""


def eta_rule(lambda0: float, steps_per_group: int, violation: float = ETA_RULE_VIOLATION) -> float:
    """The dual ascent step size at which lambda can move within a run: a violation of
    ``violation`` held over one task group's ``steps_per_group`` steps moves lambda by
    ``lambda0`` (eta = lambda0 / (violation * steps)). Written down before the evaluation run
    (docs/results.md); the paper's 1e-2 moves lambda by 0.012 in such a group of 12 steps.

    >>> round(eta_rule(0.5, 12), 4)
    0.4167
    """
    if not (lambda0 > 0 and steps_per_group >= 1 and violation > 0):
        raise ValueError("eta_rule needs lambda0 > 0, steps_per_group >= 1 and violation > 0, "
                         f"got {lambda0}, {steps_per_group}, {violation}")  # fmt: skip
    return lambda0 / (violation * steps_per_group)


class AscentController:
    """The paper's projected dual ascent.

    >>> c = AscentController(lambda0=0.5, tau=0.3, eta=0.1)
    >>> c.update(0.5), c.update(0.3), c.update(0.0)
    (0.52, 0.52, 0.49)
    """

    def __init__(self, *, lambda0: float, tau: float, eta: float) -> None:
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        self.lam = _finite("lambda0", lambda0)
        self.tau, self.eta = tau, eta

    def observe(self, rewards: Any, cloud: Any) -> None:
        """Nothing: the paper's update uses J_c alone."""

    def update(self, usage: float) -> float:
        self.lam = dual_update(self.lam, _finite("usage", usage), self.tau, self.eta)
        return self.lam

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lam = _lambda(state["lam"])


class PIDController:
    """PID Lagrangian on an exponentially smoothed usage, with anti-windup.

    Args:
        lambda0: lambda when usage sits at tau with no accumulated error (the bias term).
        tau: The budget.
        kp: Proportional gain.
        ki: Integral gain.
        kd: Derivative gain (``kd = 0``: a PI controller).
        smoothing: Weight of the newest usage in the moving average (1: no smoothing).
        lambda_max: Upper bound of lambda (and of the integral term).

    Worked by hand (lambda0 0.5, tau 0.3, Kp 2, Ki 0.5, smoothing 1): usage 0.5 gives
    e = 0.2, I = 0.2, lambda = 0.5 + 0.4 + 0.1 = 1.0; usage 0.3 gives e = 0, I = 0.2,
    lambda = 0.6; usage 0.0 gives e = -0.3, I = -0.1, lambda = 0.5 - 0.6 - 0.05 < 0, so 0.

    Examples:
        >>> c = PIDController(lambda0=0.5, tau=0.3, kp=2.0, ki=0.5, smoothing=1.0)
        >>> [round(c.update(u), 6) for u in (0.5, 0.3, 0.0)]
        [1.0, 0.6, 0.0]
    """

    def __init__(
        self,
        *,
        lambda0: float,
        tau: float,
        kp: float,
        ki: float,
        kd: float = 0.0,
        smoothing: float = 0.5,
        lambda_max: float = 10.0,
    ) -> None:
        _check_feedback({"kp": kp, "ki": ki, "kd": kd}, smoothing, lambda_max)
        self.lambda0 = _finite("lambda0", lambda0)
        self.tau, self.kp, self.ki, self.kd = tau, kp, ki, kd
        self.smoothing, self.lambda_max = smoothing, lambda_max
        self.lam = min(max(self.lambda0, 0.0), lambda_max)
        self.smoothed: float | None = None
        self.integral = 0.0
        self.prev_error: float | None = None

    def observe(self, rewards: Any, cloud: Any) -> None:
        """Nothing: the PID term uses J_c alone."""

    def update(self, usage: float) -> float:
        usage = _finite("usage", usage)
        a = self.smoothing
        self.smoothed = usage if self.smoothed is None else (1 - a) * self.smoothed + a * usage
        error = self.smoothed - self.tau
        self.integral += error
        if self.ki > 0:  # anti-windup: the integral term alone stays within [0, lambda_max]
            lo, hi = -self.lambda0 / self.ki, (self.lambda_max - self.lambda0) / self.ki
            self.integral = min(max(self.integral, lo), hi)
        deriv = 0.0 if self.prev_error is None else error - self.prev_error
        self.prev_error = error
        raw = self.lambda0 + self.kp * error + self.ki * self.integral + self.kd * deriv
        self.lam = min(self.lambda_max, max(0.0, raw))
        return self.lam

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "smoothed": self.smoothed, "integral": self.integral,
                "prev_error": self.prev_error}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lam = _lambda(state["lam"])
        self.integral = _finite("integral", state["integral"])
        self.smoothed, self.prev_error = state["smoothed"], state["prev_error"]


class PriceController:
    """Feed-forward on the batch's price of a cloud call, plus PI feedback on a smoothed J_c.

    Args:
        lambda0: lambda before any batch has both asking and local answers to price.
        tau: The budget.
        kp: Proportional gain of the feedback.
        ki: Integral gain of the feedback.
        smoothing: Weight of the newest batch in the smoothed J_c and price sums.
        lambda_max: Upper bound of lambda.

    Worked by hand (tau 0.3, Kp 1, Ki 0.5, smoothing 1): a group of four where the two askers
    are right and the two local answers wrong prices a call at ``(2 * 0.5) / (2 * 0.5) = 1``;
    lambda = 1 before any feedback. Its usage 0.5 gives e = 0.2, I = 0.2, so the next batch,
    priced at 1 again, gets lambda = 1 + 0.2 + 0.1 = 1.3.

    Examples:
        >>> import torch
        >>> c = PriceController(lambda0=0.5, tau=0.3, kp=1.0, ki=0.5, smoothing=1.0)
        >>> r, ask = torch.tensor([[1.0, 1.0, 0.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0, 0.0]])
        >>> c.observe(r, ask); c.lam
        1.0
        >>> round(c.update(0.5), 6)
        1.3
        >>> c.observe(r, ask); round(c.lam, 6)
        1.3
    """

    def __init__(
        self,
        *,
        lambda0: float,
        tau: float,
        kp: float,
        ki: float,
        smoothing: float = 0.5,
        lambda_max: float = 10.0,
    ) -> None:
        _check_feedback({"kp": kp, "ki": ki}, smoothing, lambda_max)
        self.lambda0 = _finite("lambda0", lambda0)
        self.tau, self.kp, self.ki = tau, kp, ki
        self.smoothing, self.lambda_max = smoothing, lambda_max
        self.lam = min(max(self.lambda0, 0.0), lambda_max)
        self.gain: float | None = None  # smoothed sum_i c_i (r_i - mean r)
        self.spread: float | None = None  # smoothed sum_i c_i (c_i - mean c)
        self.smoothed: float | None = None
        self.integral = 0.0

    @property
    def price(self) -> float:
        """The smoothed price of a call (``lambda0`` until a batch has priced one)."""
        if self.gain is None or not self.spread:
            return self.lambda0
        return self.gain / self.spread

    def _feedback(self) -> float:
        if self.smoothed is None:
            return 0.0
        return self.kp * (self.smoothed - self.tau) + self.ki * self.integral

    def _set(self) -> float:
        self.lam = min(self.lambda_max, max(0.0, self.price + self._feedback()))
        return self.lam

    def observe(self, rewards: Any, cloud: Any) -> None:
        """Price a call on this batch ((P, G) rewards and 0/1 requests) and set lambda."""
        import torch

        r = torch.as_tensor(rewards, dtype=torch.float64)
        c = torch.as_tensor(cloud, dtype=torch.float64)
        if r.shape != c.shape or r.dim() != 2:
            raise ValueError(f"rewards {tuple(r.shape)} and cloud {tuple(c.shape)} must be (P, G)")
        gain = _finite("price gain", float((c * (r - r.mean(1, keepdim=True))).sum()))
        spread = float((c * (c - c.mean(1, keepdim=True))).sum())
        if spread > 0:  # some group has both answers: the batch prices a call
            a = self.smoothing
            self.gain = gain if self.gain is None else (1 - a) * self.gain + a * gain
            self.spread = spread if self.spread is None else (1 - a) * self.spread + a * spread
        self._set()

    def update(self, usage: float) -> float:
        usage = _finite("usage", usage)
        a = self.smoothing
        self.smoothed = usage if self.smoothed is None else (1 - a) * self.smoothed + a * usage
        self.integral += self.smoothed - self.tau
        if self.ki > 0:  # anti-windup: the integral term alone stays within +-lambda_max
            bound = self.lambda_max / self.ki
            self.integral = min(max(self.integral, -bound), bound)
        return self._set()

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "gain": self.gain, "spread": self.spread,
                "smoothed": self.smoothed, "integral": self.integral}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lam = _lambda(state["lam"])
        self.integral = _finite("integral", state["integral"])
        self.gain, self.spread, self.smoothed = state["gain"], state["spread"], state["smoothed"]


def make_controller(config: Any) -> DualController:
    """The controller a `GRPOConfig` asks for (``config.dual``)."""
    if config.dual == "ascent":
        return AscentController(lambda0=config.lambda0, tau=config.tau, eta=config.eta_lambda)
    if config.dual == "pid":
        return PIDController(lambda0=config.lambda0, tau=config.tau, kp=config.pid_kp,
                             ki=config.pid_ki, kd=config.pid_kd, smoothing=config.pid_smoothing,
                             lambda_max=config.lambda_max)  # fmt: skip
    if config.dual == "price":
        return PriceController(lambda0=config.lambda0, tau=config.tau, kp=config.pid_kp,
                               ki=config.pid_ki, smoothing=config.pid_smoothing,
                               lambda_max=config.lambda_max)  # fmt: skip
    raise ValueError(f"dual must be one of {DUALS}, got {config.dual!r}")
