"""Generation never runs past a model's context window (prompt + new tokens)."""

import pytest

from offload_agents.slm.skill import SkillConfig, build_char_model, char_tokenizer
from offload_gym.models.generation import context_room, fit_prompts, generate_batch


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


def test_a_prompt_that_fills_the_window_is_cut_from_the_left_with_a_warning(small):
    model, tok = small
    with pytest.warns(UserWarning, match="context window of 40; cut from the left"):
        ids = fit_prompts(model, tok, ["y" * 44 + "END", "fits"], max_new_tokens=4)
    assert len(ids[0]) == 36 and tok.decode(ids[0]).endswith("END")  # 40 - 4 kept, the end
    assert tok.decode(ids[1]) == "fits"  # a prompt that fits is never cut
    with pytest.warns(UserWarning, match="cut from the left"):
        out = generate_batch(model, tok, ["y" * 45], max_new_tokens=64)
    assert out[0][2] <= 20  # at most window // 2 new tokens after a cut prompt


def test_own_models_of_a_small_window_run_through_the_cli_in_both_views(tmp_path, capsys):
    """A model the kit built and saved (GPT-2 style, 384 positions) as --local and --cloud: no
    position-embedding overrun with the default 256 / 512 new tokens or --max-new-tokens."""
    import json
    import warnings

    from offload_agents.cli import main
    from offload_agents.slm.skill import SkillConfig, build_skilled_slm

    cfg = SkillConfig(steps=1, batch_size=2, n_layer=1, n_embd=16, n_head=2, n_positions=384,
                      threads=1)  # fmt: skip
    path = str(build_skilled_slm(tmp_path / "slm", cfg, progress=False))
    runs = [["--env", "OffloadStreamRouter-v0", "--policy", "random", "--local", path,
             "--cloud", path],
            ["--env", "OffloadStream-v0", "--policy", "cloud", "--cloud", path],
            ["--env", "OffloadStreamRouter-v0", "--policy", "local", "--local", path,
             "--max-new-tokens", "1000"]]  # fmt: skip
    for extra in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # long code prompts may be cut
            assert main(["rollout", "--num-tasks", "4", "--budget", "0.5", *extra]) == 0, extra
        summary = json.loads(capsys.readouterr().out)
        assert summary["steps"] == 4


def test_models_without_a_window_are_left_alone():
    class NoWindow:
        config = object()

    assert context_room(NoWindow(), 10_000, 7) == 7
