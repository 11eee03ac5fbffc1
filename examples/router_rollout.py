"""Roll out three hand-written routers on OffloadMathRouter-v0 at the same budget.

    python examples/router_rollout.py --episodes 5 --budget 0.3

- ``local``: never offload.
- ``random``: offload each task with probability tau (what a budget allows on average).
- ``confidence``: offload when the local model's confidence is below 0.5.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import offload_gym  # noqa: F401  (registers the ids)


def run(policy: str, *, budget: float, episodes: int, num_tasks: int, seed: int) -> dict:
    env = gym.make("OffloadMathRouter-v0", budget=budget, num_tasks=num_tasks)
    rng = np.random.default_rng(seed)
    correct = offloaded = steps = 0
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        terminated = False
        while not terminated:
            if policy == "local":
                action = 0
            elif policy == "random":
                action = int(rng.random() < budget)
            else:
                action = int(obs[3] < 0.5)  # obs[3] is local_confidence
            obs, reward, terminated, truncated, info = env.step(action)
            correct += info["correct"]
            offloaded += info["offloaded"]
            steps += 1
    return {"policy": policy, "accuracy": correct / steps, "cloud_usage": offloaded / steps}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=0.3)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--num-tasks", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = [
        run(p, budget=args.budget, episodes=args.episodes, num_tasks=args.num_tasks,
            seed=args.seed)
        for p in ("local", "random", "confidence")
    ]  # fmt: skip
    print(f"{'policy':<12}{'accuracy':>10}{'cloud usage':>14}")
    for r in rows:
        print(f"{r['policy']:<12}{r['accuracy']:>10.3f}{r['cloud_usage']:>14.3f}")
    return rows


if __name__ == "__main__":
    main()
