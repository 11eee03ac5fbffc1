"""A PID Lagrangian on a smoothed J_c (``dual="pid"``)."""

from __future__ import annotations

from typing import Any

from offload_agents.grpo.dual._common import _check_feedback, _finite, _lambda
from offload_agents.grpo.dual.registry import register_dual


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
        lambda_min: Lower bound of lambda: 0 (the budget is an upper bound, J_c <= tau) or
            below 0 (the budget is a target, J_c = tau: under-spending rewards asking).

    Worked by hand (lambda0 0.5, tau 0.3, Kp 2, Ki 0.5, smoothing 1): usage 0.5 gives
    e = 0.2, I = 0.2, lambda = 0.5 + 0.4 + 0.1 = 1.0; usage 0.3 gives e = 0, I = 0.2,
    lambda = 0.6; usage 0.0 gives e = -0.3, I = -0.1, lambda = 0.5 - 0.6 - 0.05 < 0, so 0.

    Examples:
        >>> c = PIDController(lambda0=0.5, tau=0.3, kp=2.0, ki=0.5, smoothing=1.0)
        >>> [round(c.update(u), 6) for u in (0.5, 0.3, 0.0)]
        [1.0, 0.6, 0.0]
        >>> c = PIDController(lambda0=0.5, tau=0.3, kp=2.0, ki=0.5, smoothing=1.0, lambda_min=-1.0)
        >>> [round(c.update(u), 6) for u in (0.5, 0.3, 0.0)]
        [1.0, 0.6, -0.15]
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
        lambda_min: float = 0.0,
    ) -> None:
        _check_feedback({"kp": kp, "ki": ki, "kd": kd}, smoothing, lambda_max, lambda_min)
        self.lambda0 = _finite("lambda0", lambda0)
        self.tau, self.kp, self.ki, self.kd = tau, kp, ki, kd
        self.smoothing, self.lambda_max, self.lambda_min = smoothing, lambda_max, lambda_min
        self.lam = min(max(self.lambda0, lambda_min), lambda_max)
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
        if self.ki > 0:  # anti-windup: the integral term alone keeps lambda within its bounds
            lo = (self.lambda_min - self.lambda0) / self.ki
            hi = (self.lambda_max - self.lambda0) / self.ki
            self.integral = min(max(self.integral, lo), hi)
        deriv = 0.0 if self.prev_error is None else error - self.prev_error
        self.prev_error = error
        raw = self.lambda0 + self.kp * error + self.ki * self.integral + self.kd * deriv
        self.lam = min(self.lambda_max, max(self.lambda_min, raw))
        return self.lam

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "smoothed": self.smoothed, "integral": self.integral,
                "prev_error": self.prev_error}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lam = _lambda(state["lam"], self.lambda_min)
        self.integral = _finite("integral", state["integral"])
        self.smoothed, self.prev_error = state["smoothed"], state["prev_error"]


@register_dual("pid")
def _build(config: Any) -> PIDController:
    return PIDController(lambda0=config.lambda0, tau=config.tau, kp=config.pid_kp,
                         ki=config.pid_ki, kd=config.pid_kd, smoothing=config.pid_smoothing,
                         lambda_max=config.lambda_max,
                         lambda_min=config.lambda_min)  # fmt: skip
