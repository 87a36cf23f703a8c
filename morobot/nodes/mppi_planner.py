"""mppi_planner: /goal_pose + /odom + /elevation_map → /cmd_vel, /plan, /mppi/rollouts, /diagnostics.

A thin adapter around :class:`morobot.navigation.controller.NavigationController`, which holds every
rule: MPPI through the configured dynamics model (``kinematic``: perfect tracking with geometric
risk; ``fdm``: the learned perceptive forward-dynamics model), input ages by arrival time on this
node's clock (stamps from the future rejected), ±Inf map cells as obstacles, a stop when the map
around the robot is unknown, the blocked-motion monitor, the risk stop, and a last check of the
input ages just before a command leaves. Parameters: :class:`morobot.navigation.params.PlannerParams`.

Every control cycle (``control_rate``, node clock) the node hands the core the clock, publishes
what it decides and says why on /diagnostics; a cycle longer than the control period is logged
("missed its rate"). Malformed messages are logged and ignored; the node keeps running.

Goals: ``goal_pose`` (PoseStamped in ``odom_frame``, or in any frame /tf connects to it, e.g. RViz's
``map``: moved into ``odom_frame`` with the latest transform), or Nav2's ``navigate_to_pose`` action
where ``nav2_msgs`` is importable (feedback, result, cancel; :mod:`morobot.ros.navigate_action`); the
``cancel_goal`` service (std_srvs/Trigger)
drops the goal and stops the robot; ``navigate/status`` (action_msgs/GoalStatus, latched) says
where the current goal stands: executing, succeeded (reached) or canceled. ``morobot goal X Y``
uses the three.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, PoseStamped
from nav_msgs.msg import Odometry, Path
from action_msgs.msg import GoalStatus
from rclpy.node import Node
from std_srvs.srv import Trigger
from sensor_msgs.msg import JointState, PointCloud2
from visualization_msgs.msg import Marker, MarkerArray

from morobot.navigation import controller as core
from morobot.navigation.params import PlannerParams
from morobot.navigation.factory import fdm_checkpoint
from morobot.params import specs
from morobot.ros import qos
from morobot.robots import ANYMAL_JOINTS
from morobot.ros.conversions import (MessageError, cmd_vel_type, joint_state_to_arrays, make_cmd_vel, make_path,
                                     odometry_to_state, pointcloud2_to_heightmap, pose_stamped_to_xyyaw, sec_to_stamp,
                                     stamp_to_sec)
from morobot.frames import planar_pose
from morobot.ros.params import declare
from morobot.ros import navigate_action
from morobot.ros.tf import TfListener
from morobot.ros.runner import spin_node

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
PARAMS = specs(PlannerParams)


class MppiPlannerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("mppi_planner", **kwargs)
        self.p = declare(self, PARAMS, on_change=self._on_change, cross_check=PlannerParams.cross_check)
        self.core = core.NavigationController(self.p)
        self._cmd_pub = self.create_publisher(cmd_vel_type(self.p["cmd_vel_stamped"]), "cmd_vel", qos.STATE)
        self._plan_pub = self.create_publisher(Path, "plan", qos.STATE)
        self._roll_pub = self.create_publisher(MarkerArray, "mppi/rollouts", qos.STATE)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", qos.STATE)
        self.create_subscription(Odometry, "odom", self._on_odom, qos.STATE)
        self.create_subscription(PointCloud2, "elevation_map", self._on_map, qos.STATE)
        self.create_subscription(PoseStamped, "goal_pose", self._on_goal, qos.STATE)
        self._status_pub = self.create_publisher(GoalStatus, "navigate/status", qos.LATCHED)
        self.create_service(Trigger, "cancel_goal", self._on_cancel)
        self._tf = TfListener(self)
        if self.core.needs_joints:  # an FDM trained with the legs' joint states (history features "legged")
            self.create_subscription(JointState, "joint_states", self._on_joints, qos.STATE)
        if self.core.needs_targets:  # ... and with the locomotion controller's actions ("legged_actions")
            self.create_subscription(JointState, "joint_targets", self._on_targets, qos.STATE)
        self._action = None
        if navigate_action.AVAILABLE:  # Nav2's action where nav2_msgs is importable (a ROS install with Nav2)
            self._action = navigate_action.NavigateToPoseServer(self, self._start_goal, self._stop_goal, self._now)
        self._goal_id: Optional[bytes] = None
        self._goal_status = GoalStatus.STATUS_UNKNOWN
        self._timer = self.create_timer(1.0 / self.p["control_rate"], self._cycle)
        fdm = getattr(self.core.dynamics, "inner", self.core.dynamics)  # the FDM under its map-risk overlay
        if getattr(fdm, "compile_error", None):
            self.get_logger().warning(f"fdm_compile: torch.compile failed, the FDM runs eagerly ({fdm.compile_error})")
        compiled = " (compiled)" if getattr(fdm, "compiled", False) else ""
        model = f" from {fdm_checkpoint(self.p)}" if self.p["dynamics"] == "fdm" else ""
        self.get_logger().info(f"MPPI planner ready: {self.p['num_samples']} samples × {self.p['horizon']} "
                               f"steps × {self.p['dt']} s, dynamics '{self.p['dynamics']}'{model}{compiled}")

    # the core's parts, for introspection (tests, tools)
    dynamics = property(lambda self: self.core.dynamics)
    mppi = property(lambda self: self.core.mppi)
    blocked = property(lambda self: self.core.blocked)

    def _on_change(self, values: dict) -> None:
        rate_changed = values["control_rate"] != self.p["control_rate"]
        self.p = values
        self.core.reconfigure(values)
        if rate_changed:
            self._timer.cancel()
            self._timer = self.create_timer(1.0 / values["control_rate"], self._cycle)

    def _publish_cmd(self, cmd: np.ndarray) -> None:
        self._cmd_pub.publish(make_cmd_vel(cmd, self.p["cmd_vel_stamped"], self._now(), self.p["base_frame"]))

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ inputs
    def _on_odom(self, msg: Odometry) -> None:
        now = self._now()
        try:
            o = odometry_to_state(msg)
        except MessageError as exc:
            self.core.invalid_odometry(str(exc))
            self.get_logger().error(f"invalid odometry: {exc}", throttle_duration_sec=2.0)
            return
        why = self.core.odometry(core.Odometry(
            pose=np.array([o.position[0], o.position[1], o.yaw]),
            twist=np.array([o.linear[0], o.linear[1], o.angular[2]]),
            z=float(o.position[2]), gravity_b=o.gravity_b, stamp=o.stamp, linear=o.linear, angular=o.angular), now)
        if why:
            self.get_logger().error(why, throttle_duration_sec=2.0)

    def _on_map(self, msg: PointCloud2) -> None:
        now = self._now()
        try:
            hmap = pointcloud2_to_heightmap(msg)
        except MessageError as exc:
            self.get_logger().error(f"ignoring malformed elevation map: {exc}", throttle_duration_sec=2.0)
            return
        why = self.core.map(hmap, now)
        if why:
            self.get_logger().error(why, throttle_duration_sec=2.0)

    def _on_joints(self, msg: JointState) -> None:
        try:
            q, dq = joint_state_to_arrays(msg, ANYMAL_JOINTS)
            index = [list(msg.name).index(n) for n in ANYMAL_JOINTS]
            tau = np.asarray(msg.effort, dtype=float)[index] if len(msg.effort) == len(msg.name) else None
            if tau is None or not np.all(np.isfinite(tau)):
                raise MessageError("joint state needs finite efforts for every joint (the legged FDM's torques)")
        except MessageError as exc:
            self.get_logger().error(f"ignoring joint state: {exc}", throttle_duration_sec=2.0)
            return
        self.core.joint_state(core.Joints(q, dq, tau, stamp_to_sec(msg.header.stamp)), self._now())

    def _on_targets(self, msg: JointState) -> None:
        try:
            q, _ = joint_state_to_arrays(msg, ANYMAL_JOINTS)
        except MessageError as exc:
            self.get_logger().error(f"ignoring joint targets: {exc}", throttle_duration_sec=2.0)
            return
        self.core.joint_targets(q, self._now())

    def _on_goal(self, msg: PoseStamped) -> None:
        error = self._start_goal(msg)
        if error is not None:
            self.get_logger().error(error)
        elif self._action is not None:
            self._action.preempt()  # a goal on the topic replaces an action's goal

    def _start_goal(self, msg: PoseStamped) -> Optional[str]:
        """Make ``msg`` the goal (moved into odom through TF); the reason when it cannot be."""
        frame = msg.header.frame_id.lstrip("/")
        try:
            goal = pose_stamped_to_xyyaw(msg)
        except MessageError as exc:
            return f"ignoring invalid goal: {exc}"
        if frame and frame != self.p["odom_frame"]:
            try:  # e.g. RViz's "2D Goal Pose" in map: moved into odom with the latest transform
                goal = np.array(planar_pose(self._tf.tree.lookup(self.p["odom_frame"], frame), *goal))
            except LookupError as exc:
                return f"ignoring goal in frame '{frame}': no transform to '{self.p['odom_frame']}' ({exc})"
        if self.core.goal is not None and self._goal_status == GoalStatus.STATUS_EXECUTING:
            self._set_status(GoalStatus.STATUS_ABORTED)  # replaced
        self.core.set_goal(goal)
        self._goal_id = uuid.uuid4().bytes
        self._set_status(GoalStatus.STATUS_EXECUTING)
        self.get_logger().info(f"new goal ({goal[0]:.2f}, {goal[1]:.2f}, yaw {goal[2]:.2f})")
        return None

    def _stop_goal(self) -> None:
        self.core.cancel()
        self._publish_cmd(np.zeros(3))
        self._set_status(GoalStatus.STATUS_CANCELED)
        self.get_logger().info("goal canceled: stopped")

    def _on_cancel(self, _request, response):
        if self.core.goal is None:
            response.success, response.message = False, "no goal to cancel"
            return response
        self._stop_goal()
        if self._action is not None:
            self._action.preempt("canceled through cancel_goal")
        response.success, response.message = True, "goal canceled, robot stopped"
        return response

    def _set_status(self, status: int) -> None:
        if self._goal_id is None:
            return
        self._goal_status = status
        msg = GoalStatus(status=status)
        msg.goal_info.goal_id.uuid = list(self._goal_id)
        msg.goal_info.stamp = self.get_clock().now().to_msg()
        self._status_pub.publish(msg)

    # ------------------------------------------------------------------ control cycle
    def _cycle(self) -> None:
        t0 = time.perf_counter()
        now = self._now()
        if self._action is not None:  # a cancel requested through the action stops before this cycle plans
            odom = self.core.odom
            self._action.update(None if odom is None else odom.pose, self.core.goal, float(self.p["speed_limit"][0]))
        d = self.core.cycle(now)
        if d.marked is not None:
            self.get_logger().warning(
                f"commanded motion made no progress for {self.p['blocked_duration']:.1f} s: marked an "
                f"obstacle at ({d.marked.x:.2f}, {d.marked.y:.2f}) for {self.p['blocked_lifetime']:.0f} s")
        if self._action is not None and d.code == "goal_reached":
            self._action.reached()
        if not d.sends:
            self._diagnose(d.level, d.message + " on /goal_pose")
            return
        if d.plan is not None and d.code != "no_plan":
            self._publish_plan(d.plan, now)
        d = self.core.release(d, self._now())
        self._publish_cmd(d.command)
        if d.code == "goal_reached" and self._goal_status == GoalStatus.STATUS_EXECUTING:
            self._set_status(GoalStatus.STATUS_SUCCEEDED)
        self._diagnose(d.level, d.message, **d.values)
        spent = time.perf_counter() - t0
        if self.core.overran(spent):
            self.get_logger().warning(f"control cycle took {1e3 * spent:.0f} ms: missed its rate "
                                   f"({self.p['control_rate']:g} Hz)", throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ outputs
    def _publish_plan(self, plan, stamp: float) -> None:
        z = float(self.core.odom.z)
        self._plan_pub.publish(make_path(plan.poses, stamp, self.p["odom_frame"], z=z, dt=self.p["dt"]))
        if self.p["rollouts_shown"] == 0 or plan.rollouts.size == 0:
            return
        arr = MarkerArray()
        costs = plan.rollout_costs
        finite = costs[np.isfinite(costs)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        for i, poses in enumerate(plan.rollouts[: self.p["rollouts_shown"]]):
            m = Marker()
            m.header.frame_id = self.p["odom_frame"]
            m.header.stamp = sec_to_stamp(stamp)
            m.ns, m.id, m.type, m.action = "mppi_rollouts", i, Marker.LINE_STRIP, Marker.ADD
            m.scale.x = 0.02
            c = float(costs[i])
            s = (c - lo) / (hi - lo) if math.isfinite(c) and hi > lo else 1.0
            m.color.r, m.color.g, m.color.b, m.color.a = float(s), float(1.0 - s), 0.2, 0.6
            m.pose.orientation.w = 1.0
            start = [self.core.odom.pose[0], self.core.odom.pose[1], 0.0]
            m.points = [Point(x=float(x), y=float(y), z=z) for x, y, _yaw in np.vstack([start, poses])]
            arr.markers.append(m)
        for i, ob in enumerate([] if self.core.blocked is None else self.core.blocked.obstacles):
            m = Marker()
            m.header.frame_id = self.p["odom_frame"]
            m.header.stamp = sec_to_stamp(stamp)
            m.ns, m.id, m.type, m.action = "blocked", i, Marker.CYLINDER, Marker.ADD
            m.scale.x = m.scale.y = 2.0 * float(self.p["blocked_radius"])
            m.scale.z = 0.1
            m.color.r, m.color.g, m.color.b, m.color.a = 1.0, 0.5, 0.0, 0.8
            m.pose.position.x, m.pose.position.y, m.pose.position.z = float(ob.x), float(ob.y), float(ob.z)
            m.pose.orientation.w = 1.0
            m.lifetime.sec = 1  # republished every cycle; an expired obstacle disappears
            arr.markers.append(m)
        self._roll_pub.publish(arr)

    def _diagnose(self, level, message: str, **values) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        st = DiagnosticStatus(level=level, name="mppi_planner", message=message, hardware_id="morobot")
        st.values = [KeyValue(key="state", value=self.core.state)] + [
            KeyValue(key=k, value=f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in values.items()]
        msg.status = [st]
        self._diag_pub.publish(msg)

    def on_shutdown(self) -> None:
        """Leave the robot standing: a last zero command."""
        self._publish_cmd(np.zeros(3))


def main(args=None) -> int:
    return spin_node(MppiPlannerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
