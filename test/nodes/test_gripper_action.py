"""The gripper through its own action (control_msgs GripperCommand, as franka_ros2's franka_gripper
serves it), over DDS; control_msgs is no PyPI wheel, so a stand-in is built from its definition."""

import json

import pytest

import standin

pytestmark = pytest.mark.ros


def test_finger_commands_become_gripper_goals_and_leave_the_arm_trajectory(tmp_path_factory):
    prefix = standin.build("control_msgs", tmp_path_factory.mktemp("control_msgs"))
    run = standin.run("gripper_action_run.py", prefix)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["first"] == 1 and out["after_small_change"] == 1  # one goal per gripper motion, not per frame
    assert out["goals"][0] == [pytest.approx(0.04), pytest.approx(20.0)]
    assert out["goals"][-1][0] == pytest.approx(0.01)
    assert out["forwarded"] > 10 and out["forwarded_names"] == [f"panda_joint{i}" for i in range(1, 8)]


def test_without_control_msgs_the_node_says_what_to_do(monkeypatch):
    from morobot.ros import gripper_action

    monkeypatch.setattr(gripper_action, "AVAILABLE", False)  # as on the wheel-only path
    with pytest.raises(RuntimeError, match="needs control_msgs.*gripper_output:=joint_command"):
        gripper_action.GripperActionOutput(None)
