"""Co-PLMs and its baselines on the same data, initialisations and schedules.

- ``coplms``: each round, every device tunes its SLM on its own data (DST), then SLM and DPM
  learn from each other on that data (mutual learning); the DPMs go to the server, where the LLM
  and every DPM learn from each other on the server's data; the DPMs come back.
- ``standalone``: each device tunes its SLM alone, for as many steps as the SLM gets in
  ``coplms``.
- ``fedavg``: homogeneous proxies without mutual learning: each device trains a copy of the
  global DPM-architecture model on its data, the server averages them (weighted by data size),
  and the devices use the global model.
- ``server``: the reference "server only": no device trains; the server LLM tunes on its public
  data (``server_steps`` a round) and answers every device's tasks (the devices' queries, not
  parameters, would travel: 0 bytes of parameters).
- ``oneway``: one-way distillation: the server tunes the LLM on its data and distils it into the
  DPMs, which go down to the devices and are distilled into the SLMs (frozen teachers); nothing
  flows back.
- ``fedmkt``: direct server-to-device distillation on public data, the closest prior method
  (FedMKT-style, one direction): the server tunes the LLM on its data; each device tunes its
  SLM on its own data, then distils the LLM into it on the public data (frozen teacher, no
  proxy). What travels is the LLM's output distributions on the public batches.

Communication is counted in bytes of parameters sent (float32 state dicts), both directions;
for ``fedmkt``, in the LLM's float32 output distributions over the full vocabulary at every
position of the distillation batches (an upper bound: padded length, no top-k).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

from offload_agents.coplms.config import CoPLMsConfig
from offload_agents.coplms.core import (
    Batches,
    build_model,
    domain_tasks,
    fedavg,
    interleave,
    mutual_steps,
    parameter_bytes,
    server_steps,
    task_steps,
)
from offload_agents.coplms.public import PublicModels, load_public
from offload_agents.lm_eval import generate_responses
from offload_agents.slm.skill import char_tokenizer, prompt_digest, worked_steps
from offload_gym import seeding
from offload_gym.tasks import Task

METHODS = ("coplms", "standalone", "fedavg", "oneway", "server", "fedmkt")
DEFAULT_METHODS = ("coplms", "standalone", "server")
"""The methods of the full run by default: the primary comparison (co-tuning against each
device alone) and the server direction (the co-tuned LLM against the LLM tuned alone). The
other baselines are one ``--methods`` away: with all six a seed takes about 2.5x as long, and
the full run would not fit its 30 minutes at the seeds its power needs (docs/coplms.md)."""
SERVER_TRAINED = ("coplms", "oneway", "fedmkt")
"""The methods that train the server LLM (its scores on the devices' tasks are reported)."""
PROXY_TRAINED = ("coplms", "oneway")
"""The methods whose proxies (DPMs) train beside the device models (their scores on each
device's tasks are reported; ``fedavg`` deploys its proxy, so its device scores are the
proxy's)."""


@dataclass
class Setup:
    """The data of one seed: the shared tokenizer, each device's private training and held-out
    tasks, the server's tasks and each device's unlabeled queries (only their prompts are
    used; all disjoint: different generator seeds)."""

    tokenizer: Any
    train: list[list[Task]]
    eval: list[list[Task]]
    server: list[Task]
    queries: list[list[Task]] = dataclasses.field(default_factory=list)


def _data_seed(seed: int, k: int, offset: int = 0) -> int:
    return seeding.derive(seed, k, stride=seeding.DATA_STRIDE, offset=offset)


def _model_seed(seed: int, k: int) -> int:
    return seeding.derive(seed, k, stride=seeding.MODEL_STRIDE)


def prepare(cfg: CoPLMsConfig, public: PublicModels | None = None) -> Setup:
    """The data of ``cfg.seed``: each device's private tasks, its held-out tasks (prompts seen
    by no model: not in the private data, the server's data or any public checkpoint's
    training) and the server's public tasks (every public domain). ``public`` gives the checkpoints'
    seen prompts (None: random initialisations, nothing seen)."""
    s = cfg.seed
    shared = {"min_difficulty": cfg.min_difficulty, "max_difficulty": cfg.max_difficulty}
    lo, hi = cfg.device_difficulty
    diff = {"min_difficulty": lo, "max_difficulty": hi}  # the devices' private span
    train = [domain_tasks(dev.domain, cfg.train_per_device, seed=_data_seed(s, k, 10_000), **diff)
             for k, dev in enumerate(cfg.devices)]  # fmt: skip
    domains = cfg.public
    per = -(-cfg.server_tasks // len(domains))
    mixed = [domain_tasks(dom, per, seed=_data_seed(s, i, 30_000), **shared)
             for i, dom in enumerate(domains)]  # fmt: skip
    server = interleave(mixed)[: cfg.server_tasks]
    queries = [domain_tasks(dev.domain, cfg.unlabeled_per_device, seed=_data_seed(s, k, 40_000),
                            **diff) if cfg.unlabeled_per_device else []
               for k, dev in enumerate(cfg.devices)]  # fmt: skip
    seen = set(public.seen) if public is not None else set()
    private = (t for ts in (*train, *queries) for t in ts)
    seen |= {prompt_digest(t.prompt) for t in (*server, *private)}
    held = [domain_tasks(dev.domain, cfg.eval_per_device, seed=_data_seed(s, k, 20_000),
                         exclude=seen, **diff) for k, dev in enumerate(cfg.devices)]  # fmt: skip
    for dev, tasks in zip(cfg.devices, held, strict=True):
        if not tasks:
            raise ValueError(f"no held-out {dev.domain} task is left that no model has seen; "
                             "raise the devices' max difficulty or lower the pretraining "
                             "steps")  # fmt: skip
    _warn_short_room(cfg, held)
    return Setup(char_tokenizer(), train, held, server, queries)


def answer_room(cfg: CoPLMsConfig, held: Sequence[Sequence[Task]]) -> dict[str, float]:
    """Per device domain, the share of its held-out tasks whose reference answer (the worked
    target every model trains on, plus its end-of-text) is longer than ``max_new_tokens``:
    tasks no model can answer within the evaluation's room."""
    return {dev.domain: float(np.mean([len(worked_steps(t)) + 1 > cfg.max_new_tokens
                                       for t in tasks])) if tasks else 0.0
            for dev, tasks in zip(cfg.devices, held, strict=True)}  # fmt: skip


def _warn_short_room(cfg: CoPLMsConfig, held: Sequence[Sequence[Task]]) -> None:
    short = {d: share for d, share in answer_room(cfg, held).items() if share > 0}
    if short:
        import warnings

        longest = max(len(worked_steps(t)) + 1 for tasks in held for t in tasks)
        shares = ", ".join(f"{d} {share:.0%}" for d, share in short.items())
        warnings.warn(f"max_new_tokens={cfg.max_new_tokens} is shorter than the reference "
                      f"answers of some held-out tasks ({shares}): those cannot be answered "
                      f"and count as wrong; the longest needs {longest}", stacklevel=3)  # fmt: skip


Evaluator = Callable[[Any, Sequence[Task]], dict[str, Any]]
"""``evaluate(model, tasks) -> {"em", "em_text", "rouge_l"}`` (means over the tasks), with
``"records"`` (one ``{"task_id", "correct", "rouge_l"}`` per task, in order) where the
evaluator keeps them: `run_method` moves the last round's into the run's ``records``."""


def _scores(evaluate: Evaluator, model: Any, tasks: Sequence[Task]) -> tuple[dict, list | None]:
    """The evaluator's means and, apart, its per-task records (None where it keeps none)."""
    scores = dict(evaluate(model, tasks))
    return scores, scores.pop("records", None)


@dataclass
class _Models:
    """Everything one run of a method trains: device SLMs, DPMs (device and server copies share
    weights), the server LLM, their optimisers and batch streams."""

    slms: list[Any]
    dpms: list[Any]
    dpm0: Any
    llm: Any
    opt_slm: list[Any]
    opt_dpm_dev: list[Any]
    opt_dpm_srv: list[Any]
    opt_llm: Any
    opt_dpm_glob: Any
    dev_batches: list[Any]
    srv_batches: Any
    pub_batches: list[Any]
    sizes: list[int]
    setup: Setup
    max_len: int


def _adam(model: Any, cfg: CoPLMsConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)


def _start(spec: Any, path: Any, tok: Any, seed: int) -> Any:
    """A model to tune: a fresh copy of its public checkpoint, or a random initialisation."""
    return load_public(path) if path is not None else build_model(spec, tok, seed=seed)


def _build(cfg: CoPLMsConfig, setup: Setup, public: PublicModels | None) -> _Models:
    tok, K, s = setup.tokenizer, len(cfg.devices), cfg.seed
    pub = public or PublicModels([None] * K, None, None, set())
    max_len = max(d.slm.n_positions for d in cfg.devices)
    slms = [_start(dev.slm, pub.slms[k], tok, _model_seed(s, k))
            for k, dev in enumerate(cfg.devices)]  # fmt: skip
    dpm0 = _start(cfg.dpm, pub.dpm, tok, _model_seed(s, 500))
    dpms = [copy.deepcopy(dpm0) for _ in range(K)]
    llm = _start(cfg.server, pub.server, tok, _model_seed(s, 999))
    return _Models(
        slms, dpms, dpm0, llm,
        opt_slm=[_adam(m, cfg) for m in slms],
        opt_dpm_dev=[_adam(m, cfg) for m in dpms],
        opt_dpm_srv=[_adam(m, cfg) for m in dpms],
        opt_llm=_adam(llm, cfg),
        opt_dpm_glob=_adam(dpm0, cfg),
        dev_batches=[Batches(tok, setup.train[k], cfg.batch_size, seed=_data_seed(s, k),
                             max_len=max_len) for k in range(K)],
        srv_batches=Batches(tok, setup.server, cfg.batch_size, seed=_data_seed(s, 99),
                            max_len=max(max_len, cfg.server.n_positions)),
        pub_batches=[Batches(tok, setup.server, cfg.batch_size, seed=_data_seed(s, k, 60_000),
                             max_len=max_len) for k in range(K)],
        sizes=[len(t) for t in setup.train],
        setup=setup, max_len=max_len,
    )  # fmt: skip


def _mutual_batches(cfg: CoPLMsConfig, m: _Models, k: int, r: int) -> Any:
    """Device ``k``'s batches for on-device mutual learning in round ``r``: its labelled tasks
    and, where it holds unlabeled queries, those queries answered (greedy) by its DPM now."""
    queries = m.setup.queries[k] if m.setup.queries else []
    if not queries:
        return m.dev_batches[k]
    answers, _ = generate_responses(m.dpms[k], m.setup.tokenizer, queries,
                                    max_new_tokens=cfg.max_new_tokens)  # fmt: skip
    labelled = m.setup.train[k]
    targets = [worked_steps(t) for t in labelled] + answers
    return Batches(m.setup.tokenizer, [*labelled, *queries], cfg.batch_size,
                   seed=_data_seed(cfg.seed, k, 50_000 + r), max_len=m.max_len,
                   targets=targets)  # fmt: skip


def _server_side(cfg: CoPLMsConfig, m: _Models, sl: dict[str, float]) -> None:
    """Co-tuning's server side: the uploaded DPMs, averaged into one global DPM (weighted by
    each device's data) that learns mutually with the LLM and goes back to every device
    (``aggregate="average"``), or each learning with the LLM on its own (``"none"``)."""
    if cfg.aggregate == "none":
        server_steps(m.llm, m.dpms, m.opt_llm, m.opt_dpm_srv, m.srv_batches, cfg.server_steps,
                     **sl)  # fmt: skip
        return
    m.dpm0.load_state_dict(fedavg(m.dpms, m.sizes))
    server_steps(m.llm, [m.dpm0], m.opt_llm, [m.opt_dpm_glob], m.srv_batches, cfg.server_steps,
                 **sl)  # fmt: skip
    state = m.dpm0.state_dict()
    for dpm in m.dpms:
        dpm.load_state_dict(state)


def _one_round(method: str, cfg: CoPLMsConfig, m: _Models, r: int = 0) -> list[Any]:
    """Round ``r`` of ``method``; returns the model each device deploys."""
    K = len(cfg.devices)
    slm_steps = cfg.local_steps + cfg.mutual_steps
    dl = {"alpha": cfg.alpha, "temperature": cfg.temperature}
    sl = {"beta": cfg.beta, "temperature": cfg.temperature}
    if method == "coplms":
        for k in range(K):
            task_steps(m.slms[k], m.opt_slm[k], m.dev_batches[k], cfg.local_steps)
            mutual_steps(m.slms[k], m.dpms[k], m.opt_slm[k], m.opt_dpm_dev[k],
                         _mutual_batches(cfg, m, k, r), cfg.mutual_steps, **dl)  # fmt: skip
        _server_side(cfg, m, sl)
        return m.slms
    if method == "standalone":
        for k in range(K):
            task_steps(m.slms[k], m.opt_slm[k], m.dev_batches[k], slm_steps)
        return m.slms
    if method == "fedavg":
        local = [copy.deepcopy(m.dpm0) for _ in range(K)]
        for k in range(K):
            task_steps(local[k], _adam(local[k], cfg), m.dev_batches[k], slm_steps)
        m.dpm0.load_state_dict(fedavg(local, m.sizes))
        return [m.dpm0] * K
    if method == "server":
        task_steps(m.llm, m.opt_llm, m.srv_batches, cfg.server_steps)
        return [m.llm] * K
    if method == "fedmkt":
        task_steps(m.llm, m.opt_llm, m.srv_batches, cfg.server_steps)
        for k in range(K):
            task_steps(m.slms[k], m.opt_slm[k], m.dev_batches[k], cfg.local_steps)
            mutual_steps(m.slms[k], m.llm, m.opt_slm[k], None, m.pub_batches[k],
                         cfg.mutual_steps, **dl)  # fmt: skip
        return m.slms
    # oneway
    task_steps(m.llm, m.opt_llm, m.srv_batches, cfg.server_steps)
    server_steps(m.llm, m.dpms, None, m.opt_dpm_srv, m.srv_batches, cfg.server_steps, **sl)
    for k in range(K):
        task_steps(m.slms[k], m.opt_slm[k], m.dev_batches[k], cfg.local_steps)
        mutual_steps(m.slms[k], m.dpms[k], m.opt_slm[k], None, _mutual_batches(cfg, m, k, r),
                     cfg.mutual_steps, **dl)  # fmt: skip
    return m.slms


def logit_bytes(cfg: CoPLMsConfig, vocab: int, max_len: int) -> int:
    """Bytes of the LLM's output distributions one device receives a round under ``fedmkt``:
    float32 over the vocabulary at every position of its ``mutual_steps`` public batches."""
    return cfg.mutual_steps * cfg.batch_size * max_len * vocab * 4


def _kept(records: list | None) -> list | None:
    """Per-device records, or None where the evaluator kept none."""
    return None if records is None or any(r is None for r in records) else records


def run_method(
    method: str,
    cfg: CoPLMsConfig,
    setup: Setup,
    evaluate: Evaluator,
    *,
    progress: bool = True,
    save_dir: str | PathLike[str] | None = None,
    public: PublicModels | None = None,
) -> dict[str, Any]:
    """Run one method for ``cfg.rounds`` rounds; evaluate each device's model after every round.
    Every model starts from ``public``'s checkpoints (None: random initialisations).
    With ``save_dir``, each device's final model is saved (``save_pretrained``, with the shared
    tokenizer) in ``save_dir/device{k}-{domain}``, loadable as any Hugging Face model (e.g. as
    the local model of the offload environments).

    Returns ``{"rounds": [{"round", "devices": [{"em", "rouge_l"}], "bytes"}], "server": metrics
    of the LLM on every device's held-out tasks (or None), "proxy": the same of each device's
    proxy (DPM) as it holds it at the end (or None), "bytes_per_round", "records": the
    last round's per-task records of each device's model (a list per device, or None),
    "server_records": the same of the LLM (or None)}``.
    """
    from tqdm.auto import tqdm

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    tok, K = setup.tokenizer, len(cfg.devices)
    m = _build(cfg, setup, public)
    dpm_bytes = parameter_bytes(m.dpm0)
    per_round = {"coplms": 2 * K * dpm_bytes, "standalone": 0, "fedavg": 2 * K * dpm_bytes,
                 "oneway": K * dpm_bytes, "server": 0,
                 "fedmkt": K * logit_bytes(cfg, len(tok), m.max_len)}[method]  # fmt: skip
    rounds = []
    bar = tqdm(range(cfg.rounds), desc=f"{method} seed {cfg.seed}", disable=not progress,
               leave=False)  # fmt: skip
    deployed, records = m.slms, None
    for r in bar:
        deployed = _one_round(method, cfg, m, r)
        scored = [_scores(evaluate, deployed[k], setup.eval[k]) for k in range(K)]
        devices, records = [s for s, _ in scored], [rec for _, rec in scored]
        rounds.append({"round": r + 1, "devices": devices, "bytes": per_round * (r + 1)})
        bar.set_postfix(rouge_l=f"{np.mean([d['rouge_l'] for d in devices]):.3f}",
                        em=f"{np.mean([d['em'] for d in devices]):.3f}")  # fmt: skip
    if save_dir is not None:
        for k, dev in enumerate(cfg.devices):
            path = Path(save_dir) / f"device{k}-{dev.domain}"
            deployed[k].save_pretrained(path)
            tok.save_pretrained(path)
    server = server_records = proxy = None
    if method in SERVER_TRAINED:
        scored = [_scores(evaluate, m.llm, setup.eval[k]) for k in range(K)]
        server, server_records = [s for s, _ in scored], [rec for _, rec in scored]
    if method in PROXY_TRAINED:
        proxy = [_scores(evaluate, m.dpms[k], setup.eval[k])[0] for k in range(K)]
    return {"rounds": rounds, "server": server, "proxy": proxy, "bytes_per_round": per_round,
            "records": _kept(records), "server_records": _kept(server_records),
            "params": {"slm": [sum(p.numel() for p in x.parameters()) for x in m.slms],
                       "dpm": sum(p.numel() for p in m.dpm0.parameters()),
                       "llm": sum(p.numel() for p in m.llm.parameters())}}  # fmt: skip
