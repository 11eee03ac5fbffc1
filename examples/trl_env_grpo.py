"""Plain GRPO on TRL's own ``GRPOTrainer``, with the environment owning the reward: no subclass.

`offload_agents.trl_rollout.OffloadRollout` is TRL's ``rollout_func``: it samples the
completions and plays each batch as one episode of the text-view environment (graders, code
sandbox, cloud model, budget ledger); `env_reward` hands TRL the environment's reward. Prints,
per generated batch, the share of completions that asked for the cloud, were answered by it,
and were right.

    python examples/trl_env_grpo.py --tiny                     # a tiny model, CPU, under a minute
    python examples/trl_env_grpo.py --model PATH --steps 200   # any Hugging Face causal LM

Needs ``pip install 'offload-gym[trl]'``; see docs/trl.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from offload_gym.tasks import math_code_stream


def _tiny_model(out: Path) -> str:
    """A tiny character-level SLM of the skilled-SLM kit, trained a few steps (seconds)."""
    from offload_agents.slm.skill import SkillConfig, build_skilled_slm

    cfg = SkillConfig(steps=4, batch_size=4, n_layer=1, n_embd=32, n_head=2, threads=1)
    return str(build_skilled_slm(out / "tiny-slm", cfg, progress=False))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="path of a Hugging Face causal LM (or use --tiny)")
    parser.add_argument("--tiny", action="store_true", help="build a tiny model; CPU smoke run")
    parser.add_argument("--steps", type=int, default=None, help="generated batches (tiny: 3)")
    parser.add_argument("--budget", type=float, default=0.3, help="tau, the cloud budget")
    parser.add_argument("--budget-mode", default="hard", choices=("hard", "soft"))
    parser.add_argument("--call-price", type=float, default=0.0,
                        help="reward charged per cloud answer (the env's reward weight on "
                             "'offloaded' is minus this)")  # fmt: skip
    parser.add_argument("--group-size", type=int, default=None, help="completions per prompt")
    parser.add_argument("--prompts", type=int, default=None, help="prompts per batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.tiny and not args.model:
        parser.error("give --model PATH or --tiny")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is experimental in TRL

    import trl

    from offload_agents.slm import load_local_lm
    from offload_agents.trl import task_dataset
    from offload_agents.trl_rollout import OffloadRollout, env_reward

    steps = args.steps or (3 if args.tiny else 200)
    group = args.group_size or (4 if args.tiny else 8)
    prompts = args.prompts or (2 if args.tiny else 4)
    weights = {"correct": 1.0, "offloaded": -args.call_price}
    with tempfile.TemporaryDirectory() as tmp:
        path = _tiny_model(Path(tmp)) if args.tiny else args.model
        model, tok = load_local_lm(path)
        tasks, _ = math_code_stream(steps * prompts, seed=args.seed).draw(
            np.random.default_rng(args.seed))  # fmt: skip
        rollout = OffloadRollout(tasks, seed=args.seed,
                                 env_kwargs={"budget": args.budget, "budget_mode": args.budget_mode,
                                             "reward_weights": weights})  # fmt: skip
        cfg = trl.GRPOConfig(output_dir=str(Path(tmp) / "out"), max_steps=steps,
                             num_generations=group, per_device_train_batch_size=group * prompts,
                             max_completion_length=24 if args.tiny else 256,
                             learning_rate=1e-4 if args.tiny else 1e-6, temperature=1.0,
                             report_to="none", logging_steps=1, save_strategy="no",
                             disable_tqdm=True, seed=args.seed,
                             **({"use_cpu": True, "bf16": False} if args.tiny else {}))  # fmt: skip
        trainer = trl.GRPOTrainer(model, reward_funcs=env_reward, args=cfg,
                                  train_dataset=task_dataset(tasks), rollout_func=rollout,
                                  processing_class=tok)  # fmt: skip
        trainer.train()
    for k, h in enumerate(rollout.history, 1):
        print(f"batch {k}: asked {h['asked']:.3f}  cloud answered {h['offloaded']:.3f}  "
              f"right {h['correct']:.3f}  reward {h['env_reward']:.3f}", flush=True)  # fmt: skip
    return rollout.history


if __name__ == "__main__":
    main()
