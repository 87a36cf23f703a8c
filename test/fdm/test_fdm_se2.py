"""SE(2) integration and pose algebra (morobot.fdm.se2)."""

import math

import pytest
import torch

from morobot.fdm import se2


def closed_form_arc(vx, vy, wz, dt):
    """End pose of a constant body twist from the identity, written out by hand."""
    th = wz * dt
    if abs(wz) < 1e-12:
        return vx * dt, vy * dt, 0.0
    x = (vx * math.sin(th) - vy * (1.0 - math.cos(th))) / wz
    y = (vx * (1.0 - math.cos(th)) + vy * math.sin(th)) / wz
    return x, y, th


@pytest.mark.parametrize(
    "twist", [(1.0, 0.0, 0.5), (0.3, -0.4, -1.0), (0.8, 0.2, 0.0), (0.0, 0.0, 1.0), (0.5, 0.1, 1e-7), (-1.0, 0.5, 2.5)]
)
def test_exp_twist_matches_closed_form(twist):
    dt = 0.7
    got = se2.exp_twist(torch.tensor(twist, dtype=torch.float64), dt)
    want = closed_form_arc(*twist, dt)
    assert torch.allclose(got, torch.tensor(want, dtype=torch.float64), atol=1e-12)


def test_exp_twist_circle_radius_is_v_over_w():
    v, w = 0.8, 0.4
    poses = se2.integrate(torch.tensor([[v, 0.0, w]] * 20, dtype=torch.float64), 0.37)
    centre = torch.tensor([0.0, v / w], dtype=torch.float64)
    radii = (poses[:, :2] - centre).norm(dim=-1)
    assert torch.allclose(radii, torch.full_like(radii, v / w), atol=1e-12)


def test_integrate_equals_sequential_composition():
    gen = torch.Generator().manual_seed(1)
    twists = torch.rand(5, 12, 3, generator=gen, dtype=torch.float64) * 2 - 1
    start = torch.rand(5, 3, generator=gen, dtype=torch.float64) * 4 - 2
    dt = 0.5
    fast = se2.integrate(twists, dt, start)
    pose = start.clone()
    for t in range(twists.shape[1]):
        pose = se2.compose(pose, se2.exp_twist(twists[:, t], dt))
        assert torch.allclose(fast[:, t, :2], pose[:, :2], atol=1e-10)
        assert torch.allclose(se2.wrap_angle(fast[:, t, 2] - pose[:, 2]), torch.zeros(5, dtype=torch.float64), atol=1e-10)


def test_constant_twist_in_substeps_is_exact():
    twist = torch.tensor([0.9, -0.3, 0.8], dtype=torch.float64)
    whole = se2.exp_twist(twist, 2.0)
    pieces = se2.integrate(twist.expand(8, 3), 0.25)[-1]
    assert torch.allclose(whole, pieces, atol=1e-12)


def test_compose_inverse_relative_identities():
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(50, 3, generator=gen, dtype=torch.float64) * 6 - 3
    b = torch.rand(50, 3, generator=gen, dtype=torch.float64) * 6 - 3
    ident = se2.compose(a, se2.inverse(a))
    assert torch.allclose(ident, torch.zeros_like(ident), atol=1e-12)
    back = se2.compose(a, se2.relative(a, b))
    assert torch.allclose(back[:, :2], b[:, :2], atol=1e-12)
    assert torch.allclose(se2.wrap_angle(back[:, 2] - b[:, 2]), torch.zeros(50, dtype=torch.float64), atol=1e-12)


def test_twist_between_inverts_exp():
    gen = torch.Generator().manual_seed(3)
    twists = torch.rand(100, 3, generator=gen, dtype=torch.float64) * 2 - 1
    start = torch.rand(100, 3, generator=gen, dtype=torch.float64)
    end = se2.compose(start, se2.exp_twist(twists, 0.5))
    assert torch.allclose(se2.twist_between(start, end, 0.5), twists, atol=1e-10)


def test_exp_twist_gradient_finite_at_zero_rotation():
    twist = torch.tensor([1.0, 0.5, 0.0], requires_grad=True)
    se2.exp_twist(twist, 0.5).sum().backward()
    assert torch.isfinite(twist.grad).all()


def test_wrap_angle_range():
    a = torch.linspace(-20, 20, 1001)
    w = se2.wrap_angle(a)
    assert (w >= -math.pi).all() and (w < math.pi).all()
    assert torch.allclose(torch.sin(w), torch.sin(a), atol=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="trailing dimension of 3"):
        se2.exp_twist(torch.zeros(4, 2), 0.1)
    with pytest.raises(ValueError, match="dt must be positive"):
        se2.integrate(torch.zeros(2, 3, 3), 0.0)
    with pytest.raises(ValueError, match=r"\[\.\.\., T, 3\]"):
        se2.integrate(torch.zeros(3), 0.1)
