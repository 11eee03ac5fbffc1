"""``offload-gym evaluate`` and ``offload-gym compare``: routing agents on a router-view
environment, resumable, with reports and plots."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym

from offload_agents.cli._common import (
    _fraction,
    _interrupted_config,
    _positive,
    add_backend_args,
    add_out_args,
    backend_kwargs,
)
from offload_gym.envs import offload_env
from offload_gym.envs.registration import list_envs

DEFAULT_COMPARE = "local,cloud,random,threshold,router,pacer,ppo,oracle"


def _agent_kwargs(name: str, args: argparse.Namespace) -> dict[str, Any]:
    if name in ("ppo", "dqn", "maskable-ppo"):
        kwargs: dict[str, Any] = {"total_timesteps": args.timesteps,
                                  "progress_bar": not args.quiet}  # fmt: skip
        if args.tensorboard is not None:
            kwargs["algo_kwargs"] = {"tensorboard_log": args.tensorboard}
        return kwargs
    return {}


def _probe_env(args: argparse.Namespace) -> tuple[dict[str, Any], tuple[int, ...]] | None:
    """The env arguments and the stream's switch points, or None after printing why the env
    cannot be used (unknown id, bad arguments, a text-view id)."""
    if args.env not in list_envs():
        print(f"error: unknown env {args.env!r}; registered: {list_envs()}", file=sys.stderr)
        return None
    env_kwargs: dict[str, Any] = {"budget": args.budget, "num_tasks": args.num_tasks}
    try:
        env_kwargs.update(backend_kwargs(args, router=True))
        probe = gym.make(args.env, **env_kwargs)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if not isinstance(probe.action_space, gym.spaces.Discrete):
        print(
            f"error: {args.env} is a text-view environment (the agent is a language model); the "
            "routing baselines act on the router view: use an id ending in Router-v0",
            file=sys.stderr,
        )
        return None
    return env_kwargs, tuple(offload_env(probe).stream.switch_points)


RUN_FILE = "run.json"
"""The settings of a run, written to ``--out`` before its first step: a resumed run must match."""


def _check_same_run(out: Path, config: dict[str, Any]) -> None:
    """Refuse to resume the run in ``out`` (its logs, kept even by a kill -9) when its settings
    differ from ``config`` (budget, env, sizes, seeds, models), or when its logs have no saved
    settings to compare with; agents may differ (each has its own log)."""
    saved = out / RUN_FILE
    if saved.exists():
        earlier = json.loads(saved.read_text(encoding="utf-8"))
    else:
        earlier = _interrupted_config(out)
        if earlier is None:
            if any((out / "logs").glob("*.jsonl")):
                raise ValueError(f"--out {out} holds logs of a run whose settings were not saved "
                                 f"({RUN_FILE}); pass --fresh to start over")  # fmt: skip
            return
    differ = {k: (earlier.get(k), v) for k, v in config.items()
              if k != "agents" and earlier.get(k) != v}  # fmt: skip
    if differ:
        names = ", ".join(f"{k}: {a!r} then, {b!r} now" for k, (a, b) in differ.items())
        raise ValueError(f"the run in --out {out} used other settings ({names}); pass --fresh "
                         "to start over")  # fmt: skip


def _models(args: argparse.Namespace) -> dict[str, Any]:
    """The model flags of a run (part of what a resumed run must match)."""
    keys = ("local", "cloud", "cloud_model", "cloud_url", "max_new_tokens", "no_counterfactuals",
            "cloud_send_task")  # fmt: skip
    return {k: getattr(args, k, None) for k in keys}


def _run_agents(args: argparse.Namespace, names: list[str], primary: str | None = None) -> int:
    from offload_agents import evaluate, list_agents, make_agent
    from offload_agents.report import results_table, write_report

    valid = list_agents()
    unknown = [n for n in names if n not in valid]
    if unknown:
        print(f"error: unknown agent(s) {unknown}; valid agents: {valid}", file=sys.stderr)
        return 2
    probed = _probe_env(args)
    if probed is None:
        return 2
    env_kwargs, switch_points = probed
    out = Path(args.out)
    results = {}
    config = {
        "env": args.env,
        "budget": args.budget,
        "num_tasks": args.num_tasks,
        "episodes": args.episodes,
        "seeds": args.seeds,
        "agents": names,
        "models": _models(args),
    }
    resume = not (args.fresh or args.overwrite)
    if resume:
        _check_same_run(out, config)
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    try:
        for name in names:
            agent = make_agent(name, **_agent_kwargs(name, args))
            results[name] = evaluate(
                agent,
                args.env,
                episodes=args.episodes,
                seeds=list(range(args.seeds)),
                env_kwargs=env_kwargs,
                log_path=out / "logs" / f"{name}.jsonl",
                progress=not args.quiet,
                resume=resume,
            )
            if not args.quiet:
                m = results[name].metrics
                print(f"{name}: accuracy {m['accuracy']:.3f}, cloud usage {m['cloud_usage']:.3f}",
                      file=sys.stderr)  # fmt: skip
    except KeyboardInterrupt:
        if results:  # keep what finished
            config["interrupted"] = True
            config["finished_agents"] = list(results)
            paths = write_report(results, out, config, switch_points=switch_points,
                                 primary=primary if primary in results else None)  # fmt: skip
            print(f"interrupted; kept the results of {list(results)} in {paths['json']}",
                  file=sys.stderr)  # fmt: skip
        raise
    paths = write_report(results, out, config, switch_points=switch_points, primary=primary)
    print(results_table(results))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    return _run_agents(args, [args.agent])


def _cmd_compare(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.agents.split(",")]
    if not any(names):
        print("error: --agents names no agent", file=sys.stderr)
        return 2
    if not all(names):
        print(f"error: --agents {args.agents!r} has an empty name (two commas, or a comma at "
              "either end)", file=sys.stderr)  # fmt: skip
        return 2
    primary = args.primary or names[0]
    if primary not in names:
        print(f"error: --primary {primary!r} is not one of --agents {names}", file=sys.stderr)
        return 2
    return _run_agents(args, names, primary)


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default="OffloadMathRouter-v0", help="router-view environment id")
    p.add_argument("--budget", type=_fraction, default=0.3, help="tau, fraction of tasks")
    p.add_argument("--episodes", type=_positive, default=5, help="evaluation episodes per seed")
    p.add_argument("--seeds", type=_positive, default=3, help="number of seeds (0, 1, ...)")
    p.add_argument("--num-tasks", type=_positive, default=100, help="tasks per episode")
    p.add_argument("--timesteps", type=_positive, default=30_000,
                   help="training steps of the SB3 agents")  # fmt: skip
    add_out_args(p)
    p.add_argument("--fresh", action="store_true",
                   help="ignore the logs of an interrupted run in --out and start over (by "
                   "default its finished seeds are reused)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_backend_args(p)


def register(sub: Any) -> None:
    p_eval = sub.add_parser("evaluate", help="evaluate one agent; write results and plots")
    p_eval.add_argument("--agent", required=True, help="agent name (see `offload-gym list`)")
    _add_eval_args(p_eval)
    p_eval.set_defaults(func=_cmd_evaluate)
    p_cmp = sub.add_parser("compare", help="evaluate several agents on the same stream")
    p_cmp.add_argument(
        "--agents",
        default=DEFAULT_COMPARE,
        help=f"comma-separated agent names (default: {DEFAULT_COMPARE})",
    )
    p_cmp.add_argument(
        "--primary",
        default=None,
        help="the agent compared with every other in the report (paired "
        "differences, 95%% CIs, McNemar p, mde80; default: the first of --agents)",
    )
    _add_eval_args(p_cmp)
    p_cmp.set_defaults(func=_cmd_compare)
