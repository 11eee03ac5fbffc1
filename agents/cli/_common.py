"""What the subcommands share: argument types, the help formatter, the output-directory check
and the model-backend flags."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def _number_in(kind: type, low: float, high: float, expected: str) -> Any:
    """An argparse type: ``kind(text)`` within ``[low, high]``, else "expected ..., got ..."."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_fraction = _number_in(float, 0.0, 1.0, "a number in [0, 1]")
_positive = _number_in(int, 1, float("inf"), "a positive integer")
_non_negative = _number_in(int, 0, float("inf"), "an integer >= 0")
_port = _number_in(int, 0, 65535, "a port number 0-65535")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def add_out_args(p: argparse.ArgumentParser, *, tensorboard: bool = True) -> None:
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an --out that already holds results")  # fmt: skip
    if not tensorboard:
        return
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="TensorBoard log directory for training (the trainer's lambda, "
                   "requests, reward and accuracy per step; SB3's own logs); needs "
                   "tensorboard")  # fmt: skip


RESULT_FILES = ("results.json", "results.md")


CACHE_DIR = "~/.cache/offload-gym"


def add_cache_dir_arg(p: argparse.ArgumentParser, what: str) -> None:
    """``--cache-dir``: where the models a command builds once (``what``) are cached."""
    p.add_argument("--cache-dir", default=CACHE_DIR, help=f"where {what} cached")


def check_out_dir(out: str | Path, *, overwrite: bool) -> Path:
    """``out`` as a Path if results may be written there, else a ValueError that says why: a file
    in its place, or a directory that already holds results (unless ``overwrite``)."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {out} is a file; expected a directory (new or empty)")
    if not overwrite and _interrupted_config(path) is not None:
        return path  # results of an interrupted run: the command resumes it
    if not overwrite and any((path / name).exists() for name in RESULT_FILES):
        raise ValueError(
            f"--out {out} already holds results; pass --overwrite to replace them or choose "
            "another directory"
        )
    return path


def _interrupted_config(path: Path) -> dict[str, Any] | None:
    """The config of an interrupted run's results in ``path`` (None when there is none)."""
    try:
        config = json.loads((path / "results.json").read_text(encoding="utf-8"))["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return config if isinstance(config, dict) and config.get("interrupted") else None


class _SubParser(argparse.ArgumentParser):
    """A subcommand's parser: its own usage on a mistake (a typo in a subcommand's flag
    otherwise shows the top-level usage), and every flag's default in ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        ns, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return ns, extras


def default_cloud_cache() -> Path:
    """Where a network cloud's answers are cached by default: ``offload-gym/cloud-cache.sqlite``
    in the user cache directory (``$XDG_CACHE_HOME``, else ``~/.cache``)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    return root / "offload-gym" / "cloud-cache.sqlite"


def backend_kwargs(args: argparse.Namespace, *, router: bool) -> dict[str, Any]:
    """Env arguments for the models chosen by --local/--cloud/... (nothing for the defaults)."""
    from offload_gym.models.backends import make_cloud, make_local

    kwargs: dict[str, Any] = {"cloud_failure": args.cloud_failure}
    if args.ledger is not None:
        kwargs["ledger_path"] = args.ledger
    if args.no_counterfactuals:
        if not router:
            raise ValueError("--no-counterfactuals applies to the router view (the text view "
                             "asks the cloud only when the response does)")  # fmt: skip
        kwargs["counterfactuals"] = False
    if args.local != "simulated":
        if not router:
            raise ValueError("--local applies to the router view (in the text view the agent "
                             "is the local model)")  # fmt: skip
        local_extra = {} if args.max_new_tokens is None else {"max_new_tokens": args.max_new_tokens}
        kwargs["local_model"] = make_local(args.local, **local_extra)
    cache = args.cloud_cache
    if args.cloud == "openai" and cache is None and not args.no_cloud_cache:
        cache = str(default_cloud_cache())  # a network cloud: a rerun pays nothing twice
    if args.cloud != "simulated" or cache is not None:
        extra: dict[str, Any] = {}
        if args.cloud == "openai":
            extra = {"send_task": True if args.cloud_send_task else "auto",
                     "timeout": args.cloud_timeout,
                     "max_retries": args.cloud_retries}  # fmt: skip
            if args.max_new_tokens is not None:
                extra["max_tokens"] = args.max_new_tokens
        elif args.cloud != "simulated" and args.max_new_tokens is not None:
            extra["max_new_tokens"] = args.max_new_tokens
        kwargs["cloud_model"] = make_cloud(args.cloud, url=args.cloud_url,
                                           model=args.cloud_model, cache=cache,
                                           **extra)  # fmt: skip
        if cache is not None and args.cloud_cache is None and not getattr(args, "quiet", False):
            print(f"caching cloud answers in {cache} (--no-cloud-cache turns this off)",
                  file=sys.stderr)  # fmt: skip
    return kwargs


def add_backend_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models (default: the simulated ones)")
    g.add_argument(
        "--local",
        default="simulated",
        help="router view's local model: 'simulated' or a Hugging Face model path",
    )
    g.add_argument(
        "--cloud",
        default="simulated",
        help="'simulated', 'openai' (any OpenAI-compatible endpoint, see "
        "--cloud-url) or a Hugging Face model path",
    )
    g.add_argument(
        "--cloud-url",
        default=None,
        help="API root of the OpenAI-compatible endpoint, e.g. "
        "http://127.0.0.1:8000/v1 (key from OPENAI_API_KEY)",
    )
    g.add_argument("--cloud-model", default=None, help="model name served at --cloud-url")
    g.add_argument(
        "--cloud-cache",
        default=None,
        help="SQLite file caching cloud answers (a rerun pays nothing twice; default for "
        "--cloud openai: offload-gym/cloud-cache.sqlite in the user cache directory)",
    )
    g.add_argument("--no-cloud-cache", action="store_true",
                   help="do not cache a network cloud's answers on disk")  # fmt: skip
    g.add_argument("--max-new-tokens", type=_positive, default=None,
                   help="longest answer of a Hugging Face or OpenAI-compatible model (default: "
                   "256 local, 512 cloud; always capped to what fits the model's context "
                   "window)")  # fmt: skip
    g.add_argument("--cloud-timeout", type=float, default=60.0, help="seconds per call")
    g.add_argument("--cloud-retries", type=int, default=3, help="retries per call")
    g.add_argument(
        "--cloud-failure",
        choices=("raise", "local"),
        default="raise",
        help="after the retries: stop with the error, or count a failed offload",
    )
    g.add_argument(
        "--cloud-send-task",
        action="store_true",
        help="always send the task with each request (default: only to a server that asks for "
        "it in /v1/models, as `offload-gym serve --model simulated` does)",
    )
    g.add_argument("--ledger", default=None, help="JSONL file of every budget-ledger entry")
    g.add_argument("--no-counterfactuals", action="store_true",
                   help="router view: do not ask the cloud for tasks answered locally")  # fmt: skip
