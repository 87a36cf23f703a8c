"""Message ↔ numpy conversions (no DDS needed)."""

import math

import numpy as np
import pytest
import torch
from geometry_msgs.msg import Quaternion
from sensor_msgs.msg import PointCloud2, PointField

from morobot.planning.interface import HeightMap
from morobot.ros import conversions as cv


def test_stamp_round_trip():
    for t in (0.0, 1.5, 12345.999999999, 3.2e-8):
        assert cv.stamp_to_sec(cv.sec_to_stamp(t)) == pytest.approx(t, abs=1e-9)
    with pytest.raises(ValueError):
        cv.sec_to_stamp(float("nan"))


def test_twist_floats_even_from_ints():
    msg = cv.array_to_twist([1, 0, -1])  # ints must arrive as floats (wheel pitfall)
    assert isinstance(msg.linear.x, float) and msg.linear.x == 1.0
    np.testing.assert_allclose(cv.twist_to_array(msg), [1.0, 0.0, -1.0])
    msg.linear.x = float("nan")
    with pytest.raises(cv.MessageError):
        cv.twist_to_array(msg)


def test_odometry_round_trip_and_gravity():
    yaw, pitch = 0.7, 0.2
    # yaw then pitch about the body y axis
    qz = np.array([math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)])
    qy = np.array([math.cos(pitch / 2), 0, math.sin(pitch / 2), 0])
    w1, x1, y1, z1 = qz
    w2, x2, y2, z2 = qy
    q = np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                  w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])
    msg = cv.make_odometry([1, 2, 0.5], q, [0.3, 0, 0], [0, 0, 0.1], 4.25)
    st = cv.odometry_to_state(msg)
    assert st.yaw == pytest.approx(yaw)
    np.testing.assert_allclose(st.position, [1, 2, 0.5])
    assert st.stamp == pytest.approx(4.25)
    g = st.gravity_b
    assert np.linalg.norm(g) == pytest.approx(1.0)
    assert g[0] == pytest.approx(math.sin(pitch), abs=1e-9)  # nose up → gravity has +x in base


def test_odometry_rejects_nan_and_bad_quaternion():
    msg = cv.make_odometry([0, 0, 0], [1, 0, 0, 0], [0, 0, 0], [0, 0, 0], 1.0)
    msg.pose.pose.position.x = float("nan")
    with pytest.raises(cv.MessageError, match="NaN"):
        cv.odometry_to_state(msg)
    msg = cv.make_odometry([0, 0, 0], [1, 0, 0, 0], [0, 0, 0], [0, 0, 0], 1.0)
    msg.pose.pose.orientation = Quaternion(w=2.0, x=0.0, y=0.0, z=0.0)
    with pytest.raises(cv.MessageError, match="normalised"):
        cv.odometry_to_state(msg)


def test_pointcloud_round_trip_and_nan_drop():
    pts = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    pts[5] = np.nan
    msg = cv.xyz_to_pointcloud2(pts, 2.0, "base")
    out = cv.pointcloud2_to_xyz(msg)
    assert out.shape == (99, 3)
    np.testing.assert_allclose(out, np.delete(pts, 5, axis=0))
    assert cv.pointcloud2_to_xyz(msg, keep_invalid=True).shape == (100, 3)


def test_pointcloud_foreign_layout():
    # x, y, z as float64 with an intensity field first and padding: a lidar-like layout
    n = 10
    dt = np.dtype([("i", "<f4"), ("pad", "<f4"), ("x", "<f8"), ("y", "<f8"), ("z", "<f8")])
    arr = np.zeros(n, dtype=dt)
    arr["x"], arr["y"], arr["z"] = np.arange(n), -np.arange(n), 0.5
    msg = PointCloud2(height=1, width=n, point_step=dt.itemsize, row_step=dt.itemsize * n, is_bigendian=False)
    msg.fields = [PointField(name="i", offset=0, datatype=PointField.FLOAT32, count=1),
                  PointField(name="x", offset=8, datatype=PointField.FLOAT64, count=1),
                  PointField(name="y", offset=16, datatype=PointField.FLOAT64, count=1),
                  PointField(name="z", offset=24, datatype=PointField.FLOAT64, count=1)]
    msg.data = arr.tobytes()
    out = cv.pointcloud2_to_xyz(msg)
    np.testing.assert_allclose(out[:, 0], np.arange(n))
    np.testing.assert_allclose(out[:, 2], 0.5)


def test_malformed_clouds_raise():
    msg = cv.xyz_to_pointcloud2(np.zeros((4, 3)), 0.0, "base")
    msg.data = msg.data[:20]  # truncated
    with pytest.raises(cv.MessageError):
        cv.pointcloud2_to_xyz(msg)
    msg = cv.xyz_to_pointcloud2(np.zeros((4, 3)), 0.0, "base")
    msg.fields = msg.fields[:2]  # no z
    with pytest.raises(cv.MessageError, match="lacks"):
        cv.pointcloud2_to_xyz(msg)
    empty = cv.xyz_to_pointcloud2(np.zeros((0, 3)), 0.0, "base")
    assert cv.pointcloud2_to_xyz(empty).shape == (0, 3)


def test_heightmap_round_trip():
    h = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    h[1, 2] = float("nan")
    hm = HeightMap(heights=h, origin=(-1.0, 2.0), resolution=0.25, stamp=7.5)
    back = cv.pointcloud2_to_heightmap(cv.heightmap_to_pointcloud2(hm))
    assert back.origin == pytest.approx((-1.0, 2.0))
    assert back.resolution == pytest.approx(0.25)
    assert back.stamp == pytest.approx(7.5)
    assert torch.isnan(back.heights[1, 2])
    mask = ~torch.isnan(h)
    assert torch.equal(back.heights[mask], h[mask])
    unorganized = cv.xyz_to_pointcloud2(np.zeros((12, 3)), 0.0, "odom")
    with pytest.raises(cv.MessageError, match="organized"):
        cv.pointcloud2_to_heightmap(unorganized)


def test_path_round_trip():
    poses = np.array([[0, 0, 0.1], [1, 0.5, -2.0], [2, 1, 3.0]])
    back = cv.path_to_array(cv.make_path(poses, 1.0, dt=0.5))
    np.testing.assert_allclose(back, poses, atol=1e-9)


JOINTS = [f"panda_joint{i}" for i in range(1, 8)]


def test_joint_trajectory_reordered_and_validated():
    q = np.arange(7) * 0.1
    names = list(reversed(JOINTS))
    msg = cv.make_joint_trajectory(names, q[::-1], 0.0, velocities=np.ones(7))
    pos, vel, extra = cv.joint_trajectory_to_command(msg, JOINTS)
    np.testing.assert_allclose(pos, q)
    np.testing.assert_allclose(vel, np.ones(7))
    assert extra == {}
    bad = [
        cv.make_joint_trajectory(JOINTS[:6], q[:6], 0.0),                      # missing joint
        cv.make_joint_trajectory(JOINTS + ["elbow"], np.zeros(8), 0.0),        # unknown joint
        cv.make_joint_trajectory(JOINTS, [0, 0, 0, float("nan"), 0, 0, 0], 0.0),
        cv.make_joint_trajectory(JOINTS, np.zeros(7), 0.0, velocities=np.zeros(3)),
    ]
    empty = cv.make_joint_trajectory(JOINTS, np.zeros(7), 0.0)
    empty.points = []
    for m in bad + [empty]:
        with pytest.raises(cv.MessageError):
            cv.joint_trajectory_to_command(m, JOINTS)
    fingers = cv.make_joint_trajectory(JOINTS + ["panda_finger_joint1"], np.r_[q, 0.02], 0.0)
    _, vel, extra = cv.joint_trajectory_to_command(fingers, JOINTS, optional=["panda_finger_joint1"])
    assert vel is None and extra == {"panda_finger_joint1": pytest.approx(0.02)}


def test_joint_state_and_image_round_trip():
    msg = cv.make_joint_state(JOINTS[::-1], np.arange(7)[::-1], np.zeros(7), np.zeros(7), 1.0)
    pos, vel = cv.joint_state_to_arrays(msg, JOINTS)
    np.testing.assert_allclose(pos, np.arange(7))
    msg.position[2] = float("inf")
    with pytest.raises(cv.MessageError):
        cv.joint_state_to_arrays(msg, JOINTS)
    img = np.random.default_rng(1).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(cv.image_to_rgb(cv.rgb_to_image(img, 0.0, "cam")), img)
    m = cv.rgb_to_image(img, 0.0, "cam")
    m.encoding = "mono16"
    with pytest.raises(cv.MessageError):
        cv.image_to_rgb(m)
