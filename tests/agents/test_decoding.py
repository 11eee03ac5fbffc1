"""Greedy decoding in our own loop (`offload_agents.decoding.greedy_tokens`, the evaluations'
path through `generate_responses`) against Hugging Face's greedy ``generate``
(`generate_batch`): the same tokens and confidences, on GPT-2 and Llama, with rows that end at
different lengths dropped from the batch, suppressed tokens, and the fallbacks."""

import math
from collections import Counter

import pytest
import torch

from offload_agents import decoding
from offload_agents.coplms.config import ModelSpec
from offload_agents.coplms.core import build_model
from offload_agents.lm_eval import generate_responses
from offload_agents.slm.skill import char_tokenizer
from offload_agents.slm.template import format_prompt
from offload_gym.models.generation import generate_batch, generate_tokens
from offload_gym.tasks import Task

PROMPTS = ["What is 12+30?", "Let p(x) = 2x. What is p(2)?", "Sort [3, 1, 2].", "1-1?",
           "Compute the derivative of x**3 - 4*x + 7 with respect to x.", "What is 7*8?",
           "def f(x):\n    return x + 1\nWhat is f(4)?"]  # fmt: skip


def _tasks(texts):
    return [Task(id=f"t{i}", domain="math", prompt=t, answer="0") for i, t in enumerate(texts)]


def _ends(model, tok, n):
    ids = [tok(format_prompt(p), add_special_tokens=False)["input_ids"] for p in PROMPTS]
    g = generate_tokens(model, tok, ids, max_new_tokens=n)
    new = g.sequences[:, g.prompt_len :].tolist()
    return [row.index(tok.eos_token_id) if tok.eos_token_id in row else None for row in new], new


def _ending_model(arch):
    """A random model whose end-of-text takes the place of a token it writes, so that its
    greedy rows end at different lengths (some not at all within the room)."""
    tok = char_tokenizer()
    model = build_model(ModelSpec(arch, n_layer=2, n_embd=32, n_head=2), tok, seed=5)
    _, new = _ends(model, tok, 40)
    head = model.get_output_embeddings().weight
    for token, _ in Counter(t for row in new for t in row[2:]).most_common():
        saved = head[tok.eos_token_id].clone()
        with torch.no_grad():
            head[tok.eos_token_id] = head[token] * 1.05
        ends, _ = _ends(model, tok, 40)
        if len({e for e in ends if e is not None}) >= 2 and None in ends:
            return model, tok
        with torch.no_grad():
            head[tok.eos_token_id] = saved
    raise AssertionError("no token gives rows that end at different lengths")


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def ending(request):
    return _ending_model(request.param)


def _reference(model, tok, prompts, n, suppress=()):
    out = generate_batch(model, tok, [format_prompt(p) for p in prompts], max_new_tokens=n,
                         batch_size=len(prompts), keep_special_tokens=True,
                         suppress=suppress)  # fmt: skip
    return [t for t, _, _ in out], [math.exp(m) for _, m, _ in out]


def test_greedy_loop_gives_generates_tokens_and_confidences(ending, monkeypatch):
    model, tok = ending
    kept = []
    real = decoding._GrowingLayer.keep
    monkeypatch.setattr(decoding._GrowingLayer, "keep",
                        lambda self, rows: kept.append(len(rows)) or real(self, rows))  # fmt: skip
    texts, confs = generate_responses(model, tok, _tasks(PROMPTS), max_new_tokens=40,
                                      batch_size=4)  # fmt: skip
    ref_texts, ref_confs = _reference(model, tok, PROMPTS, 40)
    ends, _ = _ends(model, tok, 40)
    assert len(set(ends)) >= 3  # rows end at different lengths, and some never
    assert kept  # ended rows were dropped from the batch
    assert texts == ref_texts
    assert confs == pytest.approx(ref_confs, rel=1e-5)


def test_a_suppressed_token_is_never_written_and_matches_generate(ending):
    model, tok = ending
    _, new = _ends(model, tok, 8)
    written = [t for row in new for t in row if t != tok.eos_token_id]
    text = next(s for s in (tok.decode([t]) for t in written)
                if len(tok(s, add_special_tokens=False)["input_ids"]) == 1)  # fmt: skip
    (token,) = tok(text, add_special_tokens=False)["input_ids"]
    got = decoding.greedy_tokens(model, tok, [tok(format_prompt(p), add_special_tokens=False)
                                              ["input_ids"] for p in PROMPTS],
                                 max_new_tokens=8, banned=[token])  # fmt: skip
    assert got is not None and token not in {t for row in got[0] for t in row}
    texts, confs = generate_responses(model, tok, _tasks(PROMPTS), max_new_tokens=8,
                                      suppress=[text])  # fmt: skip
    ref_texts, ref_confs = _reference(model, tok, PROMPTS, 8, [text])
    assert texts == ref_texts and confs == pytest.approx(ref_confs, rel=1e-5)


def test_row_order_and_batch_size_change_no_response(ending):
    model, tok = ending
    a, _ = generate_responses(model, tok, _tasks(PROMPTS), max_new_tokens=30, batch_size=2)
    b, _ = generate_responses(model, tok, _tasks(PROMPTS[::-1]), max_new_tokens=30)
    assert a == b[::-1]


def test_a_suppressed_string_of_several_tokens_goes_through_generate(ending, monkeypatch):
    model, tok = ending
    from offload_agents import lm_eval

    monkeypatch.setattr(lm_eval, "greedy_tokens",
                        lambda *a, **k: pytest.fail("the greedy loop was used"))  # fmt: skip
    texts, _ = generate_responses(model, tok, _tasks(PROMPTS[:2]), max_new_tokens=6,
                                  suppress=["ab"])  # fmt: skip
    assert texts == _reference(model, tok, PROMPTS[:2], 6, ["ab"])[0]


def test_a_model_without_a_cache_argument_gets_none():
    tok = char_tokenizer()

    class NoCache(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask=None):
            raise AssertionError("not called")

    assert decoding.greedy_tokens(NoCache(), tok, [[1, 2]], max_new_tokens=3) is None


def test_dropping_rows_keeps_each_rows_cache():
    """`_GrowingLayer.keep` keeps the chosen rows' keys and values, filled part and room."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache()
    keys = torch.arange(4 * 1 * 3 * 2, dtype=torch.float32).reshape(4, 1, 3, 2)
    cache.update(keys, -keys, 0)
    cache = decoding.preallocate(cache, room=2)
    for layer in cache.layers:
        layer.keep(torch.tensor([1, 3]))
    k, v = cache.update(torch.ones(2, 1, 1, 2), torch.ones(2, 1, 1, 2), 0)
    assert torch.equal(k[:, :, :3], keys[[1, 3]]) and torch.equal(v[:, :, :3], -keys[[1, 3]])
    assert k.shape == (2, 1, 4, 2) and float(k[:, :, 3].min()) == 1.0
