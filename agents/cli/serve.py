"""``offload-gym serve``: a cloud model behind an OpenAI-compatible API."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from offload_agents.cli._common import _port, _positive


def _cmd_serve(args: argparse.Namespace) -> int:
    from offload_gym.envs import list_envs
    from offload_gym.models.backends import make_cloud
    from offload_gym.serve import API_KEY_ENV, CloudServer, episode_tasks_of

    try:
        cloud = (make_cloud("simulated", seed=args.seed) if args.model == "simulated"
                 else make_cloud(args.model, device=args.device))  # fmt: skip
        known: list[Any] = []
        note = ""
        if args.recognise_seeds and getattr(cloud, "needs_task", False):
            registered = list_envs()
            ids = args.recognise.split(",") if args.recognise else registered
            unknown = [i for i in ids if i not in registered]
            if unknown:
                raise ValueError(f"unknown environment id(s) {unknown}; see offload-gym list")
            known, skipped = episode_tasks_of(ids, range(args.recognise_seeds))
            made = len(ids) - len(skipped)
            note = (f"recognising {len(known)} task prompts: the episodes of {made} environment"
                    f" ids under seeds 0-{args.recognise_seeds - 1}"
                    + (f" (skipped, they need arguments: {', '.join(skipped)})" if skipped
                       else ""))  # fmt: skip
        key = args.api_key or os.environ.get(API_KEY_ENV) or None
        try:
            server = CloudServer(cloud, host=args.host, port=args.port,
                                 model_name=args.model_name, verbose=not args.quiet,
                                 known_tasks=known, api_key=key,
                                 max_body_bytes=args.max_body_bytes,
                                 read_timeout=args.read_timeout,
                                 max_connections=args.max_connections)  # fmt: skip
        except OSError as exc:  # the address: a bad host name, a port in use
            raise ValueError(f"cannot serve on --host {args.host!r} --port {args.port}: "
                             f"{exc}") from None  # fmt: skip
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    guard = "an API key required" if key else f"no API key (set --api-key or {API_KEY_ENV})"
    print(f"serving {args.model} as {args.model_name!r} on {server.url} ({guard}; Ctrl-C "
          "stops)", flush=True)  # fmt: skip
    if note:
        print(note, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
    finally:
        server.stop()
    return 0


def register(sub: Any) -> None:
    p_serve = sub.add_parser(
        "serve", help="serve a cloud model over an OpenAI-compatible chat-completions API"
    )
    p_serve.add_argument("--model", default="simulated",
                         help="'simulated' or a Hugging Face model path")  # fmt: skip
    p_serve.add_argument("--host", default="127.0.0.1", help="interface to bind")
    p_serve.add_argument("--port", type=_port, default=8000, help="port (0: any free one)")
    p_serve.add_argument("--model-name", default="offload-gym", help="the served model's name")
    p_serve.add_argument("--seed", type=int, default=0, help="seed of the simulated cloud")
    p_serve.add_argument("--device", default="auto", help="device of a Hugging Face model")
    p_serve.add_argument("--quiet", action="store_true", help="do not log requests")
    p_serve.add_argument("--recognise", default="", metavar="ID,...",
                         help="environment ids whose episode prompts a plain client's request is "
                              "recognised as (default: every registered id)")  # fmt: skip
    p_serve.add_argument("--recognise-seeds", type=int, default=10, metavar="N",
                         help="index those ids' episodes under seeds 0..N-1 (0: recognise "
                              "nothing)")  # fmt: skip
    p_serve.add_argument("--api-key", default=None,
                         help="require 'Authorization: Bearer KEY' (default: the "
                              "OFFLOAD_GYM_API_KEY environment variable; unset: no "
                              "key)")  # fmt: skip
    p_serve.add_argument("--max-body-bytes", type=_positive, default=1 << 20,
                         help="largest request body (larger: 413)")  # fmt: skip
    p_serve.add_argument("--read-timeout", type=float, default=30.0,
                         help="seconds a client may take to send a request (and stay "
                              "idle)")  # fmt: skip
    p_serve.add_argument("--max-connections", type=_positive, default=64,
                         help="connections served at once (more: 503)")  # fmt: skip
    p_serve.set_defaults(func=_cmd_serve)
