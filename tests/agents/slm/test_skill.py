"""The skilled-SLM kit: tokenizer, answer format, fresh data, training and the skill table."""

import re
from dataclasses import replace

import pytest

from offload_agents.slm import load_local_lm
from offload_agents.slm.skill import (
    DRILL_PROMPT,
    HELP_REQUEST,
    DrillSampler,
    SkillConfig,
    TaskSampler,
    char_tokenizer,
    drill_target,
    encode_supervised,
    help_share,
    load_seen,
    math_steps,
    prompt_digest,
    reverse_digits,
    skill_table,
    train_skilled_slm,
    unseen_tasks,
    worked_steps,
)
from offload_gym.scoring import grade_response
from offload_gym.tasks import make_generator

TINY = SkillConfig(steps=3, batch_size=4, n_layer=1, n_embd=32, n_head=2, n_positions=512,
                   threads=1, max_difficulty=2)  # fmt: skip


def test_one_token_per_character_and_lossless():
    tok = char_tokenizer()
    text = "p(-3) = 12*x^2;\n    return sorted(xs)[::-1]  # ü"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert len(tok("1234567890")["input_ids"]) == 10
    marker = tok(HELP_REQUEST)["input_ids"]
    assert marker[0] == tok.convert_tokens_to_ids("<unknown>")
    assert marker[-1] == tok.convert_tokens_to_ids("</unknown>")


def test_horner_steps_by_hand():
    t = make_generator("polynomials", seed=1, max_difficulty=1)[0]  # p(x) = 2x at 2
    assert math_steps(t) == ["2*2=4", "4+0=4"]
    assert reverse_digits("-12*3=-36") == "-21*3=-63"


@pytest.mark.parametrize("family", ["arithmetic", "linear_equations", "polynomials",
                                    "derivatives", "fractions", "word_problems"])  # fmt: skip
def test_every_math_target_is_graded_correct(family):
    for d in (1, 3, 5):
        gen = make_generator(family, seed=3, min_difficulty=d, max_difficulty=d)
        for i in range(8):
            t = gen[i]
            target = worked_steps(t)
            assert target.endswith("####" + t.answer)
            assert grade_response(t, target).correct, (t.prompt, target)
            assert not grade_response(t, target.rsplit("####", 1)[0] + "####9999999").correct


@pytest.mark.parametrize("family", ["code_arithmetic", "code_lists", "code_strings"])
def test_every_code_body_passes_its_tests(family):
    for d in (1, 4):
        gen = make_generator(family, seed=3, min_difficulty=d, max_difficulty=d)
        for i in range(3):
            t = gen[i]
            body = worked_steps(t)
            assert not body.startswith((" ", "def"))
            assert grade_response(t, body).correct, body
            assert not grade_response(t, "return None").correct


def test_sampler_draws_fresh_tasks_deterministically():
    a = TaskSampler(SkillConfig(), seed=0).take(200)
    b = TaskSampler(SkillConfig(), seed=0).take(200)
    assert [t.prompt for t in a] == [t.prompt for t in b]
    keys = {(t.metadata["family"], t.difficulty, t.metadata["index"]) for t in a}
    assert len(keys) == 200  # never the same task twice
    assert {t.difficulty for t in a} == {1, 2, 3}
    share = sum(t.metadata["family"] == "derivatives" for t in a) / 200
    assert 0.2 < share < 0.45  # weight 1.5 of 4.5


def test_help_share_and_config_errors():
    assert help_share(1, SkillConfig()) == 0.0 and help_share(3, SkillConfig()) == 0.4
    assert help_share(2, SkillConfig()) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="difficulty"):
        SkillConfig(min_difficulty=3, max_difficulty=2)
    with pytest.raises(ValueError, match="family_weights"):
        SkillConfig(family_weights={"chess": 1.0})
    with pytest.raises(ValueError, match="steps"):
        SkillConfig(steps=0)


def test_drills_are_single_steps_of_fresh_math_tasks_with_loss_on_results():
    rows = DrillSampler(SkillConfig(), seed=11).take(4, 6)
    again = DrillSampler(SkillConfig(), seed=11).take(4, 6)
    assert rows == again and len(rows) == 4
    for text, mask in rows:
        steps = text.split(";")
        assert len(steps) == 6 and len(mask) == len(text)
        for step in steps:  # each step true arithmetic (digits reversed back)
            lhs, res = reverse_digits(step).split("=")
            a, op, b = re.match(r"^(-?\d+)([+*/])(-?\d+)$", lhs).groups()
            x, y = int(a), int(b)
            assert int(res) == (x + y if op == "+" else x * y if op == "*" else x / y), step
        # the loss sees each result (and its separator), never an operand
        shown = "".join(c for c, m in zip(text, mask, strict=True) if m)
        assert shown == ";".join(s.split("=")[1] for s in steps)
    tok = char_tokenizer()
    text, mask = drill_target(["-6+1=-5", "8+5=13"])
    enc = encode_supervised(tok, [DRILL_PROMPT], [text], 512, [mask])
    labelled = tok.decode([i for i in enc["labels"][0].tolist() if i != -100])
    assert labelled == "-5;31<|endoftext|>"  # results, separator and end of text only
    with pytest.raises(ValueError, match="one flag per token"):
        encode_supervised(tok, [DRILL_PROMPT], [text], 512, [mask[:-1]])


def test_drills_need_math_and_count_in_training(tmp_path):
    with pytest.raises(ValueError, match="drill_rows"):
        SkillConfig(math_families=(), drill_rows=2)
    with pytest.raises(ValueError, match="drill_rows"):
        SkillConfig(drill_rows=-1)
    off = train_skilled_slm(replace(TINY, drill_rows=0), progress=False)
    on = train_skilled_slm(replace(TINY, drill_rows=2, drill_ops=3), progress=False)
    assert off.losses != on.losses and len(on.seen) == len(off.seen) == 12


def test_train_save_load_and_skill_table_on_unseen_prompts(tmp_path):
    slm = train_skilled_slm(TINY, progress=False)
    assert len(slm.losses) == 3 and len(slm.seen) == 12
    out = slm.save(tmp_path / "slm")
    model, tok = load_local_lm(out)
    assert load_seen(out) == slm.seen
    rows = skill_table(model, tok, ["polynomials", "code_lists"], [1], n=3, seen=slm.seen,
                       max_new_tokens=8)  # fmt: skip
    assert [(r["family"], r["n"]) for r in rows] == [("polynomials", 3), ("code_lists", 3)]
    assert all(0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["accuracy_all"] <= 1.0 for r in rows)


def test_skill_table_reports_all_draws_beside_unseen(tmp_path):
    """A "model" that answers one task right: the first draw counts in ``accuracy_all``; once
    that prompt is marked seen, the unseen accuracy no longer sees it."""
    from unittest import mock

    gen = make_generator("polynomials", seed=5, min_difficulty=1, max_difficulty=1)
    first = gen[0]

    def fake(model, tok, tasks, **kw):
        return [worked_steps(t) if t.prompt == first.prompt else "####999999" for t in tasks], []

    with mock.patch("offload_agents.lm_eval.generate_responses", fake):
        open_rows = skill_table(None, None, ["polynomials"], [1], n=4, seed=5)
        seen_rows = skill_table(None, None, ["polynomials"], [1], n=4, seed=5,
                                seen={prompt_digest(first.prompt)})  # fmt: skip
    firsts = sum(gen[i].prompt == first.prompt for i in range(4))
    assert open_rows[0]["accuracy_all"] == seen_rows[0]["accuracy_all"] == firsts / 4
    assert open_rows[0]["accuracy"] == 0.25 and seen_rows[0]["accuracy"] == 0.0


def test_unseen_tasks_skip_training_prompts():
    gen = make_generator("polynomials", seed=0, min_difficulty=1, max_difficulty=1)
    seen = {prompt_digest(gen[i].prompt) for i in range(50)}
    tasks, draws = unseen_tasks("polynomials", 1, 20, seed=0, seen=seen)
    assert draws > 50 and all(prompt_digest(t.prompt) not in seen for t in tasks)
    assert len({t.prompt for t in tasks}) == len(tasks)


def test_code_prompts_lose_their_boilerplate_and_keep_the_signature():
    from offload_agents.slm.template import compact_prompt, format_prompt

    t = make_generator("code_lists", seed=0, max_difficulty=1)[0]
    short = compact_prompt(t.prompt)
    assert "Answer with the complete function" not in short and '"""' not in short
    assert t.code_prefix.splitlines()[0] in short  # the signature line
    assert format_prompt(t.prompt) == f"Question: {short}\nAnswer:\n"
    assert len(short) < 0.7 * len(t.prompt)


def test_kit_models_use_the_fused_gelu_which_is_gpt2s_function():
    """The kits build with PyTorch's fused tanh GELU: the same function as GPT-2's written-out
    ``gelu_new`` (to float rounding), so a model behaves the same under either."""
    import copy

    import torch
    from transformers import GPT2LMHeadModel

    from offload_agents.slm.kit import FAST_GELU
    from offload_agents.slm.skill import build_char_model, char_tokenizer

    model = build_char_model(char_tokenizer(), SkillConfig(n_layer=1, n_embd=32, n_head=2))
    assert model.config.activation_function == FAST_GELU
    cfg = copy.deepcopy(model.config)
    cfg.activation_function = "gelu_new"
    written_out = GPT2LMHeadModel(cfg)
    written_out.load_state_dict(model.state_dict())
    ids = torch.randint(0, len(char_tokenizer()), (2, 20))
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, written_out(ids).logits, atol=1e-5)
