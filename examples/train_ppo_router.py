"""Train PPO on OffloadMathRouter-v0 and compare it with random offloading at the same budget.

    python examples/train_ppo_router.py                # about a minute on a laptop CPU
    python examples/train_ppo_router.py --timesteps 2000 --episodes 1   # a smoke run

PPO sees the task's features, the local model's confidence and the budget state; the hard budget
caps its cloud calls at tau, so it must learn which tasks deserve them.
"""

from __future__ import annotations

import argparse

from offload_agents import SB3Agent, evaluate


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=0.3)
    parser.add_argument("--timesteps", type=int, default=30_000)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    env_kwargs = {"budget": args.budget}
    ppo = SB3Agent("ppo", total_timesteps=args.timesteps, progress_bar=False)
    rows = {
        "ppo": evaluate(ppo, "OffloadMathRouter-v0", episodes=args.episodes, seeds=(args.seed,),
                        env_kwargs=env_kwargs, progress=False).metrics,
        "random": evaluate("random", "OffloadMathRouter-v0", episodes=args.episodes,
                           seeds=(args.seed,), env_kwargs=env_kwargs, progress=False).metrics,
    }  # fmt: skip
    for name, m in rows.items():
        print(f"{name:<8} accuracy {m['accuracy']:.3f}   cloud usage {m['cloud_usage']:.3f}")
    return rows


if __name__ == "__main__":
    main()
