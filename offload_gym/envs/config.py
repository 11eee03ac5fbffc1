"""The environments' configuration: one dataclass, validated, unknown keys refused."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from offload_gym.budget import BudgetMode
from offload_gym.envs.reward import DEFAULT_REWARD_WEIGHTS, validate_weights
from offload_gym.models.base import CloudModel, LocalModel
from offload_gym.models.simulated import SimulatedCloud, SimulatedLocal
from offload_gym.protocol import OFFLOAD_MARKER
from offload_gym.scoring.equivalence import DEFAULT_TIMEOUT_S
from offload_gym.scoring.grade import GradeMemo
from offload_gym.tasks.base import Task
from offload_gym.tasks.stream import (
    MAX_GROUP_SIZE,
    TaskStream,
    code_stream,
    math_code_stream,
    math_stream,
)
from offload_gym.validation import reject_unknown, require_ints

DEFAULT_OFFLOAD_MARKER = OFFLOAD_MARKER
"""A text-view response containing this asks the cloud (`offload_gym.protocol`)."""


TEXT_ONLY = ("offload_marker", "max_response_chars")
"""Arguments that only the text view reads (the agent writes the response)."""
ROUTER_ONLY = ("local_model", "counterfactuals", "usage_window")
"""Arguments that only the router view reads (a local model answers; the agent routes)."""


@dataclass
class EnvConfig:
    """Arguments of every offload environment (pass them as keyword arguments to `gym.make`).

    Attributes:
        budget: tau, the fraction of an episode's tasks that may go to the cloud
            (``floor(tau * num_tasks)`` calls).
        budget_mode: ``"hard"``: an offload over budget is refused and the local answer stands;
            ``"soft"``: it is allowed and flagged ``info["over_budget"]``.
        cost_budget: Optional cap on the summed cloud cost of an episode (checked against the
            cloud's quote before each call).
        tasks: A `TaskStream` or a sequence of `Task` (one group, in the given order). ``None``
            builds the default procedural stream of ``domain`` with ``num_tasks`` tasks.
        domain: The default stream (set by the registered id): ``"math"``, ``"code"``, or
            ``"stream"`` (a math group, then a code group).
        num_tasks: Tasks per episode of the default stream (at most 100,000,
            `offload_gym.tasks.stream.MAX_GROUP_SIZE`: the episode's tasks are drawn at reset).
        switch_point: ``"stream"``: the step at which the code group starts
            (``num_tasks // 2`` by default).
        task_seed: Seed of the default stream's generators.
        local_model: Router view: a `LocalModel`, or a dict of `SimulatedLocal` arguments.
        cloud_model: A `CloudModel`, or a dict of `SimulatedCloud` arguments.
        reward_weights: Weights of the reward parts (see `REWARD_COMPONENTS`); reward =
            sum of weight * part. Default: ``{"correct": 1.0}``.
        offload_marker: Text view: a response containing it asks the cloud.
        max_response_chars: Text view: responses are cut to this many characters
            (``info["response_truncated"]`` tells).
        max_prompt_chars: Longest prompt accepted (the observation space's limit).
        counterfactuals: Router view: also ask the cloud when answering locally, to report
            ``info["cloud_correct"]`` on every step (free with simulated models; turn off for a
            paid cloud).
        usage_window: Router view: steps in the ``recent_usage`` feature's window.
        checker_timeout: Seconds allowed to the answer checking of one step beyond its fast
            path: the sympy stage and the math-verify fallback of every response the step
            grades (its own, the cloud's, a counterfactual) share this one deadline.
        cloud_failure: What a cloud call that failed for good (`CloudError`, after the
            backend's retries) does: ``"raise"`` stops the episode with the error (naming the
            endpoint and the cause); ``"local"`` counts the task as a failed offload: nothing
            charged, no call counted, the local response graded, ``info["cloud_failed"]`` set.
        ledger_path: Optional JSONL file receiving every settled budget-ledger entry as it
            happens (see `BudgetLedger`).
        grade_memo: A `GradeMemo` shared with other environments that see the same tasks (the
            sub-envs of a GRPO collector: a group's identical responses are graded once across
            them); ``None``: the environment keeps its own.
    """

    budget: float = 0.3
    budget_mode: BudgetMode = "hard"
    cost_budget: float | None = None
    tasks: TaskStream | Sequence[Task] | None = None
    domain: str = "math"
    num_tasks: int = 100
    switch_point: int | None = None
    task_seed: int = 0
    local_model: LocalModel | Mapping[str, Any] | None = None
    cloud_model: CloudModel | Mapping[str, Any] | None = None
    reward_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_REWARD_WEIGHTS)
    )
    offload_marker: str = DEFAULT_OFFLOAD_MARKER
    max_response_chars: int = 8192
    max_prompt_chars: int = 16384
    counterfactuals: bool = True
    usage_window: int = 10
    checker_timeout: float = DEFAULT_TIMEOUT_S
    cloud_failure: str = "raise"
    ledger_path: str | None = None
    grade_memo: GradeMemo | None = None

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], view: str | None = None) -> EnvConfig:
        """The config of ``kwargs``; unknown keys are errors, and so are the other view's keys
        when ``view`` (``"text"`` or ``"router"``) is given.

        >>> EnvConfig.from_kwargs({"local_model": {}}, view="text")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: local_model is a router-view argument; the text view has no use for it ...
        """
        reject_unknown(kwargs, (f.name for f in dataclasses.fields(cls)), "environment argument")
        other = {"text": ROUTER_ONLY, "router": TEXT_ONLY}.get(view or "", ())
        wrong = [k for k in other if k in kwargs]
        if wrong:
            hint = ("its agent is the local model and writes the responses): drop it, or use a "
                    "*Router-v0 id" if view == "text" else
                    "a local model answers and the agent only routes): drop it, or use a text-view "
                    "id")  # fmt: skip
            names = ", ".join(wrong)
            raise ValueError(f"{names} {'is a' if len(wrong) == 1 else 'are'} "
                             f"{'router' if view == 'text' else 'text'}-view "
                             f"argument{'s' if len(wrong) > 1 else ''}; the {view} view has no use "
                             f"for {'it' if len(wrong) == 1 else 'them'} ({hint}")  # fmt: skip
        return cls(**kwargs)

    def __post_init__(self) -> None:
        b = self.budget
        if isinstance(b, bool) or not isinstance(b, int | float) or not 0.0 <= b <= 1.0:
            raise ValueError(f"budget must be a fraction in [0, 1], got {b!r}")
        if self.budget_mode not in ("hard", "soft"):
            raise ValueError(f"budget_mode must be 'hard' or 'soft', got {self.budget_mode!r}")
        if self.cost_budget is not None and not (
            isinstance(self.cost_budget, int | float) and self.cost_budget >= 0
        ):
            raise ValueError(f"cost_budget must be None or >= 0, got {self.cost_budget!r}")
        require_ints(self, ("num_tasks", "max_response_chars", "max_prompt_chars", "usage_window"))
        if self.num_tasks > MAX_GROUP_SIZE:
            raise ValueError(f"num_tasks must be at most {MAX_GROUP_SIZE:,} (each episode's tasks "
                             f"are drawn at reset), got {self.num_tasks}")  # fmt: skip
        if not isinstance(self.offload_marker, str) or not self.offload_marker:
            raise ValueError("offload_marker must be a non-empty string")
        if self.cloud_failure not in ("raise", "local"):
            raise ValueError(
                f"cloud_failure must be 'raise' or 'local', got {self.cloud_failure!r}"
            )
        if not (self.checker_timeout > 0 and math.isfinite(self.checker_timeout)):
            raise ValueError(f"checker_timeout must be a finite number of seconds > 0, got "
                             f"{self.checker_timeout!r}")  # fmt: skip
        self.reward_weights = validate_weights(self.reward_weights)
        if self.grade_memo is not None and not isinstance(self.grade_memo, GradeMemo):
            raise ValueError(f"grade_memo must be None or an offload_gym.scoring.GradeMemo, got "
                             f"{type(self.grade_memo).__name__}")  # fmt: skip
        if self.tasks is not None and not isinstance(self.tasks, TaskStream | Sequence):
            raise ValueError(
                f"tasks must be a TaskStream or a sequence of Task, got {type(self.tasks).__name__}"
            )

    def build_stream(self) -> TaskStream:
        if isinstance(self.tasks, TaskStream):
            return self.tasks
        if self.tasks is not None:
            return TaskStream.from_tasks(self.tasks)
        if self.domain == "math":
            return math_stream(self.num_tasks, seed=self.task_seed)
        if self.domain == "code":
            return code_stream(self.num_tasks, seed=self.task_seed)
        if self.domain == "stream":
            return math_code_stream(
                self.num_tasks, switch_point=self.switch_point, seed=self.task_seed
            )
        raise ValueError(
            f"domain must be 'math', 'code' or 'stream' for the default stream, got "
            f"{self.domain!r}; or pass tasks="
        )

    def build_local(self) -> LocalModel:
        return _build(self.local_model, SimulatedLocal, LocalModel, "local_model")

    def build_cloud(self) -> CloudModel:
        return _build(self.cloud_model, SimulatedCloud, CloudModel, "cloud_model")


def _build(value: Any, default_cls: type, protocol: type, name: str) -> Any:
    if value is None:
        return default_cls()
    if isinstance(value, Mapping):
        fields = (f.name for f in dataclasses.fields(default_cls))
        reject_unknown(value, fields, f"{default_cls.__name__} argument")
        return default_cls(**value)
    if not isinstance(value, protocol):
        raise ValueError(
            f"{name} must implement {protocol.__name__} or be a dict of "
            f"{default_cls.__name__} arguments, got {type(value).__name__}"
        )
    return value
