"""Smoke test of bench/bench_alignment.py: the real script at its smallest size, no timing assertions."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_alignment_runs_and_prints_the_ratio():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_alignment.py"), "--samples", "32",
                          "--repeats", "2", "--warmup", "0"], capture_output=True, text=True, timeout=120, check=True)
    assert "alignment off (baseline)" in out.stdout
    assert "ratio on / off" in out.stdout


def test_bench_alignment_rejects_bad_arguments():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_alignment.py"), "--weight", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "weight > 0" in out.stderr
