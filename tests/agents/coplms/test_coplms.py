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
from offload_agents.coplms.methods import METHODS
from offload_agents.coplms.public import load_public

TINY = CoPLMsConfig(
    devices=(DeviceSpec("polynomials", ModelSpec("gpt2", n_layer=1, n_embd=32, n_head=2)),
             DeviceSpec("code", ModelSpec("llama", n_layer=1, n_embd=32, n_head=2))),
    server=ModelSpec("gpt2", n_layer=1, n_embd=48, n_head=2),
    dpm=ModelSpec("gpt2", n_layer=1, n_embd=16, n_head=2),
    rounds=2, local_steps=1, mutual_steps=1, server_steps=1, batch_size=4,
    train_per_device=8, server_tasks=8, eval_per_device=3, max_new_tokens=8,
    server_pretrain_steps=0, slm_pretrain_steps=0, dpm_distill_steps=2, unlabeled_per_device=4,
)  # fmt: skip
"""Random initialisations (no public checkpoints): the mechanics on tiny sizes."""


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


def test_gpt2_models_use_the_fused_gelu_and_it_keys_the_cache(setup, monkeypatch):
    """The GPT-2 models run PyTorch's fused tanh GELU (the function of GPT-2's ``gelu_new``,
    cheaper on CPU), and the public checkpoints' cache key names the build, so a checkpoint of
    the old build is not reused."""
    from transformers.activations import ACT2FN

    from offload_agents.coplms import public
    from offload_agents.slm.kit import FAST_GELU

    gpt2 = build_model(TINY.devices[0].slm, setup.tokenizer, seed=0)
    assert gpt2.config.activation_function == FAST_GELU
    x = torch.linspace(-6, 6, 101)
    assert torch.allclose(ACT2FN[FAST_GELU](x), ACT2FN["gelu_new"](x), atol=1e-6)
    cfg, spec = CoPLMsConfig(), TINY.devices[0].slm
    key = public.checkpoint_key(public.public_recipe(cfg, spec, 10), spec)
    monkeypatch.setattr(public, "ARCH_VERSION", public.ARCH_VERSION + 1)
    assert public.checkpoint_key(public.public_recipe(cfg, spec, 10), spec) != key


def test_config_checks():
    with pytest.raises(ValueError, match="at least 2 devices"):
        CoPLMsConfig(devices=(DeviceSpec("math", ModelSpec()),))
    with pytest.raises(ValueError, match="architecture"):
        CoPLMsConfig(devices=(DeviceSpec("math", ModelSpec()), DeviceSpec("code", ModelSpec())))
    with pytest.raises(ValueError, match="domain"):
        DeviceSpec("poetry", ModelSpec())
    with pytest.raises(ValueError, match="min_difficulty"):
        CoPLMsConfig(min_difficulty=3, max_difficulty=2)
    with pytest.raises(ValueError, match="device_min_difficulty"):
        CoPLMsConfig(device_min_difficulty=3, device_max_difficulty=2)
    with pytest.raises(ValueError, match="device_min_difficulty"):
        CoPLMsConfig(device_min_difficulty=4)  # above the devices' max of 3
    # By default the devices span 1-3 beyond the public data's 1-2 (difficulty 3 is private);
    # 0 means the public span.
    default = CoPLMsConfig()
    assert (default.min_difficulty, default.max_difficulty) == (1, 2)
    assert default.device_difficulty == (1, 3)
    assert CoPLMsConfig(device_max_difficulty=0).device_difficulty == (1, 2)
    own = CoPLMsConfig(device_min_difficulty=3, device_max_difficulty=3)
    assert own.device_difficulty == (3, 3)


def test_the_default_room_holds_every_reference_answer_of_the_devices_span():
    """At difficulty 3 a derivatives task's worked answer runs to about 110 characters: the
    old default room of 84 cut three in four of them, which no model could then answer. The
    default now holds every one (500 tasks a device), and a short room warns with the share."""
    from dataclasses import replace

    from offload_agents.coplms.core import domain_tasks
    from offload_agents.coplms.methods import answer_room

    cfg = CoPLMsConfig()
    lo, hi = cfg.device_difficulty
    held = [domain_tasks(d.domain, 500, seed=7, min_difficulty=lo, max_difficulty=hi)
            for d in cfg.devices]  # fmt: skip
    assert answer_room(cfg, held) == {d.domain: 0.0 for d in cfg.devices}
    short = answer_room(replace(cfg, max_new_tokens=84), held)
    assert short["derivatives"] > 0.2 and short["polynomials"] == 0.0
    with pytest.warns(UserWarning, match=r"max_new_tokens=84 .*derivatives \d+%"):
        prepare(replace(cfg, max_new_tokens=84, server_tasks=30, eval_per_device=100))


def test_devices_can_hold_a_private_difficulty_span_the_public_data_lacks():
    """With the devices at difficulty 3 and the public data at 1-2, every device task (private,
    queries, held-out) is at 3 and every server task at 1-2."""
    from dataclasses import replace

    cfg = replace(TINY, min_difficulty=1, max_difficulty=2, device_min_difficulty=3,
                  device_max_difficulty=3)  # fmt: skip
    s = prepare(cfg)
    device = [t for ts in (*s.train, *s.eval, *s.queries) for t in ts]
    assert device and {t.difficulty for t in device} == {3}
    assert {t.difficulty for t in s.server} <= {1, 2}


def test_public_domains_give_each_device_a_private_domain_the_server_lacks():
    """With the public data on arithmetic and code_arithmetic, the server's tasks and every
    public checkpoint's recipe hold only those families; each device's tasks stay in its own
    domain (polynomials, or code_lists for a code_lists device)."""
    from dataclasses import replace

    from offload_agents.coplms.public import public_recipe

    devices = (TINY.devices[0], DeviceSpec("code_lists", TINY.devices[1].slm))
    cfg = replace(TINY, devices=devices, public_domains=("arithmetic", "code_arithmetic"),
                  server_tasks=12)  # fmt: skip
    assert cfg.public_families == ("arithmetic", "code_arithmetic")
    assert TINY.public_families == TINY.families  # default: the devices' own domains
    recipe = public_recipe(cfg, cfg.server, 5)
    assert recipe.math_families == ("arithmetic",) and recipe.code_families == ("code_arithmetic",)
    s = prepare(cfg)
    server_kinds = {t.id.split("/")[0] for t in s.server}
    assert server_kinds == {"arithmetic", "code_arithmetic"} and len(s.server) == 12
    for k, kind in enumerate(("polynomials", "code_lists")):
        for tasks in (s.train[k], s.eval[k]):
            assert tasks and {t.id.split("/")[0] for t in tasks} == {kind}
    with pytest.raises(ValueError, match="unknown public_domains"):
        replace(TINY, public_domains=("poetry",))


def test_specs_from_their_flags():
    spec = ModelSpec.from_flag("llama:3x64")
    assert (spec.arch, spec.n_layer, spec.n_embd, spec.n_head) == ("llama", 3, 64, 4)
    assert ModelSpec.from_flag(spec.flag()) == spec
    dev = DeviceSpec.from_flag("code=gpt2:1x128:2")
    assert dev.domain == "code" and dev.slm == ModelSpec("gpt2", 1, 128, 2)
    assert DeviceSpec.from_flag(dev.flag()) == dev
    for bad in ("gpt3:1x64", "gpt2:1x", "gpt2:2x65:2"):
        with pytest.raises(ValueError):
            ModelSpec.from_flag(bad)
    with pytest.raises(ValueError, match="DOMAIN="):
        DeviceSpec.from_flag("gpt2:1x64")


def _zero(model, tasks):
    return {"em": 0.0, "em_text": 0.0, "rouge_l": 0.0}


def test_communication_accounting(setup):
    dpm_bytes = parameter_bytes(build_model(TINY.dpm, setup.tokenizer, seed=0))
    vocab, max_len = len(setup.tokenizer), max(d.slm.n_positions for d in TINY.devices)
    # fedmkt: each of the 2 devices receives float32 distributions over the vocabulary at
    # every position of its mutual_steps public batches
    logits = TINY.mutual_steps * TINY.batch_size * max_len * vocab * 4
    want = {"coplms": 2 * 2 * dpm_bytes, "standalone": 0, "fedavg": 2 * 2 * dpm_bytes,
            "oneway": 2 * dpm_bytes, "server": 0, "fedmkt": 2 * logits}  # fmt: skip
    assert set(want) == set(METHODS)
    for method, per_round in want.items():
        run = run_method(method, TINY, setup, _zero, progress=False)
        assert run["bytes_per_round"] == per_round, method
        assert [r["bytes"] for r in run["rounds"]] == [per_round, 2 * per_round]
        assert (run["server"] is not None) == (method in ("coplms", "oneway", "fedmkt"))
        assert (run["proxy"] is not None) == (method in ("coplms", "oneway"))


def test_the_proxies_are_scored_as_each_device_holds_them(setup):
    """After co-tuning with the server's average every device holds the one global proxy;
    without aggregation each holds its own. The evaluator sees the proxy itself (its size)."""
    from dataclasses import replace

    def evaluate(model, tasks):
        total = sum(float(p.detach().double().sum()) for p in model.parameters())
        return {"em": total, "em_text": 0.0, "rouge_l": float(model.num_parameters())}

    size = build_model(TINY.dpm, setup.tokenizer, seed=0).num_parameters()
    shared = run_method("coplms", TINY, setup, evaluate, progress=False)["proxy"]
    assert [p["rouge_l"] for p in shared] == [size, size]
    assert shared[0]["em"] == shared[1]["em"]
    own = run_method("coplms", replace(TINY, aggregate="none"), setup, evaluate,
                     progress=False)["proxy"]  # fmt: skip
    assert own[0]["em"] != own[1]["em"]
    assert run_method("standalone", TINY, setup, evaluate, progress=False)["proxy"] is None


def test_every_method_gives_the_devices_equal_gradient_steps(setup, monkeypatch):
    """Each device model gets rounds x (local + mutual) updates whatever the method; the
    server-only reference trains no device model and deploys the LLM everywhere."""
    from dataclasses import replace

    from offload_agents.coplms import core

    cfg = replace(TINY, local_steps=2, mutual_steps=3)
    for method in METHODS:
        counts: dict[int, int] = {}
        real = core._update

        def counting(opts, loss, models, counts=counts, real=real):
            for m in models:
                counts[id(m)] = counts.get(id(m), 0) + 1
            return real(opts, loss, models)

        monkeypatch.setattr(core, "_update", counting)
        deployed: list[list[int]] = []

        def evaluate(model, tasks, deployed=deployed):
            deployed.append([id(model)])
            return _zero(model, tasks)

        run_method(method, cfg, setup, evaluate, progress=False)
        per_device = cfg.rounds * (cfg.local_steps + cfg.mutual_steps)
        k = len(cfg.devices)  # the last round's devices (the LLM's own scores come after)
        final = [d[0] for d in deployed[(cfg.rounds - 1) * k : cfg.rounds * k]]
        if method in ("coplms", "standalone", "oneway", "fedmkt"):
            assert [counts[i] for i in final] == [per_device] * 2, method
        elif method == "fedavg":  # local copies train, the average is deployed
            assert sum(counts.values()) == 2 * per_device and len(set(final)) == 1
        else:
            assert len(set(final)) == 1 and counts[final[0]] == cfg.rounds * cfg.server_steps


def test_evaluator_grades_by_verifiers_and_text(setup, monkeypatch):
    """Reference targets score 1 on every metric (math by value, code by the sandbox), the
    math answer in another form is still right by value but not as text, and wrong answers
    score 0."""
    from offload_agents.coplms import experiment
    from offload_agents.slm.skill import worked_steps

    tasks = [setup.eval[0][0], setup.eval[1][0]]  # a polynomial and a code task
    replies: list[str] = []
    monkeypatch.setattr(experiment, "generate_responses",
                        lambda model, tok, ts, **kw: (list(replies), [1.0] * len(ts)))  # fmt: skip
    evaluate = experiment.make_evaluator(setup.tokenizer, 8)
    replies[:] = [worked_steps(t) for t in tasks]
    got = evaluate(None, tasks)
    records = got.pop("records")
    assert got == {"em": 1.0, "em_text": 1.0, "rouge_l": pytest.approx(1.0)}
    assert [r["task_id"] for r in records] == [t.id for t in tasks]
    assert [r["correct"] for r in records] == [1.0, 1.0]
    replies[:] = ["####" + tasks[0].answer, worked_steps(tasks[1])]
    got = evaluate(None, tasks)
    assert got["em"] == 1.0 and got["em_text"] == 0.5
    replies[:] = ["1=1####-999999", "return None"]
    got = evaluate(None, tasks)
    assert got["em"] == 0.0 and [r["correct"] for r in got["records"]] == [0.0, 0.0]
    assert all(0.0 <= r["rouge_l"] < 1.0 for r in got["records"])


def test_public_checkpoints_are_built_once_and_held_out_tasks_avoid_their_prompts(tmp_path):
    from dataclasses import replace

    from offload_agents.coplms.public import public_models
    from offload_agents.slm.skill import prompt_digest

    cfg = replace(TINY, server_pretrain_steps=2, slm_pretrain_steps=2, pretrain_batch=4)
    pub = public_models(cfg, tmp_path, progress=False)
    paths = [pub.server, pub.dpm, *pub.slms]
    assert all(p is not None and (p / "config.json").exists() for p in paths)
    assert len(set(paths)) == 4 and len(pub.seen) > 0
    assert pub.dpm is not None and pub.dpm.name.startswith("coplms-dpm-distilled-")
    stamps = [(p / "config.json").stat().st_mtime_ns for p in paths]
    again = public_models(cfg, tmp_path, progress=False)
    assert [again.server, again.dpm, *again.slms] == paths
    assert [(p / "config.json").stat().st_mtime_ns for p in paths] == stamps  # not rebuilt
    setup = prepare(cfg, pub)
    used = pub.seen | {prompt_digest(t.prompt) for ts in setup.train for t in ts}
    used |= {prompt_digest(t.prompt) for t in setup.server}
    used |= {prompt_digest(t.prompt) for ts in setup.queries for t in ts}
    assert all(prompt_digest(t.prompt) not in used for ts in setup.eval for t in ts)
    run = run_method("coplms", cfg, setup, _zero, progress=False, public=pub)
    assert type(load_public(pub.slms[1])).__name__ == "LlamaForCausalLM"
    from offload_agents.coplms.experiment import _before

    before = _before(cfg, setup.eval, pub, _zero)
    assert [len(before[role]) for role in ("slm", "dpm", "server")] == [2, 2, 2]
    assert all(x is not None for role in ("slm", "dpm", "server") for x in before[role])
    assert run["params"]["llm"] > max(run["params"]["slm"])


def test_experiment_end_to_end(tmp_path):
    partial: list[dict] = []
    result = run_experiment(TINY, seeds=(0, 1), progress=False, cache_dir=tmp_path,
                            on_seed=partial.append)  # fmt: skip
    assert [p["seeds"] for p in partial] == [[0], [0, 1]]  # a finished seed is reported at once
    assert partial[-1]["methods"] == result["methods"]
    assert set(result["methods"]) == set(METHODS)
    for m in result["methods"].values():
        assert set(m["devices"]) == {"polynomials", "code"}
        assert 0.0 <= m["avg_rouge_l"] <= 1.0 and 0.0 <= m["avg_em"] <= 1.0
        assert len(m["rounds"]) == 2
    paths = write_report(result, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["seeds"] == [0, 1] and "coplms" in paths["md"].read_text()
    # per-task records: every method's devices, and the LLM of the methods that train it
    rows = [json.loads(line) for line in paths["records"].read_text().splitlines()]
    per_method = 2 * sum(TINY.eval_per_device for _ in TINY.devices)  # 2 seeds
    agents = {r["agent"] for r in rows}
    assert agents == set(METHODS) | {f"{m}:server-llm" for m in ("coplms", "oneway", "fedmkt")}
    assert all(sum(r["agent"] == a for r in rows) == per_method for a in agents)
    assert "records" not in data and "records" not in data["runs"]["coplms"][0]
    found = {(c["a"], c["b"], c["metric"]) for c in data["comparisons"]}
    assert ("coplms", "standalone", "correct") in found and ("coplms", "fedavg", "rouge_l") in found
    assert ("coplms:server-llm", "server", "correct") in found
    assert ("coplms[code]", "standalone[code]", "rouge_l") in found
    assert all(c["n_seeds"] == 2 and c["mde80"] is not None for c in data["comparisons"])
    md = paths["md"].read_text()
    assert "Paired comparisons" in md and "Proxy (DPM) after co-tuning" in md
    # the proxy scored before (the distilled public DPM) and after (methods that train one)
    assert all("dpm" in row for row in data["before"].values())  # None: random init here
    assert "| domain | device SLM | proxy (DPM) | server LLM |" in md
    proxied = {name for name, m in data["methods"].items() if m["proxy"] is not None}
    assert proxied == {"coplms", "oneway"}
    # `offload-gym stats` recomputes them from the folder
    from offload_agents.cli import main

    assert main(["stats", str(tmp_path), "--primary", "coplms", "--metric", "rouge_l",
                 "--json", str(tmp_path / "again.json")]) == 0  # fmt: skip
    again_rows = json.loads((tmp_path / "again.json").read_text())["comparisons"]
    saved = {(c["a"], c["b"]): c for c in data["comparisons"] if c["metric"] == "rouge_l"}
    for c in again_rows:
        if (c["a"], c["b"]) in saved:
            assert c["diff"] == pytest.approx(saved[c["a"], c["b"]]["diff"])
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
    again = run_experiment(TINY, seeds=(0,), methods=("coplms",), progress=False,
                           cache_dir=tmp_path)  # fmt: skip
    first = result["runs"]["coplms"][0]["rounds"]
    assert again["runs"]["coplms"][0]["rounds"] == first  # seeded: identical reruns
    with pytest.raises(ValueError, match="unknown method"):
        run_experiment(TINY, methods=("fedprox",))


def test_comparisons_pair_each_device_task_and_match_a_hand_count():
    """Two methods on two devices and two seeds, per-task EM set by hand: the comparison's
    diff is the mean of the per-task differences, its per-seed differences are those of each
    seed's tasks pooled over the devices, and McNemar counts the discordant tasks."""
    from offload_agents.coplms.experiment import comparisons, task_records

    def run(values):  # values[device] -> the run's last-round records of that device
        return {"records": [[{"task_id": f"d{k}t{i}", "correct": float(v), "rouge_l": 0.5 * v}
                             for i, v in enumerate(dev)] for k, dev in enumerate(values)],
                "server_records": None}  # fmt: skip

    runs = {"coplms": [run([[1, 1, 0], [1, 0, 0]]), run([[1, 0, 0], [1, 1, 1]])],
            "standalone": [run([[0, 1, 0], [0, 0, 0]]), run([[1, 0, 0], [0, 1, 0]])]}  # fmt: skip
    rows = task_records([0, 1], runs, ["polynomials", "code"])
    assert len(rows) == 24 and {r["device"] for r in rows} == {"polynomials", "code"}
    found = {(c["a"], c["metric"]): c for c in comparisons(rows, ["polynomials", "code"])}
    em = found["coplms", "correct"]
    assert em["per_seed_diff"] == pytest.approx([2 / 6, 2 / 6])  # seed 0: +2 of 6; seed 1: +2
    assert em["diff"] == pytest.approx(4 / 12) and em["discordant"] == [4, 0]
    assert em["p"] == pytest.approx(0.125) and em["n_tasks"] == 12 and em["n_seeds"] == 2
    code = found["coplms[code]", "correct"]  # device 1 alone: seed 0 +1/3, seed 1 +2/3
    assert code["per_seed_diff"] == pytest.approx([1 / 3, 2 / 3])
    assert found["coplms", "rouge_l"]["diff"] == pytest.approx(0.5 * 4 / 12)
    # a method whose task differs at the same position is refused, not silently paired
    runs["standalone"][0]["records"][0][0]["task_id"] = "other"
    with pytest.raises(ValueError, match="different tasks"):
        comparisons(task_records([0, 1], runs, ["polynomials", "code"]), ["polynomials", "code"])


def test_device_queries_are_answered_by_its_dpm(setup):
    """Unlabeled queries join on-device mutual learning with the device DPM's greedy answers
    as their targets (the labelled tasks keep their references); without queries the device's
    labelled batches are used as they are."""
    from dataclasses import replace

    from offload_agents.coplms import methods
    from offload_agents.lm_eval import generate_responses
    from offload_agents.slm.skill import worked_steps

    m = methods._build(TINY, setup, None)
    batches = methods._mutual_batches(TINY, m, 0, 0)
    n = len(setup.train[0])
    assert len(setup.queries[0]) == TINY.unlabeled_per_device
    assert batches.tasks == [*setup.train[0], *setup.queries[0]]
    answers, _ = generate_responses(m.dpms[0], setup.tokenizer, setup.queries[0],
                                    max_new_tokens=TINY.max_new_tokens)  # fmt: skip
    assert batches.targets[n:] == answers
    assert batches.targets[:n] == [worked_steps(t) for t in setup.train[0]]
    plain = replace(TINY, unlabeled_per_device=0)
    m2 = methods._build(plain, prepare(plain), None)
    assert methods._mutual_batches(plain, m2, 0, 0) is m2.dev_batches[0]


def test_domain_tasks_fill_a_family_that_runs_out():
    """Where one family has no task left that is not excluded, the others fill its share (a
    small task space must not empty the device's held-out set)."""
    from offload_agents.coplms.core import domain_tasks
    from offload_agents.slm.skill import prompt_digest
    from offload_gym.tasks import make_generator

    lists = make_generator("code_lists", seed=3, max_difficulty=2)
    gone = {prompt_digest(lists[i].prompt) for i in range(60)}
    tasks = domain_tasks("code", 10, seed=3, max_difficulty=2, exclude=gone, max_draws=60)
    assert len(tasks) == 10 and {t.metadata.get("family") for t in tasks} == {"code_arithmetic"}
    both = domain_tasks("code", 10, seed=3, max_difficulty=2)
    fams = [t.metadata.get("family") for t in both]
    assert fams[:4] == ["code_arithmetic", "code_lists"] * 2  # interleaved when both have tasks


def test_fedmkt_distils_the_server_llm_into_each_device_on_public_data(setup, monkeypatch):
    """Each round: the LLM tunes on the server's data, then every device tunes on its own data
    and learns from the LLM (a frozen teacher: no optimizer) on public batches, with no proxy
    in between."""
    from offload_agents.coplms import methods

    calls: list[tuple] = []
    real_task, real_mutual = methods.task_steps, methods.mutual_steps

    def task(model, opt, batches, steps):
        calls.append(("task", id(model), id(batches)))
        return real_task(model, opt, batches, steps)

    def mutual(a, b, opt_a, opt_b, batches, steps, **kw):
        calls.append(("mutual", id(a), id(b), opt_b is None, id(batches)))
        return real_mutual(a, b, opt_a, opt_b, batches, steps, **kw)

    monkeypatch.setattr(methods, "task_steps", task)
    monkeypatch.setattr(methods, "mutual_steps", mutual)
    built = _capture_models(monkeypatch)
    run_method("fedmkt", TINY, setup, _zero, progress=False)
    m = built["m"]
    one_round = [("task", id(m.llm), id(m.srv_batches))]
    for k in range(len(TINY.devices)):
        one_round += [("task", id(m.slms[k]), id(m.dev_batches[k])),
                      ("mutual", id(m.slms[k]), id(m.llm), True, id(m.pub_batches[k]))]  # fmt: skip
    assert calls == one_round * TINY.rounds
    assert {t.prompt for t in m.pub_batches[0].tasks} == {t.prompt for t in setup.server}


def _capture_models(monkeypatch) -> dict:
    """``{"m": ...}``, filled with the models of the next `run_method` call when it builds them."""
    from offload_agents.coplms import methods

    built: dict = {}
    real_build = methods._build

    def build(cfg, s, public):
        built["m"] = real_build(cfg, s, public)
        return built["m"]

    monkeypatch.setattr(methods, "_build", build)
    return built


def test_the_server_averages_the_proxies_and_sends_the_global_one_back(setup, monkeypatch):
    """aggregate="average": after a round every device's DPM holds the same weights, the
    global DPM's, which is the data-weighted average of the uploads moved by the server's
    mutual learning with the LLM (one DPM on the server side); aggregate="none": each device
    keeps its own DPM and the server side trains all of them."""
    from dataclasses import replace

    from offload_agents.coplms import methods

    seen: list[int] = []
    real = methods.server_steps

    def spy(llm, dpms, *args, **kw):
        seen.append(len(dpms))
        return real(llm, dpms, *args, **kw)

    monkeypatch.setattr(methods, "server_steps", spy)
    built = _capture_models(monkeypatch)
    run_method("coplms", replace(TINY, rounds=1), setup, _zero, progress=False)
    m = built["m"]
    assert seen == [1]
    glob = m.dpm0.state_dict()
    for dpm in m.dpms:
        assert all(torch.equal(v, glob[k]) for k, v in dpm.state_dict().items())
    seen.clear()
    run_method("coplms", replace(TINY, rounds=1, aggregate="none"), setup, _zero, progress=False)
    m = built["m"]
    assert seen == [len(TINY.devices)]
    a, b = (d.state_dict() for d in m.dpms[:2])
    assert not all(torch.equal(v, b[k]) for k, v in a.items())
    with pytest.raises(ValueError, match="aggregate"):
        CoPLMsConfig(aggregate="median")
