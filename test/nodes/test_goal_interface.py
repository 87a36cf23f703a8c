"""The planner's goal interface over DDS: navigate/status, the cancel_goal service, and `morobot goal`."""

import subprocess
import sys

import pytest
import torch
from action_msgs.msg import GoalStatus
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from std_srvs.srv import Trigger

from morobot.planning.interface import HeightMap
from morobot.ros import qos
from morobot.ros.conversions import heightmap_to_pointcloud2, make_odometry

from rosutil import RosHarness

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("end", ["cancel", "reach"])
def test_morobot_goal_follows_a_goal_to_its_end(end):
    from morobot.nodes.mppi_planner import MppiPlannerNode

    h = RosHarness()
    proc = None
    try:
        planner = h.add(MppiPlannerNode(parameter_overrides=[
            Parameter("num_samples", value=256), Parameter("control_rate", value=20.0),
            Parameter("blocked_marking", value=False)]))
        io = h.node("goal_io")
        statuses = []
        io.create_subscription(GoalStatus, "/navigate/status", lambda m: statuses.append(m.status), qos.LATCHED)
        odom = io.create_publisher(Odometry, "/odom", qos.STATE)
        emap = io.create_publisher(PointCloud2, "/elevation_map", qos.STATE)
        x = 0.1 if end == "reach" else 3.0  # within the goal tolerance: reached at once

        def feed():
            t = io.get_clock().now().nanoseconds * 1e-9
            odom.publish(make_odometry([x - 0.1 if end == "reach" else 0.0, 0.0, 0.5], [1, 0, 0, 0],
                                       [0, 0, 0], [0, 0, 0], t))
            emap.publish(heightmap_to_pointcloud2(HeightMap(torch.zeros(60, 60), (-3.0, -3.0), 0.1, t)))

        proc = subprocess.Popen([sys.executable, "-m", "morobot.cli", "goal", str(x), "0", "--no-sim-time",
                                 "--timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # the status is latched (depth 1): a goal reached at once may show only its end
        assert h.spin_until(lambda: statuses, 30.0, feed)
        if end == "cancel":
            h.spin_for(1.0, feed)
            client = io.create_client(Trigger, "/cancel_goal")
            future = client.call_async(Trigger.Request())
            assert h.spin_until(lambda: future.done(), 10.0, feed) and future.result().success
            assert planner.core.goal is None
            expected = 3
        else:
            expected = 0
        assert h.spin_until(lambda: proc.poll() is not None, 30.0, feed)
        out = proc.stdout.read()
        h.spin_for(0.2)
        assert proc.returncode == expected, out
        assert ("reached" in out) if end == "reach" else ("canceled" in out)
        assert statuses[-1] == (GoalStatus.STATUS_SUCCEEDED if end == "reach" else GoalStatus.STATUS_CANCELED)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        h.close()
