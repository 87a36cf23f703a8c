"""The compiled DLS attempt (``morobot/feasibility/dls_kernel.py``) against the same attempt written with
pinocchio and numpy calls from Python (the checker's implementation until session 19, kept here as the
baseline), on the same targets and starts, one core, CPU time, in one run.

Two workloads per arm, both from the reachable poses of ``bench_ik.py`` (TCP poses of random configurations
that the checker accepts): **warm** (a start 0.05 rad from the configuration, as along a stream: the
warm start with its null-space step) and **restart** (a start drawn within the limits: up to
``max_iterations`` with patience, as the cold restarts). The two must agree (success, iterations, the
returned configuration to 1e-6 rad: they round differently, 1e-14 rad per iteration, which 40 iterations near
a singularity grow to 1e-8) on every attempt; the script says how many do not and exits with 1.

    python bench/bench_dls_kernel.py [--robot panda|ur5] [--poses 300] [--repeats 5] [--seed 0]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import eigenpy  # noqa: E402
import numpy as np  # noqa: E402
import pinocchio as pin  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ik import reachable_configurations  # noqa: E402

from morobot.feasibility import FeasibilityChecker, FeasibilityConfig  # noqa: E402
from morobot.feasibility.dls_kernel import STALL_STEP  # noqa: E402
from morobot.robots import ARMS  # noqa: E402


AGREE = 1e-6  # rad: the compiled and the Python attempt return the same configuration to this


class PythonAttempt:
    """The DLS attempt as the checker ran it until session 19: per iteration pinocchio's joint Jacobians,
    frame placement and log6, eigenpy's LLT and numpy on the small arrays, each a call from Python."""

    def __init__(self, ik) -> None:
        self.ik, self.cfg = ik, ik.config
        self.model, self.frame = ik.robot.model, ik.robot.ee_frame_id
        self.data = self.model.createData()
        self.damping = self.cfg.damping * np.eye(6)
        self.mid = 0.5 * (ik.lower + ik.upper)
        self.pull = 1.0 / np.maximum(0.5 * (ik.upper - ik.lower), 1e-3) ** 2
        self.redundant = len(ik.lower) > 6

    def errors(self, q, target):
        pin.computeJointJacobians(self.model, self.data, q)
        current = pin.updateFramePlacement(self.model, self.data, self.frame)
        twist = pin.log6(current.actInv(target)).vector
        delta = target.translation - current.translation
        return twist, math.sqrt(float(delta @ delta)), math.sqrt(float(twist[3:] @ twist[3:]))

    def nullspace(self, jac, solver, q, held=None):
        z = (self.mid - q) * self.pull
        if held is not None:
            z[held] = 0.0
        z -= jac.T @ solver.solve(jac @ z)
        largest = float(np.abs(z).max())
        return z * min(1.0, self.cfg.nullspace_step / largest) if largest > 1e-12 else z * 0.0

    def __call__(self, target, q, warm=False, patient=True, iterations=None):
        cfg, lower, upper = self.cfg, self.ik.lower, self.ik.upper
        iterations = cfg.max_iterations if iterations is None else iterations
        q = np.minimum(np.maximum(q, lower), upper)
        twist, pos_err, rot_err = self.errors(q, target)
        shaping = warm and cfg.nullspace_step > 0 and self.redundant
        best, since_best = math.inf, 0
        for it in range(iterations + 1):
            if pos_err <= cfg.position_tolerance and rot_err <= cfg.rotation_tolerance:
                if it == 0 and shaping:
                    jac = pin.getFrameJacobian(self.model, self.data, self.frame, pin.LOCAL)
                    solver = eigenpy.LLT(jac @ jac.T + self.damping)
                    moved = np.minimum(np.maximum(q + self.nullspace(jac, solver, q), lower), upper)
                    _, pos2, rot2 = self.errors(moved, target)
                    if pos2 <= cfg.position_tolerance and rot2 <= cfg.rotation_tolerance:
                        return moved, True, 1, pos2, rot2
                    return q, True, 1, pos_err, rot_err
                return q, True, it, pos_err, rot_err
            if it == iterations:
                break
            err = max(pos_err / cfg.position_tolerance, rot_err / cfg.rotation_tolerance)
            if err < 0.99 * best:
                best, since_best = err, 0
            else:
                since_best += 1
                if cfg.patience and since_best >= cfg.patience and (patient or not warm):
                    break
            jac = pin.getFrameJacobian(self.model, self.data, self.frame, pin.LOCAL)
            solver = eigenpy.LLT(jac @ jac.T + self.damping)
            dq = jac.T @ solver.solve(twist)
            if shaping:
                dq += self.nullspace(jac, solver, q)
            held = ((q <= lower) & (dq < 0.0)) | ((q >= upper) & (dq > 0.0))
            if cfg.hold_limits and held.any():
                jac[:, held] = 0.0
                solver = eigenpy.LLT(jac @ jac.T + self.damping)
                dq = jac.T @ solver.solve(twist)
                if shaping:
                    dq += self.nullspace(jac, solver, q, held)
            largest = float(np.abs(dq).max())
            if largest > cfg.max_step:
                dq *= cfg.max_step / largest
            q_next = np.minimum(np.maximum(q + dq, lower), upper)
            if float(np.abs(q_next - q).max()) < STALL_STEP:
                break
            q = q_next
            twist, pos_err, rot_err = self.errors(q, target)
        return q, False, it, pos_err, rot_err


def timed(attempt, cases, warm, repeats):
    """Best-of-``repeats`` CPU time per attempt (us) and the results of the last pass."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.process_time()
        results = [attempt(target, start, warm=warm) for target, start in cases]
        best = min(best, time.process_time() - t0)
    return 1e6 * best / len(cases), results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--robot", default="panda", choices=sorted(ARMS))
    p.add_argument("--poses", type=int, default=300)
    p.add_argument("--repeats", type=int, default=5, help="timed passes; the fastest counts")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    checker = FeasibilityChecker(FeasibilityConfig(robot=args.robot))
    ik, robot = checker.ik, checker.robot
    rng = np.random.default_rng(args.seed)
    configurations = reachable_configurations(checker, args.poses, rng)
    targets = [robot.ee_placement(q) for q in configurations]
    workloads = {
        "warm": ([(t, np.clip(q + rng.uniform(-0.05, 0.05, len(q)), ik.lower, ik.upper))
                  for t, q in zip(targets, configurations)], True),
        "restart": ([(t, rng.uniform(ik.lower, ik.upper)) for t in targets], False),
    }
    baseline = PythonAttempt(ik)
    print(f"{args.robot}: {args.poses} reachable poses, CPU time per attempt, 1 thread, best of {args.repeats}")
    print(f"{'workload':<9} {'iterations':>10} {'python us':>10} {'compiled us':>12} {'ratio':>7} {'disagree':>9}")
    disagreements = 0
    for name, (cases, warm) in workloads.items():
        slow, reference = timed(baseline, cases, warm, args.repeats)
        fast, results = timed(ik._attempt, cases, warm, args.repeats)
        differ = sum(a[1] != b[1] or a[2] != b[2] or float(np.abs(a[0] - b[0]).max()) > AGREE
                     for a, b in zip(reference, results))
        disagreements += differ
        mean_its = float(np.mean([r[2] for r in results]))
        print(f"{name:<9} {mean_its:10.1f} {slow:10.1f} {fast:12.1f} {fast / slow:7.3f} {differ:6d}/{len(cases)}")
    if disagreements:
        print(f"{disagreements} attempts differ between the compiled and the Python attempt")
        sys.exit(1)


if __name__ == "__main__":
    main()
