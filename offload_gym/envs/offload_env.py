"""The offload environment and its two views.

Both views walk one stream of tasks per episode, one task per step, with the same budget ledger,
models, grading and reward parts; they differ in who writes the local answer:

- `OffloadTextEnv`: the agent *is* the local language model. It reads the prompt and writes a
  response; a response containing the offload marker asks the cloud.
- `OffloadRouterEnv`: a simulated (or real) local model answers; the agent sees features of the
  task, the local model's confidence and the budget, and chooses 0 (keep local) or 1 (offload).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from typing import Any, ClassVar, NamedTuple, SupportsFloat, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from offload_gym.budget import BudgetLedger
from offload_gym.envs.config import EnvConfig
from offload_gym.envs.info import RewardComponents, StepInfo
from offload_gym.envs.reward import combine_reward
from offload_gym.envs.spaces import PromptText
from offload_gym.models.base import CloudError, LocalResponse
from offload_gym.protocol import asks_cloud
from offload_gym.scoring.grade import Grade, GradeMemo, grade_response
from offload_gym.tasks.base import Task

ROUTER_FEATURES = (
    "is_math",
    "is_code",
    "difficulty",
    "local_confidence",
    "budget_left",
    "recent_usage",
    "usage_rate",
    "budget_rate",
    "progress",
    "group_position",
)
"""Router-view observation, in order (all in [0, 1]):

- ``is_math``, ``is_code``: one-hot domain of the task.
- ``difficulty``: ``(difficulty - 1) / 4``.
- ``local_confidence``: the local model's confidence in its answer.
- ``budget_left``: share of the episode's call budget still unused.
- ``recent_usage``: share of the last ``usage_window`` steps that went to the cloud.
- ``usage_rate``: cloud calls so far divided by steps so far (0 at the first step).
- ``budget_rate``: tau, the budget as a fraction of tasks.
- ``progress``: steps done divided by the episode length.
- ``group_position``: index of the task's group divided by (number of groups - 1); 0 for one group.
"""


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


class OffloadTextEnv(OffloadEnv):
    """## Description
    The agent is the local language model. Each step shows one task's prompt; the agent's action is
    its full response. A response containing the offload marker (``"<unknown>"`` by default) asks
    the cloud, which answers the task given the text before the marker; within the budget the
    cloud's answer is graded, otherwise the local response is.

    ## Action Space
    `PromptText`: any ``str``. Responses longer than ``max_response_chars`` are cut
    (``info["response_truncated"]``).

    ## Observation Space
    ``Dict(prompt=PromptText(max_prompt_chars), budget_left=Box(0, 1, (1,)),
    progress=Box(0, 1, (1,)))``.

    ## Rewards
    By default 1.0 when the final answer (the cloud's if it answered, else the response) is
    right, else 0.0; ``reward_weights`` combine the parts in ``info["reward_components"]``
    (correct, correct_local, correct_cloud, offloaded, cost, latency).

    ## Starting State
    ``reset(seed=...)`` draws the episode's tasks from the stream (fresh procedural tasks, or a
    given dataset in order) and refills the budget: ``floor(budget * num_tasks)`` calls.

    ## Episode End
    Terminated after the last task of the stream; never truncated.

    ## Arguments
    `EnvConfig`'s fields, as keyword arguments of `gym.make`; router-view arguments
    (``local_model``, ``counterfactuals``, ``usage_window``) are refused.

    ## Version History
    - v0: the first version.

    >>> import gymnasium as gym
    >>> env = gym.make("OffloadMath-v0", num_tasks=2, budget=0.5)
    >>> obs, info = env.reset(seed=0)
    >>> sorted(obs)
    ['budget_left', 'progress', 'prompt']
    >>> _, reward, terminated, truncated, info = env.step("<unknown> I need help </unknown>")
    >>> info["offloaded"], info["calls_left"], terminated
    (True, 0, False)
    """

    view = "text"

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)
        self.action_space = PromptText(self.config.max_response_chars)
        self.observation_space = spaces.Dict(
            {
                "prompt": PromptText(self.config.max_prompt_chars),
                "budget_left": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
                "progress": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
            }
        )

    def _obs(self) -> dict[str, Any]:
        return {
            "prompt": "" if self._done else self._tasks[self._t].prompt,
            "budget_left": np.array([self.ledger.fraction_left], dtype=np.float32),
            "progress": np.array([self._t / self.num_tasks], dtype=np.float32),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        self._start_episode(seed, options)
        return self._obs(), _plain(self._base_info())

    def step(self, action: str) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        if not isinstance(action, str):
            raise TypeError(
                f"action must be a str (the response text; space {self.action_space}), "
                f"got {type(action).__name__}"
            )
        self._start_step()
        limit = self.config.max_response_chars
        truncated_response = len(action) > limit
        response = action[:limit]
        task = self._tasks[self._t]
        wants_cloud, partial = asks_cloud(response, self.config.offload_marker)
        info = self._resolve(task, response, wants_cloud, partial, 0.0)
        info["response_truncated"] = truncated_response
        # After the step, for analysis and teaching (an agent that reads it to answer later
        # tasks is not a deployable one).
        info["reference"] = task.answer
        reward, terminated = self._advance(info)
        return self._obs(), reward, terminated, False, _plain(info)


class OffloadRouterEnv(OffloadEnv):
    """## Description
    A local model (simulated by default) answers each task; the agent decides whether to keep the
    local answer (0) or to offload the task to the cloud (1) within the budget.

    ## Action Space
    ``Discrete(2)``: 0 answer locally, 1 offload. `action_masks` marks offloading invalid once a
    hard budget is spent (for sb3-contrib's MaskablePPO).

    ## Observation Space
    ``Box(0, 1, (10,), float32)``, the features of `ROUTER_FEATURES`.

    ## Rewards
    As in the text view: 1.0 for a right final answer by default, the parts in
    ``info["reward_components"]``; ``info`` also carries the counterfactuals
    ``local_correct`` and ``cloud_correct`` (with ``counterfactuals=True``).

    ## Starting State
    ``reset(seed=...)`` draws the episode's tasks, refills the budget and has the local model
    answer the first task (its confidence is a feature).

    ## Episode End
    Terminated after the last task of the stream; never truncated.

    ## Arguments
    `EnvConfig`'s fields, as keyword arguments of `gym.make`; text-view arguments
    (``offload_marker``, ``max_response_chars``) are refused.

    ## Version History
    - v0: the first version.

    >>> import gymnasium as gym
    >>> env = gym.make("OffloadMathRouter-v0", num_tasks=4, budget=0.25)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, int(env.action_space.n)
    ((10,), 2)
    >>> _, _, _, _, info = env.step(1)
    >>> info["offloaded"], bool(env.unwrapped.action_masks()[1])
    (True, False)
    """

    view = "router"

    def _models(self) -> list[Any]:
        return [self.cloud, self.local]

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)
        self.local = self.config.build_local()
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(
            0.0, 1.0, shape=(len(ROUTER_FEATURES),), dtype=np.float32
        )
        self._local_response: LocalResponse | None = None
        self._n_groups = len(self.stream.groups)

    def _prepare(self) -> None:
        self._local_response = None if self._done else self.local.answer(self._tasks[self._t])

    def _obs(self) -> np.ndarray:
        ledger, t = self.ledger, self._t
        recent = self._recent
        budget = [
            ledger.fraction_left,
            sum(recent) / len(recent) if recent else 0.0,
            ledger.calls_used / t if t else 0.0,
            ledger.rate,
            t / self.num_tasks,
        ]
        if self._done:
            return np.array([0.0, 0.0, 0.0, 0.0, *budget, 0.0], dtype=np.float32)
        task = self._tasks[t]
        assert self._local_response is not None
        confidence = min(1.0, max(0.0, self._local_response.confidence))
        group = self._groups[t] / (self._n_groups - 1) if self._n_groups > 1 else 0.0
        domain = task.domain
        features = [domain == "math", domain == "code", (task.difficulty - 1) / 4.0, confidence]
        return np.array([*features, *budget, group], dtype=np.float32)

    def _counterfactual(self, task: Task) -> str | None:
        """The cloud's answer to a task it was not asked for (None if the call failed and
        failures are tolerated)."""
        try:
            return self.cloud.answer(task).text
        except CloudError:
            if self.config.cloud_failure == "raise":
                raise
            return None

    def peek_outcomes(self) -> tuple[bool, bool]:
        """``(local_correct, cloud_correct)`` for the current task, without acting.

        Privileged information for oracle baselines and analysis; an agent that uses it is not a
        deployable router. Asks the cloud (counterfactually) for the current task.
        """
        if self._done or self._local_response is None:
            raise RuntimeError("the episode is over; call reset()")
        task = self._tasks[self._t]
        self._start_grading()
        local = self._grade(task, self._local_response.text).correct
        cloud = self._grade(task, self.cloud.answer(task).text).correct
        return local, cloud

    def action_masks(self) -> np.ndarray:
        """``[True, can_offload]``: offloading is masked once a hard budget is spent."""
        can = not self._done and self.ledger.can_offload(
            self.cloud.quote(self._tasks[self._t]) if not self._done else 0.0
        )
        return np.array([True, can], dtype=bool)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        self._start_episode(seed, options)
        self._prepare()
        info = self._base_info()
        assert self._local_response is not None
        info["local_confidence"] = self._local_response.confidence
        return self._obs(), _plain(info)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        a = _as_binary_action(action, self.action_space)
        self._start_step()
        task = self._tasks[self._t]
        local = self._local_response
        assert local is not None
        counterfactual = None
        if a == 0 and self.config.counterfactuals:
            counterfactual = self._counterfactual(task)
            if counterfactual is not None:
                self._grade_together(task, [local.text, counterfactual])
        info = self._resolve(task, local.text, a == 1, None, local.latency_s)
        local_grade = self._grade(task, local.text)
        info["local_correct"] = local_grade.correct
        info["local_confidence"] = local.confidence
        if info["offloaded"]:
            info["cloud_correct"] = info["correct"]
        elif counterfactual is not None:
            info["cloud_correct"] = self._grade(task, counterfactual).correct
        elif self.config.counterfactuals and a == 1:  # refused or failed: ask counterfactually
            text = self._counterfactual(task)
            info["cloud_correct"] = None if text is None else self._grade(task, text).correct
        else:
            info["cloud_correct"] = None
        reward, terminated = self._advance(info)
        self._prepare()
        return self._obs(), reward, terminated, False, _plain(info)


def _as_binary_action(action: Any, space: spaces.Space[Any]) -> int:
    if isinstance(action, np.ndarray) and action.shape in ((), (1,)):
        action = action.reshape(()).item()
    if isinstance(action, bool | np.bool_) or not isinstance(action, int | np.integer):
        raise TypeError(
            f"action must be an int in {space} (0 = answer locally, 1 = offload), "
            f"got {type(action).__name__} {action!r}"
        )
    if action not in (0, 1):
        raise ValueError(
            f"action must be 0 (answer locally) or 1 (offload), in {space}; got {action}"
        )
    return int(action)


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
