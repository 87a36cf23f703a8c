"""mppi_planner: /goal_pose + /odom + /elevation_map → /cmd_vel, /plan, /mppi/rollouts, /diagnostics.

Every control cycle (``control_rate``, node clock) the planner runs MPPI through the configured
dynamics model (``kinematic``: perfect tracking with geometric risk; ``fdm``: the learned perceptive
forward-dynamics model) and publishes the first command of the plan.

Safety: it commands zero velocity — and says why on /diagnostics — when odometry or the map are
stale (``max_odom_age``/``max_map_age``), when an input holds NaN/Inf, when the best plan's risk
exceeds ``risk_threshold`` (with ``risk_relative``: and standing still's by more than
``risk_margin``, :func:`morobot.planning.cost.should_stop`), when planning fails, and once the
goal is reached. With ``blocked_marking`` it marks an obstacle in the map it plans on wherever the
commanded motion made no progress for ``blocked_duration`` seconds
(:class:`morobot.planning.blocked.BlockedMotionMonitor`; shown on /mppi/rollouts, namespace
``blocked``), so a model or map that misses an obstacle cannot keep the robot pushing into it. Malformed messages are logged and ignored; the node keeps running.
"""

from __future__ import annotations

import math
import time
from typing import Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, PoseStamped, Twist
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import Marker, MarkerArray

from morobot import paths
from morobot.planning import factory
from morobot.planning.cost import should_stop
from morobot.planning.interface import NavState
from morobot.planning.map_risk import MapRiskOverlay
from morobot.ros import qos
from morobot.ros.conversions import (MessageError, array_to_twist, make_path, odometry_to_state,
                                     pointcloud2_to_heightmap, pose_stamped_to_xyyaw, sec_to_stamp)
from morobot.ros.params import ParamSpec, declare
from morobot.ros.runner import spin_node

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR

PARAMS = (
    # loop and safety
    ParamSpec("control_rate", 10.0, "planning/command rate (Hz, node clock)", 0.5, 100.0),
    ParamSpec("goal_tolerance", 0.3, "goal reached within this distance (m)", 0.05, 5.0),
    ParamSpec("max_odom_age", 0.5, "odometry older than this (s) stops the robot", 0.05, 10.0),
    ParamSpec("max_map_age", 2.0, "an elevation map older than this (s) stops the robot", 0.1, 30.0),
    ParamSpec("risk_threshold", 0.5, "stop when the best plan's peak risk exceeds this", 0.0, 1.0),
    ParamSpec("risk_stop_window", 0.0, "seconds of the best plan the safety stop checks (0 = all of it)", 0.0, 60.0),
    ParamSpec("risk_relative", True, "stop and penalise only plans riskier than standing still by risk_margin "
              "(false: any plan above risk_threshold)"),
    ParamSpec("risk_margin", 0.05, "allowed risk above standing still's (risk_relative)", 0.0, 1.0),
    ParamSpec("odom_frame", "odom", "frame of odometry, map and goals"),
    # MPPI
    ParamSpec("num_samples", 1024, "sampled command sequences per iteration", 16, 16384, read_only=True),
    ParamSpec("horizon", 10, "steps per sequence", 2, 100, read_only=True),
    ParamSpec("dt", 0.5, "seconds per step", 0.05, 2.0, read_only=True),
    ParamSpec("iterations", 1, "MPPI iterations per cycle", 1, 10),
    ParamSpec("temperature", 3.0, "MPPI temperature λ", 1e-4, 1e4),
    ParamSpec("sigma", [0.4, 0.2, 0.6], "sampling std of (vx, vy, wz)"),
    ParamSpec("u_min", [-0.5, -0.5, -1.0], "lower command bounds (vx, vy, wz)"),
    ParamSpec("u_max", [1.0, 0.5, 1.0], "upper command bounds (vx, vy, wz)"),
    ParamSpec("noise_beta", 0.6, "temporal correlation of sampling noise (0 = white)", 0.0, 0.99),
    ParamSpec("seed", 0, "random seed (-1: nondeterministic)", -1, 2**31 - 1, read_only=True),
    ParamSpec("rollouts_shown", 32, "rollouts published on /mppi/rollouts", 0, 512),
    # dynamics
    ParamSpec("dynamics", "kinematic", "dynamics model", choices=("kinematic", "fdm"), read_only=True),
    ParamSpec("fdm_checkpoint", "", "FDM checkpoint (dynamics fdm; empty = shipped default)", read_only=True),
    ParamSpec("fdm_map_risk", True, "dynamics fdm: also count the geometric terrain risk at the FDM's "
              "predicted poses (covers the depth cameras' blind spots)", read_only=True),
    ParamSpec("footprint_radius", 0.45, "robot footprint radius for geometric risk (m)", 0.05, 3.0),
    ParamSpec("step_limit", 0.25, "highest step the robot climbs (m)", 0.01, 2.0),
    ParamSpec("slope_limit_deg", 30.0, "steepest slope the robot climbs (deg)", 1.0, 89.0),
    ParamSpec("unknown_risk", 0.3, "risk of unknown map cells", 0.0, 1.0),
    # cost
    ParamSpec("goal_weight", 20.0, "terminal goal-distance weight", 0.0, 1e4),
    ParamSpec("progress_weight", 10.0, "running goal-distance weight", 0.0, 1e4),
    ParamSpec("heading_weight", 10.0, "goal-heading weight (near the goal)", 0.0, 1e4),
    ParamSpec("risk_weight", 10.0, "expected-risk weight", 0.0, 1e4),
    ParamSpec("collision_penalty", 1000.0, "penalty when a step's risk exceeds risk_threshold", 0.0, 1e6),
    ParamSpec("uncertainty_weight", 5.0, "model-uncertainty weight (FDM ensemble)", 0.0, 1e4),
    ParamSpec("smoothness_weight", 2.0, "command-change weight", 0.0, 1e4),
    ParamSpec("backward_weight", 2.0, "backward-motion weight", 0.0, 1e4),
    ParamSpec("alignment_weight", 20.0, "weight of the heading error against the direction of travel "
              "(per rad, averaged over the predicted steps)", 0.0, 1e4),
    ParamSpec("alignment_radius", 2.0, "goal distance (m) from which a step's heading error has full "
              "weight (none within half of it)", 0.01, 100.0),
    # geodesic cost-to-go (goal distance around obstacles instead of straight-line)
    ParamSpec("cost_to_go", True, "goal distance = geodesic cost-to-go over the map (false: Euclidean)"),
    ParamSpec("ctg_risk_cost", 2.0, "cost-to-go: extra cost per metre per unit of risk", 0.0, 100.0),
    ParamSpec("ctg_inflation_radius", 0.3, "cost-to-go: inflation distance around untraversable cells (m)",
              0.0, 3.0),
    ParamSpec("ctg_inflation_cost", 1.0, "cost-to-go: extra cost per metre next to untraversable cells",
              0.0, 100.0),
    ParamSpec("ctg_exit_penalty", 2.0, "cost-to-go: penalty (m) for a way round outside the map", 0.0, 100.0),
    ParamSpec("ctg_downsample", 2, "cost-to-go: solve on n x n blocks of map cells", 1, 4),
    # obstacles marked where commanded motion made no progress (morobot.planning.blocked)
    ParamSpec("blocked_marking", True, "mark an obstacle in the map where commanded motion is blocked"),
    ParamSpec("blocked_min_command", 0.15, "blocked marking: planar command speed judged (m/s)", 0.01, 5.0),
    ParamSpec("blocked_max_ratio", 0.25, "blocked marking: progress below this fraction of the command is "
              "blocked", 0.01, 0.99),
    ParamSpec("blocked_duration", 1.5, "blocked marking: seconds of blocking before marking", 0.1, 60.0),
    ParamSpec("blocked_clearance", 0.9, "blocked marking: distance (m) from the robot centre to the "
              "obstacle's edge (keep it above footprint_radius + 0.4 so the robot's own spot stays "
              "below the risk threshold)", 0.05, 5.0),
    ParamSpec("blocked_radius", 0.2, "blocked marking: obstacle radius (m)", 0.01, 2.0),
    ParamSpec("blocked_height", 0.5, "blocked marking: obstacle top above the base height (m)", 0.01, 5.0),
    ParamSpec("blocked_lifetime", 60.0, "blocked marking: seconds an obstacle is kept", 1.0, 3600.0),
    ParamSpec("blocked_max_gap", 0.4, "blocked marking: a longer gap (s) between control cycles restarts the "
              "detection (a late planner lets the robot stop by itself)", 0.05, 10.0),
)


def _cross_check(p: dict) -> Optional[str]:
    for name in ("sigma", "u_min", "u_max"):
        v = p[name]
        if len(v) != 3 or not all(math.isfinite(float(x)) for x in v):
            return f"{name} must be 3 finite numbers"
    if any(s < 0 for s in p["sigma"]):
        return "sigma must be non-negative"
    if any(lo > hi for lo, hi in zip(p["u_min"], p["u_max"])):
        return "u_min must not exceed u_max"
    return None


class MppiPlannerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("mppi_planner", **kwargs)
        self.p = declare(self, PARAMS, on_change=self._on_change, cross_check=_cross_check)
        self._odom = None
        self._hmap = None
        self._goal: Optional[np.ndarray] = None
        self._fault: Optional[str] = None
        self._last_cmd = np.zeros(3)
        self._state = "idle"
        self._history = None
        self.dynamics = self._make_dynamics()
        self._build_planner()
        self.blocked = factory.make_blocked_monitor(self.p)
        self._cmd_pub = self.create_publisher(Twist, "/cmd_vel", qos.STATE)
        self._plan_pub = self.create_publisher(Path, "/plan", qos.STATE)
        self._roll_pub = self.create_publisher(MarkerArray, "/mppi/rollouts", qos.STATE)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", qos.STATE)
        self.create_subscription(Odometry, "/odom", self._on_odom, qos.STATE)
        self.create_subscription(PointCloud2, "/elevation_map", self._on_map, qos.STATE)
        self.create_subscription(PoseStamped, "/goal_pose", self._on_goal, qos.STATE)
        self._timer = self.create_timer(1.0 / self.p["control_rate"], self._cycle)
        self.get_logger().info(f"MPPI planner ready: {self.p['num_samples']} samples × {self.p['horizon']} "
                               f"steps × {self.p['dt']} s, dynamics '{self.p['dynamics']}'")

    # ------------------------------------------------------------------ set-up
    def _make_dynamics(self):
        p = self.p
        if p["dynamics"] == "kinematic":
            return factory.make_kinematic_model(p)
        dyn, self._history = factory.make_fdm_planner_dynamics(
            p, p["fdm_checkpoint"] or str(paths.default_fdm_checkpoint()))
        return dyn

    def _build_planner(self) -> None:
        self.mppi = factory.make_planner(self.p, self.dynamics)

    def _on_change(self, values: dict) -> None:
        rebuild_dyn = any(values[k] != self.p[k] for k in
                          ("footprint_radius", "step_limit", "slope_limit_deg", "unknown_risk"))
        rate_changed = values["control_rate"] != self.p["control_rate"]
        old, self.p = self.p, values
        if rebuild_dyn and values["dynamics"] == "kinematic":
            self.dynamics = self._make_dynamics()
        elif rebuild_dyn and isinstance(self.dynamics, MapRiskOverlay):
            self.dynamics = MapRiskOverlay(self.dynamics.inner, factory.make_kinematic_model(values))
        self._build_planner()
        if any(values[k] != old[k] for k in factory.BLOCKED_PARAMS):
            kept = [] if self.blocked is None else self.blocked.obstacles
            self.blocked = factory.make_blocked_monitor(values)
            if self.blocked is not None:
                self.blocked.obstacles = list(kept)
        if rate_changed:
            self._timer.cancel()
            self._timer = self.create_timer(1.0 / values["control_rate"], self._cycle)

    # ------------------------------------------------------------------ inputs
    def _on_odom(self, msg: Odometry) -> None:
        try:
            self._odom = odometry_to_state(msg)
        except MessageError as exc:
            self._fault = f"invalid odometry: {exc}"
            self.get_logger().error(self._fault, throttle_duration_sec=2.0)
            return
        if self._fault and self._fault.startswith("invalid odometry"):
            self._fault = None
        if self._history is not None:
            self._history.push(self._odom.stamp, self._last_cmd,
                               [self._odom.linear[0], self._odom.linear[1], self._odom.angular[2]],
                               self._odom.gravity_b)

    def _on_map(self, msg: PointCloud2) -> None:
        try:
            self._hmap = pointcloud2_to_heightmap(msg)
        except MessageError as exc:
            self.get_logger().error(f"ignoring malformed elevation map: {exc}", throttle_duration_sec=2.0)

    def _on_goal(self, msg: PoseStamped) -> None:
        frame = msg.header.frame_id
        if frame and frame != self.p["odom_frame"]:
            self.get_logger().error(f"ignoring goal in frame '{frame}': goals must be in "
                                    f"'{self.p['odom_frame']}' (no tf2 here)")
            return
        try:
            goal = pose_stamped_to_xyyaw(msg)
        except MessageError as exc:
            self.get_logger().error(f"ignoring invalid goal: {exc}")
            return
        self._goal = goal
        self._state = "active"
        self.mppi.reset()
        self.get_logger().info(f"new goal ({goal[0]:.2f}, {goal[1]:.2f}, yaw {goal[2]:.2f})")

    # ------------------------------------------------------------------ control cycle
    def _stop(self, level, reason: str, **values) -> None:
        self._publish_cmd(np.zeros(3))
        self._diagnose(level, reason, **values)

    def _publish_cmd(self, cmd: np.ndarray) -> None:
        self._last_cmd = np.asarray(cmd, dtype=float)
        self._cmd_pub.publish(array_to_twist(self._last_cmd))

    def _cycle(self) -> None:
        if self._goal is None:
            self._diagnose(OK, f"{self._state}: waiting for a goal on /goal_pose")
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        if self._fault:
            return self._stop(ERROR, self._fault)
        if self._odom is None:
            return self._stop(ERROR, "no odometry received")
        odom_age = now - self._odom.stamp
        if odom_age > self.p["max_odom_age"]:
            return self._stop(ERROR, f"stale odometry ({odom_age:.2f}s old)", odom_age=odom_age)
        if self._hmap is None:
            return self._stop(ERROR, "no elevation map received")
        map_age = now - self._hmap.stamp
        if map_age > self.p["max_map_age"]:
            return self._stop(ERROR, f"stale elevation map ({map_age:.2f}s old)", map_age=map_age)
        pos = self._odom.position
        dist = math.hypot(self._goal[0] - pos[0], self._goal[1] - pos[1])
        if dist <= self.p["goal_tolerance"]:
            self._goal = None
            self._state = "goal reached"
            self.mppi.reset()
            return self._stop(OK, "goal reached", distance=dist)
        state = NavState(
            pose=np.array([pos[0], pos[1], self._odom.yaw]),
            twist=np.array([self._odom.linear[0], self._odom.linear[1], self._odom.angular[2]]),
            z=float(pos[2]), gravity_b=self._odom.gravity_b,
            history=self._history.array() if self._history is not None and self._history.ready else None,
            stamp=self._odom.stamp)
        t0 = time.perf_counter()
        hmap = self._hmap
        if self.blocked is not None:
            mark = self.blocked.update(state.stamp, state.pose, state.twist, self._last_cmd, state.z)
            if mark is not None:
                self.mppi.reset(reseed=False)  # do not warm-start into the blocked direction
                self.get_logger().warn(
                    f"commanded motion made no progress for {self.p['blocked_duration']:.1f} s: marked an "
                    f"obstacle at ({mark.x:.2f}, {mark.y:.2f}) for {self.p['blocked_lifetime']:.0f} s")
            hmap = self.blocked.apply(self._hmap, state.stamp)
        try:
            plan = self.mppi.plan(state, hmap, self._goal)
        except ValueError as exc:
            return self._stop(ERROR, f"planning failed: {exc}")
        cycle_ms = 1e3 * (time.perf_counter() - t0)
        stop, peak = should_stop(plan.risk, plan.standstill_risk, self.p["dt"], self.p["risk_stop_window"],
                                 self.p["risk_threshold"], factory.risk_stop_margin(self.p))
        if not np.all(np.isfinite(plan.commands[0])) or not math.isfinite(plan.cost):
            return self._stop(ERROR, "planner produced no finite plan", cycle_ms=cycle_ms)
        self._publish_plan(plan, now)
        if stop:
            self.mppi.reset(reseed=False)  # next cycle samples around standing still, not the rejected plan
            why = ", and riskier than standing still" if self.p["risk_relative"] else ""
            return self._stop(WARN, f"best plan too risky (peak risk {peak:.2f} > {self.p['risk_threshold']}{why})",
                              risk=peak, distance=dist, cycle_ms=cycle_ms)
        self._publish_cmd(plan.commands[0])
        self._diagnose(OK, "tracking plan", distance=dist, risk=peak, cost=plan.cost, cycle_ms=cycle_ms,
                       vx=plan.commands[0][0], vy=plan.commands[0][1], wz=plan.commands[0][2])

    # ------------------------------------------------------------------ outputs
    def _publish_plan(self, plan, stamp: float) -> None:
        z = float(self._odom.position[2])
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
            start = [self._odom.position[0], self._odom.position[1], 0.0]
            m.points = [Point(x=float(x), y=float(y), z=z) for x, y, _yaw in np.vstack([start, poses])]
            arr.markers.append(m)
        for i, ob in enumerate([] if self.blocked is None else self.blocked.obstacles):
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
        st.values = [KeyValue(key="state", value=self._state)] + [
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
