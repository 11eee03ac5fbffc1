"""The ``offload-gym`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from offload_gym._configflags import add_config_flags, config_from_flags
from offload_gym.envs.config import DEFAULT_OFFLOAD_MARKER
from offload_gym.envs.registration import list_envs
from offload_gym.tasks.registry import get_generator_class, list_generators

POLICIES = ("random", "local", "cloud")
DEFAULT_COMPARE = "local,cloud,random,threshold,router,pacer,ppo,oracle"


def _cmd_list(args: argparse.Namespace) -> int:
    from offload_agents import list_agents

    envs = list_envs()
    agents = list_agents()
    families = {n: get_generator_class(n).domain for n in list_generators()}
    if args.json:
        print(json.dumps({"envs": envs, "task_families": families, "agents": agents}, indent=2))
        return 0
    print("Environments:")
    for env_id in envs:
        spec = gym.spec(env_id)
        view = "router view" if str(spec.entry_point).endswith("RouterEnv") else "text view"
        print(f"  {env_id:<24} {view}, domain {spec.kwargs.get('domain')}")
    print("Task families:")
    for name, domain in families.items():
        print(f"  {name:<24} {domain}")
    print("Agents (router view):")
    for name in agents:
        print(f"  {name}")
    return 0


def _text_action(policy: str, rng: np.random.Generator) -> str:
    if policy == "cloud" or (policy == "random" and rng.random() < 0.5):
        return f"I am not sure. {DEFAULT_OFFLOAD_MARKER} I need external assistance </unknown>"
    return f"My guess: the answer is <answer>{int(rng.integers(-20, 100))}</answer>."


def _cmd_rollout(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    if args.env not in list_envs():
        print(f"error: unknown env {args.env!r}; registered: {list_envs()}", file=sys.stderr)
        return 2
    kwargs: dict[str, Any] = {"budget": args.budget, "num_tasks": args.num_tasks}
    try:
        kwargs.update(_backend_kwargs(args, router=args.env.endswith("Router-v0")))
        env = gym.make(args.env, render_mode="ansi" if args.render else None, **kwargs)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    router = isinstance(env.action_space, gym.spaces.Discrete)
    rng = np.random.default_rng(args.seed)
    env.action_space.seed(args.seed)
    totals = {"steps": 0, "correct": 0, "offloaded": 0, "cost": 0.0, "refused": 0}
    bar = tqdm(total=args.episodes * env.unwrapped.num_tasks, desc="steps", disable=args.render)
    for episode in range(args.episodes):
        env.reset(seed=args.seed + episode)
        done = False
        while not done:
            if router:
                action: Any = {"local": 0, "cloud": 1}.get(args.policy)
                if action is None:
                    action = int(env.action_space.sample())
            else:
                action = _text_action(args.policy, rng)
            _, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            totals["steps"] += 1
            totals["correct"] += int(info["correct"])
            totals["offloaded"] += int(info["offloaded"])
            totals["refused"] += int(info["offload_refused"])
            totals["cost"] += info["cost"]
            bar.update(1)
            if args.render:
                print(env.render())
    bar.close()
    n = max(1, totals["steps"])
    summary = {
        "env": args.env,
        "policy": args.policy,
        "episodes": args.episodes,
        "steps": totals["steps"],
        "accuracy": totals["correct"] / n,
        "cloud_usage": totals["offloaded"] / n,
        "budget": args.budget,
        "refused_offloads": totals["refused"],
        "cost": round(totals["cost"], 6),
    }
    print(json.dumps(summary, indent=2))
    return 0


def default_cloud_cache() -> Path:
    """Where a network cloud's answers are cached by default: ``offload-gym/cloud-cache.sqlite``
    in the user cache directory (``$XDG_CACHE_HOME``, else ``~/.cache``)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    return root / "offload-gym" / "cloud-cache.sqlite"


def _backend_kwargs(args: argparse.Namespace, *, router: bool) -> dict[str, Any]:
    """Env arguments for the models chosen by --local/--cloud/... (nothing for the defaults)."""
    from offload_gym.models.backends import make_cloud, make_local

    kwargs: dict[str, Any] = {"cloud_failure": args.cloud_failure}
    if args.ledger is not None:
        kwargs["ledger_path"] = args.ledger
    if args.no_counterfactuals:
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


def _add_backend_args(p: argparse.ArgumentParser) -> None:
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


def _cmd_serve(args: argparse.Namespace) -> int:
    from offload_gym.models.backends import make_cloud
    from offload_gym.serve import CloudServer

    try:
        cloud = (make_cloud("simulated", seed=args.seed) if args.model == "simulated"
                 else make_cloud(args.model, device=args.device))  # fmt: skip
        server = CloudServer(cloud, host=args.host, port=args.port, model_name=args.model_name,
                             verbose=not args.quiet)  # fmt: skip
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"serving {args.model} as {args.model_name!r} on {server.url} (Ctrl-C stops)",
          flush=True)  # fmt: skip
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _agent_kwargs(name: str, args: argparse.Namespace) -> dict[str, Any]:
    if name in ("ppo", "dqn", "maskable-ppo"):
        kwargs: dict[str, Any] = {"total_timesteps": args.timesteps,
                                  "progress_bar": not args.quiet}  # fmt: skip
        if args.tensorboard is not None:
            kwargs["algo_kwargs"] = {"tensorboard_log": args.tensorboard}
        return kwargs
    return {}


def _run_agents(args: argparse.Namespace, names: list[str]) -> int:
    from offload_agents import evaluate, list_agents, make_agent
    from offload_agents.report import results_table, write_report

    valid = list_agents()
    unknown = [n for n in names if n not in valid]
    if unknown:
        print(f"error: unknown agent(s) {unknown}; valid agents: {valid}", file=sys.stderr)
        return 2
    if args.env not in list_envs():
        print(f"error: unknown env {args.env!r}; registered: {list_envs()}", file=sys.stderr)
        return 2
    env_kwargs: dict[str, Any] = {"budget": args.budget, "num_tasks": args.num_tasks}
    try:
        env_kwargs.update(_backend_kwargs(args, router=True))
        probe = gym.make(args.env, **env_kwargs)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not isinstance(probe.action_space, gym.spaces.Discrete):
        print(
            f"error: {args.env} is a text-view environment (the agent is a language model); the "
            "routing baselines act on the router view: use an id ending in Router-v0",
            file=sys.stderr,
        )
        return 2
    switch_points = probe.unwrapped.stream.switch_points
    out = Path(args.out)
    results = {}
    config = {
        "env": args.env,
        "budget": args.budget,
        "num_tasks": args.num_tasks,
        "episodes": args.episodes,
        "seeds": args.seeds,
        "agents": names,
    }
    resume = not (args.fresh or args.overwrite)
    earlier = _interrupted_config(out) if resume else None
    if earlier is not None:
        differ = {k: (earlier.get(k), v) for k, v in config.items()
                  if k != "agents" and earlier.get(k) != v}  # fmt: skip
        if differ:
            raise ValueError(f"the interrupted run in --out {args.out} used other settings "
                             f"{differ}; pass --fresh to start over")  # fmt: skip
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
            paths = write_report(results, out, config, switch_points=switch_points)
            print(f"interrupted; kept the results of {list(results)} in {paths['json']}",
                  file=sys.stderr)  # fmt: skip
        raise
    paths = write_report(results, out, config, switch_points=switch_points)
    print(results_table(results))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    return _run_agents(args, [args.agent])


def _cmd_compare(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.agents.split(",") if n.strip()]
    if not names:
        print("error: --agents names no agent", file=sys.stderr)
        return 2
    return _run_agents(args, names)


def _cmd_demo(args: argparse.Namespace) -> int:
    from offload_agents.grpo.experiment import DemoConfig, run_demo, write_demo_report

    base = DemoConfig.quick() if args.quick else DemoConfig()
    try:
        cfg = config_from_flags(base, args, args.config_fields)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cache = Path(args.cache_dir).expanduser()
    result = run_demo(args.out, cfg, cache_dir=cache, progress=not args.quiet,
                      tensorboard_dir=args.tensorboard)  # fmt: skip
    paths = write_demo_report(result, args.out)
    print(Path(paths["md"]).read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _cmd_coplms(args: argparse.Namespace) -> int:
    from offload_agents.coplms import METHODS, CoPLMsConfig, run_experiment, write_report

    methods = tuple(m for m in args.methods.split(",") if m)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        print(f"error: unknown method(s) {unknown}; valid: {list(METHODS)}", file=sys.stderr)
        return 2
    cfg = CoPLMsConfig.quick() if args.quick else CoPLMsConfig()
    seeds = tuple(range(args.seeds if args.seeds is not None else (1 if args.quick else 3)))
    result = run_experiment(cfg, seeds, methods=methods, progress=not args.quiet)
    paths = write_report(result, args.out)
    print(paths["md"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default="OffloadMathRouter-v0", help="router-view environment id")
    p.add_argument("--budget", type=_fraction, default=0.3, help="tau, fraction of tasks")
    p.add_argument("--episodes", type=_positive, default=5, help="evaluation episodes per seed")
    p.add_argument("--seeds", type=_positive, default=3, help="number of seeds (0, 1, ...)")
    p.add_argument("--num-tasks", type=_positive, default=100, help="tasks per episode")
    p.add_argument("--timesteps", type=_positive, default=30_000,
                   help="training steps of the SB3 agents")  # fmt: skip
    _add_out_args(p)
    p.add_argument("--fresh", action="store_true",
                   help="ignore the logs of an interrupted run in --out and start over (by "
                   "default its finished seeds are reused)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_backend_args(p)


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
_port = _number_in(int, 0, 65535, "a port number 0-65535")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def _add_out_args(p: argparse.ArgumentParser, *, tensorboard: bool = True) -> None:
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
    p_list = sub.add_parser("list", help="list the environments, task families and agents")
    p_list.add_argument("--json", action="store_true", help="print JSON")
    p_list.set_defaults(func=_cmd_list)
    p_roll = sub.add_parser(
        "rollout", help="run a simple policy on an environment and print a summary"
    )
    p_roll.add_argument("--env", default="OffloadMathRouter-v0", help="environment id")
    p_roll.add_argument("--policy", choices=POLICIES, default="random", help="who answers")
    p_roll.add_argument("--budget", type=_fraction, default=0.3, help="tau, fraction of tasks")
    p_roll.add_argument("--num-tasks", type=_positive, default=20, help="tasks per episode")
    p_roll.add_argument("--episodes", type=_positive, default=1, help="episodes to run")
    p_roll.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    p_roll.add_argument("--render", action="store_true", help="print every step")
    _add_backend_args(p_roll)
    p_roll.set_defaults(func=_cmd_rollout)
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
    _add_eval_args(p_cmp)
    p_cmp.set_defaults(func=_cmd_compare)
    p_demo = sub.add_parser(
        "demo", help="the math-to-code experiment: DA-GRPO and baselines on a tiny local LM"
    )
    p_demo.add_argument(
        "--quick",
        action="store_true",
        help="the few-minute CPU version (its own defaults for every field)",
    )
    _add_out_args(p_demo)
    p_demo.add_argument("--cache-dir", default="~/.cache/offload-gym",
                        help="where the warm-started SLM is cached")  # fmt: skip
    from offload_agents.grpo.experiment import DemoConfig

    p_demo.set_defaults(config_fields=add_config_flags(p_demo, DemoConfig))
    p_demo.add_argument("--quiet", action="store_true", help="no progress bars")
    p_demo.set_defaults(func=_cmd_demo)
    p_cop = sub.add_parser(
        "coplms", help="Co-PLMs: co-tune a server LLM and heterogeneous device SLMs via DPMs"
    )
    p_cop.add_argument("--quick", action="store_true", help="the 10-minute CPU version")
    _add_out_args(p_cop, tensorboard=False)
    p_cop.add_argument("--seeds", type=_positive, default=None,
                       help="number of seeds (default 3; 1 with --quick)")  # fmt: skip
    p_cop.add_argument("--methods", default="coplms,standalone,fedavg,oneway",
                       help="comma-separated methods")  # fmt: skip
    p_cop.add_argument("--quiet", action="store_true", help="no progress bars")
    p_cop.set_defaults(func=_cmd_coplms)
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
    p_serve.set_defaults(func=_cmd_serve)
    return parser


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
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, CloudError) as exc:
        if os.environ.get("OFFLOAD_GYM_TRACEBACK"):
            raise
        print(f"error: {exc} (OFFLOAD_GYM_TRACEBACK=1 shows where)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
