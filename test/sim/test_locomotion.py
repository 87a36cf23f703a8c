"""Tests for morobot.sim.locomotion: command shaping, foothold selection, slope and traction."""

import math

import numpy as np
import pytest

from morobot.sim.locomotion import (
    BaseState,
    LocomotionConfig,
    LocomotionController,
    quat_to_matrix,
)

FEET = np.array([[0.35, 0.25, -0.54], [0.35, -0.25, -0.54], [-0.35, 0.25, -0.54], [-0.35, -0.25, -0.54]])
MASS = 50.0
DT = 0.02
WEIGHT_FORCES = np.full(4, MASS * 9.81 / 4)


def _state(x=0.0, y=0.0, yaw=0.0, pitch=0.0, fallen=False):
    # yaw then pitch about the body y axis (positive = nose down)
    qy = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
    qp = np.array([math.cos(pitch / 2), 0.0, math.sin(pitch / 2), 0.0])
    w1, x1, y1, z1 = qy
    w2, x2, y2, z2 = qp
    q = np.array([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ])
    rot = quat_to_matrix(q)
    return BaseState(np.array([x, y, 0.57]), q, yaw, np.zeros(3), np.zeros(3), -rot[2, :], fallen=fallen)


def _controller(**cfg):
    return LocomotionController(FEET, MASS, LocomotionConfig(**cfg))


def _flat(ctrl, state, z=0.0):
    return np.full(ctrl.sample_points(state).shape[:2], z)


def test_velocity_limits_and_acceleration_limits():
    ctrl = _controller()
    state = _state()
    refs = []
    for _ in range(200):
        out = ctrl.update((5.0, -5.0, 5.0), state, _flat(ctrl, state), WEIGHT_FORCES, DT)
        refs.append(out.reference)
    refs = np.array(refs)
    np.testing.assert_allclose(refs[-1], [1.0, -0.5, 1.0])
    steps = np.diff(np.vstack([np.zeros(3), refs]), axis=0)
    assert np.linalg.norm(steps[:, :2], axis=1).max() <= 1.0 * DT + 1e-12
    assert np.abs(steps[:, 2]).max() <= 2.0 * DT + 1e-12
    # reaching 1.0 m/s (norm of (1, -0.5) = 1.118) at 1 m/s^2 takes ~1.12 s
    n_lin = int(np.argmax(np.linalg.norm(refs[:, :2], axis=1) >= math.hypot(1.0, 0.5) - 1e-9))
    assert n_lin * DT == pytest.approx(math.hypot(1.0, 0.5) - DT, abs=2 * DT)
    # drive targets include the acceleration feed-forward a / gain while accelerating
    ctrl.reset()
    out = ctrl.update((1.0, 0.0, 0.0), state, _flat(ctrl, state), WEIGHT_FORCES, DT)
    assert out.drive[0] == pytest.approx(DT * 1.0 + 1.0 / ctrl.config.velocity_gain)


def test_zero_command_decelerates_at_the_limit():
    ctrl = _controller()
    state = _state()
    ctrl.reset((0.8, 0.0, 0.6))
    out = None
    for _ in range(10):
        out = ctrl.update((0.0, 0.0, 0.0), state, _flat(ctrl, state), WEIGHT_FORCES, DT)
    assert out.reference[0] == pytest.approx(0.8 - 10 * DT * 1.0)
    assert out.reference[2] == pytest.approx(0.6 - 10 * DT * 2.0)
    for _ in range(60):
        out = ctrl.update((0.0, 0.0, 0.0), state, _flat(ctrl, state), WEIGHT_FORCES, DT)
    np.testing.assert_allclose(out.reference, 0.0, atol=1e-12)


def test_stance_targets_on_flat_ground():
    ctrl = _controller()
    state = _state()
    out = ctrl.update((0.0, 0.0, 0.0), state, _flat(ctrl, state, 0.3), WEIGHT_FORCES, DT)
    np.testing.assert_allclose(out.support, 0.3)
    assert out.slope == 0.0 and out.speed_scale == 1.0
    # the spring holds the weight at the target minus the static sag
    expected = 0.3 + 0.54 + ctrl.config.foot_clearance + MASS * 9.81 / (4 * ctrl.config.leg_stiffness)
    np.testing.assert_allclose(out.leg_targets, expected)
    assert ctrl.stance_height == pytest.approx(0.54 + ctrl.config.foot_clearance)


def test_sample_points_follow_pose_and_motion():
    ctrl = _controller()
    pts = ctrl.sample_points(_state(x=1.0, y=2.0))
    assert pts.shape == (4, 4, 2)
    np.testing.assert_allclose(pts[:, 1], FEET[:, :2] + [1.0, 2.0])  # under the hips
    np.testing.assert_allclose(pts[:, 0, 0], FEET[:, 0] + 1.0 - ctrl.config.lookbehind)
    yawed = ctrl.sample_points(_state(yaw=math.pi / 2))
    np.testing.assert_allclose(yawed[0, 1], [-0.25, 0.35], atol=1e-12)
    # moving sideways: the look-ahead points lie along +y of the body, farther when faster
    ctrl.reset((0.0, 0.5, 0.0))
    side = ctrl.sample_points(_state())
    np.testing.assert_allclose(side[:, 3, 0], FEET[:, 0], atol=1e-12)
    ahead = side[:, 3, 1] - FEET[:, 1]
    np.testing.assert_allclose(ahead, ctrl.config.lookahead + ctrl.config.lookahead_time * 0.5)
    # a pitched trunk brings the hips closer together horizontally
    pitched = ctrl.sample_points(_state(pitch=-0.5))
    np.testing.assert_allclose(pitched[0, 1, 0], 0.35 * math.cos(0.5), atol=1e-9)


def test_support_selection_climbs_small_steps_only():
    ctrl = _controller()
    # columns: behind, under, half ahead, ahead
    heights = np.array([
        [0.0, 0.0, 0.0, 0.15],   # climbable step ahead: step up
        [0.0, 0.0, 0.35, 0.35],  # wall/high step ahead: stay on the ground
        [0.0, 0.0, -0.5, -0.5],  # drop ahead: stay up until the foot is past the edge
        [0.3, -0.5, -0.5, -0.5],  # foot past the edge of a drop: step down
    ])
    np.testing.assert_allclose(ctrl.support_heights(heights), [0.15, 0.0, 0.0, -0.5])
    limit = ctrl.config.max_step
    near = np.array([[0.0, 0.0, 0.0, limit - 0.01]] * 4)
    far = np.array([[0.0, 0.0, 0.0, limit + 0.01]] * 4)
    np.testing.assert_allclose(ctrl.support_heights(near), limit - 0.01)
    np.testing.assert_allclose(ctrl.support_heights(far), 0.0)
    # no terrain under a foot: no support, NaNs elsewhere are ignored
    holes = np.array([[0.0, np.nan, 0.0, 0.0], [np.nan, 0.1, np.nan, 0.2]] + [[0.0] * 4] * 2)
    sup = ctrl.support_heights(holes)
    assert np.isnan(sup[0]) and sup[1] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        ctrl.support_heights(np.zeros((3, 4)))


def test_slope_reduces_speed_and_tilts_targets():
    ctrl = _controller()
    state = _state()
    grade = math.tan(math.radians(20.0))
    pts = ctrl.sample_points(state)
    heights = grade * pts[..., 0]
    out = None
    for _ in range(150):
        out = ctrl.update((1.0, 0.0, 0.0), state, heights, WEIGHT_FORCES, DT)
    assert math.degrees(out.slope) == pytest.approx(20.0, abs=2.0)  # look-ahead bias is small
    assert out.speed_scale == pytest.approx(1.0 - 0.5 * math.degrees(out.slope) / 30.0)
    assert out.reference[0] == pytest.approx(out.speed_scale)
    assert out.leg_targets[0] > out.leg_targets[2]  # front legs stand higher uphill
    grip = ctrl.config.friction * math.cos(out.slope) - math.sin(out.slope)
    assert out.traction_limit == pytest.approx(grip * WEIGHT_FORCES.sum())
    assert not out.slip_force.any()


def test_too_steep_slope_slips_downhill():
    ctrl = _controller()
    state = _state()
    grade = math.tan(math.radians(40.0))
    heights = grade * ctrl.sample_points(state)[..., 1]  # uphill towards +y
    out = ctrl.update((0.0, 0.0, 0.0), state, heights, WEIGHT_FORCES, DT)
    assert out.traction_limit == 0.0 and out.yaw_torque_limit == 0.0
    a = out.slope
    expected = (math.sin(a) - ctrl.config.friction * math.cos(a)) * WEIGHT_FORCES.sum()
    np.testing.assert_allclose(out.slip_force, [0.0, -expected, 0.0], atol=1e-6)


def test_traction_scales_with_leg_load():
    ctrl = _controller()
    state = _state()
    full = ctrl.update((0.0, 0.0, 0.0), state, _flat(ctrl, state), WEIGHT_FORCES, DT)
    assert full.traction_limit == pytest.approx(ctrl.config.friction * MASS * 9.81)
    assert full.yaw_torque_limit == pytest.approx(full.traction_limit * ctrl.config.yaw_lever)
    unloaded = ctrl.update((0.0, 0.0, 0.0), state, _flat(ctrl, state), np.array([0.0, -5.0, 0.0, 0.0]), DT)
    assert unloaded.traction_limit == 0.0


def test_fallen_robot_has_no_support_and_no_command():
    ctrl = _controller()
    state = _state(fallen=True)
    ctrl.reset((0.5, 0.0, 0.0))
    out = ctrl.update((1.0, 0.0, 0.0), state, _flat(ctrl, state), WEIGHT_FORCES, DT)
    assert np.isnan(out.leg_targets).all()
    assert out.reference[0] == pytest.approx(0.5 - DT)  # decelerating towards zero


def test_bad_inputs_raise():
    ctrl = _controller()
    state = _state()
    h = _flat(ctrl, state)
    with pytest.raises(ValueError, match="command"):
        ctrl.update((np.nan, 0.0, 0.0), state, h, WEIGHT_FORCES, DT)
    with pytest.raises(ValueError, match="command"):
        ctrl.update((1.0, 0.0), state, h, WEIGHT_FORCES, DT)
    with pytest.raises(ValueError, match="leg_forces"):
        ctrl.update((0.0, 0.0, 0.0), state, h, np.zeros(3), DT)
    with pytest.raises(ValueError, match="dt"):
        ctrl.update((0.0, 0.0, 0.0), state, h, WEIGHT_FORCES, 0.0)
    with pytest.raises(ValueError):
        LocomotionController(FEET[:3], MASS)
    with pytest.raises(ValueError):
        LocomotionController(FEET, -1.0)
    with pytest.raises(ValueError):
        LocomotionConfig(max_velocity=(1.0, -0.5, 1.0))
    with pytest.raises(ValueError):
        LocomotionConfig(max_step=float("nan"))
    with pytest.raises(ValueError):
        LocomotionConfig(slope_speed_drop=1.0)
    with pytest.raises(ValueError):
        ctrl.reset((0.0, np.inf, 0.0))


def test_base_state_helpers():
    st = _state(x=1.0, y=-2.0, yaw=0.3)
    st.linear_velocity = np.array([0.4, 0.1, 0.0])
    st.angular_velocity = np.array([0.0, 0.0, -0.2])
    np.testing.assert_allclose(st.pose, [1.0, -2.0, 0.3])
    np.testing.assert_allclose(st.twist, [0.4, 0.1, -0.2])
    rot = st.rotation()
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rot[:2, 0], [math.cos(0.3), math.sin(0.3)])
