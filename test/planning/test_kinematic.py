"""Tests of the kinematic dynamics model: exact SE(2) integration and geometric risk."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from morobot.planning.interface import DynamicsModel, HeightMap, NavState
from morobot.planning.kinematic import KinematicModel

DT = 0.5


def _roll(model: KinematicModel, pose, command, steps: int, hmap=None):
    cmds = torch.tensor(command, dtype=torch.float64).expand(1, steps, 3).clone()
    return model.rollout(NavState(pose=np.asarray(pose, dtype=float)), cmds, hmap)


def _euler_reference(pose, command, duration: float, substeps: int = 200_000) -> np.ndarray:
    """Independent reference: fine forward-Euler integration of the body twist in float64."""
    x, y, yaw = pose
    vx, vy, wz = command
    h = duration / substeps
    t = np.arange(substeps) * h + 0.5 * h  # midpoint rule on the yaw
    yaws = yaw + wz * t
    x += np.sum((np.cos(yaws) * vx - np.sin(yaws) * vy) * h)
    y += np.sum((np.sin(yaws) * vx + np.cos(yaws) * vy) * h)
    return np.array([x, y, yaw + wz * duration])


def _wrap(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def test_implements_dynamics_protocol():
    assert isinstance(KinematicModel(), DynamicsModel)


def test_straight_line_is_exact():
    model = KinematicModel(dt=DT)
    out = _roll(model, (1.0, 2.0, 0.3), (0.8, 0.0, 0.0), 6)
    t = DT * np.arange(1, 7)
    expected = np.stack([1.0 + 0.8 * t * math.cos(0.3), 2.0 + 0.8 * t * math.sin(0.3), np.full(6, 0.3)], -1)
    np.testing.assert_allclose(out.poses[0].numpy(), expected, atol=1e-12)


def test_lateral_motion_is_along_the_body_y_axis():
    model = KinematicModel(dt=DT)
    out = _roll(model, (0.0, 0.0, math.pi / 2), (0.0, 0.4, 0.0), 3)
    np.testing.assert_allclose(out.poses[0, -1].numpy(), [-0.6, 0.0, math.pi / 2], atol=1e-12)


def test_pure_rotation_keeps_position_and_wraps_yaw():
    model = KinematicModel(dt=DT)
    out = _roll(model, (0.5, -0.5, 3.0), (0.0, 0.0, 1.2), 8)
    poses = out.poses[0].numpy()
    np.testing.assert_allclose(poses[:, :2], np.tile([0.5, -0.5], (8, 1)), atol=1e-12)
    expected_yaw = _wrap(3.0 + 1.2 * DT * np.arange(1, 9))
    np.testing.assert_allclose(poses[:, 2], expected_yaw, atol=1e-12)
    assert np.all(poses[:, 2] >= -math.pi) and np.all(poses[:, 2] < math.pi)


def test_arc_matches_closed_form_circle():
    model = KinematicModel(dt=DT)
    v, w, yaw0 = 0.7, 0.9, -0.4
    out = _roll(model, (0.2, 0.1, yaw0), (v, 0.0, w), 7)
    t = DT * np.arange(1, 8)
    x = 0.2 + v / w * (np.sin(yaw0 + w * t) - np.sin(yaw0))
    y = 0.1 - v / w * (np.cos(yaw0 + w * t) - np.cos(yaw0))
    np.testing.assert_allclose(out.poses[0, :, 0].numpy(), x, atol=1e-12)
    np.testing.assert_allclose(out.poses[0, :, 1].numpy(), y, atol=1e-12)
    np.testing.assert_allclose(out.poses[0, :, 2].numpy(), _wrap(yaw0 + w * t), atol=1e-12)


@pytest.mark.parametrize("command", [(0.6, -0.3, 0.8), (-0.4, 0.2, -1.5), (0.5, 0.5, 1e-9), (0.9, 0.0, -3e-7)])
def test_general_twist_matches_numerical_integration(command):
    model = KinematicModel(dt=DT)
    pose0 = (0.3, -1.2, 2.5)
    out = _roll(model, pose0, command, 1)
    ref = _euler_reference(pose0, command, DT)
    np.testing.assert_allclose(out.poses[0, 0, :2].numpy(), ref[:2], atol=1e-9)
    assert abs(_wrap(out.poses[0, 0, 2].item() - ref[2])) < 1e-12


def test_step_and_step_risk_match_rollout():
    torch.manual_seed(0)
    model = KinematicModel(dt=DT)
    hmap = _box_map()
    cmds = torch.randn(64, 5, 3, dtype=torch.float64) * 0.6
    out = model.rollout(NavState(pose=np.array([0.2, 0.1, 0.4])), cmds, hmap)
    pose = torch.tensor([[0.2, 0.1, 0.4]], dtype=torch.float64).expand(64, 3)
    for t in range(5):
        risk = model.step_risk(pose, cmds[:, t], hmap)
        pose = model.step(pose, cmds[:, t])
        np.testing.assert_allclose(pose.numpy(), out.poses[:, t].numpy(), atol=1e-10)
        np.testing.assert_allclose(risk.numpy(), out.risk[:, t].numpy(), atol=1e-6)


# ---------------------------------------------------------------------------------------- risk
RES = 0.1


def _grid(rows=60, cols=60, origin=(-1.0, -3.0)):
    xs = origin[0] + RES * np.arange(rows)
    ys = origin[1] + RES * np.arange(cols)
    return np.meshgrid(xs, ys, indexing="ij"), origin


def _box_map(height=1.0):
    (gx, gy), origin = _grid()
    h = np.where((gx >= 1.5) & (gx <= 2.0) & (np.abs(gy) <= 1.0), height, 0.0)
    return HeightMap(torch.tensor(h, dtype=torch.float32), origin, RES)


def _straight_risk(model, hmap, y=0.0, steps=8, speed=0.6):
    return _roll(model, (0.0, y, 0.0), (speed, 0.0, 0.0), steps, hmap).risk[0].numpy()


def test_risk_is_low_on_flat_ground():
    (gx, _), origin = _grid()
    flat = HeightMap(torch.full(gx.shape, 0.37), origin, RES)
    risk = _straight_risk(KinematicModel(), flat)
    assert risk.max() < 1e-3


def test_risk_is_high_at_a_wall_and_low_beside_it():
    model = KinematicModel()
    hmap = _box_map(1.0)
    through = _straight_risk(model, hmap, y=0.0)
    beside = _straight_risk(model, hmap, y=2.0)
    assert through.max() > 0.95
    # Before reaching the wall (first step ends at x = 0.3 m, far from x = 1.5 m) the risk is low.
    assert through[0] < 0.05
    assert beside.max() < 0.05


def test_risk_covers_the_footprint():
    hmap = _box_map(1.0)  # box edge at |y| = 1.0 m
    wide = KinematicModel(footprint_radius=0.45, slope_window=0.2)
    narrow = KinematicModel(footprint_radius=0.15, slope_window=0.2)
    # The centre passes 0.35 m from the box: inside a 0.45 m footprint, clear of a 0.15 m one.
    assert _straight_risk(wide, hmap, y=1.35).max() > 0.9
    assert _straight_risk(narrow, hmap, y=1.35).max() < 0.1


@pytest.mark.parametrize("height, low", [(0.05, True), (0.1, True), (0.4, False), (0.6, False)])
def test_step_height_risk_grows_with_the_step(height, low):
    (gx, _), origin = _grid()
    hmap = HeightMap(torch.tensor(np.where(gx >= 1.5, height, 0.0), dtype=torch.float32), origin, RES)
    risk = _straight_risk(KinematicModel(), hmap).max()
    assert (risk < 0.2) if low else (risk > 0.8)


@pytest.mark.parametrize("slope_deg, low", [(5.0, True), (15.0, True), (40.0, False), (50.0, False)])
def test_slope_risk_grows_with_the_slope(slope_deg, low):
    (gx, _), origin = _grid()
    h = np.tan(np.radians(slope_deg)) * gx
    risk = _straight_risk(KinematicModel(), HeightMap(torch.tensor(h, dtype=torch.float32), origin, RES))
    assert (risk.max() < 0.2) if low else (risk.min() > 0.8)


def test_unknown_cells_give_unknown_risk():
    (gx, _), origin = _grid()
    model = KinematicModel(unknown_risk=0.3)
    unknown = HeightMap(torch.full(gx.shape, float("nan")), origin, RES)
    np.testing.assert_allclose(_straight_risk(model, unknown), 0.3, atol=1e-5)
    # A strip of NaN across an otherwise flat map raises the risk there only.
    strip = HeightMap(torch.tensor(np.where((gx >= 1.5) & (gx < 2.5), np.nan, 0.0), dtype=torch.float32), origin, RES)
    risk = _straight_risk(model, strip)
    assert risk[0] < 1e-3
    assert 0.25 < risk.max() <= 0.3 + 1e-5


def test_outside_the_map_is_unknown_and_no_map_is_unknown():
    (gx, _), origin = _grid()
    flat = HeightMap(torch.zeros(gx.shape), origin, RES)
    model = KinematicModel(unknown_risk=0.4)
    far = _roll(model, (50.0, 50.0, 0.0), (0.5, 0.0, 0.0), 3, flat).risk
    np.testing.assert_allclose(far.numpy(), 0.4, atol=1e-6)
    none = _roll(model, (0.0, 0.0, 0.0), (0.5, 0.0, 0.0), 3, None).risk
    np.testing.assert_allclose(none.numpy(), 0.4)


def test_risk_is_in_unit_interval_and_shaped():
    torch.manual_seed(1)
    (gx, _), origin = _grid()
    h = torch.randn(gx.shape) * 0.3
    h[h > 0.5] = float("nan")
    model = KinematicModel()
    cmds = torch.randn(128, 12, 3)
    out = model.rollout(NavState(pose=np.zeros(3)), cmds, HeightMap(h, origin, RES))
    assert out.poses.shape == (128, 12, 3) and out.risk.shape == (128, 12)
    assert out.poses.dtype == torch.float32
    assert float(out.risk.min()) >= 0.0 and float(out.risk.max()) <= 1.0


def test_risk_map_cache_follows_in_place_edits():
    (gx, _), origin = _grid()
    heights = torch.zeros(gx.shape)
    hmap = HeightMap(heights, origin, RES)
    model = KinematicModel()
    assert _straight_risk(model, hmap).max() < 1e-3
    heights[25:30, :] = 1.0  # a wall across x = 1.5 .. 1.9 m, edited in place
    assert _straight_risk(model, hmap).max() > 0.95


def test_bad_inputs_raise_value_error():
    model = KinematicModel()
    state = NavState(pose=np.zeros(3))
    with pytest.raises(ValueError, match="commands"):
        model.rollout(state, torch.zeros(4, 3), None)
    with pytest.raises(ValueError, match="commands"):
        model.rollout(state, torch.zeros(4, 5, 2), None)
    with pytest.raises(ValueError, match="NaN"):
        model.rollout(state, torch.full((2, 3, 3), float("nan")), None)
    with pytest.raises(ValueError, match="pose"):
        model.rollout(NavState(pose=np.array([0.0, np.nan, 0.0])), torch.zeros(2, 3, 3), None)
    with pytest.raises(ValueError, match="heights"):
        model.rollout(state, torch.zeros(2, 3, 3), HeightMap(torch.zeros(5), (0.0, 0.0), 0.1))
    with pytest.raises(ValueError, match="resolution"):
        model.rollout(state, torch.zeros(2, 3, 3), HeightMap(torch.zeros(5, 5), (0.0, 0.0), 0.0))
    with pytest.raises(ValueError, match="origin"):
        model.rollout(state, torch.zeros(2, 3, 3), HeightMap(torch.zeros(5, 5), (np.inf, 0.0), 0.1))
    with pytest.raises(ValueError, match="differ"):
        model.step(torch.zeros(3, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="xy"):
        model.sample_risk(torch.zeros(4, 3), _box_map())


@pytest.mark.parametrize(
    "kwargs",
    [{"dt": 0.0}, {"footprint_radius": -1.0}, {"step_limit": np.nan}, {"unknown_risk": 1.5}, {"path_samples": 0}],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        KinematicModel(**kwargs)
