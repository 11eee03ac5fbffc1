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

The PID and price controllers take ``lambda_min`` (default 0): below 0 the budget is a target
(J_c = tau) rather than an upper bound, so a policy that asks too little is pushed back up
instead of being left alone with lambda at 0.

Each lives in its own module (`ascent`, `pid`, `price`) and registers a factory with
`register_dual`; a new controller is a new module (`registry`).

All are plain Python objects with ``observe(rewards, cloud)`` (called on each batch before its
advantages; a no-op for the first two), ``update(usage) -> lambda`` (after the update) and a
``state_dict`` that a checkpoint saves, so a resumed run continues exactly.
"""

from __future__ import annotations

from offload_agents.grpo.dual import ascent, pid, price  # noqa: F401  (registers the built-ins)
from offload_agents.grpo.dual._common import ETA_RULE_VIOLATION, check_lambda_min, eta_rule
from offload_agents.grpo.dual.ascent import AscentController
from offload_agents.grpo.dual.pid import PIDController
from offload_agents.grpo.dual.price import PriceController
from offload_agents.grpo.dual.registry import (
    DualController,
    DualFactory,
    list_duals,
    make_controller,
    register_dual,
)

__all__ = [
    "ETA_RULE_VIOLATION",
    "AscentController",
    "DualController",
    "DualFactory",
    "PIDController",
    "PriceController",
    "check_lambda_min",
    "eta_rule",
    "list_duals",
    "make_controller",
    "register_dual",
]
