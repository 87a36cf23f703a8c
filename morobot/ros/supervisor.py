"""A small ROS facade for scripts: the supervisor node that sends a navigation goal and watches the
robot (``morobot demo``, the graph mode of ``morobot eval nav``).

It subscribes to ``/odom``, ``/plan``, ``/diagnostics`` and ``/elevation_map``, sends the world's
goal on ``/goal_pose`` once odometry and a map exist (and, with a settle rule, once the robot stood still after
it was put down: :mod:`morobot.navigation.settle`), and returns when the goal is reached, the
robot falls (:func:`morobot.sim.falls.fall_reason`), a budget runs out or a node of the graph died.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional

from morobot.navigation.settle import SettleGate, SettleRule
from morobot.sim.falls import fall_reason


@dataclass
class DemoRecord:
    """What the supervisor saw."""

    path: list = field(default_factory=list)        # [t, x, y, z, yaw]
    orientation: list = field(default_factory=list)  # [qw, qx, qy, qz] of each path row
    joints: list = field(default_factory=list)      # [t, 12 leg joint angles] (legged robot)
    plans: list = field(default_factory=list)       # [(t, [[x, y, yaw], ...])]
    diagnostics: list = field(default_factory=list)  # [(t, level, message)]
    goal_sent_at: float = math.nan
    settled: Optional[bool] = None  # with a settle rule: the robot stood still before the goal (False: the limit)
    settle_s: Optional[float] = None  # ... and the seconds from the first odometry to the goal's release



def supervise(world, goal_tolerance: float, timeout: float, procs, wall_limit: float,
               startup_limit: float = 90.0, min_base_height: Optional[float] = 0.25,
               progress=None, progress_every: float = 5.0, goal_subscribers: int = 1,
               settle: Optional[SettleRule] = None) -> tuple[DemoRecord, str]:
    """Run the supervisor node until the robot reaches the goal, falls, time runs out or a node fails.

    The robot has fallen when it tips over (gravity's base-z component above -0.5) or, with
    ``min_base_height`` set, when its base is less than that far above the world's topmost surface
    under it (a robot that collapses without tipping, e.g. after a stumble). ``progress``, when
    given, is called with a one-line status every ``progress_every`` seconds of sim time. The goal is
    sent once ``goal_subscribers`` subscribers listen (the planner, and a recorder when one runs) and, with
    ``settle``, once the robot has stood still by that rule; a fall before the goal ends the run ("... at the
    start").
    """
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry, Path as PathMsg
    from rclpy.parameter import Parameter
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState, PointCloud2

    from morobot.ros import qos
    from morobot.ros.conversions import (MessageError, joint_state_to_arrays, make_pose_stamped, odometry_to_state,
                                         path_to_array, stamp_to_sec)
    from morobot.sim.legged import JOINTS

    rec = DemoRecord()
    gate = None if settle is None else SettleGate(settle)
    state = {"odom": None, "map": False, "plan_t": -1e9, "reached": False}
    rclpy.init()
    node = rclpy.create_node("demo_supervisor",
                             parameter_overrides=[Parameter("use_sim_time", Parameter.Type.BOOL, True)])
    try:
        def on_odom(msg):
            try:
                st = odometry_to_state(msg)
            except MessageError:
                return
            state["odom"] = st
            if gate is not None:
                gate.update(st.stamp, st.linear, st.angular)
            rec.path.append([st.stamp, *st.position.tolist(), st.yaw])
            rec.orientation.append(st.quaternion.tolist())

        def on_joints(msg):
            try:
                q, _ = joint_state_to_arrays(msg, JOINTS)
            except MessageError:
                return  # not the legged robot's joints
            rec.joints.append([stamp_to_sec(msg.header.stamp), *q.tolist()])

        def on_plan(msg):
            t = stamp_to_sec(msg.header.stamp)
            if t - state["plan_t"] >= 1.0 and msg.poses:
                state["plan_t"] = t
                rec.plans.append((t, path_to_array(msg).tolist()))

        def on_diag(msg):
            for s in msg.status:
                level = int.from_bytes(s.level, "little") if isinstance(s.level, bytes) else int(s.level)
                t = stamp_to_sec(msg.header.stamp)
                if not rec.diagnostics or rec.diagnostics[-1][2] != s.message:
                    rec.diagnostics.append((t, level, s.message))
                if s.name == "mppi_planner" and s.message == "goal reached" and math.isfinite(rec.goal_sent_at):
                    state["reached"] = True

        node.create_subscription(Odometry, "odom", on_odom, qos.STATE)
        node.create_subscription(JointState, "joint_states", on_joints, qos.STATE)
        node.create_subscription(PathMsg, "plan", on_plan, qos.STATE)
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, qos.STATE)
        node.create_subscription(PointCloud2, "elevation_map", lambda m: state.__setitem__("map", True), qos.STATE)
        goal_pub = node.create_publisher(PoseStamped, "goal_pose", qos.LATCHED)

        wall0 = time.monotonic()
        gx, gy, gyaw = world.goal
        next_progress = progress_every
        goal_sent = False
        while True:
            rclpy.spin_once(node, timeout_sec=0.05)
            failed = procs.failed()
            if failed:
                return rec, f"node(s) exited: {failed}"
            wall = time.monotonic() - wall0
            odom = state["odom"]
            if not goal_sent:
                ready = odom is not None and state["map"] and goal_pub.get_subscription_count() >= goal_subscribers \
                    and (gate is None or gate.opened_at is not None)
                fell = odom is not None and fall_reason(world, odom.position, odom.gravity_b, min_base_height)
                if fell:
                    return rec, f"{fell} at the start, before the goal was sent"
                if ready:
                    goal_pub.publish(make_pose_stamped(gx, gy, gyaw, odom.stamp, "odom"))
                    rec.goal_sent_at = odom.stamp
                    if gate is not None:
                        rec.settled, rec.settle_s = gate.settled, gate.waited
                    goal_sent = True
                elif wall > startup_limit:
                    return rec, "graph did not come up (no odometry/map/planner)"
                continue
            # reached = the planner declared it and the robot really is there
            if state["reached"] and math.hypot(odom.position[0] - gx, odom.position[1] - gy) <= goal_tolerance:
                return rec, "goal reached"
            if odom.stamp - rec.goal_sent_at > timeout:
                return rec, f"sim-time budget of {timeout:.0f}s spent"
            if wall > wall_limit:
                return rec, f"wall-clock limit of {wall_limit:.0f}s spent"
            fell = fall_reason(world, odom.position, odom.gravity_b, min_base_height)
            if fell:
                return rec, fell
            elapsed = odom.stamp - rec.goal_sent_at
            if progress is not None and elapsed >= next_progress:
                next_progress += progress_every
                progress(f"t={elapsed:5.1f} s  at ({odom.position[0]:.2f}, {odom.position[1]:.2f})  "
                         f"{math.hypot(odom.position[0] - gx, odom.position[1] - gy):.2f} m to go")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
