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
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from morobot.fileio import atomic_save_figure, atomic_write_text
from morobot.launcher import GraphProcesses
from morobot.navigation.settle import SettleRule
from morobot.ros.supervisor import DemoRecord, supervise
from morobot.sim.params import SimNodeParams


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
    atomic_save_figure(fig, out_png, dpi=130, bbox_inches="tight")
    plt.close(fig)


def node_errors(log_dir: Path, per_node: int = 2) -> list[str]:
    """The last error lines of each node's log (``[ERROR] ...``, tracebacks' last line)."""
    lines = []
    for log in sorted(Path(log_dir).glob("*.log")):
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()
        errors = [ln.strip() for ln in text if "[ERROR]" in ln or ln.startswith(("Traceback", "ValueError", "Error"))]
        lines += [f"{log.stem}: {ln}" for ln in errors[-per_node:]]
    return lines


def _start_recording(bag_dir: Path):
    """A thread recording the navigation topics into ``bag_dir`` (rosbag2, MCAP) until its event is set."""
    import shutil
    import threading

    from morobot.ros.recorder import NAVIGATION_TOPICS, record

    if bag_dir.exists():
        shutil.rmtree(bag_dir)  # the previous run's recording in this output directory
    stop, ready, result = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=lambda: result.append(record(bag_dir, use_sim_time=True, stop=stop, ready=ready,
                                                                   topics=NAVIGATION_TOPICS)), daemon=True)
    thread.start()
    ready.wait(timeout=10)
    return thread, stop, result


def main(ns) -> int:
    """Run the demo; ``ns`` has world, out, timeout, rate, dynamics, fdm_checkpoint, params_file."""
    from morobot.sim.worlds import load_world

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    try:
        world = load_world(ns.world)
    except (FileNotFoundError, ValueError) as exc:
        print(f"morobot demo: {exc}", file=sys.stderr)
        return 2
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    args = {"world": ns.world, "rate": str(float(ns.rate)), "dynamics": ns.dynamics,
            "locomotion": getattr(ns, "locomotion", SimNodeParams().locomotion)}
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
    recorder = _start_recording(out / "run") if getattr(ns, "record", False) else None
    try:
        with GraphProcesses("navigate", args, log_dir=str(out / "logs")) as procs:
            rec, reason = supervise(world, tolerance, ns.timeout, procs, wall_limit,
                                    progress=lambda line: print(f"[morobot demo] {line}", flush=True),
                                    goal_subscribers=2 if recorder is not None else 1,
                                    settle=SettleRule() if args["locomotion"] == "learned" else None)
    finally:
        if recorder is not None:
            recorder[1].set()
            recorder[0].join(timeout=30)
            if recorder[2]:
                bag = recorder[2][0]
                counts = ", ".join(f"{t} {n}" for t, n in bag.counts.items() if n)
                print(f"[morobot demo] recorded {bag.path} ({bag.duration:.1f} s: {counts})", flush=True)
    summary = summarize(world, rec, reason, time.monotonic() - wall0)
    if not math.isfinite(rec.goal_sent_at):  # the run never started: say why, draw nothing
        print(f"morobot demo: the run did not start ({reason})", file=sys.stderr)
        for line in node_errors(out / "logs"):
            print(f"  {line}", file=sys.stderr)
        return 2
    plot(world, rec, summary, out / "demo.png")
    if getattr(ns, "video", False) and rec.path:
        from morobot.sim.video import render_run

        states = np.column_stack([np.asarray(rec.path)[:, :4], np.asarray(rec.orientation)])
        joints = np.asarray(rec.joints) if rec.joints else None
        print(f"[morobot demo] wrote {render_run(world, states, out / 'demo.mp4', joints=joints)}", flush=True)
    atomic_write_text(out / "summary.json", json.dumps(asdict(summary), indent=2))
    print(summary.line(), flush=True)
    print(f"[morobot demo] wrote {out / 'demo.png'}", flush=True)
    return 0 if summary.reached else 1
