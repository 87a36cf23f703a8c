"""Sim-in-the-loop, end to end: the real `morobot demo` drives the MuJoCo ANYmal to its goal through
the ROS graph (separate processes on DDS) within a sim-time budget."""

import json
from types import SimpleNamespace

import pytest

from morobot.demo import main as demo_main

pytestmark = [pytest.mark.slow, pytest.mark.ros]


def test_anymal_reaches_goal_in_small_world(tmp_path):
    """The rigid-body robot (locomotion abstract) through the whole graph, with video and recording."""
    ns = SimpleNamespace(world="flat_small", out=str(tmp_path), timeout=60.0, rate=1.0, locomotion="abstract",
                         dynamics="kinematic", fdm_checkpoint="", params_file="", video=True, record=True)
    rc = demo_main(ns)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert rc == 0, summary
    assert summary["reached"] and summary["final_distance"] <= 0.5
    assert summary["sim_time"] <= 60.0
    assert summary["min_clearance"] > 0.0  # never inside an obstacle
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    import cv2

    video = cv2.VideoCapture(str(tmp_path / "demo.mp4"))  # rendered from the run, about 20 frames a second
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    assert frames >= 15 * summary["sim_time"] and video.read()[0]
    from rosbags.rosbag2 import Reader

    with Reader(tmp_path / "run") as bag:  # --record: the run's topics as a rosbag2
        counts = {c.topic: c.msgcount for c in bag.connections}
    assert counts["/odom"] > 100 and counts["/cmd_vel"] > 20 and counts["/goal_pose"] == 1
    for node in ("mujoco_sim", "elevation_mapper", "mppi_planner"):
        assert (tmp_path / "logs" / f"{node}.log").exists()


def test_demo_errors_are_one_line_and_draw_nothing(tmp_path, capsys):
    from morobot.cli import main

    assert main(["demo", "--world", "nosuchworld", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "no world named 'nosuchworld'" in err and "rough_obstacles" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: flat\nseed: 1\nsize: [2.0, 2.0]\n")
    assert main(["demo", "--world", str(bad), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "at least 4 m" in err and "np.float64" not in err and len(err.strip().splitlines()) == 1
    assert main(["demo", "--dynamics", "fdm", "--fdm-checkpoint", str(tmp_path / "none.pt"),
                 "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "did not start" in err and "FDM checkpoint not found" in err  # the failing node's own error
    assert not (tmp_path / "c" / "demo.png").exists()


def test_legged_anymal_reaches_goal_in_small_world(tmp_path):
    """The articulated robot under its learned policy, through the whole ROS graph."""
    ns = SimpleNamespace(world="flat_small", out=str(tmp_path), timeout=60.0, rate=1.0, dynamics="kinematic",
                         fdm_checkpoint="", params_file="", video=False, locomotion="learned")
    rc = demo_main(ns)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert rc == 0, summary
    assert summary["reached"] and summary["final_distance"] <= 0.5
    log = (tmp_path / "logs" / "mujoco_sim.log").read_text()
    assert "robot fell" not in log
