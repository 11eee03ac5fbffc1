"""The paper's projected dual ascent (``dual="ascent"``)."""

from __future__ import annotations

from typing import Any

from offload_agents.grpo.dual._common import _finite, _lambda
from offload_agents.grpo.dual.registry import register_dual
from offload_agents.grpo.functional import dual_update


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


@register_dual("ascent")
def _build(config: Any) -> AscentController:
    return AscentController(lambda0=config.lambda0, tau=config.tau, eta=config.eta_lambda)
