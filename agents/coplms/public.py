"""Public checkpoints: the pretrained models every Co-PLMs method starts from.

In the paper the server LLM and the device SLMs are public pretrained models of different
sizes and architectures. Here each is trained once with the skilled-SLM recipe
(`offload_agents.slm.skill`: one token per character, short worked steps, a fresh public task
in every batch slot) on the public domains (by default the union of the devices' domains): the
server's LLM for ``server_pretrain_steps``, each SLM and the DPM for ``slm_pretrain_steps``.
A checkpoint depends only on its recipe and architecture (not on the experiment's seed, as a
public model does not), and is cached under ``cache_dir/coplms-public-KEY``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from offload_agents.coplms.config import CoPLMsConfig, ModelSpec
from offload_agents.slm.skill import (
    FORMAT_VERSION,
    RECIPE_FILE,
    SEEN_FILE,
    SkillConfig,
    TaskSampler,
    char_tokenizer,
    load_seen,
    prompt_digest,
    train_skilled_slm,
)

PUBLIC_SEED = 0
"""Seed of the public data and of every public model's initialisation."""


def public_recipe(cfg: CoPLMsConfig, spec: ModelSpec, steps: int) -> SkillConfig:
    """The skilled-SLM recipe of one public checkpoint: every public family
    (`CoPLMsConfig.public_families`; code families as code), ``cfg``'s difficulties, no help
    requests (nobody asks anyone here), ``cfg.threads`` torch threads."""
    families = cfg.public_families
    return SkillConfig(
        math_families=tuple(f for f in families if not f.startswith("code_")),
        code_families=tuple(f for f in families if f.startswith("code_")),
        family_weights={},  # uniform: every domain as much public data
        min_difficulty=cfg.min_difficulty, max_difficulty=cfg.max_difficulty,
        steps=steps, batch_size=cfg.pretrain_batch, warmup=min(50, max(1, steps // 10)),
        help_rate=0.0, n_layer=spec.n_layer, n_embd=spec.n_embd, n_head=spec.n_head,
        n_positions=spec.n_positions, threads=cfg.threads,
        seed=PUBLIC_SEED,
    )  # fmt: skip


ARCH_VERSION = 2
"""Bumped when `offload_agents.coplms.core.build_model` changes what a spec builds (2: the GPT-2
models use PyTorch's fused tanh GELU, `offload_agents.slm.kit.FAST_GELU`), so cached public
checkpoints of the old build are not reused."""


def checkpoint_key(recipe: SkillConfig, spec: ModelSpec) -> str:
    """A short hash of a public checkpoint's recipe and architecture (its cache key)."""
    payload = json.dumps([FORMAT_VERSION, ARCH_VERSION, recipe.key(), asdict(spec)],
                         sort_keys=True).encode()  # fmt: skip
    return hashlib.sha256(payload).hexdigest()[:12]


def checkpoint_path(
    cfg: CoPLMsConfig, spec: ModelSpec, steps: int, cache_dir: str | PathLike[str]
) -> Path:
    """Where the public checkpoint of ``spec`` trained for ``steps`` is cached."""
    key = checkpoint_key(public_recipe(cfg, spec, steps), spec)
    return Path(cache_dir).expanduser() / f"coplms-public-{key}"


def is_built(path: Path) -> bool:
    """Whether a checkpoint folder is complete (its recipe file is written last)."""
    return (path / RECIPE_FILE).exists()


def public_checkpoint(
    cfg: CoPLMsConfig,
    spec: ModelSpec,
    steps: int,
    cache_dir: str | PathLike[str],
    *,
    role: str,
    progress: bool = True,
) -> Path:
    """The folder of the public checkpoint of ``spec`` trained for ``steps`` (built and saved
    there when missing; a folder without its recipe file is an interrupted build and is
    rebuilt)."""
    from offload_agents.coplms.core import build_model

    recipe = public_recipe(cfg, spec, steps)
    path = checkpoint_path(cfg, spec, steps, cache_dir)
    if is_built(path):
        return path
    model = build_model(spec, char_tokenizer(), seed=PUBLIC_SEED)
    trained = train_skilled_slm(recipe, progress=progress, model=model,
                                desc=f"public {role} {spec.flag()}")  # fmt: skip
    with quiet_transformers():
        trained.save(path)
    if progress:
        print(f"public {role} checkpoint {spec.flag()}: {trained.seconds:.0f} s -> {path}")
    return path


@dataclass
class PublicModels:
    """Where each method's starting models come from: a checkpoint folder per role, or None
    for a random initialisation (pretraining steps 0); ``seen`` holds the digests of every
    prompt any of them was trained on (held-out tasks avoid them)."""

    slms: list[Path | None]
    dpm: Path | None
    server: Path | None
    seen: set[str]


def public_models(
    cfg: CoPLMsConfig, cache_dir: str | PathLike[str], *, progress: bool = True
) -> PublicModels:
    """Every public checkpoint ``cfg`` needs (built where missing)."""

    def get(spec: ModelSpec, steps: int, role: str) -> Path | None:
        if steps == 0:
            return None
        return public_checkpoint(cfg, spec, steps, cache_dir, role=role, progress=progress)

    server = get(cfg.server, cfg.server_pretrain_steps, "server LLM")
    slms = [get(d.slm, cfg.slm_pretrain_steps, f"{d.domain} SLM") for d in cfg.devices]
    dpm = get(cfg.dpm, cfg.slm_pretrain_steps, "DPM")
    if server is not None and dpm is not None and cfg.dpm_distill_steps:
        dpm = distilled_dpm(cfg, server, dpm, cache_dir, progress=progress)
    seen: set[str] = set()
    for p in (server, dpm, *slms):
        if p is not None:
            seen |= load_seen(p)
    return PublicModels(slms, dpm, server, seen)


def distilled_dpm(
    cfg: CoPLMsConfig,
    server: Path,
    dpm: Path,
    cache_dir: str | PathLike[str],
    *,
    progress: bool = True,
) -> Path:
    """The DPM distilled from the public server LLM: ``dpm_distill_steps`` steps of
    CE + KL(LLM || DPM) on fresh public tasks (the LLM frozen), so that the proxy starts out
    carrying what the server knows (cached like the other checkpoints)."""
    import time

    import torch

    from offload_agents._torch import torch_threads
    from offload_agents.coplms.core import Batches, server_steps

    payload = json.dumps(
        [server.name, dpm.name, cfg.dpm_distill_steps, cfg.pretrain_batch, cfg.threads]
    )
    key = hashlib.sha256(payload.encode()).hexdigest()[:12]
    path = Path(cache_dir).expanduser() / f"coplms-dpm-distilled-{key}"
    if (path / SEEN_FILE).exists():
        return path
    start = time.perf_counter()
    recipe = public_recipe(cfg, cfg.dpm, cfg.dpm_distill_steps)
    tasks = TaskSampler(recipe, seed=PUBLIC_SEED + 1).take(
        cfg.dpm_distill_steps * cfg.pretrain_batch
    )
    tok = char_tokenizer()
    llm, student = load_public(server).eval(), load_public(dpm)
    opt = torch.optim.AdamW(student.parameters(), lr=recipe.lr, weight_decay=0.01)
    batches = Batches(tok, tasks, cfg.pretrain_batch, seed=PUBLIC_SEED,
                      max_len=max(cfg.server.n_positions, cfg.dpm.n_positions))  # fmt: skip
    with torch_threads(cfg.threads), torch.random.fork_rng(devices=[]):
        server_steps(llm, [student], None, [opt], batches, cfg.dpm_distill_steps, beta=1.0,
                     temperature=1.0)  # fmt: skip
    path.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        student.save_pretrained(path)
        tok.save_pretrained(path)
    seen = load_seen(dpm) | {prompt_digest(t.prompt) for t in tasks}
    (path / SEEN_FILE).write_text("\n".join(sorted(seen)) + "\n", encoding="utf-8")
    if progress:
        print(f"DPM distilled from the server LLM: {time.perf_counter() - start:.0f} s -> {path}")
    return path


def load_public(path: Path) -> Any:
    """A fresh copy of a public checkpoint (its own parameters, to be tuned)."""
    from transformers import AutoModelForCausalLM

    with quiet_transformers():
        return AutoModelForCausalLM.from_pretrained(path)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' own loading and saving bars off for the block (restored after): a run
    loads a fresh copy of each checkpoint for every method and seed."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()
