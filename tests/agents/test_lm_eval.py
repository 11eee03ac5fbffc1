"""Evaluating a causal LM as the text view's local model."""

import pytest

from offload_agents.grpo.lm_eval import always_help, eval_stream, evaluate_lm, never_help
from offload_agents.slm import TinyLMConfig, build_slm, load_local_lm
from offload_gym import metrics

TINY = TinyLMConfig(vocab_size=400, n_layer=1, n_embd=32, n_head=2, n_positions=384)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_local_lm(build_slm(tmp_path_factory.mktemp("slm"), config=TINY, n_per_family=2,
                                   progress=False))  # fmt: skip


def test_eval_stream_is_fixed_math_then_code():
    a, b = eval_stream(3, seed=5), eval_stream(3, seed=5)
    assert [t.id for g in a.groups for t in g.source] == [t.id for g in b.groups for t in g.source]
    assert a.group_names == ("math", "code") and a.switch_points == (3,)


def test_routes_bound_the_usage(lm):
    model, tok = lm
    stream = eval_stream(4, seed=1)
    cloud = evaluate_lm(model, tok, stream, budget=1.0, route=always_help, max_new_tokens=4)
    local = evaluate_lm(model, tok, stream, budget=1.0, route=never_help, max_new_tokens=4)
    capped = evaluate_lm(model, tok, stream, budget=0.25, route=always_help, max_new_tokens=4)
    assert metrics.cloud_usage(cloud) == 1.0 and metrics.cloud_usage(local) == 0.0
    assert metrics.cloud_usage(capped) == 0.25  # the hard budget holds: 2 of 8
    assert [r["task_group"] for r in cloud] == ["math"] * 4 + ["code"] * 4
    assert all(0.0 < r["confidence"] <= 1.0 for r in local)
