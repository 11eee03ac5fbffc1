"""Configuration of the GRPO-family trainer; the algorithms differ only in these fields."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from offload_agents.grpo.dual import check_lambda_min, list_duals
from offload_gym.validation import require_int, require_ints

LengthNorm = Literal["token", "sequence"]
BudgetSignal = Literal["sampled", "greedy"]


def __getattr__(name: str) -> Any:
    if name == "ALGORITHMS":  # the registry's names at the time of asking
        from offload_agents.grpo.algorithms import list_algorithms

        return list_algorithms()
    raise AttributeError(name)


@dataclass
class GRPOConfig:
    """One trainer, every algorithm of the family (see `offload_agents.grpo.algorithms`).

    Attributes:
        algorithm: A registered algorithm: ``"dagrpo"`` (A_r - lambda A_c with a dual
            controller), ``"grpo"`` (task tuning only: std-normalised advantages, no cloud),
            ``"collab"`` (Dr. GRPO with GAPG's fixed hierarchical reward alpha_a / alpha_c),
            ``"gapg"`` (that reward, mean-only advantages scaled by G/(G-1), no clip, prompt
            filtering, hard budget cap), or any spec added with `register_algorithm`.
        env_id: Text-view environment to train on.
        num_tasks: Tasks per episode of the stream.
        group_size: G, responses sampled per prompt.
        prompts_per_step: P, prompts (task groups) per training step.
        max_new_tokens: Longest response.
        min_new_tokens: Shortest response (end-of-text is suppressed before it); 0 lets the
            model stop at once. Benchmarks set it to ``max_new_tokens`` to force equal lengths.
        temperature: Sampling temperature.
        lr: AdamW learning rate.
        lora_rank: 0 trains every weight; r > 0 trains rank-r LoRA adapters on every linear
            layer instead (the base weights frozen; needs ``peft``), which keeps more of the
            warm-started skill per step and usually wants a learning rate about 10x higher.
        lora_alpha: LoRA scale numerator (the adapters' output is scaled by alpha / r).
        num_iterations: Optimisation passes over each batch (TRL's ``num_iterations``, PPO's
            epochs); the behaviour log-probs are kept from sampling, so from the second pass on
            the ratio differs from 1 and the clip acts.
        update_chunk: Rows per forward pass of the update. The batch's rows are sorted by
            length and each chunk is cut to its own longest response and prompt, so the padding
            of the batch costs no compute; the log-probabilities are the same as in one pass
            (0: the whole batch in one pass, padded to its longest row). The answer anchor's
            rows go through the model in chunks of `anchor_chunk`.
        share_prompts: Run each group's prompt through the model once, in sampling and in the
            update, and repeat its key/value cache over the group's G responses
            (`offload_agents.grpo.sampling`, `offload_agents.grpo.logprobs`): the same
            distribution, log-probabilities and gradients as running every row whole, at a
            fraction of the compute when prompts are long. False samples with ``generate`` and
            runs every row whole.
        clip_eps: PPO clip range (ignored by algorithms that do not clip, such as GAPG).
        length_norm: ``"token"`` (default, every algorithm: the loss averages all response
            tokens of the batch together, as Dr. GRPO and DAPO, so a short response gets no
            larger per-token weight) or ``"sequence"`` (tokens averaged within each response,
            then over responses, as the original GRPO).
        anchor_coef: Weight of the answer anchor (`offload_agents.grpo.anchor`, PPO-ptx's
            supervised term): the cross-entropy of fresh worked answers of the batch's task
            group, without their first token (the decision stays with the RL), added to the
            policy loss in every pass. Needs an anchor source (``GRPOTrainer(anchor=...)``);
            0 (default) trains as the papers do.
        anchor_rows: Supervised rows of the anchor per training step.
        anchor_chunk: Anchor rows per forward pass, sorted by length and each chunk cut to
            its longest row (the same loss and gradient as one pass; 0: all rows in one pass,
            padded to the longest).
        beta: Weight of the k3 KL to the initial policy (0 disables the reference model).
        tau: Cloud budget: target usage (dagrpo), or the share of each training batch the cloud
            may answer (gapg).
        lambda0: Initial dual variable (dagrpo); the PID controller's bias term.
        dual: DA-GRPO's dual controller: ``"ascent"`` (the paper's
            ``lambda <- max(0, lambda + eta (J_c - tau))``), ``"pid"`` (a PID Lagrangian on a
            smoothed J_c, `offload_agents.grpo.dual.PIDController`) or ``"price"`` (the batch's
            measured price of a call plus PI feedback, `offload_agents.grpo.dual.PriceController`),
            or any controller registered with `offload_agents.grpo.dual.register_dual`.
        budget_signal: What the dual controller holds at tau: ``"sampled"`` (the paper's J_c,
            the share of the batch's sampled responses that ask) or ``"greedy"`` (the share of
            the batch's prompts whose greedy response asks: the decision the evaluation sees;
            one extra greedy decode of the P prompts a step). Either way the step record
            carries ``greedy_requests`` when the probe ran.
        eta_lambda: Dual ascent step size.
        pid_kp: Proportional gain of the PID and price controllers.
        pid_ki: Integral gain (PID and price).
        pid_kd: Derivative gain of the PID controller (0: a PI controller).
        pid_smoothing: Weight of the newest batch in the smoothed J_c (and the price) (1: no
            smoothing).
        lambda_max: Upper bound of lambda under the PID and price controllers.
        lambda_min: Lower bound of lambda under the PID and price controllers: 0 (default; the
            paper's multiplier of the inequality J_c <= tau, so under-spending is free) or below
            0 (the budget as a target, J_c = tau: when usage falls short, lambda turns negative
            and the advantage rewards asking). The paper's ascent always projects onto >= 0.
        alpha_a: Reward of a correct local answer (collab, gapg).
        alpha_c: Reward of a correct cloud-completed answer (collab, gapg).
        gapg_rho: GAPG keeps up to rho * |mixed| prompts where no local rollout is right but the
            cloud is.
        seed: Seeds the stream, the sampling and the initialisation.
        threads: torch intra-op threads while training (0 leaves torch's setting alone; 1 suits
            several workers on one machine, 2 a lone run on 2 cores).
    """

    algorithm: str = "dagrpo"
    env_id: str = "OffloadStream-v0"
    num_tasks: int = 100
    group_size: int = 8
    prompts_per_step: int = 4
    max_new_tokens: int = 64
    min_new_tokens: int = 0
    temperature: float = 1.0
    lr: float = 1e-4
    lora_rank: int = 0
    lora_alpha: float = 16.0
    num_iterations: int = 2
    update_chunk: int = 16
    anchor_chunk: int = 4
    share_prompts: bool = True
    clip_eps: float = 0.2
    length_norm: LengthNorm = "token"
    anchor_coef: float = 0.0
    anchor_rows: int = 16
    beta: float = 0.0
    tau: float = 0.3
    lambda0: float = 0.5
    dual: str = "ascent"
    budget_signal: BudgetSignal = "sampled"
    eta_lambda: float = 0.01
    pid_kp: float = 2.0
    pid_ki: float = 0.1
    pid_kd: float = 0.0
    pid_smoothing: float = 0.5
    lambda_max: float = 10.0
    lambda_min: float = 0.0
    alpha_a: float = 1.0
    alpha_c: float = 0.4
    gapg_rho: float = 0.5
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        from offload_agents.grpo.algorithms import get_algorithm

        get_algorithm(self.algorithm)  # raises with the registered names
        require_ints(self, ("num_tasks", "group_size", "prompts_per_step", "max_new_tokens",
                            "num_iterations", "anchor_rows"))  # fmt: skip
        require_int("lora_rank", self.lora_rank, minimum=0)  # 0: full fine-tuning
        require_int("update_chunk", self.update_chunk, minimum=0)  # 0: one pass
        require_int("anchor_chunk", self.anchor_chunk, minimum=0)
        if not (math.isfinite(self.lora_alpha) and self.lora_alpha > 0):
            raise ValueError(f"lora_alpha must be a finite number > 0, got {self.lora_alpha!r}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0: leave torch's setting), got {self.threads}")
        if self.dual not in list_duals():
            raise ValueError(f"dual must be one of {list_duals()}, got {self.dual!r}")
        if self.budget_signal not in ("sampled", "greedy"):
            raise ValueError(
                f"budget_signal must be 'sampled' or 'greedy', got {self.budget_signal!r}"
            )
        if self.length_norm not in ("token", "sequence"):
            raise ValueError(f"length_norm must be 'token' or 'sequence', got {self.length_norm!r}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens must be in [0, max_new_tokens={self.max_new_tokens}], "
                f"got {self.min_new_tokens!r}"
            )
        if self.group_size < 2:
            raise ValueError("group_size must be >= 2: advantages are relative within a group")
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {self.tau}")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("clip_eps", "beta", "anchor_coef", "lambda0", "eta_lambda", "gapg_rho",
                     "pid_kp", "pid_ki", "pid_kd"):  # fmt: skip
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)!r}")
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 0 <= self.alpha_c <= self.alpha_a:
            raise ValueError("the hierarchical reward needs 0 <= alpha_c <= alpha_a")
        if not 0 < self.pid_smoothing <= 1:
            raise ValueError(f"pid_smoothing must be in (0, 1], got {self.pid_smoothing}")
        if not self.lambda_max > 0:
            raise ValueError(f"lambda_max must be > 0, got {self.lambda_max}")
        check_lambda_min(self.lambda_min)
        if self.lambda_min < 0 and self.dual == "ascent":
            raise ValueError("lambda_min < 0 needs dual='pid' or 'price': the paper's ascent "
                             "projects lambda onto >= 0")  # fmt: skip

    @property
    def spec(self) -> Any:
        """The registered `AlgorithmSpec` of ``algorithm``."""
        from offload_agents.grpo.algorithms import get_algorithm

        return get_algorithm(self.algorithm)
