"""Evaluating a causal LM as the text view's local model."""

import numpy as np
import pytest

from offload_agents.lm_eval import always_help, eval_stream, evaluate_lm, never_help
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


def test_requests_beyond_the_budget_are_answered_locally(lm):
    """GAPG's evaluation: a help request the hard budget refuses gets the model's local answer
    (asking suppressed), graded as the local route grades it; the record keeps the request."""
    model, tok = lm
    stream = eval_stream(4, seed=1)
    local = evaluate_lm(model, tok, stream, budget=1.0, route=never_help, max_new_tokens=4)
    capped = evaluate_lm(model, tok, stream, budget=0.25, route=always_help, max_new_tokens=4)
    assert [r["local_fallback"] for r in capped] == [False] * 2 + [True] * 6
    assert all(r["action"] == "cloud" for r in capped)
    assert [r["offload_refused"] for r in capped] == [False] * 2 + [True] * 6
    assert [r["correct"] for r in capped[2:]] == [r["correct"] for r in local[2:]]
    assert not any(r["local_fallback"] for r in local)


def _always_asking(model, tok):
    """A copy of ``model`` whose every next token is the offload marker: the final layer norm
    outputs a fixed vector aligned with the marker's (tied) embedding."""
    import copy

    import torch

    asker = copy.deepcopy(model)
    marker = tok.convert_tokens_to_ids("<unknown>")
    with torch.no_grad():
        emb = asker.get_input_embeddings().weight
        emb[marker] *= 20.0
        asker.transformer.ln_f.weight.zero_()
        asker.transformer.ln_f.bias.copy_(emb[marker])
    return asker


def test_suppressed_strings_are_never_generated(lm):
    from offload_gym.models.generation import generate_batch

    model, tok = lm
    asker = _always_asking(model, tok)
    prompts = [t.prompt for g in eval_stream(2, seed=3).groups for t in g.source]
    free = generate_batch(asker, tok, prompts, max_new_tokens=6, keep_special_tokens=True)
    assert all(text.startswith("<unknown>") for text, _, _ in free)
    banned = generate_batch(asker, tok, prompts, max_new_tokens=6, keep_special_tokens=True,
                            suppress=["<unknown>"])  # fmt: skip
    assert all("<unknown>" not in text for text, _, _ in banned)
    with pytest.raises(ValueError, match="suppress"):
        generate_batch(model, tok, prompts, max_new_tokens=2, suppress=[""])


def test_a_model_that_always_asks_falls_back_to_local_answers(lm):
    model, tok = lm
    asker = _always_asking(model, tok)
    records = evaluate_lm(asker, tok, eval_stream(4, seed=1), budget=0.25, max_new_tokens=4)
    assert [r["offloaded"] for r in records] == [True] * 2 + [False] * 6
    assert [r["local_fallback"] for r in records] == [False] * 2 + [True] * 6


def test_a_shared_greedy_memo_decodes_each_prompt_once_and_changes_no_record(lm):
    import copy

    import torch

    from offload_agents.lm_eval import GreedyMemo

    model, tok = copy.deepcopy(lm[0]), lm[1]
    stream = eval_stream(4, seed=2)
    alone = [evaluate_lm(model, tok, stream, budget=0.25, route=r, max_new_tokens=6)
             for r in (None, never_help, always_help)]  # fmt: skip
    memo = GreedyMemo(model, tok, 6)
    shared = [evaluate_lm(model, tok, stream, budget=0.25, route=r, max_new_tokens=6, memo=memo)
              for r in (None, never_help, always_help)]  # fmt: skip
    assert shared == alone
    tasks, _ = stream.draw(np.random.default_rng(0))
    texts, _ = memo.responses(tasks)
    asking = sum("<unknown>" in t for t in texts)
    assert memo.decoded == 8 + asking  # each prompt once, plus one forced answer per asker
    with pytest.raises(ValueError, match="another model or length"):
        evaluate_lm(model, tok, stream, budget=0.25, max_new_tokens=7, memo=memo)
    with torch.no_grad():  # an optimizer step in between: the memo's responses are stale
        next(model.parameters()).add_(0.01)
    with pytest.raises(RuntimeError, match="weights changed"):
        evaluate_lm(model, tok, stream, budget=0.25, max_new_tokens=6, memo=memo)


def test_ask_probabilities_are_the_first_tokens_chance_of_the_marker(lm):
    """A model that always asks gives the marker most of the mass on every prompt; the plain model's
    probabilities equal a softmax of its own next-token logits at the end of each prompt,
    computed here without padding, one prompt at a time; a tokenizer without the marker as
    one token is refused."""
    import torch

    from offload_agents.lm_eval import ask_probabilities
    from offload_agents.slm.template import format_prompt

    model, tok = lm
    tasks, _ = eval_stream(3, seed=2).draw(np.random.default_rng(0))
    assert np.all(ask_probabilities(_always_asking(model, tok), tok, tasks) > 0.9)
    got = ask_probabilities(model, tok, tasks, batch_size=4)  # padded batches of mixed lengths
    marker = tok.convert_tokens_to_ids("<unknown>")
    for task, p in zip(tasks, got, strict=True):
        ids = torch.tensor([tok(format_prompt(task.prompt))["input_ids"]])
        with torch.no_grad():
            want = torch.softmax(model(input_ids=ids).logits[0, -1].float(), -1)[marker]
        assert p == pytest.approx(float(want), rel=1e-4, abs=1e-7)
    with pytest.raises(ValueError, match="as one token"):
        ask_probabilities(model, tok, tasks, marker="[HELP]")
