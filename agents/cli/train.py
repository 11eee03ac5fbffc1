"""``offload-gym train``: one GRPO-family algorithm on one text-view env id, with a checkpoint
folder that a rerun resumes from."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from offload_agents.cli._common import _positive, add_cache_dir_arg, add_out_args
from offload_agents.cli._configflags import add_config_flags, config_from_flags

CHECKPOINT, LOG, SUMMARY, MODEL = "checkpoint.pt", "train.jsonl", "results.json", "model"


def _model(args: argparse.Namespace) -> tuple[Any, Any]:
    """The local LM: ``--model PATH`` (any Hugging Face causal LM saved there), else the
    demo's skilled SLM (built once and cached in ``--cache-dir``)."""
    from offload_agents.slm import load_local_lm

    if args.model is not None:
        return load_local_lm(args.model)
    from offload_agents.grpo.experiment import DemoConfig, cached_slm

    return load_local_lm(cached_slm(DemoConfig(), Path(args.cache_dir).expanduser(),
                                    progress=not args.quiet))  # fmt: skip


def _anchor(cfg: Any) -> Any:
    """The answer anchor's source for ``--anchor-coef > 0``: the kit's worked answers of the
    demo's math and code families, for the env's ``math`` and ``code`` task groups."""
    if cfg.anchor_coef <= 0:
        return None
    from offload_agents.grpo.experiment import DemoConfig
    from offload_agents.slm.skill import WorkedAnswers

    demo = DemoConfig()
    groups = {"math": demo.math_families, "code": demo.code_families}
    return WorkedAnswers(demo.skill(), groups, seed=cfg.seed)


def _resume(trainer: Any, out: Path, fresh: bool) -> None:
    """Continue from ``out/checkpoint.pt`` unless ``fresh``; the log keeps exactly the steps
    the checkpoint holds (a step logged after the last checkpoint is dropped, then redone)."""
    ck, log = out / CHECKPOINT, out / LOG
    if fresh or not ck.exists():
        log.unlink(missing_ok=True)
        return
    trainer.load_checkpoint(ck)
    log.write_text("".join(json.dumps(r) + "\n" for r in trainer.history), encoding="utf-8")
    print(f"resuming from {ck} at step {trainer.step_count}", file=sys.stderr)


def _cmd_train(args: argparse.Namespace) -> int:
    from offload_agents.grpo import GRPOConfig, GRPOTrainer

    cfg = config_from_flags(GRPOConfig(), args, args.config_fields)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = _model(args)
    trainer = GRPOTrainer(model, tokenizer, cfg, log_path=out / LOG,
                          tensorboard_dir=args.tensorboard, anchor=_anchor(cfg))  # fmt: skip
    try:
        _resume(trainer, out, args.fresh)
        while trainer.step_count < args.steps:
            trainer.train(min(args.checkpoint_every, args.steps - trainer.step_count),
                          progress=not args.quiet)  # fmt: skip
            trainer.save_checkpoint(out / CHECKPOINT)
    finally:
        trainer.close()
    model.save_pretrained(out / MODEL)
    tokenizer.save_pretrained(out / MODEL)
    last = trainer.history[-1] if trainer.history else {}
    summary = {"config": {"algorithm": cfg.algorithm, "env_id": cfg.env_id, "steps": args.steps},
               "final": {k: last.get(k) for k in ("reward", "accuracy", "cloud_requests",
                                                   "cloud_usage", "lambda")}}  # fmt: skip
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    print(f"wrote {out / LOG}, {out / CHECKPOINT}, {out / MODEL}, {out / SUMMARY}")
    return 0


def register(sub: Any) -> None:
    from offload_agents.grpo import GRPOConfig

    p = sub.add_parser("train", help="train the local LM with one GRPO-family algorithm on one "
                       "text-view env (checkpointed; a rerun resumes)")  # fmt: skip
    p.add_argument("--steps", type=_positive, default=24, help="training steps in all")
    p.add_argument("--checkpoint-every", type=_positive, default=4,
                   help="steps between checkpoints in --out")  # fmt: skip
    p.add_argument("--model", default=None, help="a Hugging Face causal LM folder "
                   "(default: the demo's skilled SLM)")  # fmt: skip
    add_cache_dir_arg(p, "the skilled SLM is")
    add_out_args(p)
    p.add_argument("--fresh", action="store_true",
                   help="ignore a checkpoint in --out and start over (by default a rerun "
                   "resumes from it)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(config_fields=add_config_flags(p, GRPOConfig), func=_cmd_train)
