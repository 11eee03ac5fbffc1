"""``offload-gym list`` and ``offload-gym rollout``: what is registered, and a simple policy
run on an environment."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import gymnasium as gym
import numpy as np

from offload_agents.cli._common import _fraction, _positive, add_backend_args, backend_kwargs
from offload_gym.envs import offload_env
from offload_gym.envs.registration import list_envs
from offload_gym.protocol import HELP_REQUEST
from offload_gym.tasks.registry import get_generator_class, list_generators

POLICIES = ("random", "local", "cloud")


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
        return f"I am not sure. {HELP_REQUEST}"
    return f"My guess: the answer is <answer>{int(rng.integers(-20, 100))}</answer>."


def _cmd_rollout(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    if args.env not in list_envs():
        print(f"error: unknown env {args.env!r}; registered: {list_envs()}", file=sys.stderr)
        return 2
    kwargs: dict[str, Any] = {"budget": args.budget, "num_tasks": args.num_tasks}
    try:
        kwargs.update(backend_kwargs(args, router=args.env.endswith("Router-v0")))
        env = gym.make(args.env, render_mode="ansi" if args.render else None, **kwargs)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    router = isinstance(env.action_space, gym.spaces.Discrete)
    rng = np.random.default_rng(args.seed)
    env.action_space.seed(args.seed)
    totals = {"steps": 0, "correct": 0, "offloaded": 0, "cost": 0.0, "refused": 0}
    bar = tqdm(total=args.episodes * offload_env(env).num_tasks, desc="steps", disable=args.render)
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


def register(sub: Any) -> None:
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
    add_backend_args(p_roll)
    p_roll.set_defaults(func=_cmd_rollout)
