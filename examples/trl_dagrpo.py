"""DA-GRPO on TRL's GRPOTrainer (`offload_agents.trl`), scored by this project's environments,
graders, budget and cloud; prints lambda and the training requests J_c per step.

    python examples/trl_dagrpo.py --tiny                       # a tiny model, CPU, under a minute
    python examples/trl_dagrpo.py --model PATH --steps 200     # any Hugging Face causal LM
    python examples/trl_dagrpo.py --model PATH --use-vllm      # vLLM generation (GPU)
    accelerate launch --num_processes 4 examples/trl_dagrpo.py --model PATH   # several GPUs

Needs ``pip install 'offload-gym[trl]'``. See docs/trl.md for LoRA, vLLM and several GPUs.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from offload_agents.grpo import GRPOConfig
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
    parser.add_argument("--algorithm", default="dagrpo", help="dagrpo, grpo, collab or gapg")
    parser.add_argument("--dual", default="pid", help="ascent, pid or price")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (tiny: 3)")
    parser.add_argument("--tau", type=float, default=0.3, help="the budget")
    parser.add_argument("--group-size", type=int, default=None, help="completions per prompt")
    parser.add_argument("--prompts", type=int, default=None, help="prompts per step")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--use-vllm", action="store_true", help="TRL's vLLM generation")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters (peft)")
    parser.add_argument("--out", default=None, help="TRL's output directory")
    args = parser.parse_args(argv)
    if not args.tiny and not args.model:
        parser.error("give --model PATH or --tiny")

    from offload_agents.trl import OffloadGRPOTrainer, trl_args

    tiny = args.tiny
    steps = args.steps or (3 if tiny else 200)
    cfg = GRPOConfig(algorithm=args.algorithm, dual=args.dual, tau=args.tau,
                     group_size=args.group_size or (4 if tiny else 8),
                     prompts_per_step=args.prompts or (2 if tiny else 4),
                     max_new_tokens=args.max_new_tokens or (16 if tiny else 256),
                     lr=1e-4 if tiny else 1e-6)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        model = _tiny_model(Path(tmp)) if tiny else args.model
        out = args.out or str(Path(tmp) / "trl-out")
        extra = {"use_cpu": True, "bf16": False} if tiny else {"use_vllm": args.use_vllm}
        peft = None
        if args.lora:
            from peft import LoraConfig

            peft = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")
        stream = math_code_stream(steps * cfg.prompts_per_step * 2, seed=0)
        tasks, _ = stream.draw(np.random.default_rng(0))
        trainer = OffloadGRPOTrainer(model, offload_config=cfg, tasks=tasks,
                                     args=trl_args(cfg, out, steps=steps, **extra),
                                     peft_config=peft)  # fmt: skip
        trainer.train()
    for r in trainer.history:
        print(f"step {r['step']}: lambda {r['lambda']:.4f}  requests {r['cloud_requests']:.3f}  "
              f"granted {r['cloud_usage']:.3f}  accuracy {r['accuracy']:.3f}",
              flush=True)  # fmt: skip
    return trainer.history


if __name__ == "__main__":
    main()
