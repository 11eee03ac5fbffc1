"""The tiny-SLM kit: built, trained and reloaded locally, no downloads."""

import pytest
import torch

from offload_agents.slm import (
    HELP_REQUEST,
    TinyLMConfig,
    build_slm,
    build_tiny_model,
    build_tokenizer,
    format_prompt,
    load_local_lm,
    training_tasks,
    warm_start,
)

TINY = TinyLMConfig(vocab_size=400, n_layer=1, n_embd=32, n_head=2, n_positions=384)


@pytest.fixture(scope="module")
def tasks():
    return training_tasks(4, seed=0, max_difficulty=1)


@pytest.fixture(scope="module")
def tokenizer(tasks):
    return build_tokenizer((format_prompt(t.prompt) + t.solution for t in tasks), TINY.vocab_size)


def test_training_tasks_cover_math_and_code(tasks):
    assert {t.domain for t in tasks} == {"math", "code"} and len(tasks) == 4 * 10


def test_tokenizer_keeps_the_marker_whole(tokenizer):
    ids = tokenizer(HELP_REQUEST)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<unknown>")
    assert ids[-1] == tokenizer.convert_tokens_to_ids("</unknown>")
    text = "def f(x):\n    return x + 1\n"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level: lossless
    assert tokenizer.pad_token_id is not None and tokenizer.eos_token_id is not None


def test_warm_start_lowers_the_loss(tasks, tokenizer):
    model = build_tiny_model(tokenizer, TINY, seed=0)
    losses = warm_start(model, tokenizer, tasks, epochs=6, batch_size=8, lr=1e-2, progress=False)
    assert len(losses) == 6 * 5
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_build_save_and_load(tmp_path):
    out = build_slm(tmp_path / "slm", config=TINY, n_per_family=2, progress=False)
    model, tok = load_local_lm(out)
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    enc = tok(format_prompt("Compute the value of 1 + 1."), return_tensors="pt")
    out_ids = model.generate(
        **enc, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id
    )
    assert out_ids.shape[1] == enc["input_ids"].shape[1] + 5 or out_ids[0, -1] == tok.eos_token_id


def test_load_adds_the_marker_to_a_foreign_model(tmp_path, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    plain = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer)
    plain.eos_token = "<|endoftext|>"
    n_before = len(tokenizer.get_vocab())
    model = GPT2LMHeadModel(GPT2Config(vocab_size=n_before, n_layer=1, n_embd=16, n_head=2))
    model.save_pretrained(tmp_path / "foreign")
    plain.save_pretrained(tmp_path / "foreign")
    loaded, tok = load_local_lm(tmp_path / "foreign")
    assert tok.pad_token is not None
    assert loaded.get_input_embeddings().weight.shape[0] == len(tok)


def test_bad_config():
    with pytest.raises(ValueError, match="divisible"):
        TinyLMConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="at least one task"):
        warm_start(torch.nn.Linear(1, 1), None, [])


def test_the_kit_leaves_torchs_global_rng_alone(tasks, tokenizer):
    import torch

    torch.manual_seed(1234)
    want = torch.rand(3)
    torch.manual_seed(1234)
    model = build_tiny_model(tokenizer, TINY, seed=5)
    warm_start(model, tokenizer, tasks[:4], batch_size=2, max_len=128, progress=False, seed=5)
    assert torch.equal(torch.rand(3), want)  # the caller's stream is where it was
    a, b = build_tiny_model(tokenizer, TINY, seed=5), build_tiny_model(tokenizer, TINY, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
