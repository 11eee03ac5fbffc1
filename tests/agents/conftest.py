"""Fixtures shared by the agents' tests."""

import pytest


@pytest.fixture(scope="module")
def tiny_slm(tmp_path_factory):
    """A tiny character-level SLM of the skilled-SLM kit (two training steps), saved locally."""
    from offload_agents.slm.skill import SkillConfig, build_skilled_slm

    cfg = SkillConfig(steps=2, batch_size=4, n_layer=1, n_embd=32, n_head=2, threads=1)
    return str(build_skilled_slm(tmp_path_factory.mktemp("slm") / "slm", cfg, progress=False))
