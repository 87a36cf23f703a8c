"""mppi_planner node on real topics: drives towards a goal, stops on bad or stale inputs."""

import math

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import Odometry, Path
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import MarkerArray

from morobot.planning.interface import HeightMap
from morobot.ros import qos
from morobot.ros.conversions import (heightmap_to_pointcloud2, make_odometry, make_pose_stamped,
                                     xyz_to_pointcloud2)

from rosutil import RosHarness

pytestmark = pytest.mark.ros


@pytest.fixture
def harness(request):
    from morobot.nodes.mppi_planner import MppiPlannerNode

    h = RosHarness()
    # The fed odometry stands still whatever the planner commands; blocked marking (tested below
    # on its own) would turn that into obstacles. A test may add start-up parameters (safety limits
    # can only be loosened at start-up) with @pytest.mark.parametrize("harness", [[...]], indirect=True).
    planner = h.add(MppiPlannerNode(parameter_overrides=[
        Parameter("num_samples", Parameter.Type.INTEGER, 256),
        Parameter("control_rate", Parameter.Type.DOUBLE, 20.0),
        Parameter("blocked_marking", Parameter.Type.BOOL, False)] + list(getattr(request, "param", []))))
    io = h.node("planner_test_io")
    rec = {"cmd": [], "plan": [], "diag": []}
    io.create_subscription(TwistStamped, "/cmd_vel", lambda m: rec["cmd"].append(m.twist), qos.STATE)
    io.create_subscription(Path, "/plan", lambda m: rec["plan"].append(m), qos.STATE)
    io.create_subscription(DiagnosticArray, "/diagnostics", lambda m: rec["diag"].append(m.status[0]), qos.STATE)
    rec["markers"] = []
    io.create_subscription(MarkerArray, "/mppi/rollouts", lambda m: rec["markers"].append(m), qos.STATE)
    pubs = {
        "odom": io.create_publisher(Odometry, "/odom", qos.STATE),
        "map": io.create_publisher(PointCloud2, "/elevation_map", qos.STATE),
        "goal": io.create_publisher(PoseStamped, "/goal_pose", qos.STATE),
    }
    yield h, planner, io, pubs, rec
    h.close()


def _now(node):
    return node.get_clock().now().nanoseconds * 1e-9


def _flat_map(t, x=0.0, y=0.0):
    h = torch.zeros(60, 60)
    return heightmap_to_pointcloud2(HeightMap(h, (x - 3.0, y - 3.0), 0.1, t))


def _odom(t, x=0.0, y=0.0, yaw=0.0, nan=False):
    msg = make_odometry([x, y, 0.5], [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)], [0, 0, 0], [0, 0, 0], t)
    if nan:
        msg.twist.twist.linear.x = float("nan")
    return msg


def _feed(io, pubs, **kw):
    t = _now(io)
    pubs["odom"].publish(_odom(t, **kw))
    pubs["map"].publish(_flat_map(t))


def test_drives_towards_goal_and_reports(harness):
    h, planner, io, pubs, rec = harness
    assert h.spin_until(lambda: planner.count_subscribers("/cmd_vel") >= 0 and
                        pubs["goal"].get_subscription_count() > 0, 5.0)
    h.spin_for(0.3, lambda: _feed(io, pubs))
    pubs["goal"].publish(make_pose_stamped(3.0, 0.0, 0.0, _now(io)))
    moving = lambda: any(m.linear.x > 0.2 for m in rec["cmd"])  # noqa: E731
    assert h.spin_until(moving, 10.0, lambda: _feed(io, pubs))
    cmd = [m for m in rec["cmd"] if m.linear.x > 0.2][-1]
    assert all(math.isfinite(v) for v in (cmd.linear.x, cmd.linear.y, cmd.angular.z))
    assert cmd.linear.x <= 1.0 + 1e-6
    assert h.spin_until(lambda: rec["plan"], 2.0, lambda: _feed(io, pubs))
    assert len(rec["plan"][-1].poses) == 10
    end = rec["plan"][-1].poses[-1].pose.position
    assert end.x > 0.5  # the plan heads to the goal
    assert h.spin_until(lambda: any(d.message == "tracking plan" for d in rec["diag"]), 2.0,
                        lambda: _feed(io, pubs))


def _wait_zero_with(h, rec, text, step, timeout=5.0):
    def ok():
        return any(text in d.message for d in rec["diag"]) and rec["cmd"] and rec["cmd"][-1].linear.x == 0.0
    return h.spin_until(ok, timeout, step)


def test_nan_odometry_stops(harness):
    h, planner, io, pubs, rec = harness
    h.spin_until(lambda: pubs["goal"].get_subscription_count() > 0, 5.0)
    pubs["goal"].publish(make_pose_stamped(3.0, 0.0, 0.0, _now(io)))
    assert h.spin_until(lambda: any(m.linear.x > 0.2 for m in rec["cmd"]), 10.0, lambda: _feed(io, pubs))
    assert _wait_zero_with(h, rec, "invalid odometry", lambda: _feed(io, pubs, nan=True))
    # recovers once odometry is valid again
    rec["cmd"].clear()
    assert h.spin_until(lambda: any(m.linear.x > 0.2 for m in rec["cmd"]), 10.0, lambda: _feed(io, pubs))


def test_stale_inputs_stop(harness):
    h, planner, io, pubs, rec = harness
    h.spin_until(lambda: pubs["goal"].get_subscription_count() > 0, 5.0)
    pubs["goal"].publish(make_pose_stamped(3.0, 0.0, 0.0, _now(io)))
    assert h.spin_until(lambda: any(m.linear.x > 0.2 for m in rec["cmd"]), 10.0, lambda: _feed(io, pubs))
    # odometry keeps coming but the map stops: stale map → zero
    assert _wait_zero_with(h, rec, "stale elevation map",
                           lambda: pubs["odom"].publish(_odom(_now(io))), timeout=6.0)
    # nothing at all: stale odometry → zero
    rec["diag"].clear()
    assert _wait_zero_with(h, rec, "stale odometry", None, timeout=3.0)


def test_malformed_map_and_goal_are_ignored(harness):
    h, planner, io, pubs, rec = harness
    h.spin_until(lambda: pubs["goal"].get_subscription_count() > 0, 5.0)
    bad_goal = make_pose_stamped(1.0, 0.0, 0.0, _now(io))
    bad_goal.pose.position.x = float("inf")
    pubs["goal"].publish(bad_goal)
    h.spin_for(0.5, lambda: pubs["map"].publish(xyz_to_pointcloud2(np.zeros((10, 3)), _now(io), "odom")))
    assert not any(m.linear.x != 0.0 for m in rec["cmd"])
    assert any("waiting for a goal" in d.message for d in rec["diag"])


def test_goal_reached_stops(harness):
    h, planner, io, pubs, rec = harness
    h.spin_until(lambda: pubs["goal"].get_subscription_count() > 0, 5.0)
    pubs["goal"].publish(make_pose_stamped(0.1, 0.0, 0.0, _now(io)))
    assert _wait_zero_with(h, rec, "goal reached", lambda: _feed(io, pubs))


def test_invalid_parameters_rejected():
    from morobot.nodes.mppi_planner import MppiPlannerNode

    h = RosHarness()
    try:
        with pytest.raises(ValueError, match="u_min must not exceed u_max"):
            MppiPlannerNode(parameter_overrides=[Parameter("u_min", Parameter.Type.DOUBLE_ARRAY, [2.0, 0.0, 0.0])])
        node = h.add(MppiPlannerNode())
        result = node.set_parameters([Parameter("risk_threshold", Parameter.Type.DOUBLE, 1.5)])[0]
        assert not result.successful
        result = node.set_parameters([Parameter("sigma", Parameter.Type.DOUBLE_ARRAY, [-1.0, 0.1, 0.1])])[0]
        assert not result.successful and "sigma" in result.reason
        result = node.set_parameters([Parameter("temperature", Parameter.Type.DOUBLE, 0.5)])[0]
        assert result.successful and node.mppi.config.temperature == 0.5
    finally:
        h.close()


# a slow spin (busy machine) must not stop it as stale in between
@pytest.mark.parametrize("harness", [[Parameter("max_odom_age", Parameter.Type.DOUBLE, 10.0),
                                      Parameter("max_map_age", Parameter.Type.DOUBLE, 30.0)]], indirect=True)
def test_a_robot_that_does_not_move_marks_an_obstacle_ahead(harness):
    """Odometry that stays put while the planner commands motion: an obstacle is marked ahead."""
    h, planner, io, pubs, rec = harness
    assert planner.blocked is None
    results = planner.set_parameters([Parameter("blocked_marking", Parameter.Type.BOOL, True),
                                      Parameter("blocked_max_gap", Parameter.Type.DOUBLE, 5.0)])
    assert all(r.successful for r in results) and planner.blocked is not None
    h.spin_until(lambda: pubs["goal"].get_subscription_count() > 0, 5.0)
    pubs["goal"].publish(make_pose_stamped(3.0, 0.0, 0.0, _now(io)))

    def blocked_markers():
        return [m for arr in rec["markers"] for m in arr.markers if m.ns == "blocked"]

    assert h.spin_until(lambda: blocked_markers(), 15.0, lambda: _feed(io, pubs))
    m = blocked_markers()[0]
    # commanded mostly forward (+x) from the origin: the disc's centre is clearance + radius ahead
    reach = planner.p["blocked_clearance"] + planner.p["blocked_radius"]
    assert math.hypot(m.pose.position.x, m.pose.position.y) == pytest.approx(reach, abs=1e-6)
    assert m.pose.position.x > 0.5
    assert m.scale.x == pytest.approx(2 * planner.p["blocked_radius"])
    (ob,) = planner.blocked.obstacles[:1]
    assert (ob.x, ob.y) == pytest.approx((m.pose.position.x, m.pose.position.y))
    # switching it off at run time drops the monitor and its obstacles
    assert planner.set_parameters([Parameter("blocked_marking", Parameter.Type.BOOL, False)])[0].successful
    assert planner.blocked is None


def test_the_first_run_time_change_is_seen_as_a_change():
    """on_change compares old and new values; the first change must not find them equal."""
    from morobot.nodes.mppi_planner import MppiPlannerNode

    h = RosHarness()
    try:
        node = h.add(MppiPlannerNode())
        before = node.dynamics
        assert node.set_parameters([Parameter("footprint_radius", Parameter.Type.DOUBLE, 0.5)])[0].successful
        assert node.dynamics is not before and node.dynamics.footprint_radius == 0.5
        assert node.p["footprint_radius"] == 0.5
    finally:
        h.close()


def test_blocked_parameters_default_to_the_monitor_defaults():
    from morobot.nodes.mppi_planner import PARAMS
    from morobot.planning.blocked import BlockedMotionConfig
    from morobot.navigation.factory import make_blocked_monitor

    defaults = {s.name: s.default for s in PARAMS}
    assert make_blocked_monitor(defaults).config == BlockedMotionConfig()


def test_a_goal_in_map_is_moved_into_odom_through_tf(harness):
    """RViz's "2D Goal Pose" sends map; with map -> odom on /tf_static the goal is used, in odom."""
    from morobot.frames import transform
    from morobot.ros.tf import TF_STATIC_QOS, TFMessage, make_transform

    h, planner, io, pubs, rec = harness
    static = io.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
    static.publish(TFMessage(transforms=[make_transform("map", "odom", transform((5.0, 1.0, 0.0), (1, 0, 0, 0)),
                                                       0.0)]))
    assert h.spin_until(lambda: "map" in planner._tf.tree.frames, 5.0)
    pubs["goal"].publish(make_pose_stamped(7.0, 1.0, 0.0, _now(io), frame_id="map"))
    assert h.spin_until(lambda: planner.core.goal is not None, 5.0, lambda: _feed(io, pubs))
    assert planner.core.goal[:2] == pytest.approx([2.0, 0.0])
    # a frame nothing connects: not used
    planner.core.cancel()
    pubs["goal"].publish(make_pose_stamped(1.0, 0.0, 0.0, _now(io), frame_id="nowhere"))
    h.spin_for(0.5, lambda: _feed(io, pubs))
    assert planner.core.goal is None
