"""Robot-centric height scan sampling (morobot.fdm.heightscan)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from morobot.fdm.heightscan import (
    ScanConfig,
    corrupt,
    sample_heights,
    scan_from_heightmap,
    scan_from_world,
    to_channels,
)
from morobot.planning.interface import HeightMap

RES = 0.05
ORIGIN = (-10.0, -8.0)


def grid(n=400, m=320):
    xs = ORIGIN[0] + RES * np.arange(n)
    ys = ORIGIN[1] + RES * np.arange(m)
    return np.meshgrid(xs, ys, indexing="ij")


def scan_world_points(cfg, pose):
    """World (x, y) of every scan cell centre, written out independently of the module."""
    xs, ys = cfg.cell_centres()
    lx, ly = np.meshgrid(xs, ys, indexing="ij")
    c, s = math.cos(pose[2]), math.sin(pose[2])
    return pose[0] + c * lx - s * ly, pose[1] + s * lx + c * ly


def test_default_scan_shape_and_forward_offset():
    cfg = ScanConfig()
    assert cfg.shape == (59, 45)
    xs, ys = cfg.cell_centres()
    assert xs.max() > -xs.min() + 2.0  # more ahead than behind
    assert np.isclose(ys.mean(), 0.0)


@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.0, math.pi / 2])
def test_slope_is_reproduced_exactly(yaw):
    gx, gy = grid()
    a, b, c = 0.15, -0.1, 0.3
    heights = a * gx + b * gy + c
    cfg = ScanConfig(clip_low=-5.0, clip_high=5.0)
    pose = (1.3, -0.4, yaw)
    z = 0.6
    rel = sample_heights(heights, ORIGIN, RES, pose, z, cfg)
    wx, wy = scan_world_points(cfg, pose)
    assert rel.shape == cfg.shape
    np.testing.assert_allclose(rel, a * wx + b * wy + c - z, atol=1e-5)


def test_box_seen_ahead_when_rotated():
    gx, gy = grid()
    heights = np.zeros_like(gx)
    box = (gx > 0.5) & (gx < 1.5) & (gy > 1.8) & (gy < 2.6)  # world box north of the robot
    heights[box] = 0.4
    cfg = ScanConfig()
    pose = (1.0, 0.0, math.pi / 2)  # facing +y: the box is straight ahead, 1.8..2.6 m
    rel = sample_heights(heights, ORIGIN, RES, pose, 0.5, cfg, method="nearest")
    xs, ys = cfg.cell_centres()
    ahead = (xs > 1.9) & (xs < 2.5)
    centre = np.abs(ys) < 0.4
    np.testing.assert_allclose(rel[np.ix_(ahead, centre)], 0.4 - 0.5, atol=1e-6)
    behind = xs < 1.6
    np.testing.assert_allclose(rel[behind], -0.5, atol=1e-6)
    side = np.abs(ys) > 0.6
    np.testing.assert_allclose(rel[:, side], -0.5, atol=1e-6)


def test_clipping_unknown_and_outside():
    heights = np.zeros((40, 40))
    heights[:, 20:] = 3.0  # a tall wall on the left half of the world
    heights[5:10, 5:10] = np.nan
    cfg = ScanConfig(x_min=-1.0, x_max=1.0, y_min=-1.0, y_max=1.0, resolution=0.1)
    rel = sample_heights(heights, (0.0, 0.0), 0.1, (1.0, 1.0, 0.0), 0.5, cfg, method="nearest")
    xs, ys = cfg.cell_centres()
    wall = 1.0 + ys > 2.0 + 0.05
    assert np.allclose(rel[:, wall][np.isfinite(rel[:, wall])], cfg.clip_high)
    assert np.nanmin(rel) >= cfg.clip_low
    hole = (np.abs(1.0 + xs[:, None] - 0.7) < 0.2) & (np.abs(1.0 + ys[None, :] - 0.7) < 0.2)
    assert np.isnan(rel[hole]).all()
    outside = sample_heights(heights, (0.0, 0.0), 0.1, (-5.0, -5.0, 0.0), 0.5, cfg)
    assert np.isnan(outside).all()


def test_bilinear_unknown_neighbour_handling():
    heights = np.array([[0.0, 1.0], [np.nan, np.nan]])
    cfg = ScanConfig(x_min=-0.05, x_max=0.05, y_min=-0.05, y_max=0.05, resolution=0.1, clip_low=-5, clip_high=5)
    # halfway between the two known cells: both weights known
    assert np.isclose(sample_heights(heights, (0.0, 0.0), 1.0, (0.0, 0.5, 0.0), 0.0, cfg)[0, 0], 0.5)
    # 3/4 of the weight on unknown cells: unknown
    assert np.isnan(sample_heights(heights, (0.0, 0.0), 1.0, (0.75, 0.5, 0.0), 0.0, cfg)[0, 0])
    # 3/4 of the weight known: renormalised over the known cells
    assert np.isclose(sample_heights(heights, (0.0, 0.0), 1.0, (0.25, 0.0, 0.0), 0.0, cfg)[0, 0], 0.0)


def test_batched_equals_single_and_world_and_heightmap_agree():
    gx, gy = grid(120, 120)
    heights = np.sin(gx) * 0.3 + np.cos(0.5 * gy) * 0.2
    poses = np.array([[-7.0, -5.0, 0.3], [-6.0, -4.5, -1.2]])
    cfg = ScanConfig(x_min=-0.5, x_max=1.0, y_min=-0.5, y_max=0.5, resolution=0.1)
    batch = sample_heights(heights, ORIGIN, RES, poses, np.array([0.4, 0.5]), cfg)
    for i in range(2):
        single = sample_heights(heights, ORIGIN, RES, poses[i], [0.4, 0.5][i], cfg)
        np.testing.assert_array_equal(batch[i], single)
    world = SimpleNamespace(heights=heights, origin=ORIGIN, resolution=RES)
    np.testing.assert_array_equal(scan_from_world(world, poses[0], 0.4, cfg), batch[0])
    hmap = HeightMap(torch.from_numpy(heights.astype(np.float32)), ORIGIN, RES)
    chans = scan_from_heightmap(hmap, poses[0], 0.4, cfg)
    assert chans.shape == (2, *cfg.shape)
    np.testing.assert_allclose(chans[0], batch[0], atol=1e-5)
    assert (chans[1] == 1.0).all()
    unknown = scan_from_heightmap(None, poses[0], 0.4, cfg)
    assert (unknown[1] == 0.0).all() and (unknown[0] == cfg.fill).all()


def test_to_channels_fill_and_mask():
    rel = np.array([[0.1, np.nan], [np.nan, -0.2]], dtype=np.float32)
    ch = to_channels(rel, ScanConfig(fill=-0.7))
    np.testing.assert_allclose(ch[0], [[0.1, -0.7], [-0.7, -0.2]])
    np.testing.assert_array_equal(ch[1], [[1, 0], [0, 1]])


def test_corrupt_noise_and_dropout_rates():
    rng = np.random.default_rng(0)
    clean = np.zeros((20, 59, 45), dtype=np.float32)
    noisy = corrupt(clean, rng, noise_std=0.05, dropout=0.1, patch_prob=0.0)
    known = np.isfinite(noisy)
    assert abs(1.0 - known.mean() - 0.1) < 0.01
    assert abs(noisy[known].std() - 0.05) < 0.005
    patched = corrupt(clean, rng, noise_std=0.0, dropout=0.0, patch_prob=1.0, patch_size=(4, 4))
    assert (np.isnan(patched).reshape(20, -1).sum(1) == 16).all()
    assert np.isfinite(clean).all()  # input untouched


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="clip_low"):
        ScanConfig(clip_low=2.0, clip_high=1.0)
    with pytest.raises(ValueError, match="resolution"):
        ScanConfig(resolution=0.0)
    with pytest.raises(ValueError, match="pose"):
        sample_heights(np.zeros((4, 4)), (0, 0), 0.1, (0.0, 1.0), 0.0)
    with pytest.raises(ValueError, match="heights"):
        sample_heights(np.zeros(4), (0, 0), 0.1, (0.0, 0.0, 0.0), 0.0)
    with pytest.raises(ValueError, match="method"):
        sample_heights(np.zeros((4, 4)), (0, 0), 0.1, (0.0, 0.0, 0.0), 0.0, method="cubic")
    with pytest.raises(ValueError, match="base_z"):
        sample_heights(np.zeros((4, 4)), (0, 0), 0.1, np.zeros((3, 3)), [0.0, 1.0])
    with pytest.raises(ValueError, match="no attribute"):
        scan_from_world(object(), (0.0, 0.0, 0.0), 0.0)
    with pytest.raises(ValueError, match="dropout"):
        corrupt(np.zeros((3, 3)), np.random.default_rng(0), dropout=1.5)


def test_world_with_elevation_at_includes_boxes():
    from morobot.sim.worlds import Box, World

    n = 80
    world = World("w", "boxes", 0, np.zeros((n, n)), 0.1, (-4.0, -4.0), [Box((1.5, 0.0, 0.3), (0.4, 0.4, 0.6))])
    cfg = ScanConfig()
    rel = scan_from_world(world, (0.0, 0.0, 0.0), 0.5, cfg)
    xs, ys = cfg.cell_centres()
    on_box = (np.abs(xs[:, None] - 1.5) < 0.15) & (np.abs(ys[None, :]) < 0.15)
    np.testing.assert_allclose(rel[on_box], 0.6 - 0.5, atol=1e-6)
    np.testing.assert_allclose(rel[(xs > -1.0) & (xs < 1.0)], -0.5, atol=1e-6)
    assert np.isnan(rel[xs > 4.0]).all()  # beyond the world's last cell centre (3.9 m)


def test_corrupt_map_window_is_odom_aligned():
    cfg = ScanConfig()
    clean = np.zeros((2, *cfg.shape), dtype=np.float32)
    rng = np.random.default_rng(1)
    cut = corrupt(clean, rng, noise_std=0.0, dropout=0.0, patch_prob=0.0, config=cfg,
                  yaw=[0.0, math.pi / 4], window_prob=1.0, window_half=(2.0, 2.0))
    xs, ys = cfg.cell_centres()
    lx, ly = np.meshgrid(xs, ys, indexing="ij")
    np.testing.assert_array_equal(np.isnan(cut[0]), (np.abs(lx) > 2.0) | (np.abs(ly) > 2.0))
    c = s = math.sqrt(0.5)
    outside = (np.abs(c * lx - s * ly) > 2.0) | (np.abs(s * lx + c * ly) > 2.0)
    np.testing.assert_array_equal(np.isnan(cut[1]), outside)
    with pytest.raises(ValueError, match="yaw"):
        corrupt(clean, rng, window_prob=0.5)
