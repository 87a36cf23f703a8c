"""PerceptiveFDM shapes, encode-once broadcasting, aggregation and loss (morobot.fdm.model/loss)."""

import math

import pytest
import torch

from morobot.fdm import se2
from morobot.fdm.training.loss import (EUCLIDEAN_DELTA, LossWeights, cumulative_collision_bce, failure_log_odds,
                                      fdm_loss, ranking_loss)
from morobot.fdm.model import FDMConfig, MemberOutput, PerceptiveFDM, collision_probability, stop_at_failure

from fdm_small import SMALL


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)  # model initialisation draws from the global generator


def inputs(cfg, batch, gen):
    hist = torch.randn(batch, cfg.history_length, cfg.history_dim, generator=gen)
    scan = torch.randn(batch, 2, *cfg.scan.shape, generator=gen)
    scan[:, 1] = (torch.rand(batch, *cfg.scan.shape, generator=gen) > 0.2).float()
    return hist, scan


def randomised(model, gen):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return model.eval()


def test_default_config_shapes():
    cfg = FDMConfig()
    model = PerceptiveFDM(cfg).eval()
    gen = torch.Generator().manual_seed(0)
    hist, scan = inputs(cfg, 1, gen)
    with torch.no_grad():
        ctx = model.encode(hist, scan)
        pred = model.predict(ctx, torch.randn(64, cfg.horizon, 3, generator=gen))
    assert ctx.shape == (1, cfg.context_dim)
    assert pred.poses.shape == (64, cfg.horizon, 3)
    assert pred.collision.shape == pred.uncertainty.shape == (64, cfg.horizon)
    assert pred.members.poses.shape == (cfg.ensemble_size, 64, cfg.horizon, 3)


def test_encode_once_broadcast_equals_per_sample_encoding():
    gen = torch.Generator().manual_seed(1)
    cfg = FDMConfig(**SMALL)
    model = randomised(PerceptiveFDM(cfg), gen)
    hist, scan = inputs(cfg, 1, gen)
    k = 37
    commands = torch.rand(k, cfg.horizon, 3, generator=gen) * 2 - 1
    with torch.no_grad():
        shared = model.predict(model.encode(hist, scan), commands)
        per_sample = model.predict(model.encode(hist.expand(k, -1, -1), scan.expand(k, -1, -1, -1)), commands)
    # batch-1 and batch-K encoders take different BLAS/conv code paths (context differs by
    # ~1e-6), so compare to float32 round-off, not bit-exactly
    assert torch.allclose(shared.poses, per_sample.poses, atol=1e-4)
    assert torch.allclose(shared.collision, per_sample.collision, atol=1e-5)
    assert torch.allclose(shared.uncertainty, per_sample.uncertainty, atol=1e-4)
    # and a sample's prediction does not depend on the other samples in the batch
    with torch.no_grad():
        alone = model.predict(model.encode(hist, scan), commands[5:6])
    assert torch.allclose(alone.poses[0], shared.poses[5], atol=1e-4)


def test_aggregation_start_pose_and_uncertainty():
    gen = torch.Generator().manual_seed(2)
    cfg = FDMConfig(**SMALL)
    model = randomised(PerceptiveFDM(cfg), gen)
    hist, scan = inputs(cfg, 1, gen)
    commands = torch.rand(8, cfg.horizon, 3, generator=gen) * 2 - 1
    start = torch.tensor([2.0, -1.0, 0.8])
    with torch.no_grad():
        ctx = model.encode(hist, scan)
        rel = model.predict(ctx, commands)
        odom = model.predict(ctx, commands, start)
    assert torch.allclose(odom.poses, se2.compose(start, rel.poses), atol=1e-5)
    members = rel.members.poses
    assert torch.allclose(rel.poses[..., :2], members[..., :2].mean(0), atol=1e-6)
    spread = (members[..., :2] - members[..., :2].mean(0)).norm(dim=-1).square().mean(0).sqrt()
    assert torch.allclose(rel.uncertainty, spread, atol=1e-6)
    assert (rel.uncertainty > 0).any()
    # members integrate their own twists exactly
    assert torch.allclose(members, se2.integrate(rel.members.twists, cfg.dt), atol=1e-5)
    # cumulative collision probability: in [0, 1] and non-decreasing
    assert ((rel.collision >= 0) & (rel.collision <= 1)).all()
    assert (rel.collision.diff(dim=-1) >= -1e-7).all()


def test_with_members_keeps_the_first_members_exactly():
    gen = torch.Generator().manual_seed(5)
    cfg = FDMConfig(**{**SMALL, "ensemble_size": 4})
    model = randomised(PerceptiveFDM(cfg), gen)
    model.set_normalization(torch.arange(9.0), torch.full((9,), 2.0), -0.5, 0.25)
    hist, scan = inputs(cfg, 1, gen)
    commands = torch.rand(12, cfg.horizon, 3, generator=gen) * 2 - 1
    two = model.with_members(2)
    assert two.config.ensemble_size == 2 and model.config.ensemble_size == 4  # the original is untouched
    assert not two.training and two.history_mean.equal(model.history_mean)
    with torch.no_grad():
        ctx = model.encode(hist, scan)
        torch.testing.assert_close(two.encode(hist, scan), ctx, rtol=0, atol=0)
        full, part = model.predict(ctx, commands), two.predict(ctx, commands)
    for a, b in zip(full.members, part.members):  # each kept member predicts as before
        torch.testing.assert_close(b, a[:2], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(part.poses[..., :2], full.members.poses[:2, ..., :2].mean(0), rtol=1e-6, atol=1e-6)
    assert (part.uncertainty > 0).any() and not torch.allclose(part.uncertainty, full.uncertainty)
    assert model.with_members(4) is model
    with torch.no_grad():  # one member: no spread
        assert torch.all(model.with_members(1).predict(ctx, commands).uncertainty == 0)
    for bad in (0, 5, -1, 2.0, True):
        with pytest.raises(ValueError, match="members"):
            model.with_members(bad)


def test_untrained_model_tracks_commands():
    cfg = FDMConfig(**SMALL)
    model = PerceptiveFDM(cfg).eval()
    gen = torch.Generator().manual_seed(3)
    hist, scan = inputs(cfg, 1, gen)
    commands = torch.rand(16, cfg.horizon, 3, generator=gen) * 2 - 1
    with torch.no_grad():
        pred = model.predict(model.encode(hist, scan), commands)
    ideal = se2.integrate(commands, cfg.dt)
    assert (pred.poses[..., :2] - ideal[..., :2]).norm(dim=-1).max() < 0.5
    assert pred.collision.max() < 0.3


def test_no_scan_model_ignores_scan():
    cfg = FDMConfig(**{**SMALL, "use_scan": False})
    model = PerceptiveFDM(cfg).eval()
    assert model.scan_encoder is None
    assert not any("scan_encoder" in k for k in model.state_dict())
    gen = torch.Generator().manual_seed(4)
    hist, _ = inputs(cfg, 2, gen)
    assert model.encode(hist, None).shape == (2, cfg.context_dim)


def test_normalization_lives_in_state_dict():
    cfg = FDMConfig(**SMALL)
    model = PerceptiveFDM(cfg)
    model.set_normalization(torch.arange(9.0), torch.full((9,), 2.0), -0.5, 0.25)
    state = model.state_dict()
    assert torch.equal(state["history_mean"], torch.arange(9.0))
    assert float(state["scan_mean"]) == -0.5 and float(state["scan_std"]) == 0.25
    with pytest.raises(ValueError, match="9 values"):
        model.set_normalization(torch.zeros(8), torch.ones(8))


def test_config_round_trip_and_validation():
    cfg = FDMConfig(**SMALL)
    again = FDMConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(ValueError, match="unknown"):
        FDMConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="missing"):
        FDMConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "dt"})
    with pytest.raises(ValueError, match="ensemble_size"):
        FDMConfig(ensemble_size=0)
    with pytest.raises(ValueError, match="command_limits"):
        FDMConfig(command_limits=(1.0, 0.0, 1.0))


def test_stop_at_failure_is_the_expected_pose_under_the_failure_times():
    poses = torch.tensor([[[1.0, 0.0, 0.0], [2.0, 1.0, math.pi / 2], [3.0, 2.0, math.pi / 2]]], dtype=torch.float64)
    never = stop_at_failure(poses, torch.full((1, 3), -40.0, dtype=torch.float64))
    assert torch.allclose(never, poses)
    at_once = stop_at_failure(poses, torch.tensor([[40.0, 0.0, 0.0]], dtype=torch.float64))
    assert torch.allclose(at_once, poses[:, :1].expand(1, 3, 3))
    logits = torch.tensor([[-1.0, 0.5, -2.0]], dtype=torch.float64)
    f = collision_probability(logits)[0]
    out = stop_at_failure(poses, logits)[0]
    w = torch.stack((f[0], f[1] - f[0], 1 - f[1]))  # step 1: failed at step 0, at step 1, or not yet
    assert torch.allclose(out[1, :2], w[0] * poses[0, 0, :2] + (w[1] + w[2]) * poses[0, 1, :2])
    w2 = torch.stack((f[0], f[1] - f[0], f[2] - f[1], 1 - f[2]))
    assert torch.allclose(out[2, :2], w2[0] * poses[0, 0, :2] + w2[1] * poses[0, 1, :2]
                          + (w2[2] + w2[3]) * poses[0, 2, :2])
    heading = torch.atan2(w2[1] + w2[2] + w2[3], w2[0])  # unit vectors at 0 and pi/2, mixed
    assert float(out[2, 2]) == pytest.approx(float(heading))


def test_a_model_with_stopped_poses_keeps_its_weights_and_old_configs_load():
    gen = torch.Generator().manual_seed(4)
    cfg = FDMConfig(**SMALL)
    model = randomised(PerceptiveFDM(cfg), gen)
    stopped = model.with_stop_at_failure()
    assert stopped.config.stop_at_failure and not model.config.stop_at_failure
    assert stopped.with_stop_at_failure() is stopped and model.with_stop_at_failure(False) is model
    hist, scan = inputs(cfg, 1, gen)
    commands = torch.rand(16, cfg.horizon, 3, generator=gen) * 2 - 1
    with torch.no_grad():
        raw = model.predict(model.encode(hist, scan), commands)
        out = stopped.predict(stopped.encode(hist, scan), commands)
    assert torch.equal(raw.collision, out.collision)
    members = stop_at_failure(raw.members.poses, raw.members.hazard_logits)
    assert torch.allclose(out.members.poses, members, atol=1e-6)
    assert torch.allclose(out.poses[..., :2], members[..., :2].mean(0), atol=1e-6)
    old = {k: v for k, v in cfg.to_dict().items() if k != "stop_at_failure"}  # a checkpoint from before
    assert FDMConfig.from_dict(old) == cfg
    with pytest.raises(ValueError, match="stop_at_failure"):
        FDMConfig(stop_at_failure=1)


def test_bad_shapes_raise():
    cfg = FDMConfig(**SMALL)
    model = PerceptiveFDM(cfg)
    gen = torch.Generator().manual_seed(5)
    hist, scan = inputs(cfg, 2, gen)
    with pytest.raises(ValueError, match="history"):
        model.encode(hist[:, :5], scan)
    with pytest.raises(ValueError, match="scan"):
        model.encode(hist, scan[..., :3])
    with pytest.raises(ValueError, match="uses the height scan"):
        model.encode(hist, None)
    ctx = model.encode(hist, scan)
    with pytest.raises(ValueError, match="context batch"):
        model.predict(ctx, torch.zeros(5, cfg.horizon, 3))
    with pytest.raises(ValueError, match="commands"):
        model.predict(ctx[:1], torch.zeros(5, cfg.horizon, 2))


def test_collision_probability_and_bce_match_definitions():
    logits = torch.tensor([[-1.0, 0.5, 2.0], [-3.0, -3.0, -3.0]], dtype=torch.float64)
    hazard = torch.sigmoid(logits)
    manual = 1 - torch.cumprod(1 - hazard, dim=-1)
    assert torch.allclose(collision_probability(logits), manual)
    labels = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    bce = -(labels * torch.log(manual) + (1 - labels) * torch.log(1 - manual))
    assert torch.allclose(cumulative_collision_bce(logits, labels), bce)
    extreme = cumulative_collision_bce(torch.tensor([[-200.0, 200.0]]), torch.tensor([[1.0, 1.0]]))
    assert torch.isfinite(extreme).all()


def test_failure_log_odds_and_the_ranking_loss():
    logits = torch.tensor([[-3.0, -2.0, 0.5], [-12.0, -12.0, -12.0], [4.0, 4.0, 4.0]], dtype=torch.float64)
    p = collision_probability(logits)[:, -1]
    assert torch.allclose(failure_log_odds(logits), torch.log(p / (1 - p)))
    low, high = logits[None, 1:2], logits[None, 2:3]  # [E = 1, P = 1, T]
    assert float(ranking_loss(low, low)) == pytest.approx(math.log(2.0))
    assert float(ranking_loss(high, low)) < 1e-6 < float(ranking_loss(low, high))  # failing one ranked above: ~0
    wrong = low.clone().requires_grad_(True)
    ranking_loss(wrong, high).backward()
    assert float(wrong.grad.sum()) < 0  # descending the loss raises the failing command's hazard
    with pytest.raises(ValueError, match="one shape"):
        ranking_loss(logits[None], logits[None, :2])


def test_loss_terms():
    target = torch.tensor([[[0.5, 0.0, 0.0], [1.0, 0.1, 0.2], [1.0, 0.1, 0.2]]])
    failed = torch.tensor([[0.0, 1.0, 1.0]])
    poses = target.unsqueeze(0).repeat(2, 1, 1, 1)
    out = MemberOutput(torch.zeros_like(poses), poses, torch.zeros(2, 1, 3))
    _, terms = fdm_loss(out, target, failed)
    assert float(terms["position"]) == pytest.approx(0.0, abs=1e-7)
    assert float(terms["heading"]) == pytest.approx(0.0, abs=1e-7)
    assert float(terms["stop"]) == pytest.approx(0.0, abs=1e-7)
    moved = poses.clone()
    moved[:, :, 2, 0] += 0.3  # keeps moving after the failure
    _, terms = fdm_loss(MemberOutput(torch.zeros_like(poses), moved, torch.zeros(2, 1, 3)), target, failed)
    assert float(terms["stop"]) == pytest.approx(0.09 / 3, rel=1e-5)
    assert float(terms["position"]) == pytest.approx(0.09 / 3, rel=1e-5)
    turned = poses.clone()
    turned[..., 2] += math.pi  # opposite heading everywhere: (sin, cos) distance 2
    _, terms = fdm_loss(MemberOutput(torch.zeros_like(poses), turned, torch.zeros(2, 1, 3)), target, failed)
    assert float(terms["heading"]) == pytest.approx(4.0, rel=1e-5)
    weights = torch.tensor([[1.0], [0.0]])
    moved_out = MemberOutput(torch.zeros_like(poses), moved, torch.zeros(2, 1, 3))
    _, terms_w = fdm_loss(moved_out, target, failed, sample_weights=weights)
    assert float(terms_w["stop"]) == pytest.approx(0.09 / 3, rel=1e-5)
    with pytest.raises(ValueError, match="targets"):
        fdm_loss(out, target[:, :2], failed)


def test_euclidean_terms_are_distances_with_a_gradient_that_does_not_vanish():
    target = torch.zeros(1, 4, 3)
    failed = torch.zeros(1, 4)
    euclid = LossWeights(distance="euclidean")
    for err in (0.02, 0.3, 1.5):
        poses = target.clone().unsqueeze(0)
        poses[..., 0] += err * 0.6
        poses[..., 1] += err * 0.8  # |(0.6, 0.8)| = 1
        out = MemberOutput(torch.zeros_like(poses), poses, torch.zeros(1, 1, 4))
        _, sq = fdm_loss(out, target, failed)
        _, eu = fdm_loss(out, target, failed, euclid)
        assert float(sq["position"]) == pytest.approx(err**2, rel=1e-5)
        assert float(eu["position"]) == pytest.approx(math.hypot(err, EUCLIDEAN_DELTA) - EUCLIDEAN_DELTA, rel=1e-5)
        assert float(eu["position"]) == pytest.approx(err, abs=EUCLIDEAN_DELTA)
    turned = target.clone().unsqueeze(0)
    turned[..., 2] = math.pi  # chord length 2
    _, eu = fdm_loss(MemberOutput(torch.zeros_like(turned), turned, torch.zeros(1, 1, 4)), target, failed, euclid)
    assert float(eu["heading"]) == pytest.approx(2.0, abs=EUCLIDEAN_DELTA)
    grads = {}
    for distance in ("squared", "euclidean"):  # 5 cm off: the squared term's pull is 2 x 0.05, the distance's ~1
        poses = torch.zeros(1, 1, 4, 3)
        poses[..., 0] = 0.05
        poses.requires_grad_(True)
        _, terms = fdm_loss(MemberOutput(torch.zeros_like(poses), poses, torch.zeros(1, 1, 4)), target, failed,
                            LossWeights(distance=distance))
        terms["position"].backward()
        grads[distance] = float(poses.grad[..., 0].sum())
    assert grads["squared"] == pytest.approx(0.1, rel=1e-4)
    assert grads["euclidean"] == pytest.approx(0.05 / math.hypot(0.05, EUCLIDEAN_DELTA), rel=1e-4)
    at_zero = torch.zeros(1, 1, 4, 3, requires_grad=True)
    _, terms = fdm_loss(MemberOutput(torch.zeros(1, 1, 4, 3), at_zero, torch.zeros(1, 1, 4)), target, failed, euclid)
    terms["position"].backward()
    assert torch.all(torch.isfinite(at_zero.grad)) and float(terms["position"].detach()) == 0.0  # smooth at zero
    with pytest.raises(ValueError, match="distance"):
        LossWeights(distance="manhattan")
