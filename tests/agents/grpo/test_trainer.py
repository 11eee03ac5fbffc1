"""The GRPO-family trainer: algorithms as pluggable pieces, driven through the vector text env."""

import pytest
import torch

from offload_agents.grpo import functional as F
from offload_agents.grpo.config import GRPOConfig
from offload_agents.grpo.rollout import Rollout
from offload_agents.grpo.trainer import GRPOTrainer
from offload_agents.slm import TinyLMConfig, build_slm, load_local_lm
from offload_agents.slm.skill import CODE_FAMILIES, MATH_FAMILIES, SkillConfig, WorkedAnswers

TINY = TinyLMConfig(vocab_size=400, n_layer=1, n_embd=32, n_head=2, n_positions=384)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    path = build_slm(tmp_path_factory.mktemp("slm"), config=TINY, n_per_family=2, progress=False)
    return load_local_lm(path)


def make(lm, algorithm, **kw):
    model, tok = lm
    cfg = GRPOConfig(algorithm=algorithm, num_tasks=6, group_size=2, prompts_per_step=2,
                     max_new_tokens=8, **kw)  # fmt: skip
    return GRPOTrainer(model, tok, cfg)


def hand_batch(trainer, rewards, cloud, correct=None, offloaded=None):
    """A batch with hand-set outcomes over real token sequences."""
    tok = trainer.tokenizer
    P, G = rewards.shape
    enc = tok(["Answer:\n12", "Answer:\n13"] * (P * G // 2), return_tensors="pt", padding=True)
    mask = torch.zeros_like(enc["input_ids"], dtype=torch.float32)
    mask[:, -2:] = 1.0
    correct = rewards if correct is None else correct
    offloaded = cloud if offloaded is None else offloaded
    return Rollout(enc["input_ids"], enc["attention_mask"], mask, rewards, cloud, correct,
                   offloaded, ["math"] * P, [""] * (P * G))  # fmt: skip


@pytest.mark.parametrize("algorithm", ["dagrpo", "grpo", "collab", "gapg"])
def test_every_algorithm_trains_through_the_env(lm, algorithm):
    trainer = make(lm, algorithm)
    records = trainer.train(2, progress=False)
    trainer.close()
    assert [r["step"] for r in records] == [1, 2]
    for key in (
        "loss",
        "reward",
        "accuracy",
        "cloud_requests",
        "cloud_usage",
        "lambda",
        "task_group",
    ):
        assert key in records[0]


def test_group_copies_see_the_same_task(lm):
    trainer = make(lm, "dagrpo")
    ids = trainer.collector._info["task_id"]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    trainer.close()


def test_advantage_pieces_by_algorithm(lm):
    r = torch.tensor([[1.0, 0.0], [0.4, 0.0]])
    c = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    t = make(lm, "dagrpo", lambda0=1.0)
    # A_r = [.5, -.5], [.2, -.2]; A_c = [-.5, .5], [.5, -.5]; A = A_r - A_c
    assert torch.allclose(
        t.advantages(hand_batch(t, r, c)), torch.tensor([[1.0, -1.0], [-0.3, 0.3]])
    )
    t.close()
    g = make(lm, "grpo")
    assert torch.allclose(
        g.advantages(hand_batch(g, r, c)).abs(), torch.full((2, 2), 0.7071), atol=1e-3
    )
    g.close()
    gapg = make(lm, "gapg")
    # mean-only, times G/(G-1) = 2
    assert torch.allclose(
        gapg.advantages(hand_batch(gapg, r, c)), torch.tensor([[1.0, -1.0], [0.4, -0.4]])
    )
    gapg.close()


def test_gapg_prompt_filter(lm):
    t = make(lm, "gapg", gapg_rho=1.0)
    rewards = torch.tensor([[1.0, 0.0], [0.4, 0.4], [0.0, 0.0]])
    correct = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    offloaded = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    keep = t.kept_prompts(hand_batch(t, rewards, offloaded, correct, offloaded))
    # prompt 0 mixed; prompt 1 only the cloud right (rescued, rho * 1 = 1 slot); prompt 2 nothing
    assert keep.tolist() == [1.0, 1.0, 0.0]
    t.close()


def test_gapg_filter_removes_dropped_prompts_from_the_denominator(lm):
    """A dropped prompt's tokens leave the loss's denominator: the update on [mixed, dropped]
    equals the update on [mixed] alone, and not half of it (what zeroing its advantages gives)."""
    import copy

    model, tok = lm
    cfg = GRPOConfig(algorithm="gapg", num_tasks=6, group_size=2, prompts_per_step=2,
                     max_new_tokens=8, num_iterations=1)  # fmt: skip
    both = GRPOTrainer(copy.deepcopy(model), tok, cfg)
    alone = GRPOTrainer(copy.deepcopy(model), tok, cfg)
    r2, z2 = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.zeros(2, 2)
    halved = GRPOTrainer(copy.deepcopy(model), tok, cfg)
    for t in (both, alone):  # plain SGD: the step is the gradient itself (Adam would rescale)
        t.optimizer = torch.optim.SGD(t.model.parameters(), lr=1.0)
    batch_of = hand_batch  # the two responses of a group differ

    rec2 = both.update(batch_of(both, r2, z2))
    rec1 = alone.update(batch_of(alone, r2[:1], z2[:1]))
    assert rec2["kept_prompts"] == 0.5 and rec1["kept_prompts"] == 1.0
    moved = False
    for a, b, m in zip(both.model.parameters(), alone.model.parameters(), model.parameters(),
                       strict=True):  # fmt: skip
        assert torch.allclose(a - m, b - m, atol=1e-7)
        moved = moved or not torch.allclose(a, m)
    assert moved
    # Leaving the dropped prompt's tokens in the denominator would halve the gradient.
    batch = batch_of(halved, r2, z2)
    mask = batch.response_mask[:, 1:]
    adv = halved.advantages(batch).reshape(-1) * halved.kept_prompts(batch).repeat_interleave(2)
    logp = halved._token_logp(halved.model, batch, 1)
    from offload_agents.grpo.functional import policy_loss

    policy_loss(logp, logp.detach(), adv, mask).backward()
    g_half = [p.grad.clone() for p in halved.model.parameters() if p.grad is not None]
    halved.model.zero_grad()
    b1 = batch_of(halved, r2[:1], z2[:1])
    logp1 = halved._token_logp(halved.model, b1, 1)
    policy_loss(logp1, logp1.detach(), halved.advantages(b1).reshape(-1),
                b1.response_mask[:, 1:]).backward()  # fmt: skip
    g_full = [p.grad.clone() for p in halved.model.parameters() if p.grad is not None]
    assert all(torch.allclose(h, f / 2, atol=1e-7) for h, f in zip(g_half, g_full, strict=True))
    halved.close()
    both.close()
    alone.close()


def padded_logp(model, batch, start):
    """The reference: one forward over the whole padded batch, every position scored."""
    positions = (batch.attention_mask.long().cumsum(1) - 1).clamp(min=0)
    logits = model(input_ids=batch.sequences, attention_mask=batch.attention_mask,
                   position_ids=positions).logits[:, start - 1 : -1]  # fmt: skip
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, batch.sequences[:, start:, None]).squeeze(-1)


@pytest.mark.parametrize("chunk", [0, 1, 3, 4])
def test_chunked_update_scores_the_same_as_one_padded_pass(lm, chunk):
    """Rows sorted by length and cut to their own span give the padded pass's log-probs on
    every response token, so the loss and its gradient are the same."""
    model, tok = lm
    cfg = GRPOConfig(algorithm="dagrpo", num_tasks=6, group_size=2, prompts_per_step=2,
                     max_new_tokens=12, update_chunk=chunk)  # fmt: skip
    t = GRPOTrainer(model, tok, cfg)
    batch = t.collector.collect()
    mask = batch.response_mask.clone()
    start = batch.prompt_len
    for row, length in enumerate([1, 5, 12, 0]):  # responses ending at different lengths
        mask[row, start + length :] = 0.0
    batch = batch._replace(response_mask=mask)
    assert (batch.attention_mask == 0).any()  # prompts of different lengths: left padding
    adv, m = torch.tensor([0.5, -1.0, 2.0, 0.25]), mask[:, start:]
    grads, values = [], []
    for score in (lambda: t._token_logp(model, batch, start),
                  lambda: padded_logp(model, batch, start)):  # fmt: skip
        model.zero_grad()
        logp = score()
        assert logp.shape == m.shape
        F.policy_loss(logp, logp.detach(), adv, m).backward()
        values.append(logp.detach() * m)
        grads.append([p.grad.clone() for p in model.parameters()])
    assert torch.allclose(values[0], values[1], atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))
    t.close()


def test_several_passes_make_the_clip_act_and_dropout_is_off(lm):
    import copy

    model, tok = lm
    seen_training = []
    for n in (1, 3):
        m = copy.deepcopy(model)
        m.register_forward_pre_hook(lambda mod, args: seen_training.append(mod.training))
        cfg = GRPOConfig(algorithm="dagrpo", num_tasks=6, group_size=2, prompts_per_step=2,
                         max_new_tokens=8, num_iterations=n, lr=0.05)  # fmt: skip
        t = GRPOTrainer(m, tok, cfg)
        rec = t.update(hand_batch(t, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(2, 2)))
        t.close()
        # one pass: the ratio is exactly 1; three passes at a large step: the clip fires
        assert (rec["clip_fraction"] > 0) == (n == 3)
    assert seen_training and not any(seen_training)


def test_dual_update_and_a_real_gradient_step(lm):
    t = make(lm, "dagrpo", lambda0=0.5, eta_lambda=0.1, tau=0.3)
    before = [p.detach().clone() for p in t.model.parameters()]
    rec = t.update(
        hand_batch(
            t, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0], [1.0, 0.0]])
        )
    )
    assert rec["lambda"] == 0.5 and t.lam == pytest.approx(0.5 + 0.1 * (0.75 - 0.3))
    assert any(not torch.equal(a, b) for a, b in zip(before, t.model.parameters(), strict=True))
    t.close()


def test_greedy_budget_signal_feeds_the_controller_the_greedy_requests(lm):
    """With ``budget_signal="greedy"`` the dual update sees the share of prompts whose greedy
    response asks (here 0.0), not the sampled share (0.75); both are recorded."""
    t = make(lm, "dagrpo", lambda0=0.5, eta_lambda=0.1, tau=0.3, budget_signal="greedy")
    rewards, cloud = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    batch = hand_batch(t, rewards, cloud)._replace(greedy_asked=torch.tensor([0.0, 0.0]))
    rec = t.update(batch)
    assert rec["cloud_requests"] == 0.75 and rec["greedy_requests"] == 0.0
    assert t.lam == pytest.approx(0.5 + 0.1 * (0.0 - 0.3))
    t.close()


def test_the_greedy_probe_matches_greedy_decoding_and_leaves_sampling_alone(lm):
    from offload_agents.lm_eval import generate_responses
    from offload_gym.tasks import Task

    model, tok = lm
    probed = make(lm, "dagrpo", budget_signal="greedy")
    plain = make(lm, "dagrpo")
    prompts = list(probed.collector._obs["prompt"])
    a = probed.collector.collect()
    b = plain.collector.collect()
    assert a.responses == b.responses and torch.equal(a.sequences, b.sequences)
    assert b.greedy_asked is None and a.greedy_asked.shape == (2,)
    tasks = [Task(id=str(i), domain="math", prompt=p, answer="0")
             for i, p in enumerate(prompts[::2])]  # fmt: skip
    greedy, _ = generate_responses(model, tok, tasks, max_new_tokens=8)
    assert a.greedy_asked.tolist() == [float("<unknown>" in g) for g in greedy]
    probed.close()
    plain.close()


def test_bad_configs():
    with pytest.raises(ValueError, match="algorithm"):
        GRPOConfig(algorithm="ppo")
    with pytest.raises(ValueError, match="group_size"):
        GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="alpha"):
        GRPOConfig(alpha_a=0.3, alpha_c=0.5)
    with pytest.raises(ValueError, match="min_new_tokens"):
        GRPOConfig(max_new_tokens=8, min_new_tokens=9)
    with pytest.raises(ValueError, match="dual"):
        GRPOConfig(dual="newton")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        GRPOConfig(lambda0=float("nan"))
    with pytest.raises(ValueError, match="num_iterations"):
        GRPOConfig(num_iterations=0)
    with pytest.raises(ValueError, match="budget_signal"):
        GRPOConfig(budget_signal="argmax")  # type: ignore[arg-type]


def test_pid_controller_in_the_trainer_and_checkpoint(lm, tmp_path):
    t = make(lm, "dagrpo", dual="pid", pid_kp=2.0, pid_ki=0.5, pid_smoothing=1.0, lambda0=0.5)
    batch = hand_batch(
        t, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    )
    t.update(batch)  # usage 0.75: e = 0.45, I = 0.45, lambda = 0.5 + 0.9 + 0.225
    assert t.lam == pytest.approx(1.625)
    t.save_checkpoint(tmp_path / "ck.pt")
    t.update(batch)
    after = t.lam
    t.close()
    u = make(lm, "dagrpo", dual="pid", pid_kp=2.0, pid_ki=0.5, pid_smoothing=1.0, lambda0=0.5)
    u.load_checkpoint(tmp_path / "ck.pt")
    assert u.lam == pytest.approx(1.625)
    u.update(batch)
    assert u.lam == pytest.approx(after)
    u.close()


def test_price_controller_prices_the_batch_before_its_advantages(lm, tmp_path):
    """With no feedback gain, the lambda a batch is trained with is that batch's own price of
    a call: in group 1 the asker is right and the local answer wrong (gain 1, spread 0.5), in
    group 2 both ask (no price): lambda = 0.5 / 0.5 = 1.0, and the recorded advantages use it."""
    t = make(lm, "dagrpo", dual="price", pid_kp=0.0, pid_ki=0.0, pid_smoothing=1.0, lambda0=0.2)
    rewards, cloud = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    rec = t.update(hand_batch(t, rewards, cloud))
    assert rec["lambda"] == pytest.approx(1.0)
    expected = F.dual_advantage(rewards, cloud, 1.0)
    assert torch.allclose(t.advantages(hand_batch(t, rewards, cloud)), expected)
    t.save_checkpoint(tmp_path / "ck.pt")
    state = t.controller.state_dict()
    t.close()
    u = make(lm, "dagrpo", dual="price", pid_kp=0.0, pid_ki=0.0, pid_smoothing=1.0, lambda0=0.2)
    u.load_checkpoint(tmp_path / "ck.pt")
    assert u.controller.state_dict() == state
    u.close()


def test_a_new_algorithm_is_a_spec(lm):
    from offload_agents.grpo.algorithms import (
        AlgorithmSpec,
        centred_advantage,
        correctness,
        register_algorithm,
    )

    register_algorithm(AlgorithmSpec("test-dr-grpo", correctness, centred_advantage, "none"))
    with pytest.raises(ValueError, match="already registered"):
        register_algorithm(AlgorithmSpec("test-dr-grpo", correctness, centred_advantage, "none"))
    t = make(lm, "test-dr-grpo")
    assert t.collector.envs.envs[0].unwrapped.config.budget == 0.0
    assert len(t.train(1, progress=False)) == 1
    t.close()


def test_min_new_tokens_forces_full_length_and_steps_are_timed(lm):
    model, tok = lm
    cfg = GRPOConfig(algorithm="grpo", num_tasks=6, group_size=2, prompts_per_step=2,
                     max_new_tokens=6, min_new_tokens=6)  # fmt: skip
    trainer = GRPOTrainer(model, tok, cfg)
    collector = trainer.collector
    seqs, _, prompt_len = collector._generate(list(collector._obs["prompt"]))
    assert seqs.shape[1] - prompt_len == 6
    assert not (seqs[:, prompt_len:-1] == tok.eos_token_id).any()  # no early end-of-text
    trainer.train(2, progress=False)
    trainer.close()
    assert len(trainer.timings) == 2
    for split in trainer.timings:
        parts = ("generate", "scoring", "forward_backward", "optimizer", "other")
        assert set(split) == {*parts, "total"}
        assert all(split[k] >= 0 for k in parts[:-1])
        assert sum(split[k] for k in parts) == pytest.approx(split["total"])


def test_resume_is_exact(lm, tmp_path):
    import copy

    model, tok = lm
    cfg = GRPOConfig(algorithm="dagrpo", num_tasks=4, group_size=2, prompts_per_step=2,
                     max_new_tokens=8, lr=1e-2)  # fmt: skip
    straight = GRPOTrainer(copy.deepcopy(model), tok, cfg)
    full = straight.train(6, progress=False)
    first = GRPOTrainer(copy.deepcopy(model), tok, cfg)
    first.train(3, progress=False)
    first.save_checkpoint(tmp_path / "ck.pt")
    first.close()
    resumed = GRPOTrainer(copy.deepcopy(model), tok, cfg)
    resumed.load_checkpoint(tmp_path / "ck.pt")
    rest = resumed.train(3, progress=False)
    assert rest == full[3:]  # same losses, rewards, usage, lambda, groups
    assert all(torch.equal(a, b) for a, b in zip(straight.model.parameters(),
                                                  resumed.model.parameters(), strict=True))  # fmt: skip
    assert [r["task_group"] for r in full] == ["math", "math", "code", "code", "math", "math"]
    other = GRPOTrainer(copy.deepcopy(model), tok, GRPOConfig(algorithm="gapg", num_tasks=4,
                        group_size=2, prompts_per_step=2, max_new_tokens=8, lr=1e-2))  # fmt: skip
    with pytest.raises(ValueError, match="config differs"):
        other.load_checkpoint(tmp_path / "ck.pt")
    for t in (straight, resumed, other):
        t.close()


def test_update_scores_the_sampled_conditional_on_left_padded_prompts(lm):
    """The update's log-probs of a left-padded batch equal the sampler's: positions count
    real tokens only (a plain forward numbers the padding too and scores another
    conditional)."""
    t = make(lm, "grpo")
    model, tok = t.model, t.tokenizer
    tok.padding_side = "left"
    enc = tok(["Question: 1\nAnswer:\n", "Question: what is 12 + 30?\nAnswer:\n"],
              return_tensors="pt", padding=True)  # fmt: skip
    assert (enc["attention_mask"][0] == 0).any()  # the first prompt is padded
    gen = model.generate(**enc, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                         output_logits=True, return_dict_in_generate=True,
                         pad_token_id=tok.pad_token_id)  # fmt: skip
    seqs = gen.sequences
    n = enc["input_ids"].shape[1]
    sampled = torch.stack(gen.logits, 1).log_softmax(-1).gather(-1, seqs[:, n:, None])[..., 0]
    attention = torch.cat([enc["attention_mask"], torch.ones(2, 4, dtype=torch.long)], 1)
    batch = Rollout(seqs, attention, torch.ones_like(seqs, dtype=torch.float32),
                    torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2),
                    ["math"], ["", ""], n)  # fmt: skip
    with torch.no_grad():
        ours = t._token_logp(model, batch, n)
    assert torch.allclose(ours, sampled, atol=1e-4)
    t.close()


def test_tensorboard_gets_every_step_of_the_training_record(lm, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from offload_agents.grpo.tb_log import TENSORBOARD_SCALARS

    model, tok = lm
    cfg = GRPOConfig(algorithm="dagrpo", dual="pid", num_tasks=6, group_size=2,
                     prompts_per_step=2, max_new_tokens=8, budget_signal="greedy",
                     anchor_coef=1.0, anchor_rows=2)  # fmt: skip
    groups = {"math": MATH_FAMILIES, "code": CODE_FAMILIES}
    trainer = GRPOTrainer(model, tok, cfg, tensorboard_dir=tmp_path / "tb",
                          anchor=WorkedAnswers(SkillConfig(), groups, seed=0))  # fmt: skip
    records = trainer.train(3, progress=False)
    events = EventAccumulator(str(tmp_path / "tb")).Reload()  # readable before close: flushed
    for key in TENSORBOARD_SCALARS:
        got = events.Scalars(f"offload/{key}")
        assert [e.step for e in got] == [1, 2, 3], key
        assert [e.value for e in got] == pytest.approx([r[key] for r in records], abs=1e-6), key
    trainer.close()


def test_tensorboard_without_the_package_is_a_clear_error(lm, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    model, tok = lm
    with pytest.raises(ImportError, match="pip install tensorboard"):
        GRPOTrainer(model, tok, GRPOConfig(num_tasks=6, group_size=2, prompts_per_step=2),
                    tensorboard_dir=tmp_path)  # fmt: skip


def test_checkpoints_refuse_corruption_truncation_and_bad_values(lm, tmp_path):
    import hashlib
    import io

    from offload_agents.grpo.checkpoint import CHECKPOINT_MAGIC

    t = make(lm, "dagrpo", dual="pid")
    t.train(1, progress=False)
    path = t.save_checkpoint(tmp_path / "ck.pt")
    data = path.read_bytes()
    u = make(lm, "dagrpo", dual="pid")
    cases = {
        "empty": (b"", "is empty"),
        "truncated": (data[: len(data) // 2], "corrupted or truncated"),
        "flipped": (data[:-100] + bytes(b ^ 0xFF for b in data[-100:-36]) + data[-36:],
                    "corrupted or truncated"),
        "foreign": (b"PK\x03\x04 not ours", "not an offload-gym checkpoint"),
    }  # fmt: skip
    for name, (content, match) in cases.items():
        bad = tmp_path / f"{name}.pt"
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=match) as err:
            u.load_checkpoint(bad)
        assert str(bad) in str(err.value)
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        u.load_checkpoint(tmp_path / "missing.pt")
    # An intact file with an impossible lambda (re-hashed, so only the value check can stop it).
    state = torch.load(io.BytesIO(data.partition(b"\n")[2]), weights_only=False)
    for lam, match in ((float("nan"), "finite"), (-1.0, ">= 0")):
        state["dual"] = {**state["dual"], "lam": lam}
        buf = io.BytesIO()
        torch.save(state, buf)
        payload = buf.getvalue()
        bad = tmp_path / "lam.pt"
        bad.write_bytes(CHECKPOINT_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
                        + payload)  # fmt: skip
        with pytest.raises(ValueError, match=match):
            u.load_checkpoint(bad)
    u.load_checkpoint(path)  # the intact one still loads
    t.close()
    u.close()


def test_lora_trains_only_the_adapters_and_resumes_exactly(lm, tmp_path):
    pytest.importorskip("peft")
    import copy

    model, tok = lm
    cfg = GRPOConfig(algorithm="dagrpo", num_tasks=6, group_size=2, prompts_per_step=2,
                     max_new_tokens=8, lora_rank=2, lr=1e-2)  # fmt: skip
    base = copy.deepcopy(model)
    frozen = {n: p.detach().clone() for n, p in base.named_parameters()}
    t = GRPOTrainer(base, tok, cfg)
    trainable = {n for n, p in base.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    adapters = {n: p.detach().clone() for n, p in base.named_parameters() if n in trainable}
    t.train(1, progress=False)
    for n, p in base.named_parameters():
        key = n.replace(".base_layer", "")
        if n not in trainable:
            assert torch.equal(p, frozen[key]), n
    assert any(not torch.equal(p, adapters[n]) for n, p in base.named_parameters()
               if n in trainable)  # fmt: skip
    t.save_checkpoint(tmp_path / "ck.pt")
    rest = t.train(1, progress=False)
    t.close()
    u = GRPOTrainer(copy.deepcopy(model), tok, cfg)
    u.load_checkpoint(tmp_path / "ck.pt")
    assert u.train(1, progress=False) == rest
    u.close()


def test_lora_settings_are_checked_and_peft_is_named_when_missing(lm, monkeypatch):
    import builtins

    with pytest.raises(ValueError, match="lora_rank"):
        GRPOConfig(lora_rank=-1)
    with pytest.raises(ValueError, match="lora_alpha"):
        GRPOConfig(lora_rank=2, lora_alpha=0.0)
    real = builtins.__import__

    def no_peft(name, *args, **kwargs):
        if name == "peft":
            raise ImportError("No module named 'peft'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peft)
    with pytest.raises(ImportError, match="peft"):
        make(lm, "dagrpo", lora_rank=2)


def test_a_model_built_for_another_marker_is_refused_clearly(lm):
    from offload_agents.lm_eval import eval_stream, evaluate_lm
    from offload_gym.protocol import check_marker

    model, tok = lm
    cfg = GRPOConfig(algorithm="dagrpo", num_tasks=6, group_size=2, prompts_per_step=2,
                     max_new_tokens=8)  # fmt: skip
    with pytest.raises(ValueError, match="offload_marker is '\\[HELP\\]'"):
        GRPOTrainer(model, tok, cfg, env_kwargs={"offload_marker": "[HELP]"})
    check_marker(tok, "<unknown>")  # the kit's own marker passes

    class Plain:  # a pretrained tokenizer without the tags: the marker is plain text
        def get_vocab(self):
            return {"a": 0}

    check_marker(Plain(), "[HELP]")
    with pytest.raises(ValueError, match="offload_marker"):
        import gymnasium as gym

        real = gym.make

        def make_with_marker(env_id, **kw):
            return real(env_id, offload_marker="[HELP]", **kw)

        gym.make = make_with_marker
        try:
            evaluate_lm(model, tok, eval_stream(1, seed=0), budget=0.5, max_new_tokens=2)
        finally:
            gym.make = real


def _forge(path, mutate):
    """Rewrite a checkpoint with ``mutate(state)`` and a valid header and hash, as a tamperer
    can (the hash detects corruption, not tampering)."""
    import hashlib
    import io

    from offload_agents.grpo.checkpoint import CHECKPOINT_MAGIC

    payload = path.read_bytes().partition(b"\n")[2]
    state = torch.load(io.BytesIO(payload), weights_only=False)
    mutate(state)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    path.write_bytes(CHECKPOINT_MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os

        return (os.makedirs, (str(self.target),))


def test_a_tampered_checkpoint_runs_no_code(lm, tmp_path):
    import pickle

    t = make(lm, "dagrpo")
    t.train(1, progress=False)
    t.save_checkpoint(tmp_path / "ck.pt")
    target = tmp_path / "pwned"
    # In the environments' state bytes: refused by name, never called.
    _forge(tmp_path / "ck.pt", lambda s: s.update(collector=pickle.dumps(_Payload(target))))
    u = make(lm, "dagrpo")
    with pytest.raises(ValueError, match=r"os\.makedirs is not a class"):
        u.load_checkpoint(tmp_path / "ck.pt")
    assert not target.exists()
    # In the outer payload: torch's weights-only reader refuses it.
    t.save_checkpoint(tmp_path / "ck2.pt")
    _forge(tmp_path / "ck2.pt", lambda s: s.update(history=[_Payload(target)]))
    with pytest.raises(ValueError, match="more than tensors and plain values"):
        u.load_checkpoint(tmp_path / "ck2.pt")
    assert not target.exists()
    t.close()
    u.close()


def test_checkpoints_hold_data_only_and_the_cloud_comes_from_the_caller(lm, tmp_path, monkeypatch):
    """A data-only forged checkpoint once restored a cloud client that sent an attacker-named
    environment variable as a bearer token to an attacker's URL: the cloud behind the cache is
    now a reference the loader resolves to the caller's own model, and a network client in the
    state is refused by name."""
    import pickle

    from offload_agents.grpo.checkpoint import LIVE_CLOUD, dump_env_state, load_env_state
    from offload_gym.models.openai_cloud import OpenAICloud

    t = make(lm, "dagrpo")
    t.train(1, progress=False)
    t.save_checkpoint(tmp_path / "ck.pt")
    u = make(lm, "dagrpo")
    own = u.collector.cloud.cloud
    u.load_checkpoint(tmp_path / "ck.pt")
    assert u.collector.cloud.cloud is own  # the caller's live object, not one from the file
    assert len(u.collector.cloud) == len(t.collector.cloud)  # the cached answers are data
    # forged: the environments' state holds an OpenAI client pointed at an attacker
    monkeypatch.setenv("ATTACKER_NAMED_SECRET", "sk-secret")
    state = t.collector.state()
    state["envs"][0].unwrapped.cloud.cloud = OpenAICloud(
        "m", base_url="http://127.0.0.1:9/v1", api_key_env="ATTACKER_NAMED_SECRET"
    )
    _forge(tmp_path / "ck.pt", lambda s: s.update(collector=pickle.dumps(state)))
    with pytest.raises(ValueError, match=r"openai_cloud\.OpenAICloud is not a class"):
        u.load_checkpoint(tmp_path / "ck.pt")
    # a reference to a live object the caller does not pass is refused too
    data = dump_env_state({"cloud": own}, {"live:other": own})
    with pytest.raises(ValueError, match="live object 'live:other' that the caller did not pass"):
        load_env_state(data, live={LIVE_CLOUD: own})
    assert (
        load_env_state(dump_env_state([own], {LIVE_CLOUD: own}), live={LIVE_CLOUD: own})[0] is own
    )
    # trusted=True: plain pickle for your own classes, with the same live references
    from fractions import Fraction

    mine = dump_env_state([Fraction(1, 3), own], {LIVE_CLOUD: own})
    with pytest.raises(ValueError, match=r"fractions\.Fraction is not a class"):
        load_env_state(mine, live={LIVE_CLOUD: own})
    assert load_env_state(mine, trusted=True, live={LIVE_CLOUD: own}) == [Fraction(1, 3), own]
    t.close()
    u.close()


def test_a_hard_budget_holds_per_training_batch_not_per_slot(lm):
    """GAPG's budget: of each batch's requests, floor(tau * B) reach the cloud, drawn at random;
    the rest are answered locally and still count as asked. collab has no cap."""
    from offload_gym.protocol import help_request

    trainer = make(lm, "gapg", tau=0.5)  # B = 4: two calls a batch
    collector = trainer.collector
    own = collector._own_texts
    collector._own_texts = lambda seqs, n: (own(seqs, n)[0], [help_request()] * 4)
    granted = []
    for _ in range(3):  # a per-slot cap (floor(0.5 * 6) = 3 calls an episode) would refuse none
        batch = collector.collect()
        assert batch.asked.sum() == 4 and batch.offloaded.sum() == 2
        assert batch.refused.sum() == 2 and not (batch.refused * batch.offloaded).any()
        granted.append(tuple(batch.offloaded.flatten().tolist()))
    assert len(set(granted)) > 1  # which requests are granted is drawn, not by position
    trainer.close()
    collab = make(lm, "collab", tau=0.5)
    collab.collector._own_texts = lambda seqs, n: (own(seqs, n)[0], [help_request()] * 4)
    batch = collab.collector.collect()
    assert batch.offloaded.sum() == 4 and batch.refused.sum() == 0
    collab.close()


def test_the_environment_owns_the_reward(lm):
    """The spec's weights are the sub-environments' reward_weights, and the batch's rewards are
    what the environments returned: the hierarchical reward from its parts, by hand."""
    from offload_gym.protocol import help_request

    t = make(lm, "collab", alpha_a=1.0, alpha_c=0.25)
    for env in t.collector.envs.envs:
        assert env.unwrapped.config.reward_weights == {"correct_local": 1.0, "correct_cloud": 0.25}
    own = t.collector._own_texts
    t.collector._own_texts = lambda seqs, n: (own(seqs, n)[0], [help_request(), "x"] * 2)
    batch = t.collector.collect()
    want = 0.25 * batch.correct * batch.offloaded + 1.0 * batch.correct * (1 - batch.offloaded)
    assert torch.equal(batch.rewards, want) and batch.offloaded.sum() == 2
    assert (batch.rewards == 0.25).any()  # a cloud answer right: alpha_c, not 1
    t.close()
    model, tok = lm
    with pytest.raises(ValueError, match="must not set reward_weights"):
        GRPOTrainer(model, tok, GRPOConfig(num_tasks=6, group_size=2, prompts_per_step=2),
                    env_kwargs={"reward_weights": {"correct": 2.0}})  # fmt: skip
