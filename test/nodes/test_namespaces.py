"""Relative topic names: two namespaced robots in one graph, without cross-talk; the launcher's
namespace and remap arguments."""

import math

import pytest
import torch
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2

from morobot.planning.interface import HeightMap
from morobot.ros import qos
from morobot.ros.conversions import heightmap_to_pointcloud2, make_odometry, make_pose_stamped

from rosutil import RosHarness

pytestmark = pytest.mark.ros


def _now(node):
    return node.get_clock().now().nanoseconds * 1e-9


class Robot:
    def __init__(self, h, io, ns):
        self.cmds = []
        io.create_subscription(TwistStamped, f"/{ns}/cmd_vel", lambda m: self.cmds.append(m.twist), qos.STATE)
        self.odom = io.create_publisher(Odometry, f"/{ns}/odom", qos.STATE)
        self.map = io.create_publisher(PointCloud2, f"/{ns}/elevation_map", qos.STATE)
        self.goal = io.create_publisher(PoseStamped, f"/{ns}/goal_pose", qos.STATE)
        self.io = io

    def feed(self):
        t = _now(self.io)
        self.odom.publish(make_odometry([0.0, 0.0, 0.5], [1.0, 0, 0, 0], [0, 0, 0], [0, 0, 0], t))
        self.map.publish(heightmap_to_pointcloud2(HeightMap(torch.zeros(60, 60), (-3.0, -3.0), 0.1, t)))


def test_two_namespaced_planners_do_not_cross_talk():
    from morobot.nodes.mppi_planner import MppiPlannerNode

    h = RosHarness()
    try:
        params = [Parameter("num_samples", value=256), Parameter("control_rate", value=20.0),
                  Parameter("blocked_marking", value=False)]
        for ns in ("r1", "r2"):
            h.add(MppiPlannerNode(namespace=ns, parameter_overrides=params))
        io = h.node("ns_io")
        r1, r2 = Robot(h, io, "r1"), Robot(h, io, "r2")
        assert h.spin_until(lambda: r1.goal.get_subscription_count() and r2.goal.get_subscription_count(), 5.0)
        r1.goal.publish(make_pose_stamped(3.0, 0.0, 0.0, _now(io)))  # ahead
        assert h.spin_until(lambda: any(m.linear.x > 0.2 for m in r1.cmds), 10.0, r1.feed)
        assert not r2.cmds  # r2 has no goal and no inputs: it sends nothing
        r2.goal.publish(make_pose_stamped(-3.0, 0.0, math.pi, _now(io)))  # behind
        assert h.spin_until(lambda: any(abs(m.angular.z) > 0.2 or m.linear.x < -0.1 for m in r2.cmds), 10.0,
                            lambda: (r1.feed(), r2.feed()))
        assert all(m.linear.x > -0.05 for m in r1.cmds[-5:])  # r1 still heads for its own goal
    finally:
        h.close()


@pytest.mark.slow
def test_the_launcher_starts_a_namespaced_graph_with_its_parameters(tmp_path):
    from morobot.launcher import GraphProcesses

    h = RosHarness()
    try:
        # the test's robot publishes odometry and a map but no joint states: the planner without a learned model
        with GraphProcesses("navigate", {"namespace": "robot7", "use_sim": "false", "use_sim_time": "false",
                                         "remap": "cmd_vel:=/robot7/locomotion/cmd_vel", "dynamics": "kinematic"},
                            log_dir=str(tmp_path)) as procs:
            io = h.node("ns_launch_io")
            r = Robot(h, io, "robot7")
            cmds = []
            io.create_subscription(TwistStamped, "/robot7/locomotion/cmd_vel", lambda m: cmds.append(m.twist),
                                   qos.STATE)
            assert h.spin_until(lambda: r.goal.get_subscription_count() > 0, 60.0), procs.failed()
            r.goal.publish(make_pose_stamped(3.0, 0.0, 0.0, _now(io)))
            assert h.spin_until(lambda: any(m.linear.x > 0.2 for m in cmds), 30.0, r.feed), procs.failed()
            def names():
                return {f"{ns}/{n}" for n, ns in io.get_node_names_and_namespaces()}

            assert h.spin_until(lambda: {"/robot7/mppi_planner", "/robot7/elevation_mapper"} <= names(), 10.0), names()
    finally:
        h.close()
    log = (tmp_path / "mppi_planner.log").read_text()
    assert "1024 samples" in log  # its parameters (the file's section) reached the namespaced node
