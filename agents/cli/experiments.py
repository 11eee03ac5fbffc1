"""``offload-gym demo`` (the main job: DA-GRPO and baselines on a tiny local LM) and
``offload-gym coplms``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from offload_agents.cli._common import _non_negative, _positive, add_cache_dir_arg, add_out_args
from offload_agents.cli._configflags import add_config_flags, config_from_flags


def _quiet_transformers() -> None:
    """The experiments draw their own bars (method, seed, phase): Hugging Face's "Loading
    weights" and "Writing model shards" bars for each tiny model are only noise there."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


SMOKE = ("> **Smoke run** (`{flag}`): a few minutes on a CPU to check that everything runs. Its "
         "numbers are not results: too few steps, seeds and tasks to decide anything.")  # fmt: skip


def _mark_smoke(md: Path, flag: str) -> None:
    """Say on the console and at the top of results.md that this was a smoke run."""
    banner = SMOKE.format(flag=flag)
    md.write_text(banner + "\n\n" + md.read_text(encoding="utf-8"), encoding="utf-8")
    print(banner.lstrip("> ").replace("**", ""), file=sys.stderr)


def _cmd_demo(args: argparse.Namespace) -> int:
    from offload_agents.grpo.experiment import DemoConfig, run_demo, write_demo_report

    _quiet_transformers()

    if args.quick and args.preset not in (None, "quick"):
        print(f"error: --quick is --preset quick; it cannot go with --preset {args.preset}",
              file=sys.stderr)  # fmt: skip
        return 2
    base = DemoConfig.preset("quick" if args.quick else args.preset or "main")
    cfg = config_from_flags(base, args, args.config_fields)
    cache = Path(args.cache_dir).expanduser()
    from offload_agents.grpo.seed_pool import auto_workers

    workers = args.workers or auto_workers(cfg.threads, len(cfg.seeds))
    result = run_demo(args.out, cfg, cache_dir=cache, progress=not args.quiet,
                      tensorboard_dir=args.tensorboard, workers=workers)  # fmt: skip
    paths = write_demo_report(result, args.out)
    if args.quick or args.preset == "quick":
        _mark_smoke(Path(paths["md"]), "--quick")
    print(Path(paths["md"]).read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _cmd_coplms(args: argparse.Namespace) -> int:
    from offload_agents.coplms import (
        DEFAULT_METHODS,
        METHODS,
        CoPLMsConfig,
        run_experiment,
        write_report,
    )

    default = METHODS if args.quick else DEFAULT_METHODS
    given = args.methods if args.methods is not None else ",".join(default)
    methods = tuple(m for m in given.split(",") if m)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        print(f"error: unknown method(s) {unknown}; valid: {list(METHODS)}", file=sys.stderr)
        return 2
    _quiet_transformers()
    base = CoPLMsConfig.quick() if args.quick else CoPLMsConfig()
    cfg = config_from_flags(base, args, args.config_fields)
    n = args.seeds if args.seeds is not None else (1 if args.quick else 5)
    seeds = tuple(range(args.first_seed, args.first_seed + n))
    result = run_experiment(cfg, seeds, methods=methods, progress=not args.quiet,
                            cache_dir=Path(args.cache_dir).expanduser(),
                            on_seed=lambda partial: write_report(partial, args.out),
                            workers=args.workers)  # fmt: skip
    paths = write_report(result, args.out)
    if args.quick:
        _mark_smoke(paths["md"], "--quick")
    print(paths["md"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def register(sub: Any) -> None:
    p_demo = sub.add_parser(
        "demo", help="the math-to-code experiment: DA-GRPO and baselines on a tiny local LM"
    )
    p_demo.add_argument(
        "--quick",
        action="store_true",
        help="the few-minute CPU version (its own defaults for every field; = --preset quick)",
    )
    p_demo.add_argument(
        "--preset",
        choices=("main", "quick", "paper"),
        default=None,
        help="main (default: the main job, about 30 minutes from a fresh install on 2 cores), "
        "quick (a few minutes), paper (3x the RL steps a group and 18 seeds, under 2 hours); "
        "flags given beside it override its fields",
    )
    add_out_args(p_demo)
    add_cache_dir_arg(p_demo, "the warm-started SLM is")
    from offload_agents.grpo.experiment import DemoConfig

    p_demo.set_defaults(config_fields=add_config_flags(p_demo, DemoConfig))
    p_demo.add_argument("--quiet", action="store_true", help="no progress bars")
    p_demo.add_argument("--workers", type=_non_negative, default=0,
                        help="run the seeds in this many processes of --threads torch threads "
                        "each (default 0: one per THREADS cores, at most one a seed); the "
                        "numbers depend on --threads, never on the workers")  # fmt: skip
    p_demo.set_defaults(func=_cmd_demo)
    p_cop = sub.add_parser(
        "coplms", help="Co-PLMs: co-tune a server LLM and heterogeneous device SLMs via DPMs"
    )
    p_cop.add_argument("--quick", action="store_true", help="the few-minute CPU version")
    add_out_args(p_cop, tensorboard=False)
    p_cop.add_argument("--seeds", type=_positive, default=None,
                       help="number of seeds (default 5, the power the primary comparison "
                       "needs; 1 with --quick)")  # fmt: skip
    p_cop.add_argument("--first-seed", type=_non_negative, default=0,
                       help="the first seed: the run uses seeds FIRST ... FIRST + seeds - 1 "
                       "(default 0; tune on seeds that are never evaluation seeds)")  # fmt: skip
    p_cop.add_argument("--methods", default=None,
                       help="comma-separated methods of coplms, standalone, fedavg, oneway, "
                       "server, fedmkt (default: coplms,standalone,server, what the primary "
                       "comparison and the server direction need, so the full run fits 30 "
                       "minutes; every method with --quick)")  # fmt: skip
    p_cop.add_argument("--quiet", action="store_true", help="no progress bars")
    p_cop.add_argument("--workers", type=_non_negative, default=0,
                       help="build the public checkpoints and run the (seed, method) jobs in "
                       "this many processes of --threads torch threads each (default 0: one "
                       "per THREADS cores; 1: in this process); the numbers depend on "
                       "--threads, never on the workers")  # fmt: skip
    from offload_agents.coplms import CoPLMsConfig

    # Model specs as ARCH:LAYERSxWIDTH[:HEADS], devices as DOMAIN=SPEC,... (their from_flag).
    add_cache_dir_arg(p_cop, "the public checkpoints are")
    fields = add_config_flags(p_cop, CoPLMsConfig, skip=("seed",))
    p_cop.set_defaults(func=_cmd_coplms, config_fields=fields)
