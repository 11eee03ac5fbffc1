"""Run any agent on any environment id for several episodes and seeds; log every step; compute
the metrics of `offload_gym.metrics`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, TextIO

import gymnasium as gym
import numpy as np

import offload_gym
from offload_agents.base import Agent, FunctionAgent, make_agent
from offload_gym import metrics, seeding
from offload_gym.envs import offload_env
from offload_gym.metrics import step_record

EVAL_SEED_BASE = 1_000_000
"""Evaluation episodes use seeds ``EVAL_SEED_BASE + 1000 * seed + episode``; agents fit on
their own seeds, so training and evaluation tasks differ."""


@dataclass
class EvalResult:
    """The outcome of `evaluate`.

    Attributes:
        agent: The agent's name.
        env_id: The environment id.
        budget: tau.
        logs: One record per step (`offload_gym.metrics.step_record`).
        metrics: `offload_gym.metrics.summarize` over all seeds, plus ``n_seeds`` and the
            across-seed spread (``accuracy_std``, ``cloud_usage_std``).
        per_seed: The same metrics for each seed.
    """

    agent: str
    env_id: str
    budget: float
    logs: list[dict[str, Any]] = field(repr=False)
    metrics: dict[str, Any]
    per_seed: list[dict[str, Any]] = field(repr=False)

    def save_metrics(self, path: str | PathLike[str]) -> Path:
        """Write the metrics (pooled and per seed) as JSON."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "agent": self.agent,
            "env_id": self.env_id,
            "budget": self.budget,
            "metrics": self.metrics,
            "per_seed": self.per_seed,
        }
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        return out


def _as_agent(agent: Agent | str | Callable[[Any], Any]) -> Agent:
    if isinstance(agent, Agent):
        return agent
    if isinstance(agent, str):
        return make_agent(agent)
    if hasattr(agent, "act"):
        return agent  # type: ignore[return-value]  # duck-typed agent
    return FunctionAgent(agent)


def run_episode(
    env: gym.Env,
    agent: Agent,
    seed: int,
    *,
    ids: Mapping[str, Any] | None = None,
    sink: TextIO | None = None,
    on_step: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """One episode of ``agent`` on ``env``; returns (and streams to ``sink``) its step records."""
    records = []
    if hasattr(agent, "reset"):
        agent.reset(env, seed)
    obs, info = env.reset(seed=seed)
    done = False
    while not done:
        score = agent.score(obs, info) if hasattr(agent, "score") else None
        action = agent.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        if hasattr(agent, "observe"):
            agent.observe(obs, float(reward), info)
        record = step_record(info, action, float(reward), score, **(ids or {}))
        records.append(record)
        if sink is not None:
            sink.write(json.dumps(record) + "\n")
            sink.flush()
        if on_step is not None:
            on_step()
        done = terminated or truncated
    return records


def _finished_seeds(path: Path, episodes: int, num_tasks: int) -> dict[int, list[dict[str, Any]]]:
    """The records of each seed whose ``episodes`` episodes are all complete in the log at
    ``path`` (a torn last line, as a kill leaves it, is ignored)."""
    if not path.exists():
        return {}
    by_seed: dict[int, list[dict[str, Any]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "seed" in record:
            by_seed.setdefault(int(record["seed"]), []).append(record)
    out = {}
    for seed, records in by_seed.items():
        counts = [sum(r.get("episode") == ep for r in records) for ep in range(episodes)]
        if counts == [num_tasks] * episodes and len(records) == num_tasks * episodes:
            out[seed] = records
    return out


def evaluate(
    agent: Agent | str | Callable[[Any], Any],
    env_id: str,
    *,
    episodes: int = 1,
    seeds: Sequence[int] = (0,),
    env_kwargs: Mapping[str, Any] | None = None,
    log_path: str | PathLike[str] | None = None,
    progress: bool = True,
    fit: bool = True,
    window: int = 20,
    resume: bool = False,
) -> EvalResult:
    """Evaluate ``agent`` (an `Agent`, a registered name, or a ``policy(obs)`` callable) on
    ``env_id`` for ``episodes`` episodes under each seed.

    For each seed, a named agent is created afresh and `Agent.fit` is called with that seed (pass
    ``fit=False`` to skip training); episodes then run on evaluation seeds. With ``log_path``,
    every step is appended to a JSONL file as it happens (flushed), so nothing is lost if the run
    is interrupted. With ``resume``, a seed whose episodes are all complete in an existing log
    (an interrupted run with the same settings) is taken from it instead of being run again;
    the records of any incomplete seed are dropped and that seed is run afresh (a named agent is
    fitted per seed, so a seed is the unit that can be redone exactly).
    """
    _check_eval_args(env_id, episodes, seeds)
    kwargs = dict(env_kwargs or {})
    env = gym.make(env_id, **kwargs)
    budget = float(offload_env(env).ledger.rate)
    n_steps = offload_env(env).num_tasks * episodes * len(seeds)
    from tqdm.auto import tqdm

    bar = tqdm(total=n_steps, desc=f"{agent if isinstance(agent, str) else 'agent'} on {env_id}",
               disable=not progress, leave=False)  # fmt: skip
    sink, done_seeds = _open_log(log_path, resume, episodes, offload_env(env).num_tasks)
    logs: list[dict[str, Any]] = []
    per_seed = []
    name = agent if isinstance(agent, str) else getattr(agent, "name", type(agent).__name__)
    try:
        for seed in seeds:
            if int(seed) in done_seeds:  # finished in the interrupted run: not redone
                seed_logs = done_seeds[int(seed)]
                bar.update(len(seed_logs))
                logs += seed_logs
                per_seed.append(metrics.summarize(seed_logs, budget, window=window))
                continue
            current = _as_agent(agent)
            if fit and hasattr(current, "fit"):
                current.fit(env_id, kwargs, int(seed))
            seed_logs = _seed_episodes(env, current, int(seed), episodes, str(name), sink,
                                       lambda: bar.update(1))  # fmt: skip
            logs += seed_logs
            per_seed.append(metrics.summarize(seed_logs, budget, window=window))
    finally:
        bar.close()
        if sink is not None:
            sink.close()
        env.close()
    return EvalResult(str(name), env_id, budget, logs,
                      _summary(logs, per_seed, budget, window), per_seed)  # fmt: skip


def _check_eval_args(env_id: str, episodes: int, seeds: Sequence[int]) -> None:
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if env_id not in gym.registry:
        raise ValueError(f"unknown env {env_id!r}; offload ids: {offload_gym.list_envs()}")


def _seed_episodes(
    env: gym.Env,
    agent: Any,
    seed: int,
    episodes: int,
    name: str,
    sink: TextIO | None,
    on_step: Callable[[], Any],
) -> list[dict[str, Any]]:
    """The step records of one seed's evaluation episodes (seeds ``EVAL_SEED_BASE + 1000 *
    seed + episode``)."""
    records: list[dict[str, Any]] = []
    for ep in range(episodes):
        records += run_episode(env, agent, seeding.derive(seed, ep, stride=seeding.EPISODE_STRIDE,
                                                          offset=EVAL_SEED_BASE),
                               ids={"agent": name, "seed": seed, "episode": ep}, sink=sink,
                               on_step=on_step)  # fmt: skip
    return records


def _open_log(
    log_path: str | PathLike[str] | None, resume: bool, episodes: int, num_tasks: int
) -> tuple[TextIO | None, dict[int, list[dict[str, Any]]]]:
    """The JSONL sink of an evaluation (None without a path) and, with ``resume``, the seeds an
    interrupted run finished; the log is rewritten to hold those, nothing else."""
    if log_path is None:
        return None, {}
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    done = _finished_seeds(Path(log_path), episodes, num_tasks) if resume else {}
    sink = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - the caller closes it
    for seed_records in done.values():
        sink.writelines(json.dumps(r) + "\n" for r in seed_records)
    sink.flush()
    return sink, done


def _summary(logs: list[dict[str, Any]], per_seed: list[dict[str, Any]], budget: float,
             window: int) -> dict[str, Any]:  # fmt: skip
    """The metrics over all seeds, with the spread of the per-seed accuracy and usage."""
    summary = metrics.summarize(logs, budget, window=window)
    summary["n_seeds"] = len(per_seed)
    for key in ("accuracy", "cloud_usage"):
        values = [s[key] for s in per_seed if s[key] is not None]
        summary[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return summary
