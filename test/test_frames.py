"""morobot.frames: the REP 105 frame tree the nodes feed from /tf and /tf_static."""

import math

import numpy as np
import pytest

from morobot.frames import FrameTree, apply, planar_pose, transform

YAW90 = (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4))


def test_chains_compose_and_invert():
    tree = FrameTree()
    tree.set("map", "odom", transform((10.0, 0.0, 0.0), (1, 0, 0, 0)), 0.0, static=True)
    tree.set("odom", "base", transform((1.0, 2.0, 0.0), YAW90), 5.0)
    tree.set("base", "camera", transform((0.5, 0.0, 0.3), (1, 0, 0, 0)), 0.0, static=True)
    # a point 1 m ahead of the camera: base (1.5, 0, 0.3) -> odom (1, 3.5, 0.3) -> map (11, 3.5, 0.3)
    np.testing.assert_allclose(apply(tree.lookup("map", "camera", 5.0), [[1.0, 0.0, 0.0]]), [[11.0, 3.5, 0.3]],
                               atol=1e-12)
    back = tree.lookup("camera", "map", 5.0) @ tree.lookup("map", "camera", 5.0)
    np.testing.assert_allclose(back, np.eye(4), atol=1e-12)
    # siblings through their common parent
    tree.set("base", "lidar", transform((0.0, 0.0, 0.5), (1, 0, 0, 0)), 0.0, static=True)
    np.testing.assert_allclose(tree.lookup("camera", "lidar")[:3, 3], [-0.5, 0.0, 0.2])
    assert tree.frames == ["base", "camera", "lidar", "map", "odom"]
    assert planar_pose(tree.lookup("odom", "map"), 12.0, 0.0, 0.0) == pytest.approx((2.0, 0.0, 0.0))


def test_dynamic_transforms_are_used_only_near_their_time():
    tree = FrameTree(max_lag=0.2)
    for t in np.arange(0.0, 1.01, 0.1):
        tree.set("odom", "base", transform((t, 0.0, 0.0), (1, 0, 0, 0)), t)
    assert tree.lookup("odom", "base", 0.52)[0, 3] == pytest.approx(0.5)
    assert tree.lookup("odom", "base")[0, 3] == pytest.approx(1.0)  # None: the latest
    with pytest.raises(LookupError, match="within 0.2 s of t=3.000"):
        tree.lookup("odom", "base", 3.0)
    tree.set("odom", "base", transform((9.0, 0.0, 0.0), (1, 0, 0, 0)), 0.5)  # out of order: ignored
    assert tree.lookup("odom", "base", 0.5)[0, 3] == pytest.approx(0.5)


def test_bad_input_and_unknown_frames_say_what_is_wrong():
    tree = FrameTree()
    tree.set("odom", "base", np.eye(4), 0.0)
    with pytest.raises(LookupError, match="unknown frame 'map'; known frames: base, odom"):
        tree.lookup("map", "base")
    tree.set("elsewhere", "thing", np.eye(4), 0.0)
    with pytest.raises(LookupError, match="not connected"):
        tree.lookup("thing", "base")
    with pytest.raises(ValueError, match="already has parent 'odom'"):
        tree.set("map", "base", np.eye(4), 0.0)
    with pytest.raises(ValueError, match="cycle"):
        tree.set("base", "odom", np.eye(4), 0.0)
    skew = np.eye(4)
    skew[0, 1] = 0.5
    with pytest.raises(ValueError, match="not rigid"):
        tree.set("odom", "x", skew, 0.0)
    bad = np.eye(4)
    bad[0, 3] = math.inf
    with pytest.raises(ValueError, match="finite"):
        tree.set("odom", "x", bad, 0.0)
    with pytest.raises(ValueError, match="unit length"):
        transform((0, 0, 0), (1, 1, 0, 0))
    with pytest.raises(ValueError, match="two different"):
        tree.set("odom", "odom", np.eye(4), 0.0)
