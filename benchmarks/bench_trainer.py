"""Seconds per training step: our GRPO trainer beside TRL's GRPOTrainer and beside the raw floor,
on the same tiny model, group size, prompts per step and lengths, in the same run.

- ours: `GRPOTrainer` (algorithm ``grpo``) on ``OffloadMath-v0``: generate, grade in the env,
  advantages, forward/backward, optimizer step.
- TRL: ``trl.GRPOTrainer`` with a reward function that grades with our checker; bf16 off,
  dropout disabled and gradient checkpointing off, as ours runs (TRL 1.16's defaults turn on
  bf16 autocast, sample with dropout active and recompute activations in the backward pass).
- floor: one ``generate`` of the same prompts x group x tokens, plus one forward/backward and
  optimizer step on the result.

All three sample exactly ``--tokens`` new tokens (``min_new_tokens`` = ``max_new_tokens``), so
they do the same work whatever the model writes. The three are interleaved over ``--rounds``
rounds (fresh copies of the model each time) and the medians of all timed steps compared, so
drift in the machine's load hits them alike. For ours and the floor the split of a step is
reported (median seconds per part).

Run: ``pip install trl`` then
``python benchmarks/bench_trainer.py [--steps 10] [--rounds 3] [--slm PATH] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time

import numpy as np
import torch

from offload_agents.grpo import GRPOConfig, GRPOTrainer
from offload_agents.slm import TinyLMConfig, build_slm, format_prompt, load_local_lm
from offload_gym.scoring import grade_response
from offload_gym.tasks import math_stream


def time_ours(model, tok, args) -> list[float]:
    cfg = GRPOConfig(algorithm="grpo", env_id="OffloadMath-v0", num_tasks=1000,
                     group_size=args.group, prompts_per_step=args.prompts,
                     max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                     lr=1e-5, num_iterations=1)  # fmt: skip
    trainer = GRPOTrainer(model, tok, cfg)
    trainer.train(args.steps + 2, progress=False)
    trainer.close()
    return trainer.timings[2:]  # without the warm-up steps


def time_trl(model, tok, args) -> list[dict[str, float]]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer as TRLTrainer

    tasks, _ = math_stream(200, seed=3).draw(np.random.default_rng(3))
    by_prompt = {format_prompt(t.prompt): t for t in tasks}
    data = Dataset.from_list([{"prompt": p} for p in by_prompt])

    def reward(prompts, completions, **kwargs):
        return [float(grade_response(by_prompt[p], c).correct)
                for p, c in zip(prompts, completions, strict=True)]  # fmt: skip

    times: list[dict[str, float]] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append({"total": time.perf_counter() - self.t})

    out = tempfile.mkdtemp()
    cfg = TRLConfig(output_dir=out, per_device_train_batch_size=args.group * args.prompts,
                    num_generations=args.group, max_completion_length=args.tokens,
                    max_steps=args.steps + 2, learning_rate=1e-5, bf16=False, use_cpu=True,
                    disable_dropout=True, beta=0.0, report_to="none", logging_steps=1000,
                    save_strategy="no", temperature=1.0, top_k=0, gradient_checkpointing=False,
                    generation_kwargs={"min_new_tokens": args.tokens})  # fmt: skip
    trainer = TRLTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=data,
                         processing_class=tok, callbacks=[Clock()])  # fmt: skip
    trainer.train()
    return times[2:]


def time_floor(model, tok, args) -> list[dict[str, float]]:
    tasks, _ = math_stream(50, seed=4).draw(np.random.default_rng(4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    tok.padding_side = "left"
    times = []
    for k in range(args.steps + 2):
        prompts = [format_prompt(t.prompt) for t in tasks[k * args.prompts:(k + 1) * args.prompts]
                   for _ in range(args.group)]  # fmt: skip
        start = time.perf_counter()
        enc = tok(prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            seqs = model.generate(**enc, do_sample=True, top_k=0, max_new_tokens=args.tokens,
                                  min_new_tokens=args.tokens,
                                  pad_token_id=tok.pad_token_id)  # fmt: skip
        t_gen = time.perf_counter()
        model.train()
        logits = model(input_ids=seqs).logits[:, :-1]
        loss = torch.log_softmax(logits, -1).gather(-1, seqs[:, 1:, None]).mean()
        opt.zero_grad()
        loss.backward()
        t_bwd = time.perf_counter()
        opt.step()
        model.eval()
        end = time.perf_counter()
        times.append({"generate": t_gen - start, "forward_backward": t_bwd - t_gen,
                      "optimizer": end - t_bwd, "total": end - start})  # fmt: skip
    return times[2:]


def medians(steps: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(s[k] for s in steps) for k in steps[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slm", default=None, help="a saved model (default: build a tiny one)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    path = args.slm or build_slm(tempfile.mkdtemp(), config=TinyLMConfig(), n_per_family=20,
                                 epochs=1, progress=False)  # fmt: skip
    base, tok = load_local_lm(path)
    base.config.resid_pdrop = base.config.embd_pdrop = base.config.attn_pdrop = 0.0
    runs: dict[str, list[dict[str, float]]] = {"floor": [], "ours": [], "trl": []}
    fns = {"floor": time_floor, "ours": time_ours, "trl": time_trl}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            runs[name] += fn(copy.deepcopy(base), tok, args)
    split = {name: medians(steps) for name, steps in runs.items()}
    results = {name: s["total"] for name, s in split.items()}
    figures = {
        "params": sum(p.numel() for p in base.parameters()),
        "torch_threads": torch.get_num_threads(),
        "seconds_per_step": results,
        "split": split,
        "ours_vs_trl": results["ours"] / results["trl"],
        "ours_vs_floor": results["ours"] / results["floor"],
        "trl_vs_floor": results["trl"] / results["floor"],
        "settings": vars(args),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
