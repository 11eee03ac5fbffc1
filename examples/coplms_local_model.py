"""Co-tune with Co-PLMs, then use a device's co-tuned SLM as the local model of an offload
environment, routed by a confidence threshold against the simulated cloud.

    python examples/coplms_local_model.py --out runs/coplms-local      # a few minutes on a CPU
    python examples/coplms_local_model.py --out /tmp/x --tiny          # a smoke run

The polynomials device's SLM (GPT-2 style, started from its public checkpoint) answers the
router view's math tasks through `TransformersLocal`, in the prompt template it was trained
with; its confidence (the geometric mean of its token probabilities) drives a router that
offloads the least confident share tau (the threshold calibrated on the device's held-out
tasks).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np

import offload_gym  # noqa: F401  (registers the ids)
from offload_agents.coplms import CoPLMsConfig, make_evaluator, prepare, run_method
from offload_agents.coplms.public import public_models
from offload_agents.slm import format_prompt
from offload_gym.models.hf import TransformersLocal


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="where the co-tuned SLMs are saved")
    parser.add_argument("--budget", type=float, default=0.3)
    parser.add_argument("--tasks", type=int, default=30, help="tasks in the routed episode")
    parser.add_argument("--tiny", action="store_true", help="tiny settings (a smoke run)")
    parser.add_argument("--cache-dir", default="~/.cache/offload-gym",
                        help="where the public checkpoints are cached")  # fmt: skip
    args = parser.parse_args(argv)

    cfg = CoPLMsConfig.quick()
    if args.tiny:
        cfg = dataclasses.replace(cfg, rounds=1, local_steps=2, mutual_steps=1, server_steps=1,
                                  train_per_device=16, server_tasks=12, eval_per_device=2,
                                  max_new_tokens=16, server_pretrain_steps=0,
                                  slm_pretrain_steps=0)  # fmt: skip
    public = public_models(cfg, args.cache_dir, progress=not args.tiny)
    setup = prepare(cfg, public)
    evaluate = make_evaluator(setup.tokenizer, cfg.max_new_tokens)
    run = run_method("coplms", cfg, setup, evaluate, progress=not args.tiny, save_dir=args.out,
                     public=public)  # fmt: skip
    slm_path = Path(args.out) / f"device0-{cfg.devices[0].domain}"

    def template(task, partial):  # the template the SLM was trained with
        return format_prompt(task.prompt)

    local = TransformersLocal(slm_path, device="cpu", max_new_tokens=cfg.max_new_tokens,
                              prompt_format=template)  # fmt: skip
    env = gym.make("OffloadMathRouter-v0", local_model=local, budget=args.budget,
                   num_tasks=args.tasks)  # fmt: skip
    # Calibrate on the device's own held-out tasks (one batched generate): offload the least
    # confident share tau.
    confidences = [r.confidence for r in local.answer_batch(setup.eval[0])]
    threshold = float(np.quantile(confidences, args.budget))
    _, info = env.reset(seed=0)
    correct = offloaded = steps = 0
    done = False
    while not done:
        action = int(info["local_confidence"] < threshold)
        _, _, done, _, info = env.step(action)
        correct += int(info["correct"])
        offloaded += int(info["offloaded"])
        steps += 1
    summary = {
        "coplms_device0_em": run["rounds"][-1]["devices"][0]["em"],
        "coplms_device0_rouge_l": run["rounds"][-1]["devices"][0]["rouge_l"],
        "routed_accuracy": correct / steps,
        "cloud_usage": offloaded / steps,
    }
    print(summary)
    return summary


if __name__ == "__main__":
    main()
