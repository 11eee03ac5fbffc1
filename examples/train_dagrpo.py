"""Train the local LM with DA-GRPO on the math-to-code stream; runs as a plain script or data
parallel over processes (an ``accelerate.Accelerator`` inside):

    python examples/train_dagrpo.py --slm runs/slm --steps 20
    torchrun --nproc_per_node 2 examples/train_dagrpo.py --slm runs/slm --steps 20   # 2 CPU procs
    accelerate launch --multi_gpu --num_processes 4 examples/train_dagrpo.py --slm runs/slm

(On CPUs use torchrun: ``accelerate launch --cpu --num_processes 2`` started a single process in
our tests with accelerate 1.15.)

Build the SLM once first (``python -c "from offload_agents.slm import build_slm;
build_slm('runs/slm')"``) or pass any Hugging Face causal LM path.
"""

from __future__ import annotations

import argparse
import hashlib

import torch

from offload_agents.grpo import GRPOConfig, GRPOTrainer
from offload_agents.slm import load_local_lm


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slm", required=True, help="path of the local model")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--tau", type=float, default=0.3)
    parser.add_argument("--log", default=None, help="JSONL log of the training steps")
    args = parser.parse_args(argv)

    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model, tokenizer = load_local_lm(args.slm)
    cfg = GRPOConfig(algorithm="dagrpo", num_tasks=2 * args.steps, tau=args.tau,
                     group_size=args.group_size, prompts_per_step=args.prompts,
                     max_new_tokens=args.max_new_tokens)  # fmt: skip
    trainer = GRPOTrainer(model, tokenizer, cfg, env_kwargs={"switch_point": args.steps},
                          log_path=args.log, accelerator=accelerator)  # fmt: skip
    trainer.train(args.steps, progress=accelerator.is_main_process)
    trainer.close()
    digest = hashlib.sha256()
    for p in trainer.raw_model.parameters():
        digest.update(p.detach().cpu().numpy().tobytes())
    checksum = digest.hexdigest()[:16]
    last = trainer.history[-1]
    print(f"rank {accelerator.process_index}/{accelerator.num_processes} params {checksum} "
          f"lambda {trainer.lam:.4f} usage {last['cloud_requests']:.3f}", flush=True)  # fmt: skip
    accelerator.wait_for_everyone()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # no gloo thread left running at exit
    return checksum


if __name__ == "__main__":
    main()
