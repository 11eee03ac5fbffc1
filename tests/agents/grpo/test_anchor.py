"""The answer anchor (PPO-ptx's supervised term without the decision token) and its kit source."""

import copy
import dataclasses

import pytest
import torch

from offload_agents.grpo.anchor import anchor_loss, encode_anchor
from offload_agents.grpo.config import GRPOConfig
from offload_agents.grpo.trainer import GRPOTrainer
from offload_agents.slm import TinyLMConfig, build_slm, load_local_lm
from offload_agents.slm.skill import CODE_FAMILIES, MATH_FAMILIES, SkillConfig, WorkedAnswers
from offload_agents.slm.template import format_prompt

TINY = TinyLMConfig(vocab_size=400, n_layer=1, n_embd=32, n_head=2, n_positions=384)
GROUPS = {"math": MATH_FAMILIES, "code": CODE_FAMILIES}


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    path = build_slm(tmp_path_factory.mktemp("slm"), config=TINY, n_per_family=2, progress=False)
    return load_local_lm(path)


def test_labels_skip_the_prompt_and_the_decision_token(lm):
    _, tok = lm
    rows = [("What is 2+3?", "2+3=5####5"), ("Let p(x) = x. What is p(1)?", "1####1")]
    enc = encode_anchor(tok, rows, 384)
    for i, (prompt, target) in enumerate(rows):
        p = tok(format_prompt(prompt), add_special_tokens=False)["input_ids"]
        t = tok(target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids = enc["input_ids"][i, : len(p) + len(t)]
        assert ids.tolist() == p + t
        labels = enc["labels"][i].tolist()
        assert labels[: len(p) + 1] == [-100] * (len(p) + 1)  # prompt and the decision
        assert labels[len(p) + 1 : len(p) + len(t)] == t[1:]  # the answer and end-of-text
        assert set(labels[len(p) + len(t) :]) <= {-100}  # padding
        assert enc["attention_mask"][i].sum() == len(p) + len(t)


def test_bad_anchor_rows_are_clear_errors(lm):
    _, tok = lm
    with pytest.raises(ValueError, match="no rows"):
        encode_anchor(tok, [], 64)
    with pytest.raises(ValueError, match="after its first"):
        encode_anchor(tok, [("q", "")], 64)


def test_the_decision_token_gets_no_anchor_gradient(lm):
    """The anchor's loss does not depend on the logits at the decision position."""
    model, tok = lm
    enc = encode_anchor(tok, [("What is 2+3?", "2+3=5####5")], 384)
    n = len(tok(format_prompt("What is 2+3?"), add_special_tokens=False)["input_ids"])
    logits = model(input_ids=enc["input_ids"]).logits.detach().requires_grad_(True)
    labels = enc["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                             labels.reshape(-1), ignore_index=-100)  # fmt: skip
    loss.backward()
    grad = logits.grad[0]
    assert grad[n - 1].abs().sum() == 0  # the logits that choose the first response token
    assert grad[n].abs().sum() > 0  # the answer's second token is taught
    with torch.no_grad():
        assert float(anchor_loss(model, enc)) == pytest.approx(float(loss), rel=1e-5)


def test_worked_answers_are_deterministic_by_step_and_keep_to_the_group():
    src = WorkedAnswers(SkillConfig(), GROUPS, seed=3)
    a, b, other = src("math", 8, 5), src("math", 8, 5), src("math", 8, 6)
    assert a == b and a != other
    assert all(not p.startswith("Write a Python") for p, _ in a)
    code = src("code", 8, 5)
    assert all("def " in p for p, _ in code)
    assert all(t and "####" not in t for _, t in code)
    with pytest.raises(ValueError, match="no anchor families"):
        src("poetry", 2, 0)
    with pytest.raises(ValueError, match="among the recipe"):
        WorkedAnswers(SkillConfig(), {"math": ("linear_equations_3d",)}, seed=0)


def test_worked_answers_never_draw_an_excluded_prompt():
    from offload_agents.slm.skill import prompt_digest

    plain = WorkedAnswers(SkillConfig(), GROUPS, seed=3)
    drawn = [p for i in range(4) for p, _ in plain("math", 16, i)]
    held = frozenset(prompt_digest(p) for p in drawn[::2])  # half of what it would draw
    src = WorkedAnswers(SkillConfig(), GROUPS, seed=3, exclude=held)
    rows = [p for i in range(4) for p, _ in src("math", 16, i)]
    assert len(rows) == 64 and not {prompt_digest(p) for p in rows} & held
    assert src("math", 16, 2) == src("math", 16, 2)  # still deterministic by step
    small = dataclasses.replace(SkillConfig(), max_difficulty=1)  # a few dozen distinct prompts
    every = WorkedAnswers(small, {"code": ("code_lists",)}, seed=0)("code", 2000, 0)
    none_left = WorkedAnswers(small, {"code": ("code_lists",)}, seed=0,
                              exclude={prompt_digest(p) for p, _ in every})  # fmt: skip
    with pytest.raises(ValueError, match="outside the excluded set"):
        none_left("code", 4, 0)


def test_anchor_needs_a_source(lm):
    model, tok = lm
    cfg = GRPOConfig(num_tasks=4, group_size=2, prompts_per_step=2, max_new_tokens=8,
                     anchor_coef=1.0)  # fmt: skip
    with pytest.raises(ValueError, match="needs an anchor source"):
        GRPOTrainer(model, tok, cfg)


def test_anchor_enters_the_update_and_resumes_exactly(lm, tmp_path):
    model, tok = lm
    cfg = GRPOConfig(algorithm="dagrpo", num_tasks=4, group_size=2, prompts_per_step=2,
                     max_new_tokens=8, lr=1e-2, anchor_coef=1.0, anchor_rows=4)  # fmt: skip
    src = WorkedAnswers(SkillConfig(), GROUPS, seed=0)

    def trainer(c=cfg):
        return GRPOTrainer(copy.deepcopy(model), tok, c, anchor=src)

    straight = trainer()
    full = straight.train(4, progress=False)
    assert all(r["anchor_loss"] > 0 for r in full)
    plain = GRPOTrainer(copy.deepcopy(model), tok, dataclasses.replace(cfg, anchor_coef=0.0))
    plain_history = plain.train(4, progress=False)
    assert all(r["anchor_loss"] is None for r in plain_history)
    assert not all(torch.equal(a, b) for a, b in zip(straight.model.parameters(),
                                                      plain.model.parameters(), strict=True))  # fmt: skip
    first = trainer()
    first.train(2, progress=False)
    first.save_checkpoint(tmp_path / "ck.pt")
    resumed = trainer()
    resumed.load_checkpoint(tmp_path / "ck.pt")
    assert resumed.train(2, progress=False) == full[2:]
    assert all(torch.equal(a, b) for a, b in zip(straight.model.parameters(),
                                                  resumed.model.parameters(), strict=True))  # fmt: skip
    for t in (straight, plain, first, resumed):
        t.close()


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_chunked_anchor_loss_is_the_one_pass_loss(lm, chunk):
    """Rows sorted by length and cut to their own longest: the same mean and gradient."""
    model, tok = lm
    rows = WorkedAnswers(SkillConfig(), GROUPS, seed=1)("math", 5, 0)
    enc = encode_anchor(tok, rows, 384)
    assert len(set(enc["attention_mask"].sum(1).tolist())) > 1  # rows of different lengths
    grads, values = [], []
    for c in (0, chunk):
        model.zero_grad()
        loss = anchor_loss(model, enc, c)
        loss.backward()
        values.append(float(loss))
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert values[0] == pytest.approx(values[1], rel=1e-5) and values[0] > 0
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))
