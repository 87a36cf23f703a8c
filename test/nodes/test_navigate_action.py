"""Nav2's navigate_to_pose action on the planner, over DDS. nav2_msgs is no PyPI wheel: the test builds a
stand-in NavigateToPose (the fields the server uses) from its definition with the rosidl wheels, as
set-up does for tf2_msgs, and runs the planner and an rclpy ActionClient in a subprocess that has it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def nav2_prefix(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("nav2_msgs")
    env = dict(os.environ, VENV=str(Path(sys.executable).parents[1]))
    build = subprocess.run(["bash", str(ROOT / "scripts" / "build_interfaces.sh"),
                            str(ROOT / "test" / "nodes" / "data" / "nav2_msgs"), str(prefix)],
                           capture_output=True, text=True, timeout=600, env=env)
    assert build.returncode == 0, build.stdout + build.stderr
    return prefix


def test_goal_feedback_result_and_cancel(nav2_prefix):
    site = next((nav2_prefix / "lib").glob("python3*/site-packages"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT), env.get("PYTHONPATH", "")])
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(nav2_prefix / "lib"), env.get("LD_LIBRARY_PATH", "")])
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([str(nav2_prefix), str(Path(sys.executable).parents[1])])
    run = subprocess.run([sys.executable, str(ROOT / "test" / "nodes" / "navigate_action_run.py")],
                         capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    status = out["statuses"]
    reached = out["reached"]
    assert reached["status"] == status["succeeded"] and reached["feedback"] >= 3
    assert reached["distance"][0] == pytest.approx(2.0, abs=0.01)  # feedback: distance remaining from odom
    assert reached["nav_time"][-1] >= reached["nav_time"][0] >= 0.0
    assert out["canceled"]["status"] == status["canceled"] and out["cmd_after_cancel"] == 0.0
    bad = out["no_transform"]
    assert bad["status"] == status["aborted"] and "no transform" in bad["error_msg"]
