"""Exercise 1 (starter): a confidence-threshold router calibrated to a budget. Fill in the TODOs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import offload_gym

CONFIDENCE = offload_gym.ROUTER_FEATURES.index("local_confidence")


def calibrate(confidences: np.ndarray, tau: float) -> float:
    """The threshold below which a share tau of the confidences lies."""
    raise NotImplementedError("TODO: return the tau-quantile of the confidences")


def collect_confidences(episodes: int, num_tasks: int, seed: int) -> np.ndarray:
    """Local-model confidences seen while answering everything locally."""
    env = gym.make("OffloadMathRouter-v0", num_tasks=num_tasks)
    values = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done = False
        while not done:
            values.append(obs[CONFIDENCE])
            obs, _, done, _, _ = env.step(0)
    return np.asarray(values)


def run(
    tau: float = 0.3,
    episodes: int = 5,
    num_tasks: int = 100,
    seed: int = 0,
    calibration_rate: float | None = None,
) -> dict:
    """The threshold router against random offloading at budget ``tau``. The threshold is
    calibrated to offload ``calibration_rate`` of the tasks (``tau`` unless given: set it above
    ``tau`` to see what the hard budget does to a router calibrated for more)."""
    rate = tau if calibration_rate is None else calibration_rate
    threshold = calibrate(collect_confidences(episodes, num_tasks, seed), rate)
    env = gym.make("OffloadMathRouter-v0", budget=tau, num_tasks=num_tasks)
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("threshold", "random"):
        correct = offloaded = steps = 0
        for k in range(episodes):
            obs, _ = env.reset(seed=10_000 + seed + k)
            done = False
            while not done:
                if name == "threshold":
                    action = int(obs[CONFIDENCE] < threshold)
                else:
                    action = int(rng.random() < tau)
                obs, _, done, _, info = env.step(action)
                correct += info["correct"]
                offloaded += info["offloaded"]
                steps += 1
        out[name] = {"accuracy": correct / steps, "usage": offloaded / steps}
    out["threshold_value"] = threshold
    return out


if __name__ == "__main__":
    print(run())
