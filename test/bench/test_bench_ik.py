"""Smoke test of bench/bench_ik.py: the real script at its smallest size, no timing assertions; its search
for the nearest continuation of a stream (which tells forced branch switches from avoidable ones)."""

import subprocess
import sys

import numpy as np
import pytest

from benchload import ROOT, load_bench
from morobot.feasibility import FeasibilityChecker, FeasibilityConfig


def test_bench_ik_runs_and_prints_the_ratio():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_ik.py"), "--poses", "10", "--streams", "2",
                          "--stream-steps", "5"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ratio shipped / baseline" in out.stdout and "FeasibleCap DLS (baseline)" in out.stdout


def test_bench_ik_runs_on_the_ur5():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_ik.py"), "--robot", "ur5", "--poses", "10",
                          "--streams", "2", "--stream-steps", "5"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ur5: 10 cold poses") and "ratio shipped / baseline" in out.stdout


@pytest.mark.parametrize("robot", ["panda", "ur5"])
def test_the_nearest_continuation_of_a_configuration_is_itself(robot):
    """Every valid configuration is among the closed-form solutions of its own pose, found within the sweep's
    resolution (the Panda's joint 6 beyond pi included: each joint is taken at its turn inside the limits)."""
    bench = load_bench("bench_ik")
    checker = FeasibilityChecker(FeasibilityConfig(robot=robot))
    solver = bench.closed_form(checker)
    configurations = list(bench.reachable_configurations(checker, 12, np.random.default_rng(4)))
    if robot == "panda":
        wrapped = next(q for q in bench.reachable_configurations(checker, 400, np.random.default_rng(5)) if q[5] > 3.3)
        configurations.append(wrapped)
    for q in configurations:
        assert bench.nearest_continuation(checker, solver, checker.robot.ee_placement(q), q, q7_step=2e-4) < 0.05
    # from another configuration the distance is at most the way to this one
    far = configurations[1]
    assert bench.nearest_continuation(checker, solver, checker.robot.ee_placement(configurations[0]), far) <= (
        float(np.max(np.abs(configurations[0] - far))) + 0.05)
