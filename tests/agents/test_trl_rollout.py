"""The text view as TRL's ``rollout_func``: plain ``trl.GRPOTrainer`` graded, budgeted and
rewarded by the environment (`offload_agents.trl_rollout`)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trl")

from offload_agents.slm import HELP_REQUEST, load_local_lm
from offload_agents.slm.skill import worked_steps
from offload_agents.trl import task_dataset
from offload_agents.trl_rollout import OffloadRollout, env_reward
from offload_gym.models import SimulatedCloud
from offload_gym.tasks import make_generator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _tasks(n=8):
    gen = make_generator("polynomials", seed=0, min_difficulty=1, max_difficulty=1)
    return [gen[i] for i in range(n)]


def test_play_grades_through_the_env_and_its_ledger():
    tasks = _tasks(4)
    cloud = SimulatedCloud(accuracy={"math": 1.0, "code": 1.0}, seed=0)
    hard = OffloadRollout(tasks, env_kwargs={"budget": 0.5, "cloud_model": cloud})
    out = hard.play(tasks, [worked_steps(tasks[0]), "####999999", HELP_REQUEST, HELP_REQUEST])
    # the outcomes come back in the given order, whatever order the episode played them in
    assert out["correct"][:2].tolist() == [1.0, 0.0] and out["asked"].tolist() == [0, 0, 1, 1]
    assert out["offloaded"][2:].tolist() == [1.0, 1.0]  # floor(0.5 * 4) = 2 calls: both granted
    assert out["env_reward"].tolist() == out["correct"].tolist()  # default weights: correct
    capped = hard.play(tasks, [HELP_REQUEST] * 4)  # the ledger grants 2 of 4, refuses the rest
    assert capped["offloaded"].sum() == 2 and capped["asked"].sum() == 4
    assert capped["correct"].sum() == 2  # a refused help request answers nothing
    soft = OffloadRollout(tasks, env_kwargs={"budget": 0.5, "budget_mode": "soft",
                                             "cloud_model": cloud})  # fmt: skip
    assert soft.play(tasks, [HELP_REQUEST] * 4)["offloaded"].sum() == 4
    priced = OffloadRollout(tasks, env_kwargs={"reward_weights": {"correct": 1.0,
                                                                  "offloaded": -0.25},
                                               "cloud_model": cloud, "budget": 1.0})  # fmt: skip
    assert priced.play(tasks[:2], [HELP_REQUEST, worked_steps(tasks[1])])[
        "env_reward"].tolist() == [0.75, 1.0]  # fmt: skip
    assert [h["asked"] for h in hard.history] == [0.5, 1.0]


def test_bad_input_is_refused_with_what_was_expected():
    tasks = _tasks(2)
    with pytest.raises(ValueError, match="at least one task"):
        OffloadRollout([])
    with pytest.raises(ValueError, match="must not hold 'tasks'"):
        OffloadRollout(tasks, env_kwargs={"tasks": tasks})
    rollout = OffloadRollout(tasks)
    with pytest.raises(ValueError, match="not one of the rollout's tasks"):
        rollout.task_of("Question: something else\nAnswer:\n")
    with pytest.raises(ValueError, match="plain-text prompts"):
        rollout.task_of([{"role": "user", "content": "hi"}])
    with pytest.raises(ValueError, match="2 tasks but 1 responses"):
        rollout.play(tasks, ["x"])
    with pytest.raises(ValueError, match="rollout_func"):
        env_reward(["q"], ["a", "b"], env_reward=[1.0])
    with pytest.raises(ValueError, match="not a text-view"):
        OffloadRollout(tasks, env_id="OffloadMathRouter-v0").play(tasks, ["1", "2"])


def test_plain_trl_trainer_trains_on_the_env_reward(tiny_slm, tmp_path):
    import trl

    model, tok = load_local_lm(tiny_slm)
    tasks = _tasks(8)
    rollout = OffloadRollout(tasks, env_kwargs={"budget": 0.3}, seed=3)
    args = trl.GRPOConfig(output_dir=str(tmp_path / "out"), max_steps=2, num_generations=4,
                          per_device_train_batch_size=8, max_completion_length=24,
                          learning_rate=1e-4, temperature=1.0, report_to="none",
                          logging_steps=1, save_strategy="no", use_cpu=True, bf16=False,
                          disable_tqdm=True, seed=3)  # fmt: skip
    seen = []

    def spy(prompts, completions, env_reward, asked, **kwargs):
        seen.append((list(prompts), list(env_reward), list(asked)))
        return [0.0] * len(prompts)

    before = [p.detach().clone() for p in model.parameters()]
    trainer = trl.GRPOTrainer(model, reward_funcs=[env_reward, spy], args=args,
                              train_dataset=task_dataset(tasks), rollout_func=rollout,
                              processing_class=tok)  # fmt: skip
    trainer.train()
    assert len(rollout.history) == 2 and len(seen) == 2
    for (prompts, rewards, asked), record in zip(seen, rollout.history, strict=True):
        assert len(prompts) == 8 and len(set(prompts)) == 2  # 2 prompts x 4 completions
        assert np.mean(rewards) == pytest.approx(record["env_reward"])
        assert np.mean(asked) == pytest.approx(record["asked"])
    logged = [h["rewards/env_reward/mean"] for h in trainer.state.log_history
              if "rewards/env_reward/mean" in h]  # fmt: skip
    assert logged == pytest.approx([h["env_reward"] for h in rollout.history])
    # seed 3 gives groups whose rewards differ, so GRPO has a signal and the weights move
    assert any(len(set(r[i : i + 4])) > 1 for _, r, _ in seen for i in (0, 4))
    assert any(not (a == b).all() for a, b in zip(before, model.parameters(), strict=True))


def test_sampled_logprobs_are_the_models_at_the_temperature(tiny_slm):
    import torch

    model, tok = load_local_lm(tiny_slm)
    tasks = _tasks(2)
    rollout = OffloadRollout(tasks, seed=5)
    prompts = [p for p in task_dataset(tasks)["prompt"] for _ in range(2)]
    args = type("Args", (), {"temperature": 0.7, "max_completion_length": 12})()
    ids, completions, logprobs = rollout._sample(model, tok, prompts, args)
    assert [len(c) for c in completions] == [len(lp) for lp in logprobs]
    for prompt, comp, lp in zip(ids, completions, logprobs, strict=True):
        seq = torch.tensor([prompt + comp])
        with torch.no_grad():
            logits = model(input_ids=seq).logits[0, len(prompt) - 1 : -1] / 0.7
        want = torch.log_softmax(logits.float(), -1).gather(1, seq[0, len(prompt) :, None])
        assert lp == pytest.approx(want[:, 0].tolist(), abs=1e-4)
    again = OffloadRollout(tasks, seed=5)._sample(model, tok, prompts, args)
    assert again[1] == completions  # seeded: the same completions


def _load_example():
    spec = importlib.util.spec_from_file_location("trl_env", EXAMPLES / "trl_env_grpo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_runs_at_tiny_settings(capsys):
    history = _load_example().main(["--tiny"])
    assert len(history) == 3
    out = capsys.readouterr().out
    assert "batch 3:" in out and "asked" in out
