"""The navigation demo: the simulated ANYmal drives to its goal through the ROS graph.

``morobot demo`` starts the ``navigate`` graph (MuJoCo sim, elevation mapper, MPPI planner) as
separate processes, sends the world's goal on ``/goal_pose``, records ``/odom`` and ``/plan`` and
stops when the robot is within the goal tolerance, it falls, the sim-time budget is spent or a node
dies.
It writes ``<out>/demo.png`` (top-down terrain, obstacles, driven path, plans), ``<out>/summary.json``
and prints a one-line summary. Exit code 0 iff the goal was reached.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from morobot.launcher import GraphProcesses


@dataclass
class DemoRecord:
    """What the supervisor saw."""

    path: list = field(default_factory=list)        # [t, x, y, z, yaw]
    plans: list = field(default_factory=list)       # [(t, [[x, y, yaw], ...])]
    diagnostics: list = field(default_factory=list)  # [(t, level, message)]
    goal_sent_at: float = math.nan


@dataclass
class DemoSummary:
    world: str
    reached: bool
    sim_time: float
    path_length: float
    min_clearance: float
    final_distance: float
    reason: str
    wall_time: float

    def line(self) -> str:
        return (f"[morobot demo] world={self.world} reached={'yes' if self.reached else 'no'} "
                f"sim_time={self.sim_time:.1f}s path_length={self.path_length:.2f}m "
                f"min_clearance={self.min_clearance:.2f}m final_distance={self.final_distance:.2f}m "
                f"({self.reason}; wall {self.wall_time:.0f}s)")


def base_too_low(world, x, y, z, min_base_height: float = 0.25) -> np.ndarray:
    """Where the base counts as fallen by height: less than ``min_base_height`` above the topmost
    surface under it, or, off the map, more than 0.5 m below the world's lowest point."""
    ground = world.elevation_at(x, y)
    z = np.asarray(z, dtype=float)
    return np.where(np.isfinite(ground), z - ground < min_base_height, z < float(world.heights.min()) - 0.5)


def fall_reason(world, position, gravity_b, min_base_height: Optional[float] = 0.25) -> Optional[str]:
    """Why the robot counts as fallen, or ``None``.

    Args:
        world: the world (its ``elevation_at`` gives the topmost surface under the base).
        position: base position (x, y, z) in the world frame.
        gravity_b: unit gravity in the base frame; tipped over when its z component is above -0.5.
        min_base_height: fallen when :func:`base_too_low` (``None``: only tipping counts).
    """
    if gravity_b[2] > -0.5:
        return "robot tipped over"
    if min_base_height is not None and bool(base_too_low(world, *position[:3], min_base_height)):
        return f"robot fell (base less than {min_base_height:.2f} m over the surface under it)"
    return None


def supervise(world, goal_tolerance: float, timeout: float, procs: GraphProcesses, wall_limit: float,
               startup_limit: float = 90.0, min_base_height: Optional[float] = 0.25) -> tuple[DemoRecord, str]:
    """Run the supervisor node until the robot reaches the goal, falls, time runs out or a node fails.

    The robot has fallen when it tips over (gravity's base-z component above -0.5) or, with
    ``min_base_height`` set, when its base is less than that far above the world's topmost surface
    under it (a robot that collapses without tipping, e.g. after a stumble).
    """
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry, Path as PathMsg
    from rclpy.parameter import Parameter
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import PointCloud2

    from morobot.ros import qos
    from morobot.ros.conversions import (MessageError, make_pose_stamped, odometry_to_state, path_to_array,
                                         stamp_to_sec)

    rec = DemoRecord()
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
            rec.path.append([st.stamp, *st.position.tolist(), st.yaw])

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

        node.create_subscription(Odometry, "/odom", on_odom, qos.STATE)
        node.create_subscription(PathMsg, "/plan", on_plan, qos.STATE)
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, qos.STATE)
        node.create_subscription(PointCloud2, "/elevation_map", lambda m: state.__setitem__("map", True), qos.STATE)
        goal_pub = node.create_publisher(PoseStamped, "/goal_pose", qos.LATCHED)

        wall0 = time.monotonic()
        gx, gy, gyaw = world.goal
        goal_sent = False
        while True:
            rclpy.spin_once(node, timeout_sec=0.05)
            failed = procs.failed()
            if failed:
                return rec, f"node(s) exited: {failed}"
            wall = time.monotonic() - wall0
            odom = state["odom"]
            if not goal_sent:
                ready = odom is not None and state["map"] and goal_pub.get_subscription_count() > 0
                if ready:
                    goal_pub.publish(make_pose_stamped(gx, gy, gyaw, odom.stamp, "odom"))
                    rec.goal_sent_at = odom.stamp
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
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def summarize(world, rec: DemoRecord, reason: str, wall: float) -> DemoSummary:
    path = np.array(rec.path) if rec.path else np.zeros((0, 5))
    if len(path):
        path = path[path[:, 0] >= (rec.goal_sent_at if math.isfinite(rec.goal_sent_at) else -1)]
    xy = path[:, 1:3] if len(path) else np.zeros((0, 2))
    length = float(np.sum(np.linalg.norm(np.diff(xy, axis=0), axis=1))) if len(xy) > 1 else 0.0
    clearance = float(np.min(world.clearance(xy[:, 0], xy[:, 1]))) if len(xy) else math.nan
    final = float(math.hypot(xy[-1, 0] - world.goal[0], xy[-1, 1] - world.goal[1])) if len(xy) else math.nan
    sim_time = float(path[-1, 0] - path[0, 0]) if len(path) > 1 else 0.0
    return DemoSummary(world.name, reason == "goal reached", sim_time, length, clearance, final, reason, wall)


def plot(world, rec: DemoRecord, summary: DemoSummary, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from morobot.sim.worlds import plot_world

    fig, ax = plt.subplots(figsize=(8, 8))
    plot_world(ax, world)
    for i, (_t, plan) in enumerate(rec.plans):
        p = np.asarray(plan)
        ax.plot(p[:, 0], p[:, 1], "-", color="tab:cyan", lw=0.8, alpha=0.6,
                label="MPPI plans (1 Hz)" if i == 0 else None)
    if rec.path:
        path = np.asarray(rec.path)
        ax.plot(path[:, 1], path[:, 2], "-", color="tab:red", lw=2.0, label="path driven")
    ax.set_title(summary.line().replace("[morobot demo] ", ""), fontsize=7)
    ax.legend(loc="upper left", fontsize=8)
    tmp = out_png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, out_png)


def main(ns) -> int:
    """Run the demo; ``ns`` has world, out, timeout, rate, dynamics, fdm_checkpoint, params_file."""
    from morobot.sim.worlds import load_world

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    world = load_world(ns.world)
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    args = {"world": ns.world, "rate": str(float(ns.rate)), "dynamics": ns.dynamics}
    if ns.fdm_checkpoint:
        args["fdm_checkpoint"] = ns.fdm_checkpoint
    if ns.params_file:
        args["params_file"] = ns.params_file
    tolerance = float(getattr(ns, "goal_tolerance", 0.5))  # the planner stops within its own (0.3 m)
    rate = float(ns.rate) if ns.rate > 0 else 1.0
    wall_limit = ns.timeout / rate * 3.0 + 60.0
    print(f"[morobot demo] world={world.name} start={tuple(round(v, 2) for v in world.start)} "
          f"goal={tuple(round(v, 2) for v in world.goal)}; logs in {out / 'logs'}", flush=True)
    wall0 = time.monotonic()
    with GraphProcesses("navigate", args, log_dir=str(out / "logs")) as procs:
        rec, reason = supervise(world, tolerance, ns.timeout, procs, wall_limit)
    summary = summarize(world, rec, reason, time.monotonic() - wall0)
    plot(world, rec, summary, out / "demo.png")
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(asdict(summary), indent=2))
    os.replace(tmp, out / "summary.json")
    print(summary.line(), flush=True)
    print(f"[morobot demo] wrote {out / 'demo.png'}", flush=True)
    return 0 if summary.reached else 1
