"""Smoke test of bench/bench_legged.py: the real script at its smallest size, no timing assertions."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_legged_runs_and_prints_the_ratio(tmp_path):
    from morobot.locomotion import train

    train.train(train.TrainConfig(out_dir=str(tmp_path), num_envs=2, workers=0, steps_per_env=4, iterations=1,
                                  actor_hidden=(16,), critic_hidden=(16,), progress=False))
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_legged.py"), "--seconds", "0.2",
                          "--policy", str(tmp_path / "policy.pt")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ratio learned / abstract" in out.stdout
