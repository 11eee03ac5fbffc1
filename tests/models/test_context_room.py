"""Generation never runs past a model's context window (prompt + new tokens)."""

import pytest

from offload_agents.slm.skill import SkillConfig, build_char_model, char_tokenizer
from offload_gym.models.hf import context_room, generate_batch


@pytest.fixture(scope="module")
def small():
    tok = char_tokenizer()
    cfg = SkillConfig(n_layer=1, n_embd=16, n_head=2, n_positions=40, threads=1)
    return build_char_model(tok, cfg).eval(), tok


def test_new_tokens_are_cut_to_the_window(small):
    model, tok = small
    assert context_room(model, 30, 64) == 10 and context_room(model, 5, 8) == 8
    out = generate_batch(model, tok, ["x" * 30, "short"], max_new_tokens=64)  # 30 + 64 > 40
    assert all(n <= 10 for _, _, n in out)


def test_a_prompt_that_fills_the_window_is_a_clear_error(small):
    model, tok = small
    with pytest.raises(ValueError, match="context window of 40 tokens"):
        generate_batch(model, tok, ["y" * 45], max_new_tokens=4)


def test_models_without_a_window_are_left_alone():
    class NoWindow:
        config = object()

    assert context_room(NoWindow(), 10_000, 7) == 7
