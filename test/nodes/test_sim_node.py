"""mujoco_sim node (ANYmal) on real topics: tracks /cmd_vel, stops on silence and on NaN commands."""

import math

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
        Parameter("world", Parameter.Type.STRING, "flat_small"),
        Parameter("rate", Parameter.Type.DOUBLE, 2.0)]))
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


def test_tracks_command_then_watchdog_stops(harness):
    h, sim, cmd, rec = harness
    assert h.spin_until(lambda: len(rec["odom"]) > 5 and rec["points"], 10.0)
    pts = pointcloud2_to_xyz(rec["points"][-1])
    assert rec["points"][-1].header.frame_id == "base" and len(pts) > 500
    assert rec["clock"] and rec["clock"] == sorted(rec["clock"])
    t0 = _t(rec)
    assert h.spin_until(lambda: _t(rec) > t0 + 3.0, 15.0, lambda: cmd.publish(make_cmd_vel([0.6, 0.0, 0.0], True)))
    assert _vx(rec) == pytest.approx(0.6, abs=0.15)
    # silence: the robot must stop by itself within the 0.5 s timeout plus braking
    t1 = _t(rec)
    assert h.spin_until(lambda: _t(rec) > t1 + 1.5, 10.0)
    assert abs(_vx(rec)) < 0.1


def test_nan_command_means_stop(harness):
    h, sim, cmd, rec = harness
    assert h.spin_until(lambda: len(rec["odom"]) > 5, 10.0)
    t0 = _t(rec)
    assert h.spin_until(lambda: _t(rec) > t0 + 2.5, 15.0, lambda: cmd.publish(make_cmd_vel([0.6, 0.0, 0.0], True)))
    bad = TwistStamped()
    bad.twist.linear.x = float("nan")
    t1 = _t(rec)
    assert h.spin_until(lambda: _t(rec) > t1 + 1.0, 10.0, lambda: cmd.publish(bad))
    vx = _vx(rec)
    assert math.isfinite(vx) and abs(vx) < 0.1
