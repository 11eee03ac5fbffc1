"""Checks and the step-size rule shared by the dual controllers."""

from __future__ import annotations

import math


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def _lambda(value: float, lambda_min: float = 0.0) -> float:
    """A saved lambda, checked: a finite number >= ``lambda_min`` (0 for the multiplier of the
    inequality J_c <= tau; below 0 where the controller holds the equality J_c = tau)."""
    lam = _finite("lambda", value)
    if lam < lambda_min:
        raise ValueError(f"lambda must be >= {lambda_min}, got {lam!r}")
    return lam


def _check_feedback(
    gains: dict[str, float], smoothing: float, lambda_max: float, lambda_min: float = 0.0
) -> None:
    """Gains finite and >= 0, smoothing in (0, 1], lambda_max > 0 >= lambda_min (PID and
    price)."""
    for name, v in gains.items():
        if _finite(name, v) < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    if not 0 < smoothing <= 1:
        raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
    if not lambda_max > 0:
        raise ValueError(f"lambda_max must be > 0, got {lambda_max}")
    check_lambda_min(lambda_min)


def check_lambda_min(value: float) -> float:
    """``value`` if it is a valid lower bound of lambda: a finite number <= 0 (0: the budget
    is an upper bound, J_c <= tau; below 0: a target, J_c = tau)."""
    if not (math.isfinite(value) and value <= 0):
        raise ValueError(f"lambda_min must be a finite number <= 0 (0: the budget is an upper "
                         f"bound; below 0: a target), got {value!r}")  # fmt: skip
    return value


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
