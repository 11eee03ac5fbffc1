"""Sampling a GRPO group with each prompt run once: the model's own conditionals (near-greedy
sampling reproduces greedy decoding), seeded, min_new_tokens, padding, global RNG untouched."""

import pytest
import torch

from offload_agents.grpo.sampling import sample_groups
from offload_agents.slm import TinyLMConfig, build_slm, format_prompt, load_local_lm
from offload_gym.models.generation import generate_tokens


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    cfg = TinyLMConfig(vocab_size=400, n_layer=2, n_embd=32, n_head=2, n_positions=384)
    return load_local_lm(build_slm(tmp_path_factory.mktemp("slm"), config=cfg, n_per_family=2,
                                   progress=False))  # fmt: skip


def prompt_ids(tok, texts):
    return [tok(format_prompt(t), add_special_tokens=False)["input_ids"] for t in texts]


def test_near_greedy_sampling_reproduces_greedy_decoding(lm):
    """At a tiny temperature every draw is the argmax, so the rows must equal greedy
    ``generate`` of every row whole: the cached prompt, positions and padding are right."""
    model, tok = lm
    ids = prompt_ids(tok, ["What is 2+3?", "Compute the derivative of x**2 + 7*x - 1."])
    got = sample_groups(model, tok, ids, 3, max_new_tokens=12, temperature=1e-4, seed=0)
    ref = generate_tokens(model, tok, [r for r in ids for _ in range(3)], max_new_tokens=12)
    assert got is not None and got.prompt_len == ref.prompt_len
    n = min(got.sequences.shape[1], ref.sequences.shape[1])
    assert torch.equal(got.sequences[:, :n], ref.sequences[:, :n])
    assert torch.equal(got.attention_mask[:, :n], ref.attention_mask[:, :n])


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(lm):
    model, tok = lm
    ids = prompt_ids(tok, ["What is 7*8?", "Sort [3, 1, 2]."])
    state = torch.get_rng_state()
    a = sample_groups(model, tok, ids, 4, max_new_tokens=10, temperature=1.0, seed=5)
    b = sample_groups(model, tok, ids, 4, max_new_tokens=10, temperature=1.0, seed=5)
    c = sample_groups(model, tok, ids, 4, max_new_tokens=10, temperature=1.0, seed=6)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.sequences, b.sequences) and not torch.equal(a.sequences, c.sequences)
    prompt = a.sequences[:, : a.prompt_len]
    assert all(torch.equal(prompt[i], prompt[(i // 4) * 4]) for i in range(8))  # rows of a group
    assert len({tuple(r.tolist()) for r in a.sequences[:4, a.prompt_len :]}) > 1  # they differ


def test_min_new_tokens_and_rows_padded_after_they_end(lm):
    model, tok = lm
    ids = prompt_ids(tok, ["What is 1+1?"])
    eos, pad = tok.eos_token_id, tok.pad_token_id
    # some of 16 rows end within 60 tokens at temperature 0.5; none before min_new_tokens
    g = sample_groups(model, tok, ids, 16, max_new_tokens=60, temperature=0.5, seed=1,
                      min_new_tokens=6)  # fmt: skip
    new = g.sequences[:, g.prompt_len :]
    assert not (new[:, :6] == eos).any()
    ended = [row for row in new.tolist() if eos in row]
    assert ended  # some rows end before the longest, and are padded after
    for row in ended:
        assert all(t == pad for t in row[row.index(eos) + 1 :])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sample_groups(model, tok, ids, 2, max_new_tokens=4, temperature=0.0, seed=0)


def test_a_model_without_a_cache_argument_gets_none(lm):
    _, tok = lm

    class NoCache(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask=None):
            raise AssertionError("not called")

    assert sample_groups(NoCache(), tok, [[1, 2]], 2, max_new_tokens=3, temperature=1.0,
                         seed=0) is None  # fmt: skip


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_the_preallocated_cache_samples_the_same_tokens_as_concatenation(lm, monkeypatch, arch):
    """The decode's buffers written in place (`preallocate`) against the default cache that
    concatenates at every token: the same draws, token for token, on both architectures."""
    from offload_agents.coplms.config import ModelSpec
    from offload_agents.coplms.core import build_model
    from offload_agents.grpo import sampling
    from offload_agents.slm.skill import char_tokenizer

    tok = char_tokenizer()
    model = build_model(ModelSpec(arch, n_layer=2, n_embd=32, n_head=2), tok, seed=3)
    ids = [tok(format_prompt(t), add_special_tokens=False)["input_ids"]
           for t in ("What is 12+30?", "Let p(x) = 2x. What is p(2)?")]  # fmt: skip
    real, used = sampling.preallocate, []
    monkeypatch.setattr(sampling, "preallocate",
                        lambda cache, room: used.append(real(cache, room)) or used[-1])  # fmt: skip
    got = sample_groups(model, tok, ids, 4, max_new_tokens=40, temperature=1.0, seed=9)
    assert {type(layer).__name__ for layer in used[0].layers} == {"_GrowingLayer"}
    monkeypatch.setattr(sampling, "preallocate", lambda cache, room: cache)
    ref = sample_groups(model, tok, ids, 4, max_new_tokens=40, temperature=1.0, seed=9)
    assert got.sequences.shape[1] > got.prompt_len + 5
    assert torch.equal(got.sequences, ref.sequences)


def test_the_preallocated_cache_refuses_to_overflow():
    from transformers.cache_utils import DynamicCache

    from offload_agents.grpo.sampling import preallocate

    cache = DynamicCache()
    cache.update(torch.zeros(2, 1, 3, 4), torch.zeros(2, 1, 3, 4), 0)
    cache = preallocate(cache, room=2)
    keys, _ = cache.update(torch.ones(2, 1, 2, 4), torch.ones(2, 1, 2, 4), 0)
    assert keys.shape == (2, 1, 5, 4) and float(keys[:, :, 3:].min()) == 1.0
    assert cache.get_seq_length() == 5
    with pytest.raises(RuntimeError, match="holds 5 positions, 6 needed"):
        cache.update(torch.ones(2, 1, 1, 4), torch.ones(2, 1, 1, 4), 0)


def test_ended_rows_leave_the_batch_and_every_draw_stays_the_same(lm, monkeypatch):
    """Dropping ended rows from the model's batch (`LiveRows`) changes no token: the draws
    are laid out over all rows, so each live row gets the draws it would have got."""
    from offload_agents.decoding import LiveRows

    model, tok = lm
    ids = prompt_ids(tok, ["What is 1+1?", "Sort [3, 1, 2]."])
    real, dropped = LiveRows.drop, []
    monkeypatch.setattr(LiveRows, "drop",
                        lambda self, ended: dropped.append(int(ended.sum())) or real(self, ended))  # fmt: skip
    got = sample_groups(model, tok, ids, 8, max_new_tokens=60, temperature=0.5, seed=1)
    assert dropped  # rows ended at different times and left the batch
    monkeypatch.setattr(LiveRows, "should_drop", lambda self, ended: False)
    ref = sample_groups(model, tok, ids, 8, max_new_tokens=60, temperature=0.5, seed=1)
    assert torch.equal(got.sequences, ref.sequences)
