"""The gripper through its own action: control_msgs/action/GripperCommand (franka_ros2's
``franka_gripper`` serves ``~/gripper_action``; so do ros2_control's GripperActionController and most
grippers' drivers). Only where ``control_msgs`` is importable (a ROS install; it is no PyPI wheel).

The feasibility checker strips the finger joints from the arm's trajectory (a JointTrajectoryController
of the arm rejects joints it does not own) and hands the commanded finger position here; a goal is sent
only when the target moves by more than ``tolerance`` from the last one sent, so a 50 Hz command
stream becomes a goal per gripper motion, not 50 goals a second.
"""

from __future__ import annotations

import math
from typing import Optional

from rclpy.action import ActionClient

try:
    from control_msgs.action import GripperCommand
except ImportError:
    GripperCommand = None

AVAILABLE = GripperCommand is not None
"""Whether ``control_msgs`` is importable here."""


class GripperActionOutput:
    """Sends GripperCommand goals for finger position targets.

    Args:
        node: the node that owns the client.
        action: action name (relative), e.g. ``gripper_action`` remapped onto ``/fr3_gripper/gripper_action``.
        max_effort: ``command.max_effort`` of every goal (N).
        tolerance: a new goal only when the target moves by more than this (m).
    """

    def __init__(self, node, action: str = "gripper_action", max_effort: float = 20.0, tolerance: float = 0.001) -> None:
        if not AVAILABLE:
            raise RuntimeError("gripper_output:=action needs control_msgs (a ROS install with ros2_control); "
                               "use gripper_output:=joint_command here")
        self.node = node
        self.max_effort, self.tolerance = float(max_effort), float(tolerance)
        self._client = ActionClient(node, GripperCommand, action)
        self._sent: Optional[float] = None
        self.goals_sent = 0

    def send(self, position: float) -> bool:
        """Command one finger position (m, each finger's opening); returns whether a goal went out."""
        position = float(position)
        if not math.isfinite(position):
            raise ValueError(f"gripper position must be finite, got {position}")
        if self._sent is not None and abs(position - self._sent) <= self.tolerance:
            return False
        if not self._client.server_is_ready():
            self.node.get_logger().warning("gripper action server not available: gripper command not sent",
                                           throttle_duration_sec=5.0)
            return False
        goal = GripperCommand.Goal()
        goal.command.position = position
        goal.command.max_effort = self.max_effort
        self._client.send_goal_async(goal)
        self._sent = position
        self.goals_sent += 1
        return True
