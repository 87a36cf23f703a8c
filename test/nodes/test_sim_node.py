"""mujoco_sim node (ANYmal) on real topics: tracks /cmd_vel, stops on silence and on NaN commands."""

import math

import numpy as np

import pytest
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import PointCloud2

from morobot.ros import qos
from morobot.ros.conversions import make_cmd_vel, pointcloud2_to_xyz, stamp_to_sec

from rosutil import RosHarness

pytestmark = pytest.mark.ros


@pytest.fixture
def harness():
    from morobot.nodes.mujoco_sim import MujocoSimNode

    h = RosHarness()
    sim = h.add(MujocoSimNode(parameter_overrides=[
        Parameter("world", Parameter.Type.STRING, "flat_small"), Parameter("locomotion", value="abstract"),
        Parameter("rate", Parameter.Type.DOUBLE, 2.0)]))  # the legged robot's node test: test/locomotion
    io = h.node("sim_test_io")
    rec = {"odom": [], "points": [], "clock": []}
    io.create_subscription(Odometry, "/odom", lambda m: rec["odom"].append(m), qos.STATE)
    io.create_subscription(PointCloud2, "/points", lambda m: rec["points"].append(m), qos.SENSOR)
    io.create_subscription(Clock, "/clock", lambda m: rec["clock"].append(stamp_to_sec(m.clock)), qos.CLOCK)
    cmd = io.create_publisher(TwistStamped, "/cmd_vel", qos.STATE)  # cmd_vel_stamped: Nav2's default
    yield h, sim, cmd, rec
    sim.on_shutdown()
    h.close()


def _vx(rec):
    return rec["odom"][-1].twist.twist.linear.x


def _t(rec):
    return stamp_to_sec(rec["odom"][-1].header.stamp)


# Waits are in sim time; their wall-time limits leave room for a loaded CI machine (they end as soon as the
# sim time is reached), and commands go out at 50 Hz as a planner's would.
WALL = 60.0


def _send(h, cmd, msg):
    return h.every(0.02, lambda: cmd.publish(msg))


def test_tracks_command_then_watchdog_stops(harness):
    h, sim, cmd, rec = harness
    assert h.spin_until(lambda: len(rec["odom"]) > 5 and rec["points"], WALL)
    pts = pointcloud2_to_xyz(rec["points"][-1])
    assert rec["points"][-1].header.frame_id == "base" and len(pts) > 500
    assert rec["clock"] and rec["clock"] == sorted(rec["clock"])
    t0 = _t(rec)
    assert h.spin_until(lambda: _t(rec) > t0 + 3.0, WALL, _send(h, cmd, make_cmd_vel([0.6, 0.0, 0.0], True)))
    assert _vx(rec) == pytest.approx(0.6, abs=0.15)
    # silence: the robot must stop by itself within the 0.5 s timeout plus braking
    t1 = _t(rec)
    assert h.spin_until(lambda: _t(rec) > t1 + 1.5, WALL)
    assert abs(_vx(rec)) < 0.1


def test_nan_command_means_stop(harness):
    h, sim, cmd, rec = harness
    assert h.spin_until(lambda: len(rec["odom"]) > 5, WALL)
    t0 = _t(rec)
    assert h.spin_until(lambda: _t(rec) > t0 + 2.5, WALL, _send(h, cmd, make_cmd_vel([0.6, 0.0, 0.0], True)))
    bad = TwistStamped()
    bad.twist.linear.x = float("nan")
    t1 = _t(rec)
    assert h.spin_until(lambda: _t(rec) > t1 + 1.0, WALL, _send(h, cmd, bad))
    vx = _vx(rec)
    assert math.isfinite(vx) and abs(vx) < 0.1


def test_publishes_tf_and_the_robot_description(harness):
    """REP 105: odom -> base on /tf equal to /odom, map -> odom on /tf_static, the URDF latched."""
    from std_msgs.msg import String
    from tf2_msgs.msg import TFMessage

    from morobot.ros.tf import TF_QOS, TF_STATIC_QOS, to_matrix

    h, sim, cmd, rec = harness
    io = h.node("tf_io")
    tf, static, description = [], [], []
    io.create_subscription(TFMessage, "/tf", tf.append, TF_QOS)
    io.create_subscription(TFMessage, "/tf_static", static.append, TF_STATIC_QOS)
    io.create_subscription(String, "/robot_description", description.append, qos.LATCHED)
    assert h.spin_until(lambda: tf and static and description and rec["odom"], 10.0,
                        lambda: cmd.publish(make_cmd_vel([0.5, 0.0, 0.3], True)))
    t = static[-1].transforms[0]
    assert (t.header.frame_id, t.child_frame_id) == ("map", "odom")
    assert to_matrix(t) == pytest.approx(np.eye(4))
    assert "<robot" in description[-1].data and "LF_HAA" in description[-1].data
    by_stamp = {stamp_to_sec(m.header.stamp): m for m in rec["odom"]}
    matched = 0
    for msg in tf:
        (t,) = msg.transforms
        assert (t.header.frame_id, t.child_frame_id) == ("odom", "base")
        odom = by_stamp.get(stamp_to_sec(t.header.stamp))
        if odom is not None:
            p = odom.pose.pose.position
            assert to_matrix(t)[:3, 3] == pytest.approx([p.x, p.y, p.z])
            matched += 1
    assert matched >= 1
