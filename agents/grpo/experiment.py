"""The math-to-code continual experiment behind ``offload-gym demo``.

A skilled tiny SLM (`offload_agents.slm.skill`: one token per character, short worked steps)
is built and warm-started (or loaded from the cache), then trained along the stream, a math
group followed by a code group, by each method: the GRPO-family algorithms, and DA-GRPO under
both dual controllers. Each task group mixes difficulties the model solves and difficulties it
does not (`DemoConfig.min_difficulty` .. `max_difficulty`, uniform), and evaluation draws from
the same distribution with its own seed. Every trained model is evaluated on unseen math and
code tasks after the math group and at the end (for forgetting), next to the references
``local`` (the warm-started model alone), ``cloud`` (every task to the cloud, no budget) and the
composite baselines ``grpo+random`` (the GRPO-tuned model with random offloading at the budget
rate), ``grpo+router`` (the same model behind a Hybrid-LLM-style router that reads the prompt
and the model's confidence, fitted on that model's own correctness) and the reference
``grpo+router-privileged`` (the same classifier over the task's difficulty label, which no
deployed router knows; `offload_agents.grpo.routers`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from offload_agents._torch import torch_threads
from offload_agents.grpo.algorithms import get_algorithm
from offload_agents.grpo.config import GRPOConfig
from offload_agents.grpo.dual import eta_rule
from offload_agents.grpo.routers import (
    calibrate,
    mask_route,
    random_route,
    route_by,
    routing_ceiling,
)
from offload_agents.grpo.trainer import GRPOTrainer
from offload_agents.lm_eval import always_help, evaluate_lm, generate_responses, never_help
from offload_agents.slm import load_local_lm
from offload_agents.slm.skill import (
    CODE_FAMILIES,
    MATH_FAMILIES,
    SkillConfig,
    WorkedAnswers,
    build_skilled_slm,
    load_seen,
    prompt_digest,
)
from offload_gym import metrics
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
ALGORITHMS = tuple(METHODS)
DEFAULT_METHODS = ("dagrpo", "grpo", "collab", "gapg")
"""The methods a plain ``offload-gym demo`` trains: DA-GRPO with the paper's controller and the
GRPO-family baselines (``grpo`` also yields ``grpo+random``, ``grpo+router`` and
``grpo+router-privileged``). The other controllers (``dagrpo-pid``, ``dagrpo-price``) are one
``--methods`` away; leaving them out buys the seeds the primary comparisons need."""
TRACED = ("lambda", "cloud_requests", "greedy_requests", "cloud_usage", "reward", "accuracy",
          "clip_fraction")  # fmt: skip
"""Per-step training quantities kept in ``results.json`` (``traces[method][key][seed]``)."""
DEMO_WINDOW = 10
"""Steps per window of the budget tracking error in the demo's evaluation."""
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
            0.56-0.64 of the math group's held-out tasks and 0.28-0.31 of the code group's
            (tuning seeds 7 and 8, 150 tasks a group), so the task shift makes it weaker.
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
        threads: torch intra-op threads for the whole run (2 on a 2-core machine with nothing
            else running; 1 when several runs share it).
        primary: The method the report compares with every other agent (paired differences,
            CIs, McNemar p, mde80; `offload_agents.stats`); empty: the first of `methods`.
    """

    tau: float = 0.3
    seeds: tuple[int, ...] = (0, 1, 2)
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
    budget_signal: str = "sampled"
    eval_per_group: int = 40
    calib_per_group: int = 100
    math_families: tuple[str, ...] = MATH_FAMILIES
    code_families: tuple[str, ...] = CODE_FAMILIES
    math_difficulty: tuple[int, int] = (1, 1)
    code_difficulty: tuple[int, int] = (2, 3)
    slm_min_difficulty: int = 1
    slm_max_difficulty: int = 3
    slm_steps: int = 1400
    slm_batch: int = 32
    slm_layers: int = 4
    slm_width: int = 128
    slm_help_rate: float = 0.4
    slm_help_floor: float = 0.1
    threads: int = 2
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
        for name in ("math_difficulty", "code_difficulty"):
            span = getattr(self, name)
            if len(span) != 2 or not 1 <= span[0] <= span[1] <= 5:
                raise ValueError(f"{name} must be two difficulties lo,hi with 1 <= lo <= hi <= 5, "
                                 f"got {span!r}")  # fmt: skip
        self.skill()  # validates the SLM fields

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(seeds=(0,), steps_per_group=4, group_size=4, prompts_per_step=2,
                   max_new_tokens=96, eval_per_group=16, calib_per_group=24, slm_steps=80,
                   slm_batch=32, slm_layers=2)  # fmt: skip

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
                           threads=self.threads)  # fmt: skip

    def grpo(self, method: str, seed: int) -> GRPOConfig:
        """The trainer's config for ``method``."""
        fields = dict(METHODS[method])
        if get_algorithm(fields["algorithm"]).dual:
            fields["budget_signal"] = self.budget_signal
        return GRPOConfig(num_tasks=2 * self.steps_per_group, tau=self.tau,
                          group_size=self.group_size, prompts_per_step=self.prompts_per_step,
                          max_new_tokens=self.max_new_tokens, lr=self.lr, beta=self.beta,
                          anchor_coef=self.anchor_coef, anchor_rows=self.anchor_rows,
                          lora_rank=self.lora_rank, lora_alpha=self.lora_alpha,
                          seed=seed,
                          num_iterations=self.num_iterations, eta_lambda=self.eta,
                          lambda0=self.lambda0, pid_kp=self.pid_kp, pid_ki=self.pid_ki,
                          threads=self.threads, **fields)  # fmt: skip


def demo_stream(cfg: DemoConfig, n_per_group: int, seed: int, order: str = "random") -> TaskStream:
    """The stream of the demo: a math group then a code group, each drawing its families and
    its difficulties (`DemoConfig.math_difficulty`, `code_difficulty`) uniformly (fresh tasks
    every episode, generators seeded by ``seed``)."""

    def group(name: str, families: tuple[str, ...], span: tuple[int, int]) -> TaskGroup:
        gens = [make_generator(f, seed=seed, min_difficulty=span[0], max_difficulty=span[1])
                for f in families]  # fmt: skip
        return TaskGroup(name, gens, size=n_per_group, order=order)  # type: ignore[arg-type]

    return TaskStream([group("math", cfg.math_families, cfg.math_difficulty),
                       group("code", cfg.code_families, cfg.code_difficulty)])  # fmt: skip


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


def _sample_sd(values: list[float]) -> float:
    """The sample SD (ddof 1) of ``values``; 0.0 for fewer than two."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def training_budget_tracking(
    requests: list[list[float]], tau: float, steps_per_group: int
) -> dict[str, Any]:
    """How closely training-time cloud requests J_c track tau: per seed, the mean of
    |J_c - tau| and of J_c over the second half of each task group's steps; then their mean
    and spread over seeds.

    >>> t = training_budget_tracking([[1.0, 1.0, 0.5, 0.3], [0.0, 0.0, 0.3, 0.1]], 0.3, 2)
    >>> t["per_seed"], t["requests_per_seed"]
    ([0.35, 0.25], [0.65, 0.05])
    """
    errors, usage = [], []
    for trace in requests:
        second: list[float] = []
        for start in range(0, len(trace), steps_per_group):
            group = trace[start : start + steps_per_group]
            second += group[len(group) // 2 :]
        errors.append(round(float(np.mean([abs(x - tau) for x in second])), 12))
        usage.append(round(float(np.mean(second)), 12))
    return {
        "tracking_error": float(np.mean(errors)),
        "tracking_error_std": _sample_sd(errors),
        "requests": float(np.mean(usage)),
        "requests_std": _sample_sd(usage),
        "per_seed": errors,
        "requests_per_seed": usage,
    }


def cached_slm(cfg: DemoConfig, cache_dir: str | PathLike[str], progress: bool) -> Path:
    """The skilled SLM for these settings, built once and cached by a hash of its recipe."""
    recipe = cfg.skill()
    path = Path(cache_dir) / f"skilled-slm-{recipe.key()}"
    if not (path / "config.json").exists():
        tmp = path.with_name(path.name + ".partial")
        build_skilled_slm(tmp, recipe, progress=progress)
        tmp.replace(path)
    return path


PROBE_VIEWS = ("with_cloud", "local")
"""The two views of a forgetting probe: with the cloud at the budget, and the model's own."""
OWN_VIEW = "own-all"
"""The probe of each trained model's own answers on every evaluation task at the end (math and
code; help requests answered by the model with asking suppressed): the routing ceiling's
input."""


def _math_skill(model: Any, tokenizer: Any, math_only: TaskStream, run: dict[str, Any]) -> dict:
    """Accuracy on the math evaluation tasks alone: with the cloud at the budget, and the
    model's own (help requests answered by nobody); ``records`` keeps each view's per-task
    records."""
    with_cloud = evaluate_lm(model, tokenizer, math_only, agent="probe", **run)
    local = evaluate_lm(model, tokenizer, math_only, agent="probe", route=never_help, **run)
    return {"with_cloud": metrics.overall_accuracy(with_cloud) or 0.0,
            "local": metrics.overall_accuracy(local) or 0.0,
            "records": {"with_cloud": with_cloud, "local": local}}  # fmt: skip


def probe_name(method: str, when: str, view: str) -> str:
    """The agent name of a forgetting probe's records: ``dagrpo@after-math:local``."""
    return f"{method}@{when}:{view}"


def forgetting_comparisons(probes: dict[str, list[dict[str, Any]]]) -> list[Any]:
    """Per method and view, the paired change of math accuracy from after the math group to the
    end, on the same tasks (`offload_agents.stats.compare`: diff < 0 is forgetting)."""
    from offload_agents.stats import compare

    methods = list(dict.fromkeys(name.split("@")[0] for name in probes))  # in run order
    return [compare(probes[probe_name(m, "end", v)], probes[probe_name(m, "after-math", v)],
                    probe_name(m, "end", v), probe_name(m, "after-math", v))
            for m in methods for v in PROBE_VIEWS]  # fmt: skip


def _forgetting(after: list[float], end: list[float]) -> dict[str, Any]:
    """Mean over seeds of the math accuracy after the math group and at the end, and of the
    drop between them (absolute; relative where the accuracy after math is above zero)."""
    pairs = [metrics.forgetting(a, e) for a, e in zip(after, end, strict=True)]
    rel = [p.relative for p in pairs if p.relative is not None]
    return {"after_math": float(np.mean(after)), "end": float(np.mean(end)),
            "absolute": float(np.mean([p.absolute for p in pairs])),
            "absolute_std": _sample_sd([p.absolute for p in pairs]),
            "relative": float(np.mean(rel)) if len(rel) == len(pairs) else None}  # fmt: skip


def _train_method(
    base: Any,
    tokenizer: Any,
    cfg: DemoConfig,
    method: str,
    seed: int,
    out: Path,
    math_only: TaskStream,
    run: dict[str, Any],
    progress: bool,
    tensorboard_dir: Any = None,
    held_out: frozenset[str] = frozenset(),
) -> tuple[Any, list[dict[str, Any]], dict[str, float], dict[str, float]]:
    """Train a copy of ``base`` with ``method`` along the stream; return the model, its
    training history and its math skill after the math group and at the end. The anchor never
    draws a prompt in ``held_out`` (`prompt_digest` keys of the evaluation tasks)."""
    model = copy.deepcopy(base)
    train_stream = demo_stream(cfg, cfg.steps_per_group, TRAIN_SEED + seed)
    log = out / "train" / f"{method}-seed{seed}.jsonl"
    log.unlink(missing_ok=True)  # a fresh run (the trainer appends to resume its own log)
    groups = {"math": cfg.math_families, "code": cfg.code_families}
    trainer = GRPOTrainer(model, tokenizer, cfg.grpo(method, seed),
                          env_kwargs={"tasks": train_stream}, log_path=log,
                          tensorboard_dir=tensorboard_dir,
                          anchor=WorkedAnswers(cfg.skill(), groups, seed=seed,
                                               exclude=held_out))  # fmt: skip
    trainer.train(cfg.steps_per_group, progress=progress)
    after = _math_skill(model, tokenizer, math_only, run)
    trainer.train(cfg.steps_per_group, progress=progress)
    trainer.close()
    return model, trainer.history, after, _math_skill(model, tokenizer, math_only, run)


def _summaries(
    cfg: DemoConfig,
    logs: dict[str, list[dict[str, Any]]],
    traces: dict[str, Any],
    after_math: dict[str, list[dict[str, float]]],
    end_math: dict[str, list[dict[str, float]]],
) -> dict[str, Any]:
    agents: dict[str, Any] = {}
    for name, agent_logs in logs.items():
        summary = metrics.summarize(agent_logs, cfg.tau, window=DEMO_WINDOW)
        summary["n_seeds"] = len(cfg.seeds)
        per_seed = [metrics.overall_accuracy([r for r in agent_logs if r["seed"] == s])
                    for s in cfg.seeds]  # fmt: skip
        summary["accuracy_per_seed"] = per_seed
        values = [a for a in per_seed if a is not None]
        summary["accuracy_std"] = _sample_sd(values)
        summary["eval_requests"] = float(np.mean([r.get("action") == "cloud"
                                                  for r in agent_logs]))  # fmt: skip
        if name in after_math:
            summary["forgetting"] = {
                view: _forgetting([a[view] for a in after_math[name]],
                                  [e[view] for e in end_math[name]])
                for view in ("with_cloud", "local")
            }  # fmt: skip
        if name in traces:
            summary["training"] = training_budget_tracking(
                traces[name]["cloud_requests"], cfg.tau, cfg.steps_per_group
            )
            greedy = traces[name].get("greedy_requests", [])
            if greedy and all(v is not None for seed in greedy for v in seed):
                summary["training_greedy"] = training_budget_tracking(
                    greedy, cfg.tau, cfg.steps_per_group
                )
        agents[name] = summary
    return agents


def run_demo(
    out_dir: str | PathLike[str],
    cfg: DemoConfig,
    *,
    cache_dir: str | PathLike[str],
    progress: bool = True,
    tensorboard_dir: str | PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run the experiment; return ``{"config", "agents", "traces", "logs", "slm", "probes"}``
    (``probes``: the per-task records of the forgetting probes, by `probe_name`; written
    to ``out_dir/results.json`` with ``results.md`` and plots by `write_demo_report`). With
    ``tensorboard_dir``, each trained method's steps go to ``<dir>/<method>-seed<seed>``."""
    with torch_threads(cfg.threads):
        return _run_demo(Path(out_dir), cfg, cache_dir, progress, tensorboard_dir)


PARTIAL_DIR = "partial"
"""Folder of ``out_dir`` that holds one file per finished seed while a demo runs (removed by
`write_demo_report`): an interrupted demo resumes from it with the same settings."""


def _run_demo(
    out: Path, cfg: DemoConfig, cache_dir: Any, progress: bool, tensorboard_dir: Any = None
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    slm_path = cached_slm(cfg, cache_dir, progress)
    base, tokenizer = load_local_lm(slm_path)
    seen = load_seen(slm_path)
    key = hashlib.sha256(json.dumps([asdict(cfg), slm_path.name], sort_keys=True,
                                    default=str).encode()).hexdigest()[:12]  # fmt: skip
    per_seed = []
    for seed in cfg.seeds:
        path = out / PARTIAL_DIR / f"seed{seed}-{key}.json"
        if path.exists():
            if progress:
                print(f"seed {seed}: resumed from {path}", file=sys.stderr)
            per_seed.append(json.loads(path.read_text(encoding="utf-8")))
            continue
        done = _run_seed(base, tokenizer, seen, cfg, seed, out, progress, tensorboard_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(done), encoding="utf-8")
        tmp.replace(path)
        per_seed.append(done)
    logs: dict[str, list[dict[str, Any]]] = {}
    after_math: dict[str, list[dict[str, float]]] = {}
    end_math: dict[str, list[dict[str, float]]] = {}
    traces: dict[str, dict[str, list[list[float]]]] = {}
    probes: dict[str, list[dict[str, Any]]] = {}
    for done in per_seed:
        for name, records in done["logs"].items():
            logs.setdefault(name, []).extend(records)
        for method in done["after"]:
            for when, key in (("after-math", "after"), ("end", "end")):
                for view, records in done[key][method].pop("records").items():
                    name = probe_name(method, when, view)
                    probes.setdefault(name, []).extend({**r, "agent": name} for r in records)
            after_math.setdefault(method, []).append(done["after"][method])
            end_math.setdefault(method, []).append(done["end"][method])
            trace = traces.setdefault(method, {k: [] for k in TRACED})
            for k in TRACED:
                trace[k].append(done["traces"][method][k])
        for method, records in done.get("own", {}).items():
            name = probe_name(method, "end", OWN_VIEW)
            probes.setdefault(name, []).extend({**r, "agent": name} for r in records)
    share = float(np.mean([d["seen_share"] for d in per_seed]))
    config = {"experiment": "math-to-code stream", **asdict(cfg), "eta": cfg.eta,
              "eval_seen_in_warm_start": share}  # fmt: skip
    agents = _summaries(cfg, logs, traces, after_math, end_math)
    for name, ceiling in _ceilings(cfg, per_seed).items():
        agents[name]["ceiling"] = ceiling
    slm = json.loads((slm_path / "skill_recipe.json").read_text(encoding="utf-8"))
    return {"config": config, "agents": agents, "traces": traces, "logs": logs, "slm": slm,
            "probes": probes}  # fmt: skip


def _ceilings(cfg: DemoConfig, per_seed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per trained method (and the composites built on its model), the routing ceiling at tau
    on the evaluation tasks (`routing_ceiling`, from the model's own outcomes and the cloud's),
    and the model's own accuracy; mean, sample SD and per seed."""
    per: dict[str, dict[str, list[float]]] = {}
    for done in per_seed:
        cloud = done["logs"]["cloud-unlimited"]
        for method, own in done.get("own", {}).items():
            if [r["task_id"] for r in own] != [r["task_id"] for r in cloud]:
                raise ValueError(f"{method}: own and cloud records are not on the same tasks")
            ceiling = routing_ceiling([r["correct"] for r in own],
                                      [r["correct"] for r in cloud], cfg.tau)  # fmt: skip
            row = per.setdefault(method, {"ceiling": [], "own": []})
            row["ceiling"].append(ceiling)
            row["own"].append(float(np.mean([r["correct"] for r in own])))
    out = {m: {"accuracy": float(np.mean(v["ceiling"])), "accuracy_std": _sample_sd(v["ceiling"]),
               "per_seed": v["ceiling"], "own": float(np.mean(v["own"])),
               "own_per_seed": v["own"]} for m, v in per.items()}  # fmt: skip
    if "grpo" in out:  # the composites route the grpo model
        for name in ("grpo+random", "grpo+router", "grpo+router-privileged"):
            out[name] = out["grpo"]
    return out


def _run_seed(
    base: Any,
    tokenizer: Any,
    seen: set[str],
    cfg: DemoConfig,
    seed: int,
    out: Path,
    progress: bool,
    tensorboard_dir: Any = None,
) -> dict[str, Any]:
    """Every agent of the demo on one seed: evaluation logs, math skill after the math group
    and at the end, and the training traces of each trained method (JSON-ready)."""
    stream = heldout_stream(cfg, cfg.eval_per_group, EVAL_SEED + seed, seen)
    tasks, _ = stream.draw(np.random.default_rng(seed))
    held_out = frozenset(prompt_digest(t.prompt) for t in tasks)
    math_only = TaskStream(stream.groups[:1])  # the same math tasks, alone
    run = {"budget": cfg.tau, "max_new_tokens": cfg.max_new_tokens, "seed": seed}
    done: dict[str, Any] = {"logs": {}, "after": {}, "end": {}, "traces": {}, "own": {},
                            "seen_share": float(np.mean([prompt_digest(t.prompt) in seen
                                                         for t in tasks]))}  # fmt: skip

    def evaluate(name: str, model: Any, route: Any = None, **over: Any) -> None:
        done["logs"][name] = evaluate_lm(model, tokenizer, stream, route=route, agent=name,
                                         **{**run, **over})  # fmt: skip

    evaluate("local", base, never_help)
    evaluate("cloud-unlimited", base, always_help, budget=1.0)
    for method in cfg.methods:
        tb = None if tensorboard_dir is None else Path(tensorboard_dir) / f"{method}-seed{seed}"
        model, history, after, end = _train_method(base, tokenizer, cfg, method, seed, out,
                                                   math_only, run, progress, tb,
                                                   held_out)  # fmt: skip
        done["after"][method], done["end"][method] = after, end
        evaluate(method, model)
        done["traces"][method] = {k: [r[k] for r in history] for k in TRACED}
        own = evaluate_lm(model, tokenizer, stream, route=never_help, agent=f"{method}:own",
                          **run)  # fmt: skip
        done["own"][method] = own
        if method == "grpo":
            evaluate("grpo+random", model, random_route(cfg.tau, seed))
            for name, route in _routers(model, tokenizer, cfg, seed, tasks,
                                        seen | held_out).items():  # fmt: skip
                evaluate(name, model, route)
    return done


def _routers(
    model: Any, tokenizer: Any, cfg: DemoConfig, seed: int, tasks: list[Any], exclude: Any
) -> dict[str, Any]:
    """``grpo+router`` (prompt-only) and ``grpo+router-privileged`` (reads the difficulty label)
    for the evaluation ``tasks``, fitted on calibration tasks (none of whose prompts is in
    ``exclude``: the warm start's and the evaluation's) with ``model``'s own outcomes
    (`offload_agents.grpo.routers`)."""
    calib_stream = heldout_stream(cfg, cfg.calib_per_group, CALIB_SEED + seed, exclude)
    calib = calibrate(model, tokenizer, calib_stream, max_new_tokens=cfg.max_new_tokens,
                      seed=seed)  # fmt: skip
    _, conf = generate_responses(model, tokenizer, tasks, max_new_tokens=cfg.max_new_tokens)
    return {name: mask_route(route_by(kind, calib, tasks, conf, cfg.tau, seed))
            for name, kind in (("grpo+router", "prompt"),
                               ("grpo+router-privileged", "privileged"))}  # fmt: skip


def write_demo_report(result: dict[str, Any], out_dir: str | PathLike[str]) -> dict[str, Path]:
    """``results.json`` (config, agents, traces), ``results.md`` and the plots."""
    from offload_agents.evaluation import EvalResult
    from offload_agents.plots import plot_training_traces
    from offload_agents.report import write_report

    cfg = result["config"]
    evals = {
        name: EvalResult(name, "OffloadStream-v0", cfg["tau"], result["logs"][name], m, [])
        for name, m in result["agents"].items()
    }
    config = {"env": "OffloadStream-v0 (text view)", "budget": cfg["tau"],
              **{k: v for k, v in cfg.items() if k != "tau"}}  # fmt: skip
    primary = cfg["primary"] or cfg["methods"][0]
    paths = write_report(evals, out_dir, config, switch_points=(cfg["eval_per_group"],),
                         window=DEMO_WINDOW, primary=primary)  # fmt: skip
    payload = json.loads(paths["json"].read_text())
    payload["traces"] = result["traces"]
    steps = Path(out_dir) / "steps.jsonl"  # every evaluation step of every agent and seed
    with steps.open("w", encoding="utf-8") as fh:
        for records in result["logs"].values():
            fh.writelines(json.dumps(r) + "\n" for r in records)
    paths["steps"] = steps
    probes = result.get("probes") or {}
    forgetting = forgetting_comparisons(probes) if probes else []
    if probes:  # every forgetting probe's per-task records
        paths["probes"] = Path(out_dir) / "probes.jsonl"
        with paths["probes"].open("w", encoding="utf-8") as fh:
            for records in probes.values():
                fh.writelines(json.dumps(r) + "\n" for r in records)
        payload["forgetting_comparisons"] = [c.to_dict() for c in forgetting]
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(Path(out_dir) / PARTIAL_DIR, ignore_errors=True)  # the run is written
    trained = {k: m["training"] for k, m in result["agents"].items() if "training" in m}
    if trained:
        rows = ["", "## Cloud usage, both ways: training requests J_c over sampled responses "
                "(second half of each task group) and evaluation usage over greedy answers", "",
                f"| method | training requests J_c | mean abs(J_c - tau), tau = {cfg['tau']} | "
                "training greedy requests | training granted | eval requests | eval granted |",
                "|---|---|---|---|---|---|---|"]  # fmt: skip
        for k, t in trained.items():
            m = result["agents"][k]
            granted = training_budget_tracking(result["traces"][k]["cloud_usage"], cfg["tau"],
                                               cfg["steps_per_group"])["requests"]  # fmt: skip
            g = m.get("training_greedy")
            greedy = "n/a" if g is None else f"{g['requests']:.3f} ± {g['requests_std']:.3f}"
            rows.append(f"| {k} | {t['requests']:.3f} ± {t['requests_std']:.3f} | "
                        f"{t['tracking_error']:.3f} ± {t['tracking_error_std']:.3f} | "
                        f"{greedy} | {granted:.3f} | {m['eval_requests']:.3f} | "
                        f"{m['cloud_usage']:.3f} |")  # fmt: skip
        rows += _forgetting_rows(result, list(trained), forgetting)
        paths["md"].write_text(paths["md"].read_text() + "\n".join(rows) + "\n", encoding="utf-8")
    if result["traces"]:
        paths["training"] = plot_training_traces(
            result["traces"], Path(out_dir) / "training.png", tau=cfg["tau"],
            switch_step=cfg["steps_per_group"],
        )  # fmt: skip
        md = paths["md"].read_text() + "\n![training](training.png)\n"
        paths["md"].write_text(md, encoding="utf-8")
    return paths


def _forgetting_rows(
    result: dict[str, Any], trained: list[str], forgetting: list[Any]
) -> list[str]:
    """The report's forgetting section: the probes' accuracies, then their paired changes."""
    rows = ["", "## Forgetting: accuracy on the same math tasks after the math group and "
             "at the end", "",
             "| method | with cloud: after math | at end | drop | own skill: after math "
             "| at end | drop |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for k in trained:
        f = result["agents"][k]["forgetting"]
        cells = [f"{f[v]['after_math']:.3f} | {f[v]['end']:.3f} | {f[v]['absolute']:+.3f}"
                 for v in ("with_cloud", "local")]  # fmt: skip
        rows.append(f"| {k} | " + " | ".join(cells) + " |")
    if forgetting:
        from offload_agents.stats import comparisons_table

        note = "Change from after the math group to the end, paired on the same math tasks"
        rows += ["", f"{note} (negative: forgetting):", "", comparisons_table(forgetting)]
    return rows
