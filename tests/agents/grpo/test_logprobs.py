"""The update's log-probabilities with each group's prompt run once equal running every row
whole: values and gradients, chunked or not, GPT-2 and Llama, and the fallbacks."""

import pytest
import torch

from offload_agents.grpo import logprobs
from offload_agents.grpo.logprobs import LogpSettings, token_logp
from offload_agents.slm import TinyLMConfig, build_slm, load_local_lm


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    cfg = TinyLMConfig(vocab_size=400, n_layer=2, n_embd=32, n_head=2, n_positions=384)
    model, tok = load_local_lm(build_slm(tmp_path_factory.mktemp("slm"), config=cfg,
                                         n_per_family=2, progress=False))  # fmt: skip
    return model.eval(), tok


def llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    return LlamaForCausalLM(cfg).eval()  # fmt: skip


def group_batch(vocab, prompt_lens, g, width, resp_lens, seed=0):
    """P prompts (left-padded to one length) each repeated over G rows, then G different
    responses of the given lengths (mask 1 on them) in a batch of ``width`` columns."""
    gen = torch.Generator().manual_seed(seed)
    p, start = len(prompt_lens), max(prompt_lens)
    seqs = torch.randint(3, vocab, (p * g, width), generator=gen)
    attention = torch.ones(p * g, width, dtype=torch.long)
    mask = torch.zeros(p * g, width)
    for i, n in enumerate(prompt_lens):
        prompt = torch.randint(3, vocab, (start,), generator=gen)
        rows = slice(i * g, (i + 1) * g)
        seqs[rows, :start] = prompt
        seqs[rows, : start - n] = 0  # left padding
        attention[rows, : start - n] = 0
    for row, n in enumerate(resp_lens):
        mask[row, start : start + n] = 1.0
    return seqs, attention, mask, start


def scored(model, batch, settings):
    """Log-probs (masked) and the gradient of a weighted sum of them."""
    seqs, attention, mask, start = batch
    model.zero_grad()
    logp = token_logp(model, seqs, attention, mask, start, settings)
    m = mask[:, start:]
    weights = torch.linspace(-1, 2, logp.numel()).reshape(logp.shape)
    (logp * m * weights).sum().backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    return (logp * m).detach(), grads


@pytest.mark.parametrize("chunk", [0, 1, 4, 5, 16])
def test_shared_prompts_give_the_whole_rows_values_and_gradients(gpt2, chunk):
    model, _ = gpt2
    batch = group_batch(400, [7, 12, 3], 4, 30, [1, 5, 0, 18, 2, 2, 2, 2, 9, 0, 13, 18])
    shared = LogpSettings.for_model(model, temperature=0.7, chunk=chunk, group_size=4)
    whole = LogpSettings.for_model(model, temperature=0.7, chunk=chunk, group_size=4,
                                   share_prompts=False)  # fmt: skip
    assert shared.cache_arg is not None and shared.logits_to_keep
    assert logprobs._can_share(batch[0], batch[1], batch[3], shared)
    (a, ga), (b, gb) = scored(model, batch, shared), scored(model, batch, whole)
    assert a.abs().sum() > 0 and len(ga) == len(gb) > 0
    assert torch.allclose(a, b, atol=1e-5)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(ga, gb, strict=True))


def test_shared_prompts_match_a_plain_padded_forward_on_llama():
    model = llama()
    seqs, attention, mask, start = group_batch(50, [5, 9], 3, 20, [4, 11, 0, 2, 7, 11])
    settings = LogpSettings.for_model(model, temperature=1.0, chunk=0, group_size=3)
    with torch.no_grad():
        ours = token_logp(model, seqs, attention, mask, start, settings)
        positions = (attention.cumsum(1) - 1).clamp(min=0)
        logits = model(input_ids=seqs, attention_mask=attention, position_ids=positions).logits
        ref = logits[:, start - 1 : -1].log_softmax(-1).gather(-1, seqs[:, start:, None])[..., 0]
    m = mask[:, start:]
    assert torch.allclose(ours * m, ref * m, atol=1e-5)


def test_rows_with_no_response_and_groups_that_differ_fall_back_or_give_zeros(gpt2):
    model, _ = gpt2
    settings = LogpSettings.for_model(model, temperature=1.0, chunk=2, group_size=2)
    seqs, attention, mask, start = group_batch(400, [4, 6], 2, 12, [0, 0, 0, 0])
    with torch.no_grad():
        none = token_logp(model, seqs, attention, mask, start, settings)
    assert none.shape == (4, 12 - start) and (none == 0).all()
    # a row whose prompt differs from its group's: the whole-row path, same values
    seqs, attention, mask, start = group_batch(400, [4, 6], 2, 12, [3, 5, 1, 6])
    seqs[1, start - 1] = (seqs[0, start - 1] + 1) % 400
    assert not logprobs._can_share(seqs, attention, start, settings)
    with torch.no_grad():
        got = token_logp(model, seqs, attention, mask, start, settings)
        ref = token_logp(
            model,
            seqs,
            attention,
            mask,
            start,
            LogpSettings.for_model(model, temperature=1.0, chunk=0, group_size=1),
        )
    m = mask[:, start:]
    assert torch.allclose(got * m, ref * m, atol=1e-6)


def test_settings_read_the_forward_signature():
    class NoCache(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, position_ids=None):
            raise AssertionError("not called")

    s = LogpSettings.for_model(NoCache(), temperature=1.0, chunk=0, group_size=4)
    assert s.cache_arg is None and not s.logits_to_keep
    seqs, attention, mask, start = group_batch(400, [3], 4, 8, [2, 2, 2, 2])
    assert not logprobs._can_share(seqs, attention, start, s)
    assert LogpSettings.for_model(llama(), temperature=1.0, chunk=0, group_size=4).cache_arg
