"""Smoke test of bench/bench_command_switching.py: the real script at its smallest size, and its streams."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from benchload import load_bench

ROOT = Path(__file__).resolve().parents[2]


def test_streams_swing_between_the_bounds():
    m = load_bench("bench_command_switching")
    rng = np.random.default_rng(0)
    assert m.flips(0.0, rng, None)[2] == 1.0 and m.flips(0.35, rng, None)[2] == -1.0
    first = m.corners(0.0, rng, np.zeros(3))
    assert np.all(np.abs(first) >= 0.5) and np.all(m.corners(0.1, rng, first) == first)  # held for 0.5 s


def test_bench_runs_and_prints_both_settings():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_command_switching.py"), "--episodes", "1",
                          "--seconds", "0.4"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "flips" in out.stdout and "corners" in out.stdout and "accel_limit [1.5, 1.5, 2.0]" in out.stdout
    shipped = str(ROOT / "models" / "locomotion" / "anymal_c_policy.pt")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_command_switching.py"), "--episodes", "1",
                          "--seconds", "0.2", "--policy", shipped, "--policy", shipped],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(f"policy {shipped}:") == 2 and out.stdout.count("flips") == 2
