"""Tests of the elevation mapper and the frame helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from morobot.mapping.elevation import ElevationMapConfig, ElevationMapper, quat_to_yaw, transform_points

RES = 0.1


def _plane(x_range, y_range, z, step=0.02):
    xs = np.arange(x_range[0], x_range[1], step)
    ys = np.arange(y_range[0], y_range[1], step)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, z)], axis=1)


def _height_at(hmap, x, y):
    i = round((x - hmap.origin[0]) / hmap.resolution)
    j = round((y - hmap.origin[1]) / hmap.resolution)
    return float(hmap.heights[i, j])


def _box_scene(cx=1.5, cy=0.0, half=0.3, top=0.5):
    ground = _plane((-2.9, 2.9), (-2.9, 2.9), 0.0)
    outside = (np.abs(ground[:, 0] - cx) > half) | (np.abs(ground[:, 1] - cy) > half)
    lid = _plane((cx - half, cx + half), (cy - half, cy + half), top)
    return np.vstack([ground[outside], lid])


def test_flat_cloud_gives_flat_grid_and_unknown_stays_nan():
    mapper = ElevationMapper(ElevationMapConfig(size_x=6.0, size_y=6.0, resolution=RES))
    cloud = _plane((-1.0, 1.0), (-2.0, 0.0), 0.25)
    mapper.integrate(cloud, (0.0, 0.0), stamp=1.0)
    hmap = mapper.height_map((0.0, 0.0), stamp=1.0)
    h = hmap.heights.numpy()
    assert h.shape == (60, 60)
    xs, ys = hmap.cell_centres()
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    covered = (gx > -0.95) & (gx < 0.95) & (gy > -1.95) & (gy < -0.05)
    np.testing.assert_allclose(h[covered], 0.25, atol=1e-6)
    far = (gx > 1.1) | (gy > 0.1)
    assert np.isnan(h[far]).all()


def test_box_raises_its_cells():
    mapper = ElevationMapper()
    mapper.integrate(_box_scene(), (0.0, 0.0), stamp=0.0)
    hmap = mapper.height_map((0.0, 0.0), stamp=0.0)
    assert _height_at(hmap, 1.5, 0.0) == pytest.approx(0.5, abs=1e-6)
    assert _height_at(hmap, 1.6, 0.2) == pytest.approx(0.5, abs=1e-6)
    assert _height_at(hmap, 0.5, 0.0) == pytest.approx(0.0, abs=1e-6)
    assert _height_at(hmap, 1.5, 1.0) == pytest.approx(0.0, abs=1e-6)


def test_upper_surface_ignores_a_few_low_points_and_height_limits_drop_points():
    cfg = ElevationMapConfig(voxel_size=0.0, surface_quantile=0.9, max_height=1.0)
    mapper = ElevationMapper(cfg)
    cell = np.array([[1.0, 1.0, z] for z in [0.3] * 19 + [-0.4]])  # one low outlier in the cell
    ceiling = np.array([[-1.0, -1.0, 2.0]])  # above max_height
    mapper.integrate(np.vstack([cell, ceiling]), (0.0, 0.0), stamp=0.0)
    hmap = mapper.height_map((0.0, 0.0), stamp=0.0)
    assert _height_at(hmap, 1.0, 1.0) == pytest.approx(0.3)
    assert math.isnan(_height_at(hmap, -1.0, -1.0))


def test_fusion_blends_fresh_cells_and_replaces_stale_ones():
    cfg = ElevationMapConfig(voxel_size=0.0, fusion_weight=0.5, max_age=2.0)
    mapper = ElevationMapper(cfg)
    point = lambda z: np.array([[0.5, 0.5, z]])  # noqa: E731
    mapper.integrate(point(0.0), (0.0, 0.0), stamp=0.0)
    mapper.integrate(point(1.0), (0.0, 0.0), stamp=1.0)
    assert _height_at(mapper.height_map((0.0, 0.0), 1.0), 0.5, 0.5) == pytest.approx(0.5)
    mapper.integrate(point(0.2), (0.0, 0.0), stamp=10.0)  # the old value has expired
    assert _height_at(mapper.height_map((0.0, 0.0), 10.0), 0.5, 0.5) == pytest.approx(0.2)


def test_cells_expire_after_max_age():
    mapper = ElevationMapper(ElevationMapConfig(max_age=2.0))
    mapper.integrate(_plane((0.0, 1.0), (0.0, 1.0), 0.1), (0.0, 0.0), stamp=5.0)
    assert _height_at(mapper.height_map((0.0, 0.0), 6.9), 0.5, 0.5) == pytest.approx(0.1)
    assert math.isnan(_height_at(mapper.height_map((0.0, 0.0), 7.1), 0.5, 0.5))
    assert np.isnan(mapper.height_map((0.0, 0.0), 7.1).heights.numpy()).all()


def test_scrolling_keeps_cells_fixed_in_the_world():
    mapper = ElevationMapper(ElevationMapConfig(size_x=4.0, size_y=4.0))
    mapper.integrate(_box_scene(cx=1.2, cy=0.4, half=0.25, top=0.7), (0.0, 0.0), stamp=0.0)
    before = mapper.height_map((0.0, 0.0), stamp=0.0)
    moved = mapper.height_map((0.73, -0.41), stamp=0.1)
    for origin in (before.origin, moved.origin):
        for value in origin:
            assert value / RES == pytest.approx(round(value / RES), abs=1e-9)
    assert moved.origin == pytest.approx((0.7 - 2.0, -0.4 - 2.0))
    # Same world cells, same heights, different array indices.
    for x, y in [(1.2, 0.4), (1.0, 0.3), (0.5, -1.0)]:
        assert _height_at(moved, x, y) == pytest.approx(_height_at(before, x, y))
    assert _height_at(moved, 1.2, 0.4) == pytest.approx(0.7, abs=1e-6)
    # Cells that scrolled in have never been seen; those that scrolled out are forgotten.
    assert math.isnan(_height_at(moved, 2.5, 0.0))
    back = mapper.height_map((0.0, 0.0), stamp=0.2)
    assert math.isnan(_height_at(back, -1.9, -1.0))
    assert _height_at(back, -1.2, -1.0) == pytest.approx(0.0, abs=1e-6)


def test_empty_and_non_finite_clouds():
    mapper = ElevationMapper()
    assert mapper.integrate(np.zeros((0, 3)), (0.0, 0.0), 0.0) == 0
    assert np.isnan(mapper.height_map((0.0, 0.0), 0.0).heights.numpy()).all()
    cloud = np.array([[0.5, 0.5, 0.2], [np.nan, 0.0, 0.0], [0.0, np.inf, 0.0], [0.0, 0.0, -np.inf]])
    assert mapper.integrate(cloud, (0.0, 0.0), 0.0) == 1
    h = mapper.height_map((0.0, 0.0), 0.0).heights.numpy()
    assert np.count_nonzero(np.isfinite(h)) == 1


def test_malformed_input_raises():
    mapper = ElevationMapper()
    with pytest.raises(ValueError, match="points_odom"):
        mapper.integrate(np.zeros((4, 2)), (0.0, 0.0), 0.0)
    with pytest.raises(ValueError, match="points_odom"):
        mapper.integrate(np.zeros(3), (0.0, 0.0), 0.0)
    with pytest.raises(ValueError, match="robot_xy"):
        mapper.integrate(np.zeros((1, 3)), (np.nan, 0.0), 0.0)
    with pytest.raises(ValueError, match="stamp"):
        mapper.height_map((0.0, 0.0), float("inf"))
    with pytest.raises(ValueError):
        ElevationMapConfig(resolution=0.0)
    with pytest.raises(ValueError):
        ElevationMapConfig(min_height=1.0, max_height=0.0)
    with pytest.raises(ValueError):
        ElevationMapConfig(size_x=np.nan)


def test_outlier_removal_drops_isolated_points():
    cfg = ElevationMapConfig(outlier_removal=True, outlier_neighbors=8, outlier_std_ratio=1.0)
    ground = _plane((-1.0, 1.0), (-1.0, 1.0), 0.0, step=0.05)
    stray = np.array([[2.5, 2.5, 1.5]])
    mapper = ElevationMapper(cfg)
    mapper.integrate(np.vstack([ground, stray]), (0.0, 0.0), 0.0)
    hmap = mapper.height_map((0.0, 0.0), 0.0)
    assert math.isnan(_height_at(hmap, 2.5, 2.5))
    assert _height_at(hmap, 0.0, 0.0) == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------------------------- frames
def test_transform_points_matches_scipy():
    rng = np.random.default_rng(3)
    rot = Rotation.random(random_state=4)
    x, y, z, w = rot.as_quat()
    pts = rng.normal(size=(50, 3))
    t = np.array([1.0, -2.0, 0.5])
    out = transform_points(pts, t, (w, x, y, z))
    np.testing.assert_allclose(out, rot.apply(pts) + t, atol=1e-12)
    # Unnormalised quaternions are normalised.
    np.testing.assert_allclose(transform_points(pts, t, (2 * w, 2 * x, 2 * y, 2 * z)), out, atol=1e-12)


def test_transform_points_quarter_turn():
    q = (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4))
    out = transform_points(np.array([[1.0, 0.0, 0.0]]), (0.0, 0.0, 1.0), q)
    np.testing.assert_allclose(out, [[0.0, 1.0, 1.0]], atol=1e-12)


def test_quat_to_yaw():
    assert quat_to_yaw((math.cos(0.35), 0.0, 0.0, math.sin(0.35))) == pytest.approx(0.7)
    rot = Rotation.from_euler("ZYX", [2.5, 0.3, -0.2])
    x, y, z, w = rot.as_quat()
    assert quat_to_yaw((w, x, y, z)) == pytest.approx(2.5)


def test_frame_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="zero norm"):
        quat_to_yaw((0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="quaternion"):
        quat_to_yaw((1.0, np.nan, 0.0, 0.0))
    with pytest.raises(ValueError, match="points"):
        transform_points(np.zeros((3, 4)), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="position"):
        transform_points(np.zeros((3, 3)), (0.0, 0.0), (1.0, 0.0, 0.0, 0.0))
