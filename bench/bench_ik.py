"""IK of the feasibility checker on poses known to be reachable: the shipped settings against
FeasibleCap's DLS settings (the baseline), measured in the same run on one core.

Reachable poses are the TCP poses (forward kinematics) of random configurations within the
margin-tightened limits that the checker's own static checks accept (no self collision, no
singularity). Three measurements per IK setting:

* **cold**: each pose solved from the ready pose (warm start = ready, then the restarts);
* **warm streams**: smooth streams (joint-space straight lines between two valid configurations, shortened
  to a half or a quarter where the whole line is not valid,
  ``--stream-steps`` frames), each frame warm-started from the previous solution, as demo mode does;
  reported with the largest joint jump between consecutive solutions and the number of branch
  switches (frames whose jump exceeds ``BRANCH_SWITCH``, far above the stream's own step); a switch is
  **forced** when no configuration within ``BRANCH_SWITCH`` of the previous solution reaches the frame's
  pose inside the limits and passes the static checks, searched over every closed-form solution (the
  Panda's ``q7`` swept at 0.001 rad, the UR's eight): no IK that keeps to the previous solution could have
  stayed on its branch there (it would have had to choose another one earlier, which needs the stream's
  future); the others are avoidable (on an arm without a closed form the split is not measured);
* **demo-mode checks**: the full ``check_ee_pose`` (IK, limits, rate, singularity, self collision,
  no scene) per second on the stream frames, and the checker's **false-infeasible** rate there: the
  frames are reachable and valid by construction, so any failure but the rate check (a fast stream
  really is too fast) is a false alarm to the demonstrator. Infeasible-accepted against the exhaustive
  reference is ``bench/bench_feasibility.py``'s.

    python bench/bench_ik.py [--robot panda|ur5] [--poses 400] [--streams 20] [--stream-steps 50] [--seed 0]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from typing import Optional, Union  # noqa: E402

import numpy as np  # noqa: E402

from morobot.feasibility import FeasibilityChecker, FeasibilityConfig  # noqa: E402
from morobot.feasibility import dls_kernel  # noqa: E402
from morobot.feasibility.analytic_ik import AnalyticIk  # noqa: E402
from morobot.feasibility.config import IkConfig  # noqa: E402
from morobot.feasibility.ik import DlsIk  # noqa: E402
from morobot.feasibility.ur_ik import UrIk  # noqa: E402
from morobot.robots import ARMS  # noqa: E402

#: A frame-to-frame joint jump above this (rad; streams step at most ~0.25 rad) is a branch switch.
BRANCH_SWITCH = 0.5
#: FeasibleCap's published DLS settings (docs: ../shared/reference-designs.md), the checker's defaults before.
BASELINE = IkConfig(damping=0.01, max_iterations=30, max_step=0.15, restarts=1, random_restarts=0, library_starts=0,
                    patience=0, nullspace_step=0.0, analytic=False, hold_limits=False, alternatives=0)


def reachable_configurations(checker: FeasibilityChecker, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random configurations inside the tightened limits that the static checks accept."""
    out = []
    while len(out) < n:
        q = rng.uniform(checker.lower, checker.upper)
        if checker.evaluate(q).feasible:
            out.append(q)
    return np.array(out)


def closed_form(checker: FeasibilityChecker) -> Optional[Union[AnalyticIk, UrIk]]:
    """The arm's closed-form solver over the checker's limits (whatever IK setting is measured), or None."""
    return (AnalyticIk.for_arm(checker.robot, checker.lower, checker.upper)
            or UrIk.for_arm(checker.robot, checker.lower, checker.upper))


def nearest_continuation(checker: FeasibilityChecker, solver: Optional[Union[AnalyticIk, UrIk]], target,
                         q_prev: np.ndarray, q7_step: float = 1e-3) -> float:
    """Largest joint difference (rad) from ``q_prev`` to the nearest configuration that reaches ``target``
    inside the checker's limits and passes its static checks, over every closed-form solution of ``solver``
    (the Panda's ``q7`` swept at ``q7_step``; the UR's eight; each joint at its turn nearest ``q_prev``);
    ``inf`` if none does, ``nan`` without a closed form."""
    if solver is None:
        return float("nan")
    sols = solver.all_solutions(target, q7_step) if isinstance(solver, AnalyticIk) else solver.all_solutions(target)
    # each joint at its value or the one a whole turn away inside the limits, nearest q_prev (the IK's own rule)
    sols = dls_kernel.rank_solutions(sols, checker.lower, checker.upper, q_prev, q_prev, np.ones_like(q_prev), 0.0)
    distance = np.max(np.abs(sols - q_prev), axis=1)
    tolerance = (checker.config.ik.position_tolerance, checker.config.ik.rotation_tolerance)
    for i in np.argsort(distance):
        pos_err, rot_err = dls_kernel.errors(*checker.robot.chain, sols[i], target.rotation, target.translation)
        if pos_err <= tolerance[0] and rot_err <= tolerance[1] and checker.evaluate(sols[i]).feasible:
            return float(distance[i])
    return float("inf")


def measure(checker: FeasibilityChecker, ik_config: IkConfig, cold: np.ndarray, streams: list[np.ndarray],
            solver: Optional[Union[AnalyticIk, UrIk]]) -> dict:
    robot = checker.robot
    ik = DlsIk(robot, ik_config, checker.lower, checker.upper)
    times, ok = [], 0
    for q in cold:
        target = robot.ee_placement(q)
        t0 = time.process_time()
        ok += ik.solve(target, robot.ready_pose, (robot.ready_pose,) * ik_config.restarts).success
        times.append(time.process_time() - t0)
    warm_ok = warm_n = 0
    jumps, warm_times, switches, forced = [], [], 0, 0
    for stream in streams:
        q_prev = stream[0]
        for q in stream[1:]:
            t0 = time.process_time()
            sol = ik.solve(robot.ee_placement(q), q_prev, (robot.ready_pose,) * ik_config.restarts)
            warm_times.append(time.process_time() - t0)
            warm_n += 1
            if sol.success:
                warm_ok += 1
                jumps.append(float(np.max(np.abs(sol.q - q_prev))))
                if jumps[-1] > BRANCH_SWITCH:
                    switches += 1
                    forced += nearest_continuation(checker, solver, robot.ee_placement(q), q_prev) > BRANCH_SWITCH
                q_prev = sol.q
    import pinocchio as pin

    demo = FeasibilityChecker(replace(checker.config, ik=ik_config), robot=robot)
    frames = [robot.ee_placement(q) for stream in streams for q in stream]
    targets = [(p.translation, (lambda q: [q.w, q.x, q.y, q.z])(pin.Quaternion(p.rotation))) for p in frames]
    false_infeasible = 0
    t0 = time.process_time()
    for i, (position, wxyz) in enumerate(targets):
        verdict = demo.check_ee_pose(position, wxyz, 0.05 * i)
        # every frame is reachable and valid by construction: a failure other than the (real) rate limit
        # of a fast stream is a false infeasible
        false_infeasible += any(name != "joint_rate" for name in verdict.failed)
    checks_per_s = len(frames) / (time.process_time() - t0)
    t = np.array(times + warm_times) * 1e3
    return {"cold": ok / len(cold), "warm": warm_ok / max(1, warm_n), "p50_ms": float(np.median(t)),
            "p99_ms": float(np.percentile(t, 99)), "max_jump": max(jumps) if jumps else float("nan"),
            "checks_per_s": checks_per_s, "switches": switches, "forced": forced, "warm_frames": warm_n,
            "false_infeasible": false_infeasible / max(1, len(frames))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--poses", type=int, default=400, help="cold-start poses")
    p.add_argument("--streams", type=int, default=20, help="smooth pose streams")
    p.add_argument("--stream-steps", type=int, default=50, help="frames per stream")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--robot", default="panda", choices=sorted(ARMS), help="the arm (its URDF/SRDF)")
    args = p.parse_args()
    checker = FeasibilityChecker(FeasibilityConfig(robot=args.robot))
    rng = np.random.default_rng(args.seed)
    cold = reachable_configurations(checker, args.poses, rng)
    streams = []
    while len(streams) < args.streams:
        a, b = reachable_configurations(checker, 2, rng)
        # the whole stream must be reachable: shorten a segment that is not (long ones rarely are on
        # arms with +-2 pi joints such as the UR5)
        for fraction in (1.0, 0.5, 0.25):
            qs = a + np.linspace(0.0, fraction, args.stream_steps)[:, None] * (b - a)
            if all(checker.evaluate(q).feasible for q in qs):
                streams.append(qs)
                break
    step = max(float(np.max(np.abs(np.diff(s, axis=0)))) for s in streams)
    print(f"{args.robot}: {len(cold)} cold poses, {len(streams)} streams x {args.stream_steps} frames "
          f"(largest joint step along a stream {step:.3f} rad), CPU time, 1 thread")
    solver = closed_form(checker)
    rows = {"FeasibleCap DLS (baseline)": measure(checker, BASELINE, cold, streams, solver),
            "shipped, numerical only": measure(checker, replace(checker.config.ik, analytic=False), cold, streams,
                                               solver),
            "shipped": measure(checker, checker.config.ik, cold, streams, solver)}
    print(f"{'IK':<28} {'cold':>7} {'warm':>7} {'p50 ms':>7} {'p99 ms':>7} {'max jump':>9} {'switches':>9} "
          f"{'forced':>6} {'checks/s':>9} {'false inf.':>10}")
    for name, r in rows.items():
        print(f"{name:<28} {100 * r['cold']:6.1f}% {100 * r['warm']:6.1f}% {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
              f"{r['max_jump']:9.3f} {r['switches']:4d}/{r['warm_frames']:<4d} {r['forced']:6d} "
              f"{r['checks_per_s']:9.0f} {100 * r['false_infeasible']:9.2f}%")
    base, new = rows["FeasibleCap DLS (baseline)"], rows["shipped"]
    print(f"ratio shipped / baseline: cold success {new['cold'] / max(base['cold'], 1e-9):.2f}, "
          f"p99 latency {new['p99_ms'] / base['p99_ms']:.2f}, checks/s {new['checks_per_s'] / base['checks_per_s']:.2f}")


if __name__ == "__main__":
    main()
