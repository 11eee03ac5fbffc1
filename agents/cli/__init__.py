"""The ``offload-gym`` command line, above both packages (offload_gym never imports
offload_agents). One module per group of subcommands, each with a ``register(sub)``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from offload_agents.cli import evaluate, experiments, inspect_cmds, serve, stats_cmd, train
from offload_agents.cli._common import _Formatter, _SubParser, check_out_dir, default_cloud_cache


def build_parser() -> argparse.ArgumentParser:
    from offload_gym import __version__

    parser = argparse.ArgumentParser(
        prog="offload-gym",
        description="Environments for cloud-edge language models: offloading under a budget.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_SubParser)  # fmt: skip
    for module in (inspect_cmds, evaluate, train, experiments, serve, stats_cmd):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Mistakes end in one ``error:`` line and exit code 2, Ctrl-C in exit
    code 130 after what had finished was written (each command keeps its own results).
    ``OFFLOAD_GYM_TRACEBACK=1`` re-raises errors with their traceback."""
    from offload_gym.models.base import CloudError

    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "out", None) is not None:
            check_out_dir(args.out, overwrite=args.overwrite)
        return int(args.func(args))
    except KeyboardInterrupt:
        _close_bars()
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, CloudError) as exc:
        if os.environ.get("OFFLOAD_GYM_TRACEBACK"):
            raise
        _close_bars()
        print(f"error: {exc} (OFFLOAD_GYM_TRACEBACK=1 shows where)", file=sys.stderr)
        return 2


def _close_bars() -> None:
    """Close the progress bars still open when a command stops, so that its last line (the
    error, or "interrupted") starts a line of its own instead of running into a bar's line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["build_parser", "check_out_dir", "default_cloud_cache", "main"]
