"""PPO for the router view in one file, CleanRL style: everything a course needs to read is here.

    python examples/cleanrl_ppo_router.py                          # about a minute on 2 cores
    python examples/cleanrl_ppo_router.py --total-timesteps 2048   # a smoke run
    tensorboard --logdir runs/                                     # the curves

The environment is ``OffloadMathRouter-v0``: at each task the agent sees the router features
(the task's domain and difficulty, the local model's confidence, the budget's state, the
position in the stream; ``offload_gym.ROUTER_FEATURES``) and chooses to
answer locally (0) or to offload to the cloud (1); the budget caps the cloud calls at ``budget``
of the tasks. The scalars written to TensorBoard, per finished episode: ``charts/accuracy``,
``charts/cloud_usage`` and ``charts/budget_error`` (usage minus budget), beside CleanRL's losses.
At the end the greedy policy is evaluated on fresh seeds against random offloading at the same
budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions.categorical import Categorical

import offload_gym  # noqa: F401  (registers the environment ids)


@dataclass
class Args:
    env_id: str = "OffloadMathRouter-v0"
    """the environment id"""
    budget: float = 0.3
    """the cloud budget: the largest fraction of tasks that may be offloaded"""
    price: float = 0.5
    """training price of a cloud call (reward = correct - price * offloaded): without one, asking
    on every task is free under a hard budget, and PPO learns exactly that"""
    seed: int = 1
    """seed of the environments, the network and the sampling"""
    total_timesteps: int = 40_000
    """environment steps in all"""
    learning_rate: float = 2.5e-4
    """Adam's learning rate (annealed to 0)"""
    num_envs: int = 4
    """parallel environments"""
    num_steps: int = 128
    """steps per environment per rollout"""
    gamma: float = 0.9
    """discount (each decision pays off at once; the budget's state is in the observation)"""
    gae_lambda: float = 0.95
    """lambda of generalized advantage estimation"""
    num_minibatches: int = 4
    """minibatches per update epoch"""
    update_epochs: int = 10
    """epochs per rollout"""
    clip_coef: float = 0.2
    """PPO's clip range"""
    ent_coef: float = 0.01
    """entropy bonus"""
    vf_coef: float = 0.5
    """value loss weight"""
    max_grad_norm: float = 0.5
    """gradient clipping"""
    eval_episodes: int = 5
    """episodes of the final evaluation (on seeds the training never saw)"""
    log_dir: str = "runs"
    """where TensorBoard's event files go ("" for none)"""


def parse_args(argv: list[str] | None = None) -> Args:
    """Every field of `Args` as a ``--flag`` (CleanRL uses tyro; argparse keeps the deps few)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(Args):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default),
                            default=f.default)  # fmt: skip
    return Args(**vars(parser.parse_args(argv)))


def make_env(env_id: str, budget: float, price: float = 0.0) -> gym.Env:
    weights = {"correct": 1.0, "offloaded": -price}
    return gym.make(env_id, budget=budget, reward_weights=weights)


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


class Agent(nn.Module):
    def __init__(self, n_obs: int, n_actions: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(n_obs, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )  # fmt: skip
        self.actor = nn.Sequential(
            layer_init(nn.Linear(n_obs, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, n_actions), std=0.01),
        )  # fmt: skip

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(
        self, x: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        probs = Categorical(logits=self.actor(x))
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


class EpisodeStats:
    """Accuracy, cloud usage and budget error of each finished episode, per environment."""

    def __init__(self, num_envs: int, budget: float) -> None:
        self.budget = budget
        self.correct = np.zeros(num_envs)
        self.offloaded = np.zeros(num_envs)
        self.steps = np.zeros(num_envs)

    def update(self, infos: dict, done: np.ndarray) -> list[dict[str, float]]:
        # With SAME_STEP autoreset, a finished episode's last step info is in "final_info"
        # (its own info is already the next episode's reset info).
        for part, mask in ((infos, infos.get("_correct")),
                           (infos.get("final_info", {}), infos.get("_final_info"))):  # fmt: skip
            if mask is None or "correct" not in part:
                continue
            mask = mask & part["_correct"]
            self.correct += np.where(mask, part["correct"], 0)
            self.offloaded += np.where(mask, part["offloaded"], 0)
            self.steps += mask
        finished = []
        for i in np.flatnonzero(done):
            n = max(self.steps[i], 1)
            usage = self.offloaded[i] / n
            accuracy = self.correct[i] / n
            finished.append(
                {"accuracy": accuracy, "cloud_usage": usage, "budget_error": usage - self.budget}
            )
            self.correct[i] = self.offloaded[i] = self.steps[i] = 0
        return finished


def evaluate(policy, args: Args, seeds: range) -> dict[str, float]:
    """Mean accuracy and cloud usage of ``policy(obs) -> action`` over one episode per seed."""
    rows = []
    for seed in seeds:
        env = make_env(args.env_id, args.budget)
        obs, _ = env.reset(seed=seed)
        correct = offloaded = steps = 0
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs))
            correct += info["correct"]
            offloaded += info["offloaded"]
            steps += 1
            done = terminated or truncated
        rows.append((correct / steps, offloaded / steps))
        env.close()
    accuracy, usage = np.mean(rows, axis=0)
    return {"accuracy": float(accuracy), "cloud_usage": float(usage)}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse_args(argv)
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = max(1, args.total_timesteps // batch_size)
    run_name = f"{args.env_id}__cleanrl_ppo__{args.seed}__{int(time.time())}"
    writer = None
    if args.log_dir:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(f"{args.log_dir}/{run_name}")
        writer.add_text("hyperparameters", json.dumps(dataclasses.asdict(args), indent=1))

    # An example script, not library code: seeding the global generators is its own business.
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    envs = gym.vector.SyncVectorEnv(
        [lambda: make_env(args.env_id, args.budget, args.price) for _ in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    n_obs = int(np.prod(envs.single_observation_space.shape))
    agent = Agent(n_obs, int(envs.single_action_space.n))
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    obs = torch.zeros((args.num_steps, args.num_envs, n_obs))
    actions = torch.zeros((args.num_steps, args.num_envs))
    logprobs = torch.zeros((args.num_steps, args.num_envs))
    rewards = torch.zeros((args.num_steps, args.num_envs))
    dones = torch.zeros((args.num_steps, args.num_envs))
    values = torch.zeros((args.num_steps, args.num_envs))

    global_step = 0
    next_obs_np, _ = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(next_obs_np, dtype=torch.float32)
    next_done = torch.zeros(args.num_envs)
    stats = EpisodeStats(args.num_envs, args.budget)
    for iteration in range(1, num_iterations + 1):
        frac = 1.0 - (iteration - 1.0) / num_iterations
        optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step], dones[step] = next_obs, next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
            values[step] = value.flatten()
            actions[step], logprobs[step] = action, logprob
            next_obs_np, reward, terminations, truncations, infos = envs.step(action.numpy())
            done = np.logical_or(terminations, truncations)
            rewards[step] = torch.as_tensor(reward, dtype=torch.float32)
            next_obs = torch.as_tensor(next_obs_np, dtype=torch.float32)
            next_done = torch.as_tensor(done, dtype=torch.float32)
            for episode in stats.update(infos, done):
                if writer is not None:
                    for key, value_ in episode.items():
                        writer.add_scalar(f"charts/{key}", value_, global_step)

        # generalized advantage estimation (with SAME_STEP autoreset, next_obs after a done is
        # the new episode's first observation: the mask stops the bootstrap there)
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = torch.zeros(args.num_envs)
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    nextnonterminal, nextvalues = 1.0 - next_done, next_value
                else:
                    nextnonterminal, nextvalues = 1.0 - dones[t + 1], values[t + 1]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                lastgaelam = delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
                advantages[t] = lastgaelam
            returns = advantages + values

        b_obs, b_logprobs = obs.reshape((-1, n_obs)), logprobs.reshape(-1)
        b_actions, b_advantages = actions.reshape(-1), advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        order = np.arange(batch_size)
        clipfracs = []
        for _ in range(args.update_epochs):
            np.random.shuffle(order)
            for start in range(0, batch_size, minibatch_size):
                mb = order[start : start + minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb], b_actions.long()[mb]
                )
                logratio = newlogprob - b_logprobs[mb]
                ratio = logratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean().item())
                mb_adv = b_advantages[mb]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(
                    -mb_adv * ratio,
                    -mb_adv * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef),
                ).mean()
                v_loss = 0.5 * ((newvalue.view(-1) - b_returns[mb]) ** 2).mean()
                loss = pg_loss - args.ent_coef * entropy.mean() + v_loss * args.vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        if writer is not None:
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
            writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
            writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
            writer.add_scalar("losses/entropy", entropy.mean().item(), global_step)
            writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
            writer.add_scalar("losses/clipfrac", float(np.mean(clipfracs)), global_step)
    envs.close()

    def greedy(o: np.ndarray) -> int:
        with torch.no_grad():
            return int(agent.actor(torch.as_tensor(o, dtype=torch.float32)).argmax())

    rng = np.random.default_rng(args.seed)
    eval_seeds = range(10_000 + args.seed, 10_000 + args.seed + args.eval_episodes)
    results = {
        "ppo": evaluate(greedy, args, eval_seeds),
        "random": evaluate(lambda o: int(rng.random() < args.budget), args, eval_seeds),
    }
    for name, row in results.items():
        print(f"{name:<7} accuracy {row['accuracy']:.3f}   cloud usage {row['cloud_usage']:.3f}")
    if writer is not None:
        writer.close()
    return results


if __name__ == "__main__":
    main()
