"""Seconds per training step of ``offload-gym demo`` (its own step shape), before and after the
step was made cheaper, beside the raw floor, in the same run.

The step: DA-GRPO on the demo's stream with the demo's settings (G = 8 responses to P = 4
prompts, up to 128 new tokens, two optimisation passes, 16 answer-anchor rows) on the demo's
skilled SLM, 12 steps in the math group and 12 in the code group, as one demo run trains.

- ``before``: the step as the pre-registered runs of docs/results.md ran it: every row run whole
  in the update (``share_prompts=False``, ``update_chunk=8``), each sub-env grading on its own
  (no shared `GradeMemo`), the anchor rows in one padded pass (``anchor_chunk=0``), and the
  model's GELU written out as GPT-2's ``gelu_new`` (same weights).
- ``after``: the step as it runs now (each group's prompt run once in sampling and in the
  update, chunks of 16, anchor rows in length-sorted chunks of 4, one grade memo for the
  collector's sub-envs, PyTorch's fused tanh GELU).
- ``floor``: the arithmetic of the old step and nothing else: one ``generate`` of the step's
  32 rows, then two passes of forward/backward over the whole rows and the anchor rows and an
  optimizer step, with no environment, grading or bookkeeping.

The three are interleaved over ``--rounds`` rounds (fresh copies of the model each time), so
drift in the machine's load hits them alike. Reported: the mean seconds per step in each group
and over the run (the demo's time is the sum of its steps), and the ratios.

Run: ``python benchmarks/bench_demo_step.py [--rounds 2] [--slm PATH] [--threads 2]
[--json OUT]``. Without ``--slm`` it uses the demo's cached skilled SLM
(``~/.cache/offload-gym``), building it first when missing (about 8-10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from offload_agents._torch import torch_threads
from offload_agents.grpo.anchor import anchor_loss, encode_anchor
from offload_agents.grpo.demo_config import TRAIN_SEED, DemoConfig, demo_stream
from offload_agents.grpo.experiment import cached_slm
from offload_agents.grpo.trainer import GRPOTrainer
from offload_agents.slm import format_prompt, load_local_lm
from offload_agents.slm.skill import WorkedAnswers

SEED = 7  # a tuning seed: never an evaluation seed of the demo


def written_out_gelu(model):
    """``model`` with GPT-2's written-out ``gelu_new`` (the activation before this change)."""
    from transformers import GPT2LMHeadModel

    cfg = copy.deepcopy(model.config)
    cfg.activation_function = "gelu_new"
    old = GPT2LMHeadModel(cfg)
    old.load_state_dict(model.state_dict())
    return old


def anchor(cfg: DemoConfig) -> WorkedAnswers:
    return WorkedAnswers(cfg.skill(), {"math": cfg.math_families, "code": cfg.code_families},
                         seed=SEED)  # fmt: skip


def time_trainer(model, tok, cfg: DemoConfig, before: bool) -> list[float]:
    grpo = cfg.grpo("dagrpo", SEED)
    env_kwargs = {"tasks": demo_stream(cfg, cfg.steps_per_group, TRAIN_SEED + SEED)}
    if before:
        model = written_out_gelu(model)
        grpo = dataclasses.replace(grpo, share_prompts=False, update_chunk=8, anchor_chunk=0)
        env_kwargs["grade_memo"] = None  # each sub-env grades on its own
    trainer = GRPOTrainer(model, tok, grpo, env_kwargs=env_kwargs, anchor=anchor(cfg))
    trainer.train(2 * cfg.steps_per_group, progress=False)
    trainer.close()
    return [t["total"] for t in trainer.timings]


def time_floor(model, tok, cfg: DemoConfig) -> list[float]:
    """Generate the step's rows, then the old update's arithmetic, on the same stream."""
    p = cfg.prompts_per_step
    stream = demo_stream(cfg, cfg.steps_per_group * p, TRAIN_SEED + SEED)  # P prompts a step
    tasks, _ = stream.draw(np.random.default_rng(SEED))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    source, tok.padding_side = anchor(cfg), "left"
    times = []
    for k in range(2 * cfg.steps_per_group):
        chunk = tasks[k * p : (k + 1) * p]
        prompts = [format_prompt(t.prompt) for t in chunk for _ in range(cfg.group_size)]
        start = time.perf_counter()
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            seqs = model.generate(**enc, do_sample=True, top_k=0, max_new_tokens=cfg.max_new_tokens,
                                  pad_token_id=tok.pad_token_id)  # fmt: skip
        attention = torch.cat(
            [enc["attention_mask"], torch.ones_like(seqs[:, enc["input_ids"].shape[1] :])], 1
        )
        rows = encode_anchor(tok, source(chunk[0].domain, cfg.anchor_rows, k), 2048)
        for _ in range(cfg.num_iterations):
            logits = model(input_ids=seqs, attention_mask=attention).logits[:, :-1]
            loss = torch.log_softmax(logits, -1).gather(-1, seqs[:, 1:, None]).mean()
            loss = loss + anchor_loss(model, rows)
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[list[float]], per_group: int) -> dict[str, float]:
    """Mean seconds per step in each group and overall, over the rounds."""
    math_steps = [t for run in times for t in run[:per_group]]
    code_steps = [t for run in times for t in run[per_group:]]
    return {"math": statistics.mean(math_steps), "code": statistics.mean(code_steps),
            "all": statistics.mean(math_steps + code_steps)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--slm", default=None, help="the skilled SLM (default: the demo's)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads (default 2, the demo's before workers; its figures)",
    )
    args = parser.parse_args()
    cfg = DemoConfig(threads=args.threads)
    with torch_threads(cfg.threads):
        path = args.slm or cached_slm(cfg, Path("~/.cache/offload-gym").expanduser(), True)
        base, tok = load_local_lm(path)
        runs: dict[str, list[list[float]]] = {"before": [], "after": [], "floor": []}
        for _ in range(args.rounds):
            runs["before"].append(time_trainer(copy.deepcopy(base), tok, cfg, before=True))
            runs["after"].append(time_trainer(copy.deepcopy(base), tok, cfg, before=False))
            runs["floor"].append(time_floor(written_out_gelu(base), tok, cfg))
    means = {name: summary(t, cfg.steps_per_group) for name, t in runs.items()}
    figures = {
        "torch_threads": cfg.threads,
        "seconds_per_step": means,
        "before_over_after": {g: means["before"][g] / means["after"][g] for g in means["after"]},
        "after_over_floor": {g: means["after"][g] / means["floor"][g] for g in means["after"]},
        "rounds": args.rounds,
        "steps_per_round": 2 * cfg.steps_per_group,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
