"""Tests for morobot.sim.depth: ray-cast depth cameras on the simulated ANYmal."""

import math
from dataclasses import replace

import numpy as np
import pytest

from morobot.sim.anymal import AnymalSim, AnymalSimConfig
from morobot.sim.depth import DepthCamera, DepthSensor, DepthSensorConfig, rpy_matrix
from morobot.sim.locomotion import quat_to_matrix
from morobot.sim.worlds import Box, World, make_world

N = 100


def _world(boxes=(), n=N):
    half = 0.05 * (n - 1)
    return World("depth", "flat", 0, np.zeros((n, n)), 0.1, (-half, -half), list(boxes), (0.0, 0.0, 0.0),
                 (3.0, 0.0, 0.0))


def _wall_in_front(distance, x=0.0, y=0.0, yaw=0.0):
    """A wall whose face is ``distance`` ahead of a robot at (x, y, yaw)."""
    c, s = math.cos(yaw), math.sin(yaw)
    centre = (x + (distance + 0.5) * c, y + (distance + 0.5) * s, 0.75)
    return Box(centre, (1.0, 6.0, 1.5), yaw)


def _points_on_wall(points):
    return points[points[:, 2] > -0.45]  # above the ground (base is ~0.57 m up)


@pytest.fixture(scope="module")
def wall_sim():
    return AnymalSim(_world([_wall_in_front(2.0)]))


def test_default_cameras_are_anymals_four(wall_sim):
    front, rear, left, right = wall_sim.sensor.cameras
    assert (front.name, rear.name, left.name, right.name) == ("front", "rear", "left", "right")
    assert front.position[0] > 0.4 and rear.position[0] < -0.4
    assert left.position[1] > 0.05 and right.position[1] < -0.05
    for cam in (front, rear, left, right):
        assert cam.rpy[1] == pytest.approx(math.radians(30.0))  # tilted down
    assert abs(abs(rear.rpy[2]) - math.pi) < 1e-9  # looking backwards
    assert left.rpy[2] == pytest.approx(math.pi / 2) and right.rpy[2] == pytest.approx(-math.pi / 2)
    assert wall_sim.sensor.n_rays == 4 * front.width * front.height


def test_wall_is_seen_at_its_distance(wall_sim):
    sim = wall_sim
    sim.reset((0.0, 0.0, 0.0))
    clean = _points_on_wall(sim.depth_points(noise=False))
    assert len(clean) > 100
    np.testing.assert_allclose(clean[:, 0], 2.0, atol=1e-4)
    assert clean[:, 1].min() < -0.8 and clean[:, 1].max() > 0.8  # spans the field of view
    noisy = _points_on_wall(sim.depth_points())
    assert abs(float(np.median(noisy[:, 0])) - 2.0) < 0.01
    assert noisy[:, 0].std() > 1e-3  # noise is on
    assert noisy.dtype == np.float32 and noisy.shape[1] == 3


def test_points_are_in_the_base_frame():
    # the same scene relative to the robot from two different poses gives the same cloud
    clouds = []
    for x, y, yaw in ((0.0, 0.0, 0.0), (-1.0, 2.0, 2.2)):
        sim = AnymalSim(_world([_wall_in_front(1.8, x, y, yaw)], n=200))  # all rays hit inside the map
        sim.reset((x, y, yaw))
        clouds.append(sim.depth_points(noise=False))
    assert clouds[0].shape == clouds[1].shape
    np.testing.assert_allclose(clouds[0], clouds[1], atol=1e-4)
    # on rough ground, points mapped to the world lie on the terrain surface
    world = make_world("rough", 1, size=(10.0, 10.0), amplitude=0.12)
    sim = AnymalSim(world)
    sim.reset((0.5, 0.3, 0.8))
    sim.set_command((0.0, 0.0, 0.0))
    sim.advance(0.5)
    pts = sim.depth_points(noise=False).astype(float)
    rot = quat_to_matrix(sim.data.qpos[3:7])
    world_pts = pts @ rot.T + sim.data.qpos[:3]
    ground = world.height_at(world_pts[:, 0], world_pts[:, 1], interp="triangle")
    ok = np.isfinite(ground)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(world_pts[ok, 2], ground[ok], atol=2e-3)


def test_range_limit_and_no_self_hits():
    cfg = AnymalSimConfig(depth=DepthSensorConfig(max_range=2.0))
    sim = AnymalSim(_world(), cfg)
    sim.reset((0.0, 0.0, 0.0))
    ranges = sim.sensor.ranges(sim.data, sim.data.qpos[:3], quat_to_matrix(sim.data.qpos[3:7]))
    for r in ranges:
        valid = r[r > 0]
        assert 0 < len(valid) < len(r)  # far rays are dropped
        assert valid.max() <= 2.0 and valid.min() >= cfg.depth.min_range
    pts = sim.depth_points(noise=False)
    origins = np.array([c.position for c in sim.sensor.cameras])
    dist = np.linalg.norm(pts[:, None, :] - origins[None], axis=2).min(axis=1)
    assert dist.max() <= 2.0 + 1e-5
    # only the ground is visible: no point on the robot's own geometry
    np.testing.assert_allclose(pts[:, 2], -sim.stance_height, atol=2e-3)
    # a camera inside the trunk looking down through the legs still sees only the ground
    inside = DepthCamera("belly", (0.0, 0.0, 0.0), (0.0, math.pi / 2, 0.0), hfov_deg=120.0, vfov_deg=120.0)
    belly = DepthSensor(sim.model, sim.body_id, [inside], DepthSensorConfig())
    down = belly.scan(sim.data, sim.data.qpos[:3], quat_to_matrix(sim.data.qpos[3:7]), noise=False)
    assert len(down) == inside.width * inside.height
    np.testing.assert_allclose(down[:, 2], -sim.stance_height, atol=2e-3)
    far = AnymalSim(_world()).depth_points(noise=False)
    assert len(far) > len(pts)
    assert np.linalg.norm(far[:, :2], axis=1).max() > 3.0


def test_noise_and_dropout_statistics(wall_sim):
    sim = wall_sim
    sim.reset((0.0, 0.0, 0.0))
    clean = sim.depth_points(noise=False)
    noisy_sensor = DepthSensor(sim.model, sim.body_id, sim.sensor.cameras,
                               replace(sim.sensor.config, dropout=0.3, noise_std=0.01, noise_quadratic=0.0, seed=3))
    rot = quat_to_matrix(sim.data.qpos[3:7])
    counts, residuals = [], []
    for _ in range(5):
        pts = noisy_sensor.scan(sim.data, sim.data.qpos[:3], rot)
        counts.append(len(pts))
        residuals.append(_points_on_wall(pts)[:, 0] - 2.0)
    assert np.mean(counts) / len(clean) == pytest.approx(0.7, abs=0.03)
    res = np.concatenate(residuals)
    # range noise along the ray projects onto x by the ray's cosine (0.5 .. 1 for these rays)
    assert 0.004 < res.std() < 0.011
    assert abs(res.mean()) < 0.002


def test_camera_geometry_and_validation():
    cam = DepthCamera("c", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), hfov_deg=90.0, vfov_deg=60.0, width=5, height=3)
    d = cam.directions()
    assert d.shape == (15, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    np.testing.assert_allclose(d[7], [1.0, 0.0, 0.0])  # centre pixel on the optical axis
    assert math.degrees(math.atan2(d[5, 1], d[5, 0])) == pytest.approx(45.0)  # left edge of the middle row
    assert math.degrees(math.atan2(d[2, 2], d[2, 0])) == pytest.approx(30.0)  # top row
    tilted = DepthCamera("t", (0.0, 0.0, 0.0), (0.0, 0.5, 0.0), width=1, height=1)
    axis = tilted.rotation() @ tilted.directions()[0]
    assert axis[2] == pytest.approx(-math.sin(0.5))  # positive pitch looks down
    np.testing.assert_allclose(rpy_matrix(0.1, 0.2, 0.3) @ rpy_matrix(0.1, 0.2, 0.3).T, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError):
        DepthCamera("bad", (0.0, np.nan, 0.0), (0.0, 0.0, 0.0))
    with pytest.raises(ValueError):
        DepthCamera("bad", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), hfov_deg=180.0)
    with pytest.raises(ValueError):
        DepthCamera("bad", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), width=0)
    with pytest.raises(ValueError):
        DepthSensorConfig(max_range=-1.0)
    with pytest.raises(ValueError):
        DepthSensorConfig(min_range=6.0)
    with pytest.raises(ValueError):
        DepthSensorConfig(dropout=1.0)


def test_sensor_rejects_bad_setup(wall_sim):
    sim = wall_sim
    with pytest.raises(ValueError):
        DepthSensor(sim.model, sim.body_id, [])
    with pytest.raises(ValueError):
        DepthSensor(sim.model, 0, sim.sensor.cameras)
    with pytest.raises(ValueError):
        sim.sensor.scan(sim.data, np.zeros(2), np.eye(3))
    with pytest.raises(ValueError):
        sim.sensor.scan(sim.data, np.zeros(3), np.full((3, 3), np.nan))
