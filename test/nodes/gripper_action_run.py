"""Run in a subprocess by test_gripper_action.py, with a control_msgs built for the test on the path: the
checker in filter mode with gripper_output:=action against a GripperCommand server. Prints one JSON line."""

import json
import sys
from pathlib import Path

from control_msgs.action import GripperCommand
from rclpy.action import ActionServer
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rosutil import RosHarness  # noqa: E402

from morobot.nodes.feasibility_checker import FeasibilityCheckerNode  # noqa: E402
from morobot.robots import ARMS, PANDA_ARM_JOINTS, PANDA_FINGER_JOINTS  # noqa: E402
from morobot.ros import qos  # noqa: E402
from morobot.ros.conversions import make_joint_state, make_joint_trajectory  # noqa: E402

READY = list(ARMS["panda"].ready_pose)


def main() -> None:
    h = RosHarness()
    checker = h.add(FeasibilityCheckerNode(parameter_overrides=[Parameter("gripper_output", value="action")]))
    io = h.node("gripper_io")
    goals, out = [], []

    def execute(handle):
        goals.append((handle.request.command.position, handle.request.command.max_effort))
        handle.succeed()
        return GripperCommand.Result(position=handle.request.command.position, reached_goal=True)

    ActionServer(io, GripperCommand, "/gripper_action", execute_callback=execute)
    io.create_subscription(JointTrajectory, "/joint_command", out.append, qos.STATE)
    js = io.create_publisher(JointState, "/joint_states", qos.STATE)
    raw = io.create_publisher(JointTrajectory, "/joint_command_raw", qos.STATE)
    assert h.spin_until(lambda: raw.get_subscription_count() > 0 and checker._gripper._client.server_is_ready(), 10.0)
    names = list(PANDA_ARM_JOINTS) + list(PANDA_FINGER_JOINTS)

    def send(fingers):
        def go():
            t = io.get_clock().now().nanoseconds * 1e-9
            js.publish(make_joint_state(names, READY + [0.04, 0.04], [0.0] * 9, [0.0] * 9, t))
            raw.publish(make_joint_trajectory(names, READY + [fingers, fingers], t))
        return go

    h.spin_for(1.0, send(0.04))          # many frames, one target: one goal
    first = len(goals)
    h.spin_for(1.0, send(0.0405))        # within the 1 mm tolerance: no new goal
    same = len(goals)
    assert h.spin_until(lambda: len(goals) > same, 5.0, send(0.01))  # closing: a new goal
    print(json.dumps({"goals": goals, "first": first, "after_small_change": same,
                      "forwarded_names": sorted({n for m in out for n in m.joint_names}), "forwarded": len(out)}))
    h.close()


if __name__ == "__main__":
    main()
