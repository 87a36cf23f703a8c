"""Smoke test of bench/bench_ik.py: the real script at its smallest size, no timing assertions."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
