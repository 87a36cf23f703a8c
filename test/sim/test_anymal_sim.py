"""Tests for morobot.sim.anymal: model building and the contact physics of the ANYmal C body."""

import math
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from morobot import paths
from morobot.sim.anymal import (
    STANDING_POSE,
    AnymalSim,
    AnymalSimConfig,
    balance_inertia,
    load_robot_body,
)
from morobot.sim.worlds import Box, World, make_world

RES = 0.1
N = 100
XS = -5.0 + RES * np.arange(N)


def _world(heights=None, boxes=(), start=(-2.0, 0.0, 0.0)):
    h = np.zeros((N, N)) if heights is None else heights
    return World("test", "flat", 0, h, RES, (-5.0, -5.0), list(boxes), start, (3.0, 0.0, 0.0))


def _step(height):
    h = np.zeros((N, N))
    h[XS >= 0.0, :] = height
    return _world(h)


def _drive(sim, cmd, duration, period=0.25):
    """Re-send ``cmd`` every ``period`` like a planner would; returns the states after each period."""
    states = []
    for _ in range(int(round(duration / period))):
        sim.set_command(cmd)
        states.append(sim.advance(period))
    return states


@pytest.fixture(scope="module")
def flat_sim():
    return AnymalSim(_world())


def test_robot_body_matches_urdf():
    urdf = paths.anymal_urdf()
    root = ET.parse(urdf).getroot()
    mass = sum(float(m.get("value")) for m in root.iter("mass"))
    n_collisions = len(root.findall("link/collision"))
    body = load_robot_body(urdf, STANDING_POSE)
    assert body.mass == pytest.approx(mass)
    assert len(body.geoms) == n_collisions
    moments = np.linalg.eigvalsh(body.inertia)
    assert moments.min() > 0 and moments[0] + moments[1] >= moments[2]
    np.testing.assert_allclose(body.inertia, body.inertia.T)
    # feet: left/right and front/hind mirrored, well below the base
    lf, rf, lh, rh = body.feet
    assert lf[0] > 0.2 and lh[0] < -0.2 and lf[1] > 0.1 and rf[1] < -0.1
    np.testing.assert_allclose(lf[[0, 2]], rf[[0, 2]], atol=1e-9)
    assert -0.6 < body.feet[:, 2].mean() < -0.45
    with pytest.raises(FileNotFoundError):
        load_robot_body(urdf.parent / "missing.urdf", STANDING_POSE)
    with pytest.raises(ValueError, match="not in"):
        load_robot_body(urdf, {"XX_HFE": 0.3})


def test_balance_inertia():
    bad = np.diag([8.7e-6, 6.7e-4, 1.37e-3])  # a depth camera link of the URDF
    fixed = balance_inertia(bad)
    w = np.linalg.eigvalsh(fixed)
    assert w[0] + w[1] >= w[2] - 1e-15
    assert w[2] == pytest.approx(1.37e-3)
    rot = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    good = rot @ np.diag([1.0, 2.0, 2.5]) @ rot.T
    np.testing.assert_allclose(balance_inertia(good), good, atol=1e-12)
    rotated_bad = rot @ bad @ rot.T
    np.testing.assert_allclose(balance_inertia(rotated_bad), rot @ fixed @ rot.T, atol=1e-12)
    assert np.linalg.eigvalsh(balance_inertia(np.zeros((3, 3)))).min() > 0
    with pytest.raises(ValueError):
        balance_inertia(np.full((3, 3), np.nan))


def test_heightfield_matches_world_surface():
    world = make_world("rough", 2, size=(8.0, 8.0), amplitude=0.12, wavelength=1.0)
    sim = AnymalSim(world, AnymalSimConfig(tile_cells=10))
    rng = np.random.default_rng(0)
    geomid = np.zeros(1, dtype=np.int32)
    pts = rng.uniform(-3.5, 3.5, (200, 2))
    hits = []
    for x, y in pts:
        d = mujoco.mj_ray(sim.model, sim.data, np.array([x, y, 5.0]), np.array([0.0, 0.0, -1.0]), None, 1,
                          sim.body_id, geomid)
        hits.append(5.0 - d)
    np.testing.assert_allclose(hits, world.height_at(pts[:, 0], pts[:, 1], interp="triangle"), atol=1e-4)
    assert np.abs(np.array(hits) - world.height_at(pts[:, 0], pts[:, 1])).max() > 1e-4  # bilinear differs


def test_stands_still_on_flat_ground(flat_sim):
    sim = flat_sim
    start = sim.reset((0.5, -0.5, 0.7))
    assert start.yaw == pytest.approx(0.7) and sim.time == 0.0
    assert start.position[2] == pytest.approx(sim.stance_height, abs=1e-6)
    states = _drive(sim, (0.0, 0.0, 0.0), 5.0, period=0.5)
    end = states[-1]
    assert sim.time == pytest.approx(5.0)
    assert np.linalg.norm(end.position[:2] - [0.5, -0.5]) < 0.005
    assert max(abs(s.position[2] - sim.stance_height) for s in states) < 0.01
    assert end.gravity[2] < -math.cos(math.radians(1.0))
    assert abs(end.yaw - 0.7) < 0.005
    assert np.abs(end.linear_velocity).max() < 0.01 and np.abs(end.angular_velocity).max() < 0.01
    assert not end.fallen and not end.stuck


def test_tracks_forward_command_within_acceleration_limit(flat_sim):
    sim = flat_sim
    sim.reset((-4.0, 0.0, 0.0))
    early = _drive(sim, (0.8, 0.0, 0.0), 0.4, period=0.1)
    assert 0.25 < early[-1].linear_velocity[0] <= 0.4 + 0.03  # 1 m/s^2 for 0.4 s
    late = _drive(sim, (0.8, 0.0, 0.0), 2.6)
    assert late[-1].linear_velocity[0] == pytest.approx(0.8, abs=0.03)
    x_before = late[-5].position[0]
    assert late[-1].position[0] - x_before == pytest.approx(0.8, abs=0.05)  # the last second
    assert abs(late[-1].position[1]) < 0.02 and abs(late[-1].yaw) < 0.02
    assert not late[-1].stuck
    # turning in place and a world-frame check of base-frame velocities
    sim.reset((0.0, 0.0, math.pi / 2))
    turn = _drive(sim, (0.5, 0.0, 0.0), 1.5)
    assert turn[-1].position[1] > 0.3 and abs(turn[-1].position[0]) < 0.02
    assert turn[-1].linear_velocity[0] == pytest.approx(0.5, abs=0.03)
    spin = _drive(sim, (0.0, 0.0, 0.8), 1.5)
    assert spin[-1].angular_velocity[2] == pytest.approx(0.8, abs=0.05)
    assert spin[-1].yaw > math.pi / 2 + 0.6


def test_stops_on_zero_command_and_after_timeout(flat_sim):
    sim = flat_sim
    sim.reset((-4.0, 0.0, 0.0))
    _drive(sim, (0.8, 0.0, 0.0), 2.0)
    braking = _drive(sim, (0.0, 0.0, 0.0), 0.5)
    assert braking[-1].linear_velocity[0] == pytest.approx(0.3, abs=0.07)  # 1 m/s^2 deceleration
    stopped = _drive(sim, (0.0, 0.0, 0.0), 1.5)
    x_stop = stopped[-1].position[0]
    assert abs(stopped[-1].linear_velocity[0]) < 0.02
    assert abs(sim.advance(1.0).position[0] - x_stop) < 0.01
    # a single command: followed for command_timeout (0.5 s), then the robot stops by itself
    sim.reset((-4.0, 0.0, 0.0))
    sim.set_command((0.8, 0.0, 0.0))
    moving = sim.advance(0.5)
    assert moving.linear_velocity[0] > 0.4
    end = sim.advance(2.5)
    assert abs(end.linear_velocity[0]) < 0.02
    assert end.position[0] + 4.0 < 0.35  # 0.5 s up and ~0.5 s down at 1 m/s^2
    # a stale command (stamped a second ago) is ignored
    sim.reset((-4.0, 0.0, 0.0))
    sim.advance(1.0)
    sim.set_command((0.8, 0.0, 0.0), stamp=sim.time - 1.0)
    assert abs(sim.advance(1.0).position[0] + 4.0) < 0.005


def test_wall_blocks_the_robot():
    face = 0.5
    sim = AnymalSim(_world(boxes=[Box((face + 0.15, 0.0, 0.5), (0.3, 4.0, 1.0), 0.0)]))
    states = _drive(sim, (0.6, 0.0, 0.0), 7.0)
    end = states[-1]
    front = max(p[0] + max(size) for _, _, size, p, _ in sim.body.geoms)  # forward extent of the body
    assert end.position[0] + front <= face + 0.12
    assert end.position[0] > face - front - 0.3  # it walked up to the wall
    assert abs(end.linear_velocity[0]) < 0.02
    assert end.stuck and not end.fallen


def test_step_above_limit_blocks_and_small_step_is_climbed():
    high = AnymalSim(_step(0.35))
    end = _drive(high, (0.6, 0.0, 0.0), 7.0)[-1]
    assert end.position[0] < -0.2  # the feet (0.38 m ahead of the base) stay off the step
    assert end.position[2] < high.stance_height + 0.05
    assert end.stuck and not end.fallen
    low = AnymalSim(_step(0.12))
    states = _drive(low, (0.6, 0.0, 0.0), 7.0)
    end = states[-1]
    assert end.position[0] > 1.5
    assert end.position[2] == pytest.approx(0.12 + low.stance_height, abs=0.02)
    assert end.linear_velocity[0] == pytest.approx(0.6, abs=0.05)
    assert not any(s.fallen or s.stuck for s in states)


def test_slope_slows_the_robot():
    grade = math.tan(math.radians(20.0))
    h = np.tile((grade * np.maximum(XS, 0.0))[:, None], (1, N))
    sim = AnymalSim(_world(h, start=(-3.0, 0.0, 0.0)))
    states = _drive(sim, (1.0, 0.0, 0.0), 7.0)
    xs = np.array([s.position[0] for s in states])
    t = 0.25 * np.arange(1, len(states) + 1)
    flat = (xs < -1.2) & (t > 1.2)
    uphill = xs > 1.0
    assert flat.sum() >= 2 and uphill.sum() >= 4
    v_flat = np.diff(xs)[flat[1:]].mean() / 0.25
    v_up = np.diff(xs)[uphill[1:]].mean() / 0.25
    assert v_flat == pytest.approx(1.0, abs=0.03)
    assert 0.4 < v_up < 0.8  # horizontal speed; slope speed reduction plus cos(20 deg)
    end = states[-1]
    assert end.position[2] > grade * end.position[0] + 0.5
    assert end.gravity[0] < -0.25  # pitched nose-up with the slope
    assert not end.stuck and not end.fallen


def test_walking_off_a_cliff_is_a_fall_until_reset():
    h = np.zeros((N, N))
    h[XS >= 0.0, :] = -1.2
    sim = AnymalSim(_world(h, start=(-1.5, 0.0, 0.0)))
    states = _drive(sim, (0.5, 0.0, 0.0), 5.0)
    assert states[-1].fallen
    first = next(i for i, s in enumerate(states) if s.fallen)
    assert all(s.fallen for s in states[first:])  # latched
    assert not sim.reset().fallen


def test_reset_over_rough_terrain_and_bad_input():
    world = make_world("rough", 3, size=(8.0, 8.0), amplitude=0.1)
    sim = AnymalSim(world)
    st = sim.reset((1.0, -1.0, -2.0))
    c, s = math.cos(-2.0), math.sin(-2.0)
    feet = sim.body.feet[:, :2] @ np.array([[c, -s], [s, c]]).T + [1.0, -1.0]
    ground = world.height_at(feet[:, 0], feet[:, 1], interp="triangle").max()
    assert st.position[2] == pytest.approx(ground + sim.stance_height, abs=1e-6)
    settled = sim.advance(1.0)
    assert not settled.fallen and np.linalg.norm(settled.position[:2] - [1.0, -1.0]) < 0.05
    with pytest.raises(ValueError):
        sim.set_command((np.nan, 0.0, 0.0))
    with pytest.raises(ValueError):
        sim.set_command((1.0, 0.0))
    with pytest.raises(ValueError):
        sim.set_command((1.0, 0.0, 0.0), stamp=float("inf"))
    with pytest.raises(ValueError):
        sim.advance(-1.0)
    with pytest.raises(ValueError):
        sim.advance(float("nan"))
    with pytest.raises(ValueError):
        sim.reset((np.nan, 0.0, 0.0))
    with pytest.raises(ValueError, match="off the terrain"):
        sim.reset((20.0, 0.0, 0.0))
    with pytest.raises(ValueError):
        AnymalSim("rough_obstacles")
    with pytest.raises(ValueError):
        AnymalSimConfig(control_dt=0.013)
    with pytest.raises(ValueError):
        AnymalSimConfig(timestep=-0.005)


def test_stuck_detector_needs_a_command_and_lasting_lack_of_motion():
    from morobot.sim.locomotion import StuckDetector

    det = StuckDetector(window=1.0, ratio=0.25, lever=0.4)
    for _ in range(100):
        det.update((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.02)
    assert not det.stuck  # standing still without a command
    for _ in range(10):
        det.update((0.5, 0.0, 0.0), (0.02, 0.0, 0.0), 0.02)
    assert not det.stuck  # 0.2 s: too short to tell (the averages have not built up)
    for _ in range(100):
        det.update((0.5, 0.0, 0.0), (0.02, 0.0, 0.0), 0.02)
    assert det.stuck
    for _ in range(100):
        det.update((0.0, 0.0, 1.0), (0.0, 0.0, 0.9), 0.02)  # turning on the spot as told
    assert not det.stuck
    det.reset()
    assert not det.stuck
    with pytest.raises(ValueError):
        StuckDetector(ratio=1.5)
