"""DA-GRPO and the GRPO family on TRL's GRPOTrainer: parity with the project's own trainer on
fixed batches, the scorer's grading and budget, and the tiny example end to end."""

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("trl")

from offload_agents.grpo import GRPOConfig, GRPOTrainer
from offload_agents.slm import HELP_REQUEST, load_local_lm
from offload_agents.trl import (
    OffloadBatch,
    OffloadGRPOTrainer,
    OffloadScorer,
    task_dataset,
    trl_args,
)
from offload_gym.tasks import make_generator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _tasks(n=8):
    gen = make_generator("polynomials", seed=0, min_difficulty=1, max_difficulty=1)
    return [gen[i] for i in range(n)]


def _trl_trainer(path, cfg, tmp_path, tasks=None):
    return OffloadGRPOTrainer(path, offload_config=cfg, tasks=tasks or _tasks(),
                              args=trl_args(cfg, str(tmp_path / "trl"), steps=1, use_cpu=True,
                                            bf16=False))  # fmt: skip


BATCHES = [  # (rewards, cloud, correct, offloaded), P = 3 prompts, G = 4
    ([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 1]], [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0]]),
    ([[0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 0, 1]], [[0, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]]),
    ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]], [[1, 1, 1, 0], [0, 1, 0, 1], [0, 0, 0, 1]]),
]


def _batch(rewards, cloud):
    r = torch.tensor(rewards, dtype=torch.float32)
    c = torch.tensor(cloud, dtype=torch.float32)
    return OffloadBatch(r, c, r, c)  # correct = reward; every request granted


@pytest.mark.parametrize(("algorithm", "dual"), [("dagrpo", "ascent"), ("dagrpo", "pid"),
                                                 ("dagrpo", "price"), ("grpo", "ascent"),
                                                 ("collab", "ascent"), ("gapg", "ascent")])  # fmt: skip
def test_advantages_filter_and_lambda_equal_the_project_trainer(tiny_slm, tmp_path, algorithm,
                                                                dual):  # fmt: skip
    cfg = GRPOConfig(algorithm=algorithm, dual=dual, group_size=4, prompts_per_step=3,
                     max_new_tokens=4, eta_lambda=0.2, lambda0=0.5)  # fmt: skip
    model, tok = load_local_lm(tiny_slm)
    ours = GRPOTrainer(model, tok, cfg)
    theirs = _trl_trainer(tiny_slm, cfg, tmp_path)
    for rewards, cloud in BATCHES:
        b = _batch(rewards, cloud)
        if ours.controller is not None:  # the order of GRPOTrainer.update
            ours.controller.observe(b.rewards, b.asked)
        want_adv, want_keep = ours.advantages(b), ours.kept_prompts(b)
        adv, keep = theirs.offload_advantages(b)
        assert torch.allclose(adv, want_adv) and torch.equal(keep, want_keep)
        assert theirs.lam == ours.lam
        usage = float(b.asked.mean())
        if ours.controller is not None:
            ours.controller.update(usage)
        theirs.dual_step(usage)
        assert theirs.lam == pytest.approx(ours.lam, abs=0)
    if algorithm == "gapg":  # the plain ratio: no clip
        assert theirs.epsilon_low == theirs.epsilon_high == float("inf")
    ours.close()


def test_trl_args_map_the_settings():
    cfg = GRPOConfig(group_size=4, prompts_per_step=3, num_iterations=2, clip_eps=0.1, lr=3e-5,
                     beta=0.02, length_norm="token", max_new_tokens=20)  # fmt: skip
    args = trl_args(cfg, "out", steps=7, use_cpu=True)
    assert (args.num_generations, args.per_device_train_batch_size) == (4, 12)
    assert (args.num_iterations, args.epsilon, args.beta, args.learning_rate) == (2, 0.1, 0.02,
                                                                                  3e-5)  # fmt: skip
    assert args.loss_type == "dapo" and args.max_completion_length == 20
    assert args.max_steps == 14  # 7 generated batches, 2 optimiser passes each
    per_response = GRPOConfig(length_norm="sequence")
    assert trl_args(per_response, "out", steps=1, use_cpu=True).loss_type == "grpo"


def test_a_group_size_mismatch_is_refused(tiny_slm, tmp_path):
    cfg = GRPOConfig(group_size=4, prompts_per_step=2)
    args = trl_args(GRPOConfig(group_size=2, prompts_per_step=2), str(tmp_path), steps=1,
                    use_cpu=True)  # fmt: skip
    with pytest.raises(ValueError, match="num_generations"):
        OffloadGRPOTrainer(tiny_slm, offload_config=cfg, tasks=_tasks(), args=args)


def test_scorer_grades_through_the_env_and_caps_hard_budgets(tiny_slm):
    from offload_agents.slm.skill import worked_steps

    _, tok = load_local_lm(tiny_slm)
    tasks = _tasks(4)
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]  # noqa: E731
    right, wrong = worked_steps(tasks[0]), "####999999"
    spec_cfg = GRPOConfig(algorithm="dagrpo")
    scorer = OffloadScorer(tasks, spec_cfg.spec, spec_cfg, tok)
    texts = [right, wrong, HELP_REQUEST, HELP_REQUEST]
    rewards = scorer(None, None, [ids(t) for t in texts], [0, 1, 2, 3])
    assert rewards[:2] == [1.0, 0.0]
    assert list(scorer.last["asked"]) == [0, 0, 1, 1] and list(scorer.last["correct"]) == rewards
    assert scorer.last["offloaded"][2:].tolist() == [1.0, 1.0]  # soft: every request granted
    hard = GRPOConfig(algorithm="gapg", tau=0.5)  # the batch cap: floor(0.5 * 4) = 2 calls
    capped = OffloadScorer(tasks, hard.spec, hard, tok)
    capped(None, None, [ids(HELP_REQUEST)] * 4, [0, 1, 2, 3])
    assert capped.last["offloaded"].sum() == 2 and capped.last["asked"].tolist() == [1, 1, 1, 1]
    capped(None, None, [ids(HELP_REQUEST)] * 4, [0, 1, 2, 3])  # a fresh draw of who is granted
    assert capped.last["offloaded"].sum() == 2
    soft = GRPOConfig(algorithm="collab", tau=0.5)  # collab: no cap (no paper gives it one)
    uncapped = OffloadScorer(tasks, soft.spec, soft, tok)
    uncapped(None, None, [ids(HELP_REQUEST)] * 4, [0, 1, 2, 3])
    assert uncapped.last["offloaded"].sum() == 4
    none = GRPOConfig(algorithm="grpo")
    no_cloud = OffloadScorer(tasks, none.spec, none, tok)
    no_cloud(None, None, [ids(HELP_REQUEST)] * 2, [0, 1])
    assert no_cloud.last["offloaded"].tolist() == [0.0, 0.0]
    assert len(task_dataset(tasks)) == 4 and task_dataset(tasks)[1]["task_index"] == 1
    with pytest.raises(ValueError, match="at least one task"):
        task_dataset([])


def _load_example():
    spec = importlib.util.spec_from_file_location("trl_dagrpo", EXAMPLES / "trl_dagrpo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("algorithm", ["dagrpo", "gapg"])
def test_tiny_example_trains_and_updates_lambda(capsys, algorithm):
    history = _load_example().main(["--tiny", "--algorithm", algorithm, "--dual", "ascent"])
    assert [r["step"] for r in history] == [1, 2, 3]
    for r in history:
        assert 0.0 <= r["cloud_requests"] <= 1.0 and 0.0 <= r["cloud_usage"] <= r["cloud_requests"]
    if algorithm == "dagrpo":  # the paper's ascent, eta 0.01, tau 0.3, on the batch's J_c
        for a, b in itertools.pairwise(history):
            want = max(0.0, a["lambda"] + 0.01 * (a["cloud_requests"] - 0.3))
            assert b["lambda"] == pytest.approx(want)
    out = capsys.readouterr().out
    assert [f"step {k}: lambda" in out for k in (1, 2, 3)] == [True] * 3 and "requests" in out
    assert np.isfinite([r["reward"] for r in history]).all()
