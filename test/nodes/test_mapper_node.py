"""elevation_mapper node on real topics: base-frame clouds become an odom-frame height grid."""

import math

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from sensor_msgs.msg import PointCloud2

from morobot.ros import qos
from morobot.ros.conversions import make_odometry, pointcloud2_to_heightmap, sec_to_stamp, xyz_to_pointcloud2

from rosutil import RosHarness

pytestmark = pytest.mark.ros


@pytest.fixture
def harness():
    from morobot.nodes.elevation_mapper import ElevationMapperNode

    h = RosHarness()
    mapper = h.add(ElevationMapperNode())
    io = h.node("mapper_test_io")
    maps = []
    io.create_subscription(PointCloud2, "/elevation_map", lambda m: maps.append(m), qos.STATE)
    odom_pub = io.create_publisher(Odometry, "/odom", qos.STATE)
    pts_pub = io.create_publisher(PointCloud2, "/points", qos.SENSOR)
    yield h, mapper, io, odom_pub, pts_pub, maps
    h.close()


def _scene_base_frame(yaw: float, pos: np.ndarray) -> np.ndarray:
    """Flat ground at z=0 plus a 0.4 m box at odom x∈[1.5,2.0], y∈[-0.25,0.25], seen from the base."""
    xs, ys = np.meshgrid(np.arange(-2.0, 3.0, 0.04), np.arange(-2.0, 2.0, 0.04), indexing="ij")
    z = np.where((xs >= 1.5) & (xs <= 2.0) & (np.abs(ys) <= 0.25), 0.4, 0.0)
    world = np.stack([xs.ravel(), ys.ravel(), z.ravel()], axis=1)
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return (world - pos) @ rot  # odom → base: R^T (p - t)


def _box_and_ground_in(msg):
    """The scene's box (0.4 m at odom x 1.75) and flat ground (0.5, 1.0) at the right cells of a map."""
    hm = pointcloud2_to_heightmap(msg)
    xs, ys = hm.cell_centres()
    heights = hm.heights.numpy()
    assert heights[np.argmin(abs(xs - 1.75)), np.argmin(abs(ys))] == pytest.approx(0.4, abs=0.05)
    assert heights[np.argmin(abs(xs - 0.5)), np.argmin(abs(ys - 1.0))] == pytest.approx(0.0, abs=0.05)
    return xs, ys, heights


def test_box_appears_at_the_right_cells(harness):
    h, mapper, io, odom_pub, pts_pub, maps = harness
    yaw, pos = 0.6, np.array([0.2, -0.1, 0.55])
    quat = [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]
    cloud = _scene_base_frame(yaw, pos)
    assert h.spin_until(lambda: pts_pub.get_subscription_count() > 0, 5.0)

    def step():
        t = io.get_clock().now().nanoseconds * 1e-9
        odom_pub.publish(make_odometry(pos, quat, [0, 0, 0], [0, 0, 0], t))
        pts_pub.publish(xyz_to_pointcloud2(cloud, t, "base"))

    assert h.spin_until(lambda: len(maps) >= 3, 8.0, step)
    msg = maps[-1]
    assert msg.header.frame_id == "odom" and msg.height == 120 and msg.width == 120
    xs, ys, heights = _box_and_ground_in(msg)
    j_flat = np.argmin(abs(ys - 1.0))
    # the map is centred on the robot; cells beyond the observed scene stay unknown
    assert xs[0] < pos[0] < xs[-1] and ys[0] < pos[1] < ys[-1]
    i_far = np.argmin(abs(xs - (pos[0] - 5.9)))
    assert np.isnan(heights[i_far, j_flat])


def test_bad_clouds_are_dropped_and_node_survives(harness):
    h, mapper, io, odom_pub, pts_pub, maps = harness
    assert h.spin_until(lambda: pts_pub.get_subscription_count() > 0, 5.0)
    t = io.get_clock().now().nanoseconds * 1e-9
    bad = xyz_to_pointcloud2(np.zeros((10, 3)), t, "base")
    bad.data = bad.data[:7]
    nan = xyz_to_pointcloud2(np.full((10, 3), np.nan), t, "base")
    foreign = xyz_to_pointcloud2(np.zeros((10, 3)), t, "camera_link")

    def step():
        now = io.get_clock().now().nanoseconds * 1e-9
        odom_pub.publish(make_odometry([0, 0, 0.5], [1, 0, 0, 0], [0, 0, 0], [0, 0, 0], now))
        for m in (bad, nan, foreign):
            m.header.stamp = sec_to_stamp(now)
            pts_pub.publish(m)
        pts_pub.publish(xyz_to_pointcloud2(np.zeros((0, 3)), now, "base"))

    assert h.spin_until(lambda: len(maps) >= 2, 8.0, step)
    hm = pointcloud2_to_heightmap(maps[-1])
    assert np.all(np.isnan(hm.heights.numpy()))  # nothing valid was integrated


def test_a_cloud_from_a_mounted_camera_goes_through_tf(harness):
    """A cloud in 'camera' with the mount on /tf_static (base -> camera) lands where it belongs; a frame
    no transform reaches is dropped with a line that names it."""
    from morobot.frames import transform
    from morobot.ros.tf import TF_STATIC_QOS, TFMessage, make_transform

    h, mapper, io, odom_pub, pts_pub, maps = harness
    static = io.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
    mount = transform((0.3, 0.0, 0.2), (math.cos(0.25), 0.0, 0.0, math.sin(0.25)))  # 0.5 rad yaw
    static.publish(TFMessage(transforms=[make_transform("base", "camera", mount, 0.0)]))
    yaw, pos = 0.6, np.array([0.2, -0.1, 0.55])
    quat = [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]
    in_base = _scene_base_frame(yaw, pos)
    in_camera = (in_base - mount[:3, 3]) @ mount[:3, :3]  # base -> camera: R^T (p - t)
    assert h.spin_until(lambda: pts_pub.get_subscription_count() > 0, 5.0)

    def step():
        t = io.get_clock().now().nanoseconds * 1e-9
        odom_pub.publish(make_odometry(pos, quat, [0, 0, 0], [0, 0, 0], t))
        pts_pub.publish(xyz_to_pointcloud2(in_camera, t, "camera"))

    assert h.spin_until(lambda: len(maps) >= 3, 8.0, step)
    _box_and_ground_in(maps[-1])
    assert mapper._tf.tree.frames == ["base", "camera"]
    with pytest.raises(LookupError, match="unknown frame 'lidar'"):
        mapper._through_tf(np.zeros((1, 3)), "lidar", 0.0, None)


@pytest.mark.parametrize("body_filter", [True, False])
def test_the_robots_own_legs_are_not_mapped(body_filter):
    """A swinging foot in the cloud (0.6 m ahead, 0.2 m above the ground) is dropped by the default body box,
    while the ground under it is still mapped; with body_filter off it is mapped as a 0.2 m obstacle."""
    from rclpy.parameter import Parameter

    from morobot.nodes.elevation_mapper import ElevationMapperNode

    h = RosHarness()
    try:
        h.add(ElevationMapperNode(parameter_overrides=[Parameter("body_filter", value=body_filter)]))
        io = h.node("mapper_body_io")
        maps = []
        io.create_subscription(PointCloud2, "/elevation_map", lambda m: maps.append(m), qos.STATE)
        odom_pub = io.create_publisher(Odometry, "/odom", qos.STATE)
        pts_pub = io.create_publisher(PointCloud2, "/points", qos.SENSOR)
        pos = np.array([0.0, 0.0, 0.55])
        xs, ys = np.meshgrid(np.arange(-1.5, 1.5, 0.04), np.arange(-1.0, 1.0, 0.04), indexing="ij")
        ground = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, -0.55)], axis=1)
        fx, fy = np.meshgrid(np.arange(0.56, 0.66, 0.02), np.arange(0.16, 0.26, 0.02), indexing="ij")
        foot = np.stack([fx.ravel(), fy.ravel(), np.full(fx.size, -0.35)], axis=1)  # base frame
        cloud = np.vstack([ground, foot])
        assert h.spin_until(lambda: pts_pub.get_subscription_count() > 0, 5.0)

        def step():
            t = io.get_clock().now().nanoseconds * 1e-9
            odom_pub.publish(make_odometry(pos, [1, 0, 0, 0], [0, 0, 0], [0, 0, 0], t))
            pts_pub.publish(xyz_to_pointcloud2(cloud, t, "base"))

        assert h.spin_until(lambda: len(maps) >= 3, 8.0, step)
        hm = pointcloud2_to_heightmap(maps[-1])
        cx, cy = hm.cell_centres()
        heights = hm.heights.numpy()
        at_foot = heights[np.argmin(abs(cx - 0.6)), np.argmin(abs(cy - 0.2))]
        assert heights[np.argmin(abs(cx + 1.0)), np.argmin(abs(cy))] == pytest.approx(0.0, abs=0.02)
        assert at_foot == pytest.approx(0.0 if body_filter else 0.2, abs=0.03)
    finally:
        h.close()
