"""The offload environment: the machinery its two views share.

Both views walk one stream of tasks per episode, one task per step, with the same budget ledger,
models, grading and reward parts; they differ in who writes the local answer:

- `OffloadTextEnv` (`offload_gym.envs.text`): the agent *is* the local language model. It
  reads the prompt and writes a response; a response containing the offload marker asks the
  cloud.
- `OffloadRouterEnv` (`offload_gym.envs.router`): a simulated (or real) local model answers;
  the agent sees features of the task, the local model's confidence and the budget, and
  chooses 0 (keep local) or 1 (offload).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from typing import Any, ClassVar, NamedTuple, SupportsFloat, cast

import gymnasium as gym
import numpy as np

from offload_gym.budget import BudgetLedger
from offload_gym.envs.config import EnvConfig
from offload_gym.envs.info import RewardComponents, StepInfo
from offload_gym.envs.reward import combine_reward
from offload_gym.models.base import CloudError
from offload_gym.scoring.grade import Grade, GradeMemo, grade_response
from offload_gym.tasks.base import Task

RESET_OPTIONS = ("budget",)
"""Keys `reset(options=...)` takes: ``budget``, tau for that episode only (a fraction in [0, 1];
the next reset without it restores the configured one). Any other key is an error."""


def _plain(info: StepInfo) -> dict[str, Any]:
    """``info`` as Gymnasium's signature types it (the same dict; `StepInfo` is its contract)."""
    return cast(dict[str, Any], info)


class _Call(NamedTuple):
    """What one request to the cloud came to (text None: no answer to grade)."""

    text: str | None = None
    refused: bool = False
    over: bool = False
    cost: float = 0.0
    latency: float = 0.0
    error: str | None = None


class OffloadEnv(gym.Env):
    """Shared machinery of the two views (see the module docstring and `docs/environments.md`)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # type: ignore[misc]
    view: ClassVar[str | None] = None
    """``"text"`` or ``"router"``: the other view's arguments are refused."""
    GRADE_MEMO_SIZE: ClassVar[int] = 64
    """Graded (task, response) pairs kept by an environment's own memo (`GradeMemo`; one
    passed as ``grade_memo`` keeps its own size): repeats within a step (a GRPO group's copies,
    the counterfactual answer) are graded once; older entries go first."""

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.config = EnvConfig.from_kwargs(kwargs, view=self.view)
        self.stream = self.config.build_stream()
        self.cloud = self.config.build_cloud()
        self.num_tasks = len(self.stream)
        self.ledger = BudgetLedger(
            self.config.budget,
            self.num_tasks,
            cost_budget=self.config.cost_budget,
            mode=self.config.budget_mode,
            path=self.config.ledger_path,
        )
        self._tasks: list[Task] = []
        self._groups: list[int] = []
        self._t = 0
        self._done = True
        self._recent: deque[int] = deque(maxlen=self.config.usage_window)
        self._last_info: StepInfo | None = None
        memo = self.config.grade_memo  # (an empty memo is falsy: it has a length)
        self._grade_memo = memo if memo is not None else GradeMemo(self.GRADE_MEMO_SIZE)
        self._grading_deadline = 0.0
        self.grading_failures = 0
        self._episodes = 0

    # ------------------------------------------------------------------ spec
    @property
    def deterministic(self) -> bool:
        """Whether a seeded episode is reproducible: false when a model says it is not (a real
        cloud behind a network, a sampling model), so the spec is flagged nondeterministic."""
        return all(getattr(m, "deterministic", True) for m in self._models())

    def _models(self) -> list[Any]:
        """The models behind this view (the router view adds its local model)."""
        return [self.cloud]

    @property  # type: ignore[override]
    def spec(self) -> Any:
        return self.__dict__.get("_spec")

    @spec.setter
    def spec(self, value: Any) -> None:
        if value is not None and not self.deterministic and not value.nondeterministic:
            value = dataclasses.replace(value, nondeterministic=True)
        self.__dict__["_spec"] = value

    # ------------------------------------------------------------------ episode
    def _start_episode(self, seed: int | None, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(
                f"unknown reset options {unknown}; this environment takes {list(RESET_OPTIONS)}"
            )
        rate = options.get("budget", self.config.budget)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError(f"reset option 'budget' must be a fraction in [0, 1], got {rate!r}")
        if float(rate) != self.ledger.rate:  # this episode's tau (the next reset restores it)
            self.ledger = BudgetLedger(float(rate), self.num_tasks,
                                       cost_budget=self.config.cost_budget,
                                       mode=self.config.budget_mode,
                                       path=self.config.ledger_path)  # fmt: skip
        gym.Env.reset(self, seed=seed)
        tasks, groups = self.stream.draw(self.np_random)
        limit = self.config.max_prompt_chars
        for task in tasks:
            if len(task.prompt) > limit:
                raise ValueError(
                    f"task {task.id!r} has a {len(task.prompt)}-character prompt, over "
                    f"max_prompt_chars={limit}; raise max_prompt_chars"
                )
        self._tasks, self._groups = tasks, groups
        self._t = 0
        self._done = False
        self.ledger.reset(episode=self._episodes)
        self._episodes += 1
        self._recent.clear()
        self._last_info = None
        self.grading_failures = 0
        self._episode_correct = 0

    @property
    def task(self) -> Task | None:
        """The task of the current step; ``None`` once the episode is over (and before the
        first reset), so ``getattr(env.unwrapped, "task", None)`` never raises."""
        if self._done:
            return None
        return self._tasks[self._t]

    @property
    def task_group(self) -> str | None:
        """The name of the current task's group (e.g. ``"math"`` before the switch); ``None``
        once the episode is over."""
        if self._done:
            return None
        return self.stream.groups[self._groups[self._t]].name

    def can_offload(self, partial: str | None = None) -> bool:
        """Whether asking the cloud on the current task (with the local ``partial`` answer
        before the marker) would be granted now: the ledger has room for the cloud's quote.
        False once the episode is over. An agent that must not lose a step to a refusal asks
        this first (the observation's ``budget_left`` says the same for a flat price).

        >>> import gymnasium as gym
        >>> env = gym.make("OffloadMath-v0", num_tasks=4, budget=0.25, budget_mode="hard")
        >>> _ = env.reset(seed=0)
        >>> env.unwrapped.can_offload()
        True
        >>> _ = env.step("<unknown> I need help </unknown>")
        >>> env.unwrapped.can_offload()
        False
        """
        task = self.task
        return task is not None and self.ledger.can_offload(self.cloud.quote(task, partial))

    @property
    def episode_tasks(self) -> list[Task]:
        """The tasks of the current episode, in order."""
        return list(self._tasks)

    def _start_step(self) -> None:
        """A step may begin: the episode runs, and the step's grading gets its deadline."""
        if self._done:
            raise RuntimeError("step() called on a finished (or never started) episode; reset()")
        self._start_grading()

    def _start_grading(self) -> None:
        """Everything graded from now until the next call (the response, the cloud's answer, a
        counterfactual) shares one deadline, `EnvConfig.checker_timeout` from now: one step
        never grades for longer than that plus the fast path's bounded work."""
        self._grading_deadline = time.monotonic() + self.config.checker_timeout

    def _base_info(self) -> StepInfo:
        if self._done:
            return {"budget_left": self.ledger.fraction_left, "calls_left": self.ledger.calls_left}
        task = self._tasks[self._t]
        return {
            "task_id": task.id,
            "domain": task.domain,
            "difficulty": task.difficulty,
            "task_group": self.stream.groups[self._groups[self._t]].name,
            "step": self._t,
            "budget_left": self.ledger.fraction_left,
            "calls_left": self.ledger.calls_left,
        }

    def _grade(self, task: Task, text: str) -> Grade:
        """Grade ``text``; repeated (task, text) pairs within a step are graded once (a failure
        counts in the environment that graded)."""
        known = self._grade_memo.get(task, text)
        if known is not None:
            return known
        g = grade_response(task, text, timeout=max(0.0, self._grading_deadline - time.monotonic()))
        checker_failed = task.domain == "math" and g.method in ("timeout", "error")
        if checker_failed or g.method == "sandbox_error":
            self.grading_failures += 1
        self._grade_memo.put(task, text, g)
        return g

    def _grade_together(self, task: Task, texts: list[str]) -> None:
        """Grade several responses to one code task concurrently on the sandbox pool (the
        results land in the per-step memo that `_grade` reads); math grading is cheap and stays
        sequential."""
        todo = [t for t in dict.fromkeys(texts) if self._grade_memo.get(task, t) is None]
        if task.domain != "code" or len(todo) < 2:
            return
        from offload_gym.scoring.code import run_code_checks

        for text, result in zip(todo, run_code_checks([task] * len(todo), todo), strict=True):
            if result.status == "sandbox_error":
                self.grading_failures += 1
            self._grade_memo.put(task, text, Grade(result.passed, None, result.status))

    def _resolve(
        self,
        task: Task,
        local_text: str,
        wants_cloud: bool,
        partial: str | None,
        local_latency: float,
    ) -> StepInfo:
        """Apply one decision: maybe call the cloud (through the ledger), grade, build info."""
        info = self._base_info()
        call = _Call() if not wants_cloud else self._call_cloud(task, partial)
        offloaded = call.text is not None
        latency = local_latency + call.latency
        final = self._grade(task, call.text if call.text is not None else local_text)
        correct = float(final.correct)
        components: RewardComponents = {
            "correct": correct,
            "correct_local": 0.0 if offloaded else correct,
            "correct_cloud": correct if offloaded else 0.0,
            "offloaded": float(offloaded),
            "cost": call.cost,
            "latency": latency,
        }
        self._recent.append(int(offloaded))
        info.update(StepInfo(
            correct=final.correct,
            answer=final.answer,
            grading=final.method,
            offload_requested=wants_cloud,
            offloaded=offloaded,
            offload_refused=call.refused,
            cloud_failed=call.error is not None,
            cloud_error=call.error,
            cloud_answer=call.text,
            over_budget=call.over,
            cost=call.cost,
            latency_s=latency,
            budget_left=self.ledger.fraction_left,
            calls_left=self.ledger.calls_left,
            calls_used=self.ledger.calls_used,
            reward_components=components,
        ))  # fmt: skip
        return info

    def _call_cloud(self, task: Task, partial: str | None) -> _Call:
        """Ask the ledger, then the cloud. What the ledger charges is what the reward sees: the
        reported cost capped by the quote the call was granted on (a reported cost that is not
        a finite non-negative number, a faulty server's usage, bills the quote); a failed call
        is not charged; attempts that may have been billed anyway are noted."""
        entry = self.ledger.request(self._t, self.cloud.quote(task, partial))
        if not entry.granted:
            return _Call(refused=True, over=entry.over_budget)
        try:
            response = self.cloud.answer(task, partial)
        except CloudError as exc:
            self.ledger.cancel(entry)
            self.ledger.note_unconfirmed(getattr(exc, "unconfirmed_attempts", 0), entry.cost)
            if self.config.cloud_failure == "raise":
                raise
            return _Call(over=entry.over_budget, error=str(exc))
        reported = response.cost
        valid = isinstance(reported, int | float) and math.isfinite(reported)
        charged = min(reported, entry.cost) if valid and reported >= 0 else entry.cost
        self.ledger.charge(entry, charged)
        unconfirmed = getattr(response, "unconfirmed_attempts", 0)
        if isinstance(unconfirmed, int) and unconfirmed > 0:
            self.ledger.note_unconfirmed(unconfirmed, entry.cost)
        return _Call(text=response.text, over=entry.over_budget, cost=charged,
                     latency=response.latency_s)  # fmt: skip

    def _advance(self, info: StepInfo) -> tuple[SupportsFloat, bool]:
        parts = cast(dict[str, float], info["reward_components"])
        reward = combine_reward(parts, self.config.reward_weights)
        self._last_info = info
        self._t += 1
        self._episode_correct += bool(info["correct"])
        terminated = self._t >= len(self._tasks)
        if terminated:
            self._done = True
            # Not "episode": RecordEpisodeStatistics owns that key.
            info["episode_summary"] = {
                "ledger": self.ledger.summary(),
                "grading_failures": self.grading_failures,
            }
            # Flat scalars, for loggers that read one key of the last info (SB3's Monitor
            # ``info_keywords``): the episode's accuracy and cloud usage.
            info["episode_accuracy"] = self._episode_correct / self._t
            info["episode_cloud_usage"] = self.ledger.calls_used / self._t
        return reward, terminated

    # ------------------------------------------------------------------ rendering
    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: one status line (budget, task, route, verdict, answer); ``"rgb_array"``:
        the same line drawn on a (64, 640, 3) uint8 image, wrapped, for video recorders
        (Stable-Baselines3's ``make_vec_env`` asks for this mode by default)."""
        if self.render_mode == "ansi":
            return self._status_line()
        if self.render_mode == "rgb_array":
            return _text_image(self._status_line())
        return None

    def _status_line(self) -> str:
        info = self._last_info
        head = f"[{self._t}/{self.num_tasks}] budget {self.ledger.calls_used}/"
        head += f"{self.ledger.calls_allowed} calls, cost {self.ledger.cost_used:.5f}"
        if info is None:
            return head + " | episode start"
        verdict = "correct" if info["correct"] else "wrong"
        route = "cloud" if info["offloaded"] else "local"
        if info["offload_refused"]:
            route = "local (offload refused: over budget)"
        return (
            f"{head} | {info['task_id']} (d{info['difficulty']}, {info['task_group']}) -> {route},"
            f" {verdict}, answer {info['answer']!r}"
        )


def _text_image(text: str, height: int = 64, width: int = 640) -> np.ndarray:
    """``text`` in black on white, wrapped to the width (Pillow's built-in bitmap font)."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    lines = textwrap.wrap(text, width=width // 6 - 2) or [""]
    for i, line in enumerate(lines[: height // 12]):
        draw.text((4, 2 + 12 * i), line, fill="black", font=font)
    return np.asarray(img, dtype=np.uint8).copy()


def offload_env(env: Any) -> OffloadEnv:
    """The `OffloadEnv` under ``env``'s wrappers (``env.unwrapped``, checked): a clear error for
    an environment that is not one of this package's.

    >>> import gymnasium as gym
    >>> offload_env(gym.make("OffloadMath-v0")).num_tasks
    100
    """
    base = getattr(env, "unwrapped", env)
    if not isinstance(base, OffloadEnv):
        raise TypeError(f"expected an offload environment (offload_gym), got {type(base).__name__}")
    return base
