"""The settings of ``offload-gym demo``: the methods, `DemoConfig`, and the streams it trains
and evaluates on (`demo_stream`; `heldout_stream`, whose prompts the warm start never saw)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from offload_agents.grpo.algorithms import get_algorithm
from offload_agents.grpo.config import BudgetSignal, GRPOConfig
from offload_agents.grpo.dual import check_lambda_min, eta_rule
from offload_agents.slm.skill import CODE_FAMILIES, MATH_FAMILIES, SkillConfig, prompt_digest
from offload_gym.tasks import TaskGroup, TaskStream, make_generator

METHODS: dict[str, dict[str, Any]] = {
    "dagrpo": {"algorithm": "dagrpo", "dual": "ascent"},
    "dagrpo-pid": {"algorithm": "dagrpo", "dual": "pid"},
    "dagrpo-price": {"algorithm": "dagrpo", "dual": "price"},
    "grpo": {"algorithm": "grpo"},
    "collab": {"algorithm": "collab"},
    "gapg": {"algorithm": "gapg"},
}
"""The trained methods of the demo: a name and the `GRPOConfig` fields that make it."""
DEFAULT_METHODS = ("dagrpo", "grpo", "collab")
"""The methods a plain ``offload-gym demo`` trains: DA-GRPO with the paper's controller and the
baselines of its primary comparisons (``grpo`` also yields ``grpo+random``, ``grpo+router``
and ``grpo+router-privileged``; ``collab`` is the fixed-shaping baseline). ``gapg`` and the
other controllers (``dagrpo-pid``, ``dagrpo-price``) are one ``--methods`` away; leaving them
out buys the seeds the primary comparisons need."""
MAIN_SEEDS = tuple(range(87, 99))
"""The main job's evaluation seeds: those of its registered run at 12 seeds
(docs/results/main-87), fresh when it ran (0-86 were tuning or evaluation seeds before)."""
PAPER_SEEDS = tuple(range(69, 87))
"""The ``paper`` preset's evaluation seeds: those of its registered run at the current default
(docs/results/paper69), fresh when it ran, and apart from the main job's."""
TRACED = ("lambda", "cloud_requests", "greedy_requests", "cloud_usage", "reward", "accuracy",
          "clip_fraction")  # fmt: skip
"""Per-step training quantities kept in ``results.json`` (``traces[method][key][seed]``)."""
DEMO_WINDOW = 10
"""Steps per window of the budget tracking error in the demo's evaluation."""
RANKED = "+rank"
"""Suffix of a DA-GRPO model deployed by its own asking probability: ``<method>+rank``."""
TRAIN_SEED, EVAL_SEED, CALIB_SEED = 1_000, 90_000, 50_000
"""Offsets of the generator seeds of the training stream, the evaluation stream and the
router's calibration tasks (added to the run's seed): three disjoint task draws."""


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the experiment (``quick()`` gives the few-minute CPU version).

    Attributes:
        tau: The cloud budget.
        seeds: Training seeds.
        methods: Trained methods (keys of `METHODS`: dagrpo, dagrpo-pid, dagrpo-price, grpo,
            collab, gapg).
        steps_per_group: Training steps in each task group (math, then code).
        group_size: G.
        prompts_per_step: P.
        max_new_tokens: Longest response (characters, for the character-level SLM).
        lr: Learning rate of the RL phase.
        lora_rank: 0 tunes every weight in the RL phase; r > 0 tunes rank-r LoRA adapters on
            every linear layer instead (base weights frozen; needs ``peft``).
        lora_alpha: LoRA scale numerator (adapter output scaled by alpha / r).
        anchor_coef: Weight of the answer anchor in every method's loss (PPO-ptx's supervised
            term on fresh worked answers of the current task group, without the first token,
            which is the decision; `offload_agents.grpo.anchor`). 0 trains as the papers do.
        anchor_rows: Anchor rows per training step.
        beta: KL coefficient to the warm-started model (k3 estimator; 0: no reference model).
        num_iterations: Optimisation passes over each batch.
        eta_lambda: DA-GRPO's dual ascent step size; 0 (default): the rule written down
            before the evaluation run, `offload_agents.grpo.dual.eta_rule` (a violation of 0.1
            held over a task group moves lambda by lambda0: 0.42 at 12 steps a group), since
            the paper's 0.01 leaves lambda within 0.48-0.52 over this run's 24 steps.
        lambda0: Initial lambda (the PID controller's bias term).
        pid_kp: PID controller's proportional gain.
        pid_ki: PID controller's integral gain.
        lambda_min: Lower bound of the PID and price controllers' lambda: 0 (the budget is an
            upper bound) or below 0 (a target: under-spending rewards asking). ``dagrpo`` (the
            paper's ascent) keeps lambda >= 0 whatever this says.
        budget_signal: What DA-GRPO's controller holds at tau: ``"sampled"`` (the paper's share
            of sampled responses that ask) or ``"greedy"`` (the share of the step's prompts whose
            greedy response asks, the decision the evaluation sees; one extra greedy decode of
            the P prompts a step). The other methods have no controller and ignore it.
        eval_per_group: Unseen evaluation tasks per group.
        calib_per_group: Calibration tasks per group on which the routers of ``grpo+router``
            and ``grpo+router-privileged`` are fitted (drawn apart from the training and
            evaluation tasks).
        math_families: Math families of the stream's math group.
        code_families: Code families of the code group.
        math_difficulty: Easiest and hardest difficulty of the math group (uniform between).
        code_difficulty: Easiest and hardest difficulty of the code group. The defaults put
            the switch where the paper has it: after the warm start the local model solves
            0.422 of the math group's held-out tasks and 0.335 of the code group's (mean of
            evaluation seeds 51-60, 150 tasks a group; docs/results.md), so the task shift
            makes it weaker. (Before 2026-12-06 the default was 3-3: 0.07-0.14 on code.)
        replay: Share of each later group's *training* tasks drawn from the earlier groups'
            generators (uniformly over them), so the policy keeps seeing, and keeps deciding
            on, the tasks it trained on before. 0 trains as the papers do. Evaluation,
            calibration and probes never replay: they draw each group's own tasks.
        slm_min_difficulty: Easiest difficulty the SLM's warm start teaches.
        slm_max_difficulty: Hardest difficulty the SLM's warm start teaches (set it below a
            group's hardest to put that level out of the SLM's reach).
        slm_steps: Warm-start steps of the skilled SLM.
        slm_batch: Fresh tasks per warm-start step.
        slm_layers: Transformer blocks of the SLM.
        slm_width: Width of the SLM.
        slm_help_rate: Share of warm-start targets at the hardest difficulty that are the help
            request.
        slm_help_floor: Share of warm-start targets at the easiest difficulty that are the help
            request (linear up to `slm_help_rate`): the model asks now and then on every kind of
            task, as the paper's prompted model may, so that DA-GRPO's cost advantage has
            asking samples to act on in the math group too.
        slm_threads: torch intra-op threads of the warm start, which runs alone before the
            seeds (part of its cache key: its numbers depend on it).
        threads: torch intra-op threads of each seed's training and evaluation. The main job
            runs 1, with ``offload-gym demo``'s default of one worker process a core (its 12
            seeds two at a time on 2 cores, 1.23x the seeds an hour of one 2-thread process);
            the quick and paper presets run 2 in one process. The numbers depend on it (a
            matrix product's reductions split over threads add in another order), never on
            the number of workers.
        primary: The method the report compares with every other agent (paired differences,
            CIs, McNemar p, mde80; `offload_agents.stats`); empty: the first of `methods`.
    """

    tau: float = 0.3
    seeds: tuple[int, ...] = MAIN_SEEDS
    methods: tuple[str, ...] = DEFAULT_METHODS
    steps_per_group: int = 12
    group_size: int = 8
    prompts_per_step: int = 4
    max_new_tokens: int = 128
    lr: float = 2e-4
    lora_rank: int = 0
    lora_alpha: float = 16.0
    anchor_coef: float = 1.0
    anchor_rows: int = 16
    beta: float = 0.0
    num_iterations: int = 2
    eta_lambda: float = 0.0
    lambda0: float = 0.5
    pid_kp: float = 2.0
    pid_ki: float = 0.1
    lambda_min: float = 0.0
    budget_signal: BudgetSignal = "sampled"
    eval_per_group: int = 150
    calib_per_group: int = 100
    math_families: tuple[str, ...] = MATH_FAMILIES
    code_families: tuple[str, ...] = CODE_FAMILIES
    math_difficulty: tuple[int, int] = (1, 2)
    code_difficulty: tuple[int, int] = (2, 3)
    replay: float = 0.0
    slm_min_difficulty: int = 1
    slm_max_difficulty: int = 3
    slm_steps: int = 1400
    slm_batch: int = 32
    slm_layers: int = 4
    slm_width: int = 128
    slm_help_rate: float = 0.4
    slm_help_floor: float = 0.1
    slm_threads: int = 2
    threads: int = 1
    primary: str = ""

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
        if not self.methods:
            raise ValueError("methods must name at least one method")
        if self.primary and self.primary not in self.methods:
            raise ValueError(f"primary {self.primary!r} is not one of the run's methods "
                             f"{list(self.methods)}")  # fmt: skip
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if self.budget_signal not in ("sampled", "greedy"):
            raise ValueError(
                f"budget_signal must be 'sampled' or 'greedy', got {self.budget_signal!r}"
            )
        if not self.eta_lambda >= 0 or (self.eta_lambda == 0 and not self.lambda0 > 0):
            raise ValueError("eta_lambda must be >= 0 (0: by eta_rule, which needs "
                             f"lambda0 > 0), got eta_lambda={self.eta_lambda}, "
                             f"lambda0={self.lambda0}")  # fmt: skip
        check_lambda_min(self.lambda_min)
        if not 0 <= self.replay < 1:
            raise ValueError(f"replay must be a share in [0, 1), got {self.replay!r}")
        for name in ("math_difficulty", "code_difficulty"):
            span = getattr(self, name)
            if len(span) != 2 or not 1 <= span[0] <= span[1] <= 5:
                raise ValueError(f"{name} must be two difficulties lo,hi with 1 <= lo <= hi <= 5, "
                                 f"got {span!r}")  # fmt: skip
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0: leave torch's setting), got {self.threads}")
        self.skill()  # validates the SLM fields (slm_threads too)

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(seeds=(0,), steps_per_group=4, group_size=4, prompts_per_step=2,
                   max_new_tokens=96, eval_per_group=16, calib_per_group=24, slm_steps=80,
                   slm_batch=32, slm_layers=2, threads=2)  # fmt: skip

    @classmethod
    def paper(cls) -> DemoConfig:
        """The longer preset (``--preset paper``, about 1 h 54 min on 2 cores): 3x the RL steps
        a group (36), the 18 seeds of its registered run (`PAPER_SEEDS`), 2 torch threads in
        one process as that run had, and the main job's other settings (the dual step size
        follows `eta_rule` for 36 steps a group)."""
        return cls(seeds=PAPER_SEEDS, steps_per_group=36, threads=2)

    @classmethod
    def preset(cls, name: str) -> DemoConfig:
        """``"main"`` (the defaults), ``"quick"`` or ``"paper"``."""
        presets: dict[str, Callable[[], DemoConfig]] = {"main": cls, "quick": cls.quick,
                                                          "paper": cls.paper}  # fmt: skip
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(presets)}")
        return presets[name]()

    @property
    def primary_method(self) -> str:
        """`primary`, or the first of `methods`."""
        return self.primary or self.methods[0]

    @property
    def eta(self) -> float:
        """The dual ascent step size of the run: `eta_lambda`, or by `eta_rule` when it is 0."""
        return self.eta_lambda or eta_rule(self.lambda0, self.steps_per_group)

    def skill(self) -> SkillConfig:
        """The recipe of the demo's SLM."""
        weights = {k: v for k, v in SkillConfig().family_weights.items()
                   if k in self.math_families + self.code_families}  # fmt: skip
        return SkillConfig(math_families=self.math_families, code_families=self.code_families,
                           family_weights=weights, min_difficulty=self.slm_min_difficulty,
                           max_difficulty=self.slm_max_difficulty, steps=self.slm_steps,
                           batch_size=self.slm_batch, n_layer=self.slm_layers,
                           n_embd=self.slm_width, help_rate=self.slm_help_rate,
                           help_floor=self.slm_help_floor,
                           threads=self.slm_threads)  # fmt: skip

    def grpo(self, method: str, seed: int) -> GRPOConfig:
        """The trainer's config for ``method``: every field of `PASSED_TO_GRPO` as set here,
        the dual step size as `eta`, and the controller's settings where the method has one."""
        fields = dict(METHODS[method])
        if get_algorithm(fields["algorithm"]).dual:
            fields["budget_signal"] = self.budget_signal
            if fields.get("dual") in ("pid", "price"):  # the ascent is the paper's, kept >= 0
                fields["lambda_min"] = self.lambda_min
        passed = {name: getattr(self, name) for name in PASSED_TO_GRPO}
        return GRPOConfig(num_tasks=2 * self.steps_per_group, seed=seed, eta_lambda=self.eta,
                          **passed, **fields)  # fmt: skip


PASSED_TO_GRPO = ("tau", "group_size", "prompts_per_step", "max_new_tokens", "lr", "beta",
                  "anchor_coef", "anchor_rows", "lora_rank", "lora_alpha", "num_iterations",
                  "lambda0", "pid_kp", "pid_ki", "threads")  # fmt: skip
"""The `DemoConfig` fields that are `GRPOConfig` fields of the same name and type, passed to
every method's trainer as they are. Why the demo declares them again rather than nesting a
`GRPOConfig`: its flags are flat (``--lr``, not ``--grpo.lr``), the demo's defaults differ
from the trainer's (``lr`` 2e-4, ``anchor_coef`` 1, ``max_new_tokens`` 128), and the fields
that depend on the method (``algorithm``, ``dual``, ``budget_signal``, ``lambda_min``) or on
the schedule (``num_tasks``, ``eta_lambda`` through `eta_rule`) are set per method.
tests/agents/grpo/test_experiment.py checks that each of these keeps GRPOConfig's name and type and
reaches the trainer."""


def demo_stream(
    cfg: DemoConfig, n_per_group: int, seed: int, order: str = "random", replay: float = 0.0
) -> TaskStream:
    """The stream of the demo: a math group then a code group, each drawing its families and
    its difficulties (`DemoConfig.math_difficulty`, `code_difficulty`) uniformly (fresh tasks
    every episode, generators seeded by ``seed``). With ``replay`` > 0 the code group draws
    that share of its tasks from the math group's generators (the training stream's
    `DemoConfig.replay`); the group keeps its name."""
    spans = {"math": (cfg.math_families, cfg.math_difficulty),
             "code": (cfg.code_families, cfg.code_difficulty)}  # fmt: skip
    gens = {name: [make_generator(f, seed=seed, min_difficulty=lo, max_difficulty=hi)
                   for f in families]
            for name, (families, (lo, hi)) in spans.items()}  # fmt: skip
    own, old = gens["code"], gens["math"]
    weights = [(1 - replay) / len(own)] * len(own) + [replay / len(old)] * len(old)
    code_gens, code_weights = (own + old, weights) if replay else (own, None)
    return TaskStream([
        TaskGroup("math", old, size=n_per_group, order=order),  # type: ignore[arg-type]
        TaskGroup("code", code_gens, size=n_per_group, order=order,  # type: ignore[arg-type]
                  weights=code_weights),
    ])  # fmt: skip


HELDOUT_DRAWS = 50
"""Draws per task wanted that `heldout_stream` makes before it gives up on a group."""


def heldout_stream(
    cfg: DemoConfig, n_per_group: int, seed: int, exclude: set[str] | frozenset[str]
) -> TaskStream:
    """A fixed stream of ``n_per_group`` tasks a group, drawn as `demo_stream` draws them, whose
    prompts are distinct and not in ``exclude`` (`prompt_digest` keys: the warm start's prompts).
    Raises ValueError when a group's task space has too few such prompts."""
    draws = demo_stream(cfg, n_per_group * HELDOUT_DRAWS, seed)
    groups = []
    for k, g in enumerate(draws.groups):
        kept: dict[str, Any] = {}
        for t in g.draw(np.random.default_rng([seed, k])):
            key = prompt_digest(t.prompt)
            if key not in exclude and key not in kept:
                kept[key] = t
                if len(kept) == n_per_group:
                    break
        if len(kept) < n_per_group:
            raise ValueError(f"group {g.name!r}: only {len(kept)} prompts unseen in the warm "
                             f"start among {n_per_group * HELDOUT_DRAWS:,} draws, "
                             f"{n_per_group} wanted; lower the number of tasks or widen the "
                             "group's difficulties")  # fmt: skip
        groups.append(TaskGroup(g.name, list(kept.values()), order="given"))
    return TaskStream(groups)
