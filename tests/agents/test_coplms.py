"""Co-PLMs: the losses on hand-computed inputs, FedAvg and communication accounting, and the
experiment end to end with tiny settings."""

import json
import math

import pytest
import torch

from offload_agents.coplms import (
    CoPLMsConfig,
    DeviceSpec,
    ModelSpec,
    mutual_losses,
    prepare,
    run_experiment,
    run_method,
    token_kl,
    write_report,
)
from offload_agents.coplms.core import build_model, fedavg, parameter_bytes
from offload_agents.coplms.losses import answer_ce

TINY = CoPLMsConfig(
    devices=(DeviceSpec("math", ModelSpec("gpt2", n_layer=1, n_embd=32, n_head=2)),
             DeviceSpec("code", ModelSpec("llama", n_layer=1, n_embd=32, n_head=2))),
    server=ModelSpec("gpt2", n_layer=1, n_embd=48, n_head=2),
    dpm=ModelSpec("gpt2", n_layer=1, n_embd=16, n_head=2),
    rounds=2, local_steps=1, mutual_steps=1, server_steps=1, batch_size=4,
    train_per_device=8, server_tasks=8, eval_per_device=3, max_new_tokens=8, vocab_size=300,
)  # fmt: skip


def test_token_kl_by_hand():
    student = torch.tensor([[[0.0, 0.0], [5.0, -5.0]]])  # uniform, then anything (masked)
    teacher = torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0]]])  # [0.75, 0.25]
    mask = torch.tensor([[1.0, 0.0]])
    want = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)  # 0.1308
    assert float(token_kl(student, teacher, mask)) == pytest.approx(want, abs=1e-6)
    # Temperature 2: teacher [sqrt3, 1]/(sqrt3 + 1) against uniform, times T^2 = 4.
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    want_t2 = 4 * (p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5))
    assert float(token_kl(student, teacher, mask, temperature=2.0)) == pytest.approx(want_t2)
    with pytest.raises(ValueError, match="vocabulary"):
        token_kl(student, torch.zeros(1, 2, 3), mask)


def test_teacher_gets_no_gradient_and_ce_by_hand():
    student = torch.zeros(1, 1, 4, requires_grad=True)
    teacher = torch.randn(1, 1, 4, requires_grad=True)
    token_kl(student, teacher, torch.ones(1, 1)).backward()
    assert teacher.grad is None and student.grad is not None
    logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens
    labels = torch.tensor([[-100, 2, 1]])  # two answer tokens
    assert float(answer_ce(logits, labels)) == pytest.approx(math.log(4))


def test_mutual_losses():
    torch.manual_seed(0)
    za, zb = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    labels = torch.tensor([[-100, -100, 3, 4, 5], [-100, 1, 2, -100, -100]])
    la, lb = mutual_losses(za, za.clone(), labels, alpha=2.0)
    assert float(la) == pytest.approx(float(answer_ce(za, labels)))  # no KL between equals
    la, lb = mutual_losses(za, zb, labels, alpha=0.5)
    mask = (labels[:, 1:] != -100).float()
    want_a = answer_ce(za, labels) + 0.5 * token_kl(za[:, :-1], zb[:, :-1], mask)
    want_b = answer_ce(zb, labels) + 0.5 * token_kl(zb[:, :-1], za[:, :-1], mask)
    assert float(la) == pytest.approx(float(want_a)) and float(lb) == pytest.approx(float(want_b))


@pytest.fixture(scope="module")
def setup():
    return prepare(TINY)


def test_fedavg_and_bytes(setup):
    a = build_model(TINY.dpm, setup.tokenizer, seed=1)
    b = build_model(TINY.dpm, setup.tokenizer, seed=2)
    avg = fedavg([a, b], [1.0, 3.0])
    key = next(k for k, v in a.state_dict().items() if v.is_floating_point())
    want = 0.25 * a.state_dict()[key] + 0.75 * b.state_dict()[key]
    assert torch.allclose(avg[key], want, atol=1e-6)
    assert parameter_bytes(a) == 4 * sum(t.numel() for t in a.state_dict().values())
    with pytest.raises(ValueError, match="one weight"):
        fedavg([a], [1.0, 2.0])


def test_heterogeneous_architectures_share_the_vocabulary(setup):
    gpt2 = build_model(TINY.devices[0].slm, setup.tokenizer, seed=0)
    llama = build_model(TINY.devices[1].slm, setup.tokenizer, seed=0)
    assert type(gpt2).__name__ != type(llama).__name__
    ids = setup.tokenizer(["Question: 1 + 1"], return_tensors="pt")["input_ids"]
    assert gpt2(ids).logits.shape == llama(ids).logits.shape


def test_config_checks():
    with pytest.raises(ValueError, match="at least 2 devices"):
        CoPLMsConfig(devices=(DeviceSpec("math", ModelSpec()),))
    with pytest.raises(ValueError, match="architecture"):
        CoPLMsConfig(devices=(DeviceSpec("math", ModelSpec()), DeviceSpec("code", ModelSpec())))
    with pytest.raises(ValueError, match="domain"):
        DeviceSpec("poetry", ModelSpec())


def test_communication_accounting(setup):
    def evaluate(model, tasks):
        return {"em": 0.0, "rouge_l": 0.0}

    dpm_bytes = parameter_bytes(build_model(TINY.dpm, setup.tokenizer, seed=0))
    want = {"coplms": 2 * 2 * dpm_bytes, "standalone": 0, "fedavg": 2 * 2 * dpm_bytes,
            "oneway": 2 * dpm_bytes}  # fmt: skip
    for method, per_round in want.items():
        run = run_method(method, TINY, setup, evaluate, progress=False)
        assert run["bytes_per_round"] == per_round, method
        assert [r["bytes"] for r in run["rounds"]] == [per_round, 2 * per_round]
        assert (run["server"] is not None) == (method in ("coplms", "oneway"))


def test_experiment_end_to_end(tmp_path):
    result = run_experiment(TINY, seeds=(0, 1), progress=False)
    assert set(result["methods"]) == {"coplms", "standalone", "fedavg", "oneway"}
    for m in result["methods"].values():
        assert set(m["devices"]) == {"math", "code"}
        assert 0.0 <= m["avg_rouge_l"] <= 1.0 and 0.0 <= m["avg_em"] <= 1.0
        assert len(m["rounds"]) == 2
    paths = write_report(result, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["seeds"] == [0, 1] and "coplms" in paths["md"].read_text()
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
    again = run_experiment(TINY, seeds=(0,), methods=("coplms",), progress=False)
    first = result["runs"]["coplms"][0]["rounds"]
    assert again["runs"]["coplms"][0]["rounds"] == first  # seeded: identical reruns
    with pytest.raises(ValueError, match="unknown method"):
        run_experiment(TINY, methods=("fedprox",))
