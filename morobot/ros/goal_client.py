"""``morobot goal X Y [YAW]``: send a navigation goal from the shell and follow it to the end.

Publishes the goal on ``goal_pose`` (PoseStamped in ``--frame``), prints the planner's progress
from ``/diagnostics`` (distance to go, what it is doing) about once a second, and returns when
``navigate/status`` says the goal succeeded (exit code 0) or was canceled (3), when ``--timeout``
passes (4), or on Ctrl-C, which cancels the goal through the planner's ``cancel_goal`` service
first (130). Topic names are relative, so ``--ros-args -r __ns:=/robot1`` (or ``--namespace``)
addresses a namespaced robot.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from typing import Optional, Sequence

from morobot.cliutil import parser as make_parser


def send_goal(x: float, y: float, yaw: float = 0.0, frame: str = "odom", namespace: str = "",
              timeout: float = 300.0, use_sim_time: bool = True, out=sys.stdout) -> int:
    """Send one goal and follow it (see the module docstring); returns the exit code."""
    import rclpy
    from action_msgs.msg import GoalStatus
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rclpy.parameter import Parameter
    from rclpy.signals import SignalHandlerOptions
    from std_srvs.srv import Trigger

    from morobot.ros import qos
    from morobot.ros.conversions import make_pose_stamped

    for name, v in (("x", x), ("y", y), ("yaw", yaw), ("timeout", timeout)):
        if not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v}")
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    interrupted = {"flag": False}
    old = signal.signal(signal.SIGINT, lambda *_: interrupted.__setitem__("flag", True))
    node = rclpy.create_node("goal_client", namespace=namespace.strip("/"), context=context,
                             parameter_overrides=[Parameter("use_sim_time", value=bool(use_sim_time))])
    try:
        from rclpy.executors import SingleThreadedExecutor

        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        state = {"status": None, "since": None, "diag": None}
        pub = node.create_publisher(PoseStamped, "goal_pose", qos.STATE)
        node.create_subscription(GoalStatus, "navigate/status",
                                 lambda m: state.__setitem__("status", (m.status, m.goal_info.stamp)), qos.LATCHED)
        node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: state.__setitem__("diag", next(
            (s for s in m.status if s.name == "mppi_planner"), state["diag"])), qos.STATE)
        cancel = node.create_client(Trigger, "cancel_goal")
        t0 = time.monotonic()
        while pub.get_subscription_count() == 0:
            if time.monotonic() - t0 > 30.0 or interrupted["flag"]:
                print("morobot goal: no planner listens on goal_pose (is the navigation graph running?)",
                      file=sys.stderr)
                return 2
            executor.spin_once(timeout_sec=0.1)
        pub.publish(make_pose_stamped(x, y, yaw, 0.0, frame))
        sent = time.monotonic()
        sent_stamp = node.get_clock().now().nanoseconds * 1e-9
        print(f"[morobot goal] sent ({x:.2f}, {y:.2f}, yaw {yaw:.2f}) in frame '{frame}'", file=out, flush=True)
        last_print = 0.0
        executing_seen = False
        while True:
            executor.spin_once(timeout_sec=0.1)
            now = time.monotonic()
            status = state["status"][0] if state["status"] else None
            executing_seen |= status == GoalStatus.STATUS_EXECUTING
            if status is not None and not executing_seen:  # a latched end state: ours if stamped after sending
                stamp = state["status"][1]
                executing_seen = stamp.sec + 1e-9 * stamp.nanosec >= sent_stamp - 0.5
            if executing_seen and status == GoalStatus.STATUS_SUCCEEDED:
                print(f"[morobot goal] reached after {now - sent:.1f} s", file=out, flush=True)
                return 0
            if executing_seen and status in (GoalStatus.STATUS_CANCELED, GoalStatus.STATUS_ABORTED):
                print("[morobot goal] canceled" if status == GoalStatus.STATUS_CANCELED else "[morobot goal] aborted",
                      file=out, flush=True)
                return 3
            if interrupted["flag"]:
                if cancel.wait_for_service(timeout_sec=2.0):
                    future = cancel.call_async(Trigger.Request())
                    executor.spin_until_future_complete(future, timeout_sec=5.0)
                    reply = future.result()
                    print(f"[morobot goal] interrupted: {reply.message if reply else 'no reply to cancel'}",
                          file=out, flush=True)
                else:
                    print("[morobot goal] interrupted; the planner offers no cancel_goal service", file=out)
                return 130
            if now - sent > timeout:
                print(f"[morobot goal] no result within {timeout:.0f} s", file=sys.stderr)
                return 4
            diag = state["diag"]
            if diag is not None and now - last_print >= 1.0:
                values = {kv.key: kv.value for kv in diag.values}
                dist = values.get("distance")
                print(f"[morobot goal] {now - sent:5.1f} s  {diag.message}"
                      + (f"  distance {float(dist):.2f} m" if dist is not None else ""), file=out, flush=True)
                last_print = now
    finally:
        signal.signal(signal.SIGINT, old)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``morobot goal``."""
    p = make_parser("morobot goal", __doc__.split("\n\n")[0])
    p.add_argument("x", type=float, help="goal x (m)")
    p.add_argument("y", type=float, help="goal y (m)")
    p.add_argument("yaw", type=float, nargs="?", default=0.0, help="goal heading (rad)")
    p.add_argument("--frame", default="odom", help="frame of the goal")
    p.add_argument("--namespace", default="", help="namespace of the robot's graph")
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this long (s, wall clock)")
    p.add_argument("--no-sim-time", action="store_true", help="follow the wall clock (a real robot)")
    ns = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return send_goal(ns.x, ns.y, ns.yaw, ns.frame, ns.namespace, ns.timeout, not ns.no_sim_time)
    except ValueError as exc:
        print(f"morobot goal: {exc}", file=sys.stderr)
        return 2
