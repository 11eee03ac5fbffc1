"""Exercise 2 (solution): the dual update, and a Lagrangian router that learns the price of a
cloud call. Watch lambda settle where usage meets the budget."""

from __future__ import annotations

import gymnasium as gym

import offload_gym

CONFIDENCE = offload_gym.ROUTER_FEATURES.index("local_confidence")


def dual_update(lam: float, usage: float, tau: float, eta: float) -> float:
    """lambda <- max(0, lambda + eta (usage - tau))."""
    return max(0.0, lam + eta * (usage - tau))


def run(tau: float = 0.3, eta: float = 0.05, steps: int = 2000, seed: int = 0) -> dict:
    """Offload when the estimated gain (1 - confidence) exceeds lambda; the budget is soft, so
    only lambda holds usage near tau."""
    env = gym.make("OffloadMathRouter-v0", budget=tau, budget_mode="soft", num_tasks=100)
    obs, _ = env.reset(seed=seed)
    lam, trace, used = 0.5, [], []
    for _ in range(steps):
        action = int(1.0 - obs[CONFIDENCE] > lam)
        obs, _, done, _, info = env.step(action)
        lam = dual_update(lam, float(info["offloaded"]), tau, eta)
        trace.append(lam)
        used.append(info["offloaded"])
        if done:
            obs, _ = env.reset()
    half = len(used) // 2
    return {
        "lambda": trace,
        "lambda_second_half": sum(trace[half:]) / len(trace[half:]),
        "usage_second_half": sum(used[half:]) / len(used[half:]),
    }


if __name__ == "__main__":
    result = run()
    # The last lambda is one draw of an oscillation; the second half's mean is where it settles.
    print(
        f"lambda (second-half mean) {result['lambda_second_half']:.3f}, "
        f"usage (second half) {result['usage_second_half']:.3f}"
    )
