"""The batch's measured price of a call plus PI feedback (``dual="price"``)."""

from __future__ import annotations

from typing import Any

from offload_agents.grpo.dual._common import _check_feedback, _finite, _lambda
from offload_agents.grpo.dual.registry import register_dual


class PriceController:
    """Feed-forward on the batch's price of a cloud call, plus PI feedback on a smoothed J_c.

    Args:
        lambda0: lambda before any batch has both asking and local answers to price.
        tau: The budget.
        kp: Proportional gain of the feedback.
        ki: Integral gain of the feedback.
        smoothing: Weight of the newest batch in the smoothed J_c and price sums.
        lambda_max: Upper bound of lambda.
        lambda_min: Lower bound of lambda: 0 (the budget is an upper bound, J_c <= tau) or
            below 0 (the budget is a target, J_c = tau: under-spending rewards asking).

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
        lambda_min: float = 0.0,
    ) -> None:
        _check_feedback({"kp": kp, "ki": ki}, smoothing, lambda_max, lambda_min)
        self.lambda0 = _finite("lambda0", lambda0)
        self.tau, self.kp, self.ki = tau, kp, ki
        self.smoothing, self.lambda_max, self.lambda_min = smoothing, lambda_max, lambda_min
        self.lam = min(max(self.lambda0, lambda_min), lambda_max)
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
        self.lam = min(self.lambda_max, max(self.lambda_min, self.price + self._feedback()))
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
            bound = max(self.lambda_max, -self.lambda_min) / self.ki
            self.integral = min(max(self.integral, -bound), bound)
        return self._set()

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "gain": self.gain, "spread": self.spread,
                "smoothed": self.smoothed, "integral": self.integral}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lam = _lambda(state["lam"], self.lambda_min)
        self.integral = _finite("integral", state["integral"])
        self.gain, self.spread, self.smoothed = state["gain"], state["spread"], state["smoothed"]


@register_dual("price")
def _build(config: Any) -> PriceController:
    return PriceController(lambda0=config.lambda0, tau=config.tau, kp=config.pid_kp,
                           ki=config.pid_ki, smoothing=config.pid_smoothing,
                           lambda_max=config.lambda_max,
                           lambda_min=config.lambda_min)  # fmt: skip
