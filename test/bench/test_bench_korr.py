"""Smoke test of bench/bench_korr.py: the real script at its smallest size, no timing assertions."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_korr_runs_every_checkpoint_and_prints_ratios(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_korr.py"), "--quick", "--tasks", "push",
                          "--json", str(tmp_path / "korr.json")], capture_output=True, text=True, timeout=300,
                         check=True)
    assert "ratio to base" in out.stdout and "target median <= 2 ms" in out.stdout
    rows = json.loads((tmp_path / "korr.json").read_text())["tasks"]["push"]
    assert {r["variant"] for r in rows.values()} == {"base", "mlp", "korr", "korr_nokoop"}
    assert rows["bc.pt"]["ratio_to_base"] == 1.0
    assert all(r["steps"] == 15 and 0 < r["network_median_ms"] and r["median_ms"] <= r["max_ms"] for r in rows.values())


def test_bench_korr_rejects_a_folder_without_checkpoints(tmp_path):
    (tmp_path / "push").mkdir()
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_korr.py"), "--quick", "--tasks", "push",
                          "--ckpt-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "lacks" in out.stderr
