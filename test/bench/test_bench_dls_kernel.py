"""bench/bench_dls_kernel.py: the real script at its smallest size (no timing assertions), and its baseline, the
Python attempt, agreeing with the compiled one on attempts that converge, fail and hold limits."""

import subprocess
import sys

import numpy as np
import pinocchio as pin

from benchload import ROOT, load_bench
from morobot.feasibility import FeasibilityChecker, FeasibilityConfig


def test_bench_dls_kernel_runs_and_the_two_attempts_agree():
    script = ROOT / "bench" / "bench_dls_kernel.py"
    out = subprocess.run([sys.executable, str(script), "--poses", "15", "--repeats", "1"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("panda: 15 reachable poses")
    assert [line.split()[0] for line in lines[2:]] == ["warm", "restart"]
    assert all(line.split()[-1] == "0/15" for line in lines[2:])


def test_the_baseline_is_the_same_attempt():
    bench = load_bench("bench_dls_kernel")
    checker = FeasibilityChecker(FeasibilityConfig())
    ik, robot = checker.ik, checker.robot
    baseline = bench.PythonAttempt(ik)
    q = robot.ready_pose.copy()
    q[6] = ik.upper[6]  # on a limit: the held-joint path
    cases = [(robot.ee_placement(q) * pin.SE3(pin.rpy.rpyToMatrix(0.0, 0.0, 0.3), np.zeros(3)), q, True),
             (pin.SE3(np.eye(3), np.array([2.0, 0.0, 0.5])), q, False),  # out of reach: fails
             (robot.ee_placement(robot.ready_pose), robot.ready_pose, True)]  # converged: the null-space step
    for target, start, warm in cases:
        a, b = baseline(target, start, warm=warm), ik._attempt(target, start, warm=warm)
        assert a[1:3] == b[1:3] and np.abs(a[0] - b[0]).max() < bench.AGREE
