"""Smoke test of bench/bench_gait_symmetry.py: the real script at its smallest size, and its parts."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from benchload import load_bench

ROOT = Path(__file__).resolve().parents[2]


def test_commands_are_held_and_inside_the_box():
    m = load_bench("bench_gait_symmetry")
    c = m.random_commands(np.random.default_rng(0), 7)
    assert c.shape == (7, 3) and np.all(c[:5] == c[0]) and not np.all(c[5] == c[0])
    assert np.all(c[:, 0] >= -0.5) and np.all(c[:, 0] <= 1.0) and np.all(np.abs(c[:, 1:]) <= [0.5, 1.0])


def test_bench_runs_and_prints_the_ratio():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_gait_symmetry.py"), "--sequences", "1",
                          "--steps", "2"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "mirrored commands" in out.stdout and "ratio mirror / baseline" in out.stdout
