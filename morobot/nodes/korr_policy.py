"""korr_policy: /joint_states + /object_pose → /joint_command_raw at the policy's control rate.

Runs a KORR checkpoint (base policy + Koopman-conditioned residual, or the base policy alone) through
:class:`morobot.korr.policy.KorrPolicy`. The command goes to ``/joint_command_raw``; the feasibility
checker forwards only feasible commands to the robot on ``/joint_command``.

It judges the task as the evaluation does (:func:`morobot.korr.tasks.success` on the object pose):
the first time the task is solved it logs so and publishes ``task/success`` (std_msgs/Bool, latched)
true; when ``task_time_limit`` passes first, it logs the failure and publishes false.

It refuses to act on stale (``max_state_age``, by arrival on this node's clock, see
:mod:`morobot.freshness`), future-stamped (``max_stamp_lead``) or NaN/malformed state: it then
publishes nothing, so the arm's joint controller holds its last target, and logs why. A missing or corrupt checkpoint, or
one for another task, stops the node at start with one clear error.
"""

from __future__ import annotations

import math

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from morobot import paths
from morobot.robots import PANDA_ARM_JOINTS, PANDA_FINGER_JOINTS, franka_joint_names
from morobot.freshness import input_age, stamp_lead_error
from morobot.ros import qos
from morobot.ros.conversions import (MessageError, joint_state_to_arrays, make_joint_trajectory,
                                     pose_stamped_to_arrays, stamp_to_sec)
from morobot.korr.params import PolicyParams
from morobot.params import specs
from morobot.ros.params import declare
from morobot.ros.runner import spin_node

ARM = PANDA_ARM_JOINTS
FINGERS = PANDA_FINGER_JOINTS

PARAMS = specs(PolicyParams)


def default_checkpoint(task: str) -> str:
    return str(paths.models_dir() / "korr" / task / "residual_korr.pt")


class KorrPolicyNode(Node):
    def __init__(self, **kwargs):
        super().__init__("korr_policy", **kwargs)
        self.p = declare(self, PARAMS, on_change=lambda v: self.p.update(v))
        from morobot.korr.policy import KorrPolicy

        ckpt = self.p["checkpoint"] or default_checkpoint(self.p["task"])
        self.policy = KorrPolicy(ckpt)
        if self.policy.task != self.p["task"]:
            raise ValueError(f"checkpoint {ckpt} is for task '{self.policy.task}', not '{self.p['task']}'")
        self.policy.reset()
        self.arm, self.fingers = franka_joint_names(self.p["joint_prefix"])
        self._js = None
        self._obj = None
        self._pub = self.create_publisher(JointTrajectory, "joint_command_raw", qos.STATE)
        self._task_pub = self.create_publisher(Bool, "task/success", qos.LATCHED)
        self._task_done = False
        self._steps = 0

        self.create_subscription(JointState, "joint_states", self._on_js, qos.STATE)
        self.create_subscription(PoseStamped, "object_pose", self._on_obj, qos.STATE)
        self.create_timer(self.policy.control_dt, self._step)
        self.get_logger().info(f"KORR policy '{self.policy.variant}' for task '{self.p['task']}' from {ckpt} "
                               f"at {1.0 / self.policy.control_dt:.0f} Hz")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_js(self, msg: JointState) -> None:
        try:
            names = self.arm + self.fingers if all(f in msg.name for f in self.fingers) else self.arm
            q, qd = joint_state_to_arrays(msg, names)
        except MessageError as exc:
            self._js = None
            self.get_logger().error(f"holding: invalid joint state ({exc})", throttle_duration_sec=2.0)
            return
        self._js = self._arrived("joint state", msg.header.stamp, q, qd)

    def _on_obj(self, msg: PoseStamped) -> None:
        try:
            if msg.header.frame_id not in ("", self.p["arm_frame"]):
                raise MessageError(f"object pose in frame '{msg.header.frame_id}', expected "
                                   f"'{self.p['arm_frame']}'")
            pos, quat = pose_stamped_to_arrays(msg)
        except MessageError as exc:
            self._obj = None
            self.get_logger().error(f"holding: invalid object pose ({exc})", throttle_duration_sec=2.0)
            return
        self._obj = self._arrived("object pose", msg.header.stamp, pos, quat)

    def _arrived(self, what: str, header_stamp, *values):
        """``(stamp, arrival, *values)``, or None (with one error line) for a stamp from the future."""
        now, stamp = self._now(), stamp_to_sec(header_stamp)
        why = stamp_lead_error(what, stamp, now, self.p["max_stamp_lead"])
        if why:
            self.get_logger().error(f"holding: {why}", throttle_duration_sec=2.0)
            return None
        return (stamp, now, *values)

    def _step(self) -> None:
        now = self._now()
        if self._js is None or self._obj is None:
            self.get_logger().warning("holding: waiting for joint states and object pose",
                                      throttle_duration_sec=5.0)
            return
        age = max(input_age(now, self._js[1], self._js[0]), input_age(now, self._obj[1], self._obj[0]))
        if age > self.p["max_state_age"]:
            self.get_logger().warning(f"holding: state is {age:.2f}s old", throttle_duration_sec=2.0)
            return
        _, _, q, qd = self._js
        _, _, pos, quat = self._obj
        self._judge(pos)
        try:
            cmd = self.policy.act(q, qd, (pos, quat))
        except ValueError as exc:
            self.get_logger().error(f"holding: policy refused the state ({exc})", throttle_duration_sec=2.0)
            return
        names, positions, velocities = list(self.arm), list(cmd.positions), list(cmd.velocities)
        if self.p["command_gripper"] and math.isfinite(cmd.gripper):
            names += list(self.fingers)
            positions += [cmd.gripper / 2.0, cmd.gripper / 2.0]
            velocities += [0.0, 0.0]
        self._pub.publish(make_joint_trajectory(names, positions, now, velocities=velocities,
                                                time_from_start=self.policy.control_dt))


    def _judge(self, object_position) -> None:
        """Success or failure of the task, said once (log + ``task/success``)."""
        from morobot.korr.tasks import success

        if self._task_done:
            return
        self._steps += 1
        if success(self.policy.task, object_position, self.policy.goal):
            self._task_done = True
            self.get_logger().info(f"task '{self.policy.task}' succeeded after {self._steps * self.policy.control_dt:.1f} s")
            self._task_pub.publish(Bool(data=True))
        elif self._steps * self.policy.control_dt >= self.p["task_time_limit"]:
            self._task_done = True
            self.get_logger().error(f"task '{self.policy.task}' failed: not solved within task_time_limit "
                                    f"{self.p['task_time_limit']:g} s")
            self._task_pub.publish(Bool(data=False))


def main(args=None) -> int:
    return spin_node(KorrPolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
