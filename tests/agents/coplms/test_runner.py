"""The Co-PLMs runner: public checkpoints and (seed, method) jobs in worker processes give what
one process gives."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from offload_agents.coplms import run_experiment
from offload_agents.coplms.methods import METHODS
from offload_agents.coplms.public import load_public
from offload_agents.coplms.runner import BEFORE, _missing, auto_workers, build_public

from .test_coplms import TINY

SMALL = replace(TINY, server_pretrain_steps=2, slm_pretrain_steps=2, dpm_distill_steps=2,
                pretrain_batch=4, rounds=1, unlabeled_per_device=0)  # fmt: skip
"""TINY with public checkpoints (two steps each), so that the workers build them too."""


def _same_weights(a, b) -> bool:
    sa, sb = load_public(a).state_dict(), load_public(b).state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_workers_give_the_results_of_one_process(tmp_path):
    methods = ("coplms", "standalone", "server")
    one = run_experiment(SMALL, seeds=(0, 1), methods=methods, progress=False,
                         cache_dir=tmp_path / "one", workers=1)  # fmt: skip
    reported: list[list[int]] = []
    two = run_experiment(SMALL, seeds=(0, 1), methods=methods, progress=False,
                         cache_dir=tmp_path / "two", workers=2,
                         on_seed=lambda r: reported.append(r["seeds"]))  # fmt: skip
    assert reported == [[0], [0, 1]]  # seeds reported in order as each finishes
    # the checkpoints built side by side are those built one after another
    pub_one = build_public(SMALL, tmp_path / "one", workers=1, progress=False)
    pub_two = build_public(SMALL, tmp_path / "two", workers=2, progress=False)
    assert pub_one.seen == pub_two.seen
    for a, b in [(pub_one.server, pub_two.server), (pub_one.dpm, pub_two.dpm),
                 *zip(pub_one.slms, pub_two.slms, strict=True)]:  # fmt: skip
        assert a.name == b.name and _same_weights(a, b)
    assert "distilled" in pub_two.dpm.name
    # and every job's numbers, per round and per task, are the same
    assert one["runs"] == two["runs"] and one["records"] == two["records"]
    assert one["before"] == two["before"] and one["comparisons"] == two["comparisons"]
    assert not _missing(SMALL, tmp_path / "two")


def test_runner_checks_and_auto_workers(tmp_path):
    assert auto_workers(1, 3, cpus=8) == 3 and auto_workers(4, 10, cpus=2) == 1
    with pytest.raises(ValueError, match="workers must be >= 0"):
        run_experiment(TINY, methods=("coplms",), cache_dir=tmp_path, workers=-1)
    with pytest.raises(ValueError, match="threads"):
        replace(TINY, threads=0)
    assert BEFORE not in METHODS  # a seed's "before" job never shadows a method
