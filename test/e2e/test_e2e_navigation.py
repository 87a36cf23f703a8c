"""Sim-in-the-loop, end to end: the real `morobot demo` drives the MuJoCo ANYmal to its goal through
the ROS graph (separate processes on DDS) within a sim-time budget."""

import json
from types import SimpleNamespace

import pytest

from morobot.demo import main as demo_main

pytestmark = [pytest.mark.slow, pytest.mark.ros]


def test_anymal_reaches_goal_in_small_world(tmp_path):
    ns = SimpleNamespace(world="flat_small", out=str(tmp_path), timeout=60.0, rate=1.0,
                         dynamics="kinematic", fdm_checkpoint="", params_file="")
    rc = demo_main(ns)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert rc == 0, summary
    assert summary["reached"] and summary["final_distance"] <= 0.5
    assert summary["sim_time"] <= 60.0
    assert summary["min_clearance"] > 0.0  # never inside an obstacle
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    for node in ("mujoco_sim", "elevation_mapper", "mppi_planner"):
        assert (tmp_path / "logs" / f"{node}.log").exists()
