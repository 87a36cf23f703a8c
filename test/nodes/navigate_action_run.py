"""Run in a subprocess by test_navigate_action.py, with a nav2_msgs built for the test on the path:
the planner's navigate_to_pose action driven by an rclpy ActionClient. Prints one JSON line."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from action_msgs.msg import GoalStatus
from geometry_msgs.msg import TwistStamped
from nav2_msgs.action import NavigateToPose
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rosutil import RosHarness  # noqa: E402

from morobot.nodes.mppi_planner import MppiPlannerNode  # noqa: E402
from morobot.planning.interface import HeightMap  # noqa: E402
from morobot.ros import qos  # noqa: E402
from morobot.ros.conversions import heightmap_to_pointcloud2, make_odometry, make_pose_stamped  # noqa: E402


def main() -> None:
    h = RosHarness()
    planner = h.add(MppiPlannerNode(parameter_overrides=[
        Parameter("num_samples", Parameter.Type.INTEGER, 256), Parameter("control_rate", Parameter.Type.DOUBLE, 20.0),
        Parameter("blocked_marking", Parameter.Type.BOOL, False)]))
    io = h.node("action_io")
    cmds = []
    io.create_subscription(TwistStamped, "/cmd_vel", lambda m: cmds.append(m.twist.linear.x), qos.STATE)
    odom_pub = io.create_publisher(Odometry, "/odom", qos.STATE)
    map_pub = io.create_publisher(PointCloud2, "/elevation_map", qos.STATE)
    client = ActionClient(io, NavigateToPose, "/navigate_to_pose")
    assert client.wait_for_server(timeout_sec=10.0)
    where = {"x": 0.0}

    def feed():
        t = io.get_clock().now().nanoseconds * 1e-9
        odom_pub.publish(make_odometry([where["x"], 0.0, 0.5], [1, 0, 0, 0], [0, 0, 0], [0, 0, 0], t))
        map_pub.publish(heightmap_to_pointcloud2(HeightMap(torch.zeros(60, 60), (where["x"] - 3.0, -3.0), 0.1, t)))

    def run(goal_x, frame="odom", cancel_after=None, arrive_after=None):
        feedback = []
        goal = NavigateToPose.Goal()
        goal.pose = make_pose_stamped(goal_x, 0.0, 0.0, 0.0, frame_id=frame)
        sent = client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback))
        assert h.spin_until(sent.done, 5.0, feed)
        handle = sent.result()
        result = handle.get_result_async()
        if cancel_after is not None:
            assert h.spin_until(lambda: len(feedback) >= cancel_after, 10.0, feed)
            handle.cancel_goal_async()
        if arrive_after is not None:
            assert h.spin_until(lambda: len(feedback) >= arrive_after, 10.0, feed)
            where["x"] = goal_x
        assert h.spin_until(result.done, 10.0, feed)
        r = result.result()
        return {"status": r.status, "error_msg": r.result.error_msg, "feedback": len(feedback),
                "distance": [round(f.distance_remaining, 3) for f in feedback[:3]],
                "nav_time": [f.navigation_time.sec + 1e-9 * f.navigation_time.nanosec for f in feedback[-2:]]}

    out = {"reached": run(2.0, arrive_after=3)}
    where["x"] = 0.0
    out["canceled"] = run(3.0, cancel_after=2)
    h.spin_for(0.3, feed)
    out["cmd_after_cancel"] = cmds[-1]
    out["no_transform"] = run(1.0, frame="nowhere")
    out["statuses"] = {"succeeded": GoalStatus.STATUS_SUCCEEDED, "canceled": GoalStatus.STATUS_CANCELED,
                       "aborted": GoalStatus.STATUS_ABORTED}
    print(json.dumps(out))
    h.close()


if __name__ == "__main__":
    main()
