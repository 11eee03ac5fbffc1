"""The GRPO-family maths against values worked out by hand."""

import math

import pytest
import torch

from offload_agents.grpo.functional import (
    clipped_surrogate,
    dual_advantage,
    dual_update,
    group_advantages,
    k3_kl,
    masked_mean,
    policy_loss,
)


def test_group_advantages_by_hand():
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    a = group_advantages(r, normalize="none")
    assert torch.allclose(a, torch.tensor([[0.75, -0.25, -0.25, -0.25], [0.0, 0.0, 0.0, 0.0]]))
    s = group_advantages(r, normalize="std", eps=0.0)
    std = math.sqrt((0.75**2 + 3 * 0.25**2) / 3)  # unbiased std of [1, 0, 0, 0]
    assert torch.allclose(s[0], torch.tensor([0.75, -0.25, -0.25, -0.25]) / std)
    assert torch.allclose(group_advantages(r, eps=1e-4)[1], torch.zeros(4))  # no signal, no NaN


def test_std_normalisation_erases_the_cloud_discount():
    """GAPG's diagnosis: with std normalisation a lone local success (alpha_a = 1) and a lone
    cloud success (alpha_c = 0.4) get the same advantage; without it they do not."""
    local = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    cloud = torch.tensor([[0.4, 0.0, 0.0, 0.0]])
    assert torch.allclose(group_advantages(local, eps=0.0), group_advantages(cloud, eps=0.0))
    assert not torch.allclose(group_advantages(local, normalize="none"),
                              group_advantages(cloud, normalize="none"))  # fmt: skip


def test_dual_advantage_by_hand():
    r = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    c = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    # A_r = [.5, .5, -.5, -.5]; A_c = [.5, -.5, .5, -.5]
    assert torch.allclose(dual_advantage(r, c, 0.0), torch.tensor([[0.5, 0.5, -0.5, -0.5]]))
    assert torch.allclose(dual_advantage(r, c, 1.0), torch.tensor([[0.0, 1.0, -1.0, 0.0]]))
    with pytest.raises(ValueError):
        dual_advantage(r, c[:, :3], 1.0)


def test_dual_update_tracks_the_budget():
    lam = 0.5
    for _ in range(10):
        lam = dual_update(lam, usage=0.6, tau=0.3, eta=0.1)
    assert lam == pytest.approx(0.8)
    for _ in range(100):
        lam = dual_update(lam, usage=0.0, tau=0.3, eta=0.1)
    assert lam == 0.0
    with pytest.raises(ValueError):
        dual_update(0.5, 0.5, 0.3, -1.0)


def test_clipped_surrogate_by_hand():
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.0]]))
    old = torch.zeros(1, 3)
    pos = clipped_surrogate(logp, old, torch.tensor([1.0]), clip_eps=0.2)
    neg = clipped_surrogate(logp, old, torch.tensor([-1.0]), clip_eps=0.2)
    assert torch.allclose(pos, torch.tensor([[1.2, 0.5, 1.0]]))  # clip above for A > 0
    assert torch.allclose(neg, torch.tensor([[-1.5, -0.8, -1.0]]))  # pessimistic for A < 0


def test_k3_by_hand():
    logp = torch.tensor([math.log(0.5)])
    ref = torch.tensor([math.log(0.25)])
    d = math.log(0.25) - math.log(0.5)
    assert torch.allclose(k3_kl(logp, ref), torch.tensor([math.exp(d) - d - 1]))
    assert (k3_kl(torch.randn(100), torch.randn(100)) >= 0).all()


def test_masked_tokens_carry_no_gradient():
    """Cloud tokens (mask 0) get no gradient: only the local model's tokens are trained."""
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    loss = policy_loss(logp, logp.detach(), torch.tensor([1.0, -1.0]), mask)
    loss.backward()
    assert (logp.grad[mask == 0] == 0).all() and (logp.grad[mask == 1] != 0).all()
    # At ratio 1, token-level (the default): -(1 + 1 - 1) / 3 tokens.
    assert loss.item() == pytest.approx(-1 / 3)
    # Per-sequence: the means are 1 and -1, so the loss is -(1 - 1) / 2 = 0.
    seq = policy_loss(logp, logp.detach(), torch.tensor([1.0, -1.0]), mask, length_norm="sequence")
    assert seq.item() == pytest.approx(0.0)


def test_length_normalisations_by_hand():
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    adv = torch.tensor([1.0, 3.0])
    # sequence: mean(1, 3) = 2; token: (1 + 1 + 1 + 3) / 4 = 1.5
    assert policy_loss(logp, logp, adv, mask, length_norm="sequence").item() == pytest.approx(-2.0)
    assert policy_loss(logp, logp, adv, mask, length_norm="token").item() == pytest.approx(-1.5)
    with pytest.raises(ValueError):
        policy_loss(logp, logp, adv, mask, length_norm="word")  # type: ignore[arg-type]


def test_kl_term_enters_with_beta():
    logp = torch.tensor([[0.0]])
    ref = torch.tensor([[math.log(0.5)]])
    base = policy_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1))
    with_kl = policy_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), ref_logp=ref, beta=0.1)
    assert with_kl.item() == pytest.approx(base.item() + 0.1 * k3_kl(logp, ref).item())
    assert masked_mean(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])).item() == 3.0


def test_token_level_norm_gives_a_short_help_request_no_per_token_bonus():
    """A 2-token help request and an 8-token answer with advantages of equal size: under the
    token-level normalisation (the default) every token gets the same gradient weight; under the
    per-response one each of the short response's tokens weighs 4x more."""
    mask = torch.zeros(2, 8)
    mask[0, :2] = 1.0
    mask[1, :] = 1.0
    adv = torch.tensor([1.0, -1.0])
    weights = {}
    for norm in ("token", "sequence"):
        logp = torch.zeros(2, 8, requires_grad=True)
        policy_loss(logp, logp.detach(), adv, mask, length_norm=norm).backward()
        g = logp.grad.abs()
        weights[norm] = (g[0, :2].mean() / g[1].mean()).item()
    assert weights["token"] == pytest.approx(1.0)
    assert weights["sequence"] == pytest.approx(4.0)
