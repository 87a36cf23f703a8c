"""Feasibility checker benchmark: throughput on one core, per-check share, correctness vs reference.

Usage::

    python bench/bench_feasibility.py                 # full run (~2-4 min on one core)
    python bench/bench_feasibility.py --quick         # smoke run
    python bench/bench_feasibility.py --json out.json

Throughput streams use the simulator's scene (table, block, peg-in-hole fixture; robot points
filtered) and a random clutter scene. Correctness compares against ``ExhaustiveReference`` on
random + boundary configurations, pose-target streams and command streams.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("MUJOCO_GL", "osmesa")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from morobot.feasibility import checker as checker_module  # noqa: E402
from morobot.feasibility.checker import FeasibilityChecker  # noqa: E402
from morobot.feasibility.config import FeasibilityConfig  # noqa: E402
from morobot.feasibility.model import PandaModel  # noqa: E402
from morobot.feasibility.reference import ExhaustiveReference  # noqa: E402
from morobot.feasibility.validation import (boundary_configurations, clutter_cloud,  # noqa: E402
                                            compare_pose_targets, compare_rate_streams, compare_static,
                                            pose_stream)
from morobot.sim.panda import PandaSim  # noqa: E402


# CPU time of this process: on a shared machine wall time also counts other jobs' turns.
clock = time.process_time


class Timed:
    """Wraps a callable and accumulates its CPU time."""

    def __init__(self, fn):
        self.fn = fn
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, *args, **kwargs):
        start = clock()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += clock() - start
            self.calls += 1


def pin_one_core() -> None:
    """Restrict this process to one CPU so the figures are single-core figures."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def sim_scene_cloud() -> tuple[np.ndarray, np.ndarray]:
    """Point cloud of the simulator's scene (robot included) and the arm configuration."""
    with PandaSim() as sim:
        return sim.scene_points(), sim.joint_state().positions[:7].copy()


def throughput(checker: FeasibilityChecker, frames, mode: str, repeats: int = 5) -> tuple[float, float]:
    """Best-of-``repeats`` checks/s of a stream (``mode``: "pose" or "joint"): by CPU time and by wall time."""
    cpu, wall = [], []
    for _ in range(repeats):
        checker.reset()
        start_cpu, start_wall = clock(), time.perf_counter()
        if mode == "pose":
            for position, wxyz, stamp in frames:
                checker.check_ee_pose(position, wxyz, stamp)
        else:
            for q, stamp in frames:
                checker.check_joint_command(q, stamp)
        cpu.append(len(frames) / (clock() - start_cpu))
        wall.append(len(frames) / (time.perf_counter() - start_wall))
    return max(cpu), max(wall)


def latency_us(checker: FeasibilityChecker, frames) -> dict[str, float]:
    """Per-frame CPU time percentiles (us) of the pose-mode check."""
    checker.reset()
    times = []
    for position, wxyz, stamp in frames:
        start = clock()
        checker.check_ee_pose(position, wxyz, stamp)
        times.append(clock() - start)
    p50, p90, p99 = np.percentile(times, [50, 90, 99]) * 1e6
    return {"p50": p50, "p90": p90, "p99": p99, "max": max(times) * 1e6}


def shares(checker: FeasibilityChecker, frames) -> dict[str, float]:
    """Mean CPU time per frame (us) of each part of the pose-mode check, and the rest (overhead).

    The timing wrappers add about 1 us per wrapped call to the parts' figures.
    """
    parts = {"ik": Timed(checker.ik.solve), "joint_limits": Timed(checker_module.check_joint_limits),
             "joint_rate": Timed(checker.rate.update), "singularity": Timed(checker.singularity),
             "self_collision": Timed(checker.self_collision), "scene_collision": Timed(checker.scene_collision)}
    originals = (checker.ik.solve, checker_module.check_joint_limits, checker.rate.update, checker.singularity,
                 checker.self_collision, checker.scene_collision)
    checker.ik.solve, checker_module.check_joint_limits = parts["ik"], parts["joint_limits"]
    checker.rate.update, checker.singularity = parts["joint_rate"], parts["singularity"]
    checker.self_collision, checker.scene_collision = parts["self_collision"], parts["scene_collision"]
    try:
        checker.reset()
        start = clock()
        for position, wxyz, stamp in frames:
            checker.check_ee_pose(position, wxyz, stamp)
        total = clock() - start
    finally:
        (checker.ik.solve, checker_module.check_joint_limits, checker.rate.update, checker.singularity,
         checker.self_collision, checker.scene_collision) = originals
    out = {name: t.seconds / len(frames) * 1e6 for name, t in parts.items()}
    out["overhead"] = total / len(frames) * 1e6 - sum(out.values())
    out["total"] = total / len(frames) * 1e6
    out["calls_per_frame"] = {name: t.calls / len(frames) for name, t in parts.items()}
    return out


def self_collision_us(checker: FeasibilityChecker, qs) -> float:
    """Best-of-5 mean CPU time of one self-collision query (us) on collision-free configurations."""
    free = [q for q in qs if checker.self_collision(q).passed][:2000]
    runs = []
    for _ in range(5):
        start = clock()
        for q in free:
            checker.self_collision(q)
        runs.append((clock() - start) / len(free) * 1e6)
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=10000, help="random configurations for correctness")
    parser.add_argument("--targets", type=int, default=10000, help="pose-target frames for correctness")
    parser.add_argument("--scenes", type=int, default=5, help="random clutter scenes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.configs, args.targets, args.scenes = 500, 500, 1
    pin_one_core()
    rng = np.random.default_rng(args.seed)
    robot = PandaModel()
    config = FeasibilityConfig()
    report: dict = {"threads": 1}

    # ---------------------------------------------------------------- throughput
    cloud, q_cam = sim_scene_cloud()
    sim_checker = FeasibilityChecker(config, robot)
    start = time.perf_counter()
    report["sim_scene_voxels"] = sim_checker.update_scene(cloud, q_robot=q_cam)
    report["update_scene_ms"] = (time.perf_counter() - start) * 1e3
    clutter_checker = FeasibilityChecker(config, robot)
    report["clutter_voxels"] = clutter_checker.update_scene(clutter_cloud(np.random.default_rng(args.seed + 1)))
    ref_free = ExhaustiveReference(config)
    frames = pose_stream(np.random.default_rng(args.seed + 2), ref_free, n_goals=40 if not args.quick else 8)
    joint_frames = []
    sim_checker.reset()
    for position, wxyz, stamp in frames:
        verdict = sim_checker.check_ee_pose(position, wxyz, stamp)
        joint_frames.append((verdict.q, stamp))
    report["stream_frames"] = len(frames)
    for name, chk in (("sim_scene", sim_checker), ("clutter", clutter_checker)):
        report[f"pose_checks_per_s_{name}"] = throughput(chk, frames, "pose")
        report[f"joint_checks_per_s_{name}"] = throughput(chk, joint_frames, "joint")
    report["latency_us_sim_scene"] = latency_us(sim_checker, frames)
    report["latency_us_clutter"] = latency_us(clutter_checker, frames)
    report["shares_us_sim_scene"] = shares(sim_checker, frames)
    report["shares_us_clutter"] = shares(clutter_checker, frames)
    report["self_collision_us"] = self_collision_us(sim_checker, rng.uniform(robot.lower, robot.upper, (3000, 7)))

    # --------------------------------------------------------------- correctness
    static = {"frames": 0, "false_accepts": 0, "false_rejects": 0, "reference_feasible": 0, "failures": {}}
    poses = {"frames": 0, "accepted": 0, "false_accepts": 0}
    per_scene = max(args.configs // args.scenes, 1)
    start = time.perf_counter()
    for s in range(args.scenes):
        cloud = clutter_cloud(rng)
        chk = FeasibilityChecker(config, robot)
        chk.update_scene(cloud)
        ref = ExhaustiveReference(config, cloud)
        n_boundary = per_scene // 4
        qs = np.vstack([rng.uniform(ref.lower, ref.upper, (per_scene - n_boundary, 7)),
                        boundary_configurations(rng, ref, -(-n_boundary // 8), 8)[:n_boundary]])
        comp = compare_static(chk, ref, qs)
        static["frames"] += comp.frames
        static["false_accepts"] += len(comp.false_accepts)
        static["false_rejects"] += len(comp.false_rejects)
        static["reference_feasible"] += comp.reference_feasible
        for reason, count in comp.reference_failures.items():
            static["failures"][reason] = static["failures"].get(reason, 0) + count
        stream = []
        while len(stream) < args.targets // args.scenes:
            stream += pose_stream(rng, ref, n_goals=5)
        comp = compare_pose_targets(chk, ref, stream[: args.targets // args.scenes])
        poses["frames"] += comp.frames
        poses["accepted"] += comp.accepted
        poses["false_accepts"] += len(comp.false_accepts)
    rate = compare_rate_streams(FeasibilityChecker(config, robot), ref_free, rng, max(args.configs, 1000))
    report["correctness"] = {
        "static": static, "pose_targets": poses,
        "rate": {"frames": rate.frames, "reference_infeasible": rate.frames - rate.reference_feasible,
                 "mismatches": len(rate.false_accepts) + len(rate.false_rejects)},
        "seconds": time.perf_counter() - start,
    }
    print_report(report)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


def print_report(report: dict) -> None:
    """Markdown summary on stdout."""
    print(f"voxels: sim scene {report['sim_scene_voxels']}, clutter {report['clutter_voxels']}; "
          f"update_scene {report['update_scene_ms']:.1f} ms; stream {report['stream_frames']} frames")
    print("\n| stream | pose mode checks/s (CPU / wall) | joint mode checks/s (CPU / wall) |\n|---|---|---|")
    for name in ("sim_scene", "clutter"):
        pose, joint = report[f"pose_checks_per_s_{name}"], report[f"joint_checks_per_s_{name}"]
        print(f"| {name} | {pose[0]:.0f} / {pose[1]:.0f} | {joint[0]:.0f} / {joint[1]:.0f} |")
    for name in ("sim_scene", "clutter"):
        lat = report[f"latency_us_{name}"]
        print(f"\npose-mode latency {name}: p50 {lat['p50']:.0f} us, p90 {lat['p90']:.0f} us, "
              f"p99 {lat['p99']:.0f} us, max {lat['max']:.0f} us", end="")
    print()
    print("\n| part (pose mode) | sim scene us/frame | share | clutter us/frame | share |\n|---|---|---|---|---|")
    a, b = report["shares_us_sim_scene"], report["shares_us_clutter"]
    for part in ("ik", "joint_limits", "joint_rate", "singularity", "self_collision", "scene_collision", "overhead"):
        print(f"| {part} | {a[part]:.1f} | {a[part] / a['total']:.0%} | {b[part]:.1f} | {b[part] / b['total']:.0%} |")
    print(f"| total | {a['total']:.1f} | | {b['total']:.1f} | |")
    print(f"\nself-collision query: {report['self_collision_us']:.1f} us (MoveIt FCL Panda ~8 us)")
    c = report["correctness"]
    s, p, r = c["static"], c["pose_targets"], c["rate"]
    print(f"\nstatic: {s['frames']} configurations, reference-feasible {s['reference_feasible']}, "
          f"accepted-but-infeasible {s['false_accepts']}, false rejections {s['false_rejects']} "
          f"({s['false_rejects'] / max(s['reference_feasible'], 1):.1%}); reference failures {s['failures']}")
    print(f"pose targets: {p['frames']} frames, accepted {p['accepted']}, accepted-but-infeasible {p['false_accepts']}")
    print(f"rate streams: {r['frames']} frames, rate-infeasible {r['reference_infeasible']}, "
          f"mismatches {r['mismatches']}")
    print(f"correctness run: {c['seconds']:.0f} s")


if __name__ == "__main__":
    main()
