"""The demo's seeds in worker processes: the same numbers as one process, resumable."""

import dataclasses
import json

import pytest

from offload_agents.grpo import experiment
from offload_agents.grpo.experiment import run_demo
from offload_agents.grpo.seed_pool import auto_workers, run_seeds_in_workers

from .test_experiment import TINY

CFG = dataclasses.replace(TINY, seeds=(0, 1, 2), methods=("dagrpo", "grpo"), threads=1)


def test_seeds_in_workers_give_the_numbers_of_one_process_and_resume(tmp_path):
    cache = tmp_path / "cache"
    one = run_demo(tmp_path / "one", CFG, cache_dir=cache, progress=False)
    out = tmp_path / "two"
    # seed 1 already done (as by an interrupted run): the workers run only seeds 0 and 2
    first = run_demo(out, dataclasses.replace(CFG, seeds=(1,)), cache_dir=cache, progress=False)
    assert first["logs"]["dagrpo"] == [r for r in one["logs"]["dagrpo"] if r["seed"] == 1]
    (partial,) = (out / experiment.PARTIAL_DIR).glob("seed1-*.json")
    key = partial.name.split("-", 1)[1]
    partial.rename(partial.with_name(f"seed1-{_key(CFG, cache)}.json"))
    assert key != _key(CFG, cache)  # the seed list is part of the key; moved by hand here
    two = run_demo(out, CFG, cache_dir=cache, progress=False, workers=2)
    assert two["logs"] == one["logs"]
    assert two["traces"] == one["traces"] and two["probes"] == one["probes"]
    assert json.dumps(two["agents"], sort_keys=True) == json.dumps(one["agents"], sort_keys=True)
    for method in CFG.methods:  # each worker wrote its seeds' training logs
        for seed in (0, 2):
            assert (out / "train" / f"{method}-seed{seed}.jsonl").read_text() == (
                tmp_path / "one" / "train" / f"{method}-seed{seed}.jsonl"
            ).read_text()


def _key(cfg, cache):
    import hashlib
    from dataclasses import asdict

    slm = experiment.cached_slm(cfg, cache, progress=False)
    return hashlib.sha256(json.dumps([asdict(cfg), slm.name], sort_keys=True,
                                     default=str).encode()).hexdigest()[:12] + ".json"  # fmt: skip


def test_a_workers_error_reaches_the_caller_and_keeps_finished_seeds(tmp_path):
    cfg = dataclasses.replace(CFG, seeds=(0,))
    slm = experiment.cached_slm(cfg, tmp_path / "cache", progress=False)
    jobs = {0: tmp_path / "partial" / "seed0.json", 1: tmp_path / "no-such-dir" / "x" / "y"}
    # a seed whose file cannot be written (its parent is a file) fails in its worker
    (tmp_path / "no-such-dir").write_text("a file, not a folder")
    with pytest.raises((NotADirectoryError, FileExistsError, OSError)):
        run_seeds_in_workers(jobs, slm_path=slm, cfg=cfg, out=tmp_path / "out", workers=2,
                             progress=False)  # fmt: skip
    assert json.loads(jobs[0].read_text())["logs"]["dagrpo"]


def test_workers_must_be_positive_and_auto_is_one_per_threads_cores(tmp_path):
    with pytest.raises(ValueError, match="workers must be a positive int"):
        run_demo(tmp_path, CFG, cache_dir=tmp_path / "cache", progress=False, workers=0)
    assert auto_workers(1, 8, cpus=2) == 2
    assert auto_workers(2, 8, cpus=2) == 1
    assert auto_workers(1, 3, cpus=16) == 3
    assert auto_workers(4, 3, cpus=2) == 1


def test_the_warm_start_keeps_its_own_threads_so_one_cache_serves_either_run():
    from offload_agents.grpo.demo_config import DemoConfig

    two, one = DemoConfig(), DemoConfig(threads=1)
    assert one.skill().key() == two.skill().key() and one.skill().threads == 2
    assert DemoConfig(slm_threads=1).skill().key() != two.skill().key()
    with pytest.raises(ValueError, match="threads must be >= 0"):
        DemoConfig(threads=-1)


def test_the_warm_start_built_in_a_child_process_is_the_one_built_here(tmp_path):
    from offload_agents.grpo.seed_pool import cached_slm_in_child

    child = cached_slm_in_child(CFG, tmp_path / "a", progress=False)
    here = experiment.cached_slm(CFG, tmp_path / "b", progress=False)
    assert child.name == here.name == experiment.slm_dir(CFG, tmp_path / "a").name
    for name in ("model.safetensors", "seen_prompts.txt"):
        assert (child / name).read_bytes() == (here / name).read_bytes(), name
    recipes = [json.loads((d / "skill_recipe.json").read_text()) for d in (child, here)]
    for key in ("config", "final_loss"):  # all but the build's seconds
        assert recipes[0][key] == recipes[1][key], key
    assert cached_slm_in_child(CFG, tmp_path / "a", progress=False) == child  # cached: no build
