"""Nav2's navigate_to_pose action on the planner, over DDS. nav2_msgs is no PyPI wheel: the test builds a
stand-in NavigateToPose (the fields the server uses) from its definition with the rosidl wheels, as
set-up does for tf2_msgs, and runs the planner and an rclpy ActionClient in a subprocess that has it."""

import json

import pytest

import standin

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def nav2_prefix(tmp_path_factory):
    return standin.build("nav2_msgs", tmp_path_factory.mktemp("nav2_msgs"))


def test_goal_feedback_result_and_cancel(nav2_prefix):
    run = standin.run("navigate_action_run.py", nav2_prefix)
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
