"""Budget accounting for cloud calls: a call-rate budget and an optional cost budget."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np

BudgetMode = Literal["hard", "soft"]
_EPS = 1e-9


@dataclass(frozen=True)
class LedgerEntry:
    """One offload request.

    Attributes:
        step: Step index of the request within the episode.
        granted: Whether the cloud was called.
        over_budget: Whether the request exceeded a budget (refused in hard mode, allowed and
            reported in soft mode).
        cost: Cost charged (0 when refused).
        calls_used: Calls used after this request.
        cost_used: Cost used after this request.
        failed: The call was granted but the cloud failed; it was cancelled (no call counted,
            nothing charged).
    """

    step: int
    granted: bool
    over_budget: bool
    cost: float
    calls_used: int
    cost_used: float
    failed: bool = False


class BudgetLedger:
    """Counts cloud calls and cost within one episode and enforces the budget.

    The call-rate budget allows ``floor(rate * num_tasks)`` calls per episode. The optional cost
    budget caps the summed cost. In ``"hard"`` mode a request that would exceed either budget is
    refused (the caller answers locally); in ``"soft"`` mode it is granted and flagged
    ``over_budget``. A hard ledger is never overdrawn: a request is checked against its *quoted*
    cost before the call, and the charged cost may not exceed the quote.

    Examples:
        >>> ledger = BudgetLedger(rate=0.3, num_tasks=10)
        >>> ledger.calls_allowed
        3
        >>> [ledger.request(step=i).granted for i in range(4)]
        [True, True, True, False]
        >>> ledger.calls_used, ledger.calls_left
        (3, 0)
    """

    def __init__(
        self,
        rate: float,
        num_tasks: int,
        *,
        cost_budget: float | None = None,
        mode: BudgetMode = "hard",
        path: str | PathLike[str] | None = None,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"budget rate must be a number in [0, 1], got {rate!r}")
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError(f"num_tasks must be a positive int, got {num_tasks!r}")
        if cost_budget is not None and (
            isinstance(cost_budget, bool)
            or not isinstance(cost_budget, int | float)
            or not math.isfinite(cost_budget)
            or cost_budget < 0
        ):
            raise ValueError(f"cost_budget must be None or a number >= 0, got {cost_budget!r}")
        if mode not in ("hard", "soft"):
            raise ValueError(f"budget mode must be 'hard' or 'soft', got {mode!r}")
        self.rate = float(rate)
        self.num_tasks = num_tasks
        self.cost_budget = None if cost_budget is None else float(cost_budget)
        self.mode: BudgetMode = mode
        self.calls_allowed = math.floor(self.rate * num_tasks + _EPS)
        self.path = Path(path) if path is not None else None
        self.episode = 0
        self.reset(episode=0)

    def reset(self, episode: int | None = None) -> None:
        """Forget all calls (start of an episode); ``episode`` numbers the entries written from
        now on (default: the next number)."""
        self.episode = self.episode + 1 if episode is None else episode
        self.calls_used = 0
        self.cost_used = 0.0
        self.requests = 0
        self.refused = 0
        self.overruns = 0
        self.unconfirmed_attempts = 0
        self.unconfirmed_cost = 0.0
        self.log: list[LedgerEntry] = []
        # Granted, not yet charged or cancelled (a list, by identity: it pickles and copies with
        # the log, so an open entry stays open in a restored ledger).
        self._open: list[LedgerEntry] = []

    # ------------------------------------------------------------------ state
    @property
    def calls_left(self) -> int:
        return max(0, self.calls_allowed - self.calls_used)

    @property
    def cost_left(self) -> float:
        if self.cost_budget is None:
            return math.inf
        return max(0.0, self.cost_budget - self.cost_used)

    @property
    def fraction_left(self) -> float:
        """Share of the call budget still unused, in [0, 1] (1 when no call is allowed at all and
        none was made, so the feature stays informative)."""
        frac = self.calls_left / self.calls_allowed if self.calls_allowed else 0.0
        if self.cost_budget is not None and self.cost_budget > 0:
            frac = min(frac, self.cost_left / self.cost_budget)
        return frac

    def would_exceed(self, cost: float = 0.0) -> bool:
        """Whether a call quoted at ``cost`` would exceed a budget."""
        if self.calls_used + 1 > self.calls_allowed:
            return True
        return self.cost_budget is not None and self.cost_used + cost > self.cost_budget + _EPS

    def can_offload(self, cost: float = 0.0) -> bool:
        """Whether a request quoted at ``cost`` would be granted."""
        return self.mode == "soft" or not self.would_exceed(cost)

    # ------------------------------------------------------------------ requests
    def request(self, step: int, quote: float = 0.0) -> LedgerEntry:
        """Ask for one call quoted at ``quote``; grants or refuses it and logs the decision.

        After a granted request, call `charge` with the actual cost (at most the quote).
        """
        if not math.isfinite(quote) or quote < 0:
            raise ValueError(f"quote must be a finite cost >= 0, got {quote!r}")
        self.requests += 1
        over = self.would_exceed(quote)
        granted = not over or self.mode == "soft"
        if granted:
            self.calls_used += 1
            self.cost_used += quote
            self.overruns += int(over)
        else:
            self.refused += 1
        entry = LedgerEntry(
            step, granted, over, quote if granted else 0.0, self.calls_used, self.cost_used
        )
        self.log.append(entry)
        if granted:
            self._open.append(entry)
        else:
            self._write(entry)
        return entry

    def _settle(self, entry: LedgerEntry, action: str) -> None:
        """Close ``entry`` for good: each granted request is charged or cancelled once."""
        if not entry.granted:
            raise ValueError(f"cannot {action} a refused request")
        k = next((k for k, e in enumerate(self._open) if e is entry), None)
        if k is None:
            raise ValueError(
                f"cannot {action} this entry: it was already charged or cancelled, or it is not "
                "an open request of this ledger's episode (each granted request is settled once)"
            )
        del self._open[k]

    def _replace(self, entry: LedgerEntry, fixed: LedgerEntry) -> LedgerEntry:
        for k in range(len(self.log) - 1, -1, -1):
            if self.log[k] is entry:
                self.log[k] = fixed
                break
        self._write(fixed)
        return fixed

    def _write(self, entry: LedgerEntry) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"episode": self.episode, **asdict(entry)}) + "\n")
            fh.flush()

    def cancel(self, entry: LedgerEntry) -> LedgerEntry:
        """Undo a granted request whose call failed: the call and its quote are released."""
        self._settle(entry, "cancel")
        self.calls_used -= 1
        self.cost_used -= entry.cost
        self.overruns -= int(entry.over_budget)
        fixed = LedgerEntry(entry.step, False, entry.over_budget, 0.0, self.calls_used,
                            self.cost_used, failed=True)  # fmt: skip
        return self._replace(entry, fixed)

    def charge(self, entry: LedgerEntry, actual: float) -> LedgerEntry:
        """Replace a granted request's quote by its actual cost (``0 <= actual <= quote``)."""
        if not entry.granted:
            raise ValueError("cannot charge a refused request")
        if not math.isfinite(actual) or actual < 0:
            raise ValueError(f"actual cost must be finite and >= 0, got {actual!r}")
        if actual > entry.cost + _EPS:
            raise ValueError(
                f"actual cost {actual} exceeds the quote {entry.cost}; a cloud model's quote must "
                "bound its cost"
            )
        self._settle(entry, "charge")
        self.cost_used += actual - entry.cost
        fixed = LedgerEntry(
            entry.step, True, entry.over_budget, actual, entry.calls_used, self.cost_used
        )
        return self._replace(entry, fixed)

    def note_unconfirmed(self, attempts: int, quote: float) -> None:
        """Record ``attempts`` cloud attempts abandoned after they were sent (a client-side
        time-out), each quoted at ``quote``: not charged (no answer came back), but possibly
        billed by the provider; `summary` reports the upper bound of real spend."""
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            raise ValueError(f"attempts must be an int >= 0, got {attempts!r}")
        if not math.isfinite(quote) or quote < 0:
            raise ValueError(f"quote must be a finite cost >= 0, got {quote!r}")
        self.unconfirmed_attempts += attempts
        self.unconfirmed_cost += attempts * quote

    def summary(self) -> dict[str, float | int | str | None]:
        return {
            "mode": self.mode,
            "rate": self.rate,
            "calls_allowed": self.calls_allowed,
            "calls_used": self.calls_used,
            "requests": self.requests,
            "refused": self.refused,
            "failed": sum(e.failed for e in self.log),
            "overruns": self.overruns,
            "cost_budget": self.cost_budget,
            "cost_used": self.cost_used,
            "unconfirmed_attempts": self.unconfirmed_attempts,
            "spend_upper_bound": self.cost_used + self.unconfirmed_cost,
        }

    def __repr__(self) -> str:
        return (
            f"BudgetLedger(rate={self.rate}, num_tasks={self.num_tasks}, mode={self.mode!r}, "
            f"calls={self.calls_used}/{self.calls_allowed}, cost={self.cost_used:.6g}"
            f"/{self.cost_budget})"
        )


def grant_batch(asks: Sequence[bool], rate: float, rng: np.random.Generator) -> np.ndarray:
    """Which requests of one batch the batch's budget grants: ``floor(rate * len(asks))`` calls
    at most, given to requesters in an order drawn from ``rng`` (so no position of the batch is
    favoured); the rest are answered locally (GAPG's training budget: "calls beyond the budget
    are answered locally").

    >>> grant_batch([True, False, True, True], 0.5, np.random.default_rng(0)).sum()
    np.int64(2)
    >>> grant_batch([False, True], 1.0, np.random.default_rng(0)).tolist()
    [False, True]
    """
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"rate must be in [0, 1], got {rate!r}")
    wants = np.asarray(asks, dtype=bool)
    allowed = math.floor(rate * len(wants) + _EPS)
    granted = np.zeros(len(wants), dtype=bool)
    askers = np.flatnonzero(wants)
    granted[rng.permutation(askers)[:allowed]] = True
    return granted
