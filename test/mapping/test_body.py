"""The robot's own body in its clouds: the base-frame box the elevation mapper drops (morobot.mapping.body)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from morobot.mapping.body import BODY_BOX, body_mask, check_box
from morobot.mapping.elevation import ElevationMapConfig, ElevationMapper, transform_points
from morobot.mapping.params import MapperParams, elevation_config
from morobot.params import defaults, resolve

BOX = (-0.5, 0.5, -0.3, 0.3, -0.4, 0.1)


def _pose(yaw, pitch=0.0):
    """(position, quaternion wxyz) of a base yawed then pitched."""
    cy, sy, cp, sp = math.cos(yaw / 2), math.sin(yaw / 2), math.cos(pitch / 2), math.sin(pitch / 2)
    q = (cy * cp, -sy * sp, cy * sp, sy * cp)  # Rz(yaw) Ry(pitch)
    return np.array([2.0, -1.0, 0.55]), q


@pytest.mark.parametrize("yaw,pitch", [(0.0, 0.0), (2.3, 0.0), (-1.0, 0.3)])
def test_mask_is_the_box_in_the_base_frame_whatever_the_pose(yaw, pitch):
    rng = np.random.default_rng(0)
    local = rng.uniform(-0.7, 0.7, (2000, 3))
    position, q = _pose(yaw, pitch)
    inside = body_mask(transform_points(local, position, q), position, q, BOX)
    lo, hi = np.array(BOX[0::2]), np.array(BOX[1::2])
    expected = np.all((local >= lo) & (local <= hi), axis=1)
    assert 100 < expected.sum() < 1900
    np.testing.assert_array_equal(inside, expected)
    scaled = body_mask(transform_points(local, position, q), position, 2.0 * np.asarray(q), BOX)
    np.testing.assert_array_equal(scaled, expected)  # the quaternion is normalised, as transform_points does


def test_non_finite_points_are_never_inside():
    position, q = _pose(0.0)
    pts = np.array([[2.0, -1.0, 0.5], [np.nan, -1.0, 0.5], [np.inf, 0.0, 0.0]])
    assert body_mask(pts, position, q, BOX).tolist() == [True, False, False]


@pytest.mark.parametrize("box", [(0, 1, 0, 1, 0), (0, 1, 0, 1, 1, 0), (0, 1, 0, math.nan, 0, 1), ("a",) * 6])
def test_a_bad_box_is_refused(box):
    with pytest.raises(ValueError, match="body_box"):
        check_box(box)
    with pytest.raises(ValueError, match="body_box"):
        ElevationMapConfig(body_box=box)


def test_mapper_drops_the_legs_and_keeps_the_ground_under_them():
    """A foot 0.2 m above the ground 0.6 m ahead of a yawed base is not mapped; the ground is, under it too."""
    position, q = _pose(1.0)
    xs, ys = np.meshgrid(np.arange(-1.5, 1.5, 0.02), np.arange(-1.5, 1.5, 0.02), indexing="ij")
    ground = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, -0.55)], axis=1)
    fx, fy = np.meshgrid(np.arange(0.55, 0.65, 0.01), np.arange(0.15, 0.25, 0.01), indexing="ij")
    foot = np.stack([fx.ravel(), fy.ravel(), np.full(fx.size, -0.35)], axis=1)
    cloud = transform_points(np.vstack([ground, foot]), position, q)
    at = transform_points(np.array([[0.6, 0.2, 0.0]]), position, q)[0]
    heights = {}
    for box in (BODY_BOX, None):
        mapper = ElevationMapper(ElevationMapConfig(body_box=box))
        mapper.integrate(cloud, position[:2], 0.0, base_pose=(position, q))
        hm = mapper.height_map(position[:2], 0.0)
        i = round((at[0] - hm.origin[0]) / hm.resolution)
        j = round((at[1] - hm.origin[1]) / hm.resolution)
        heights[box is None] = float(hm.heights[i, j])
    assert heights[False] == pytest.approx(0.0, abs=0.01)  # filtered: the ground under the foot
    assert heights[True] == pytest.approx(0.2, abs=0.01)  # unfiltered: the foot as a 0.2 m obstacle


def test_mapper_with_a_body_box_needs_the_base_pose():
    mapper = ElevationMapper(ElevationMapConfig(body_box=BODY_BOX))
    with pytest.raises(ValueError, match="base_pose"):
        mapper.integrate(np.zeros((3, 3)), (0.0, 0.0), 0.0)
    assert ElevationMapper().integrate(np.zeros((1, 3)), (0.0, 0.0), 0.0) == 1  # no box: no pose needed


def test_node_parameters_give_the_box_and_refuse_a_bad_one():
    p = defaults(MapperParams)
    assert elevation_config(p).body_box == BODY_BOX
    assert elevation_config({**p, "body_filter": False}).body_box is None
    with pytest.raises(ValueError, match="body_box"):
        resolve(MapperParams, {"body_box": [0.5, -0.5, -0.3, 0.3, -0.4, 0.1]})
    with pytest.raises(ValueError, match="body_box"):
        resolve(MapperParams, {"body_box": [0.5, 0.6]})
