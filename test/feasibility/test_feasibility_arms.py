"""Any arm from its URDF + SRDF: the UR5 of example-robot-data through the same checker, checked
against the exhaustive reference like the Panda."""

import numpy as np
import pinocchio as pin
import pytest

from morobot.feasibility import ArmModel, FeasibilityChecker, FeasibilityConfig
from morobot.feasibility.reference import ExhaustiveReference
from morobot.feasibility.validation import boundary_configurations, clutter_cloud, compare_static
from morobot.robots import ACCELERATION_RAMP, ARMS, ArmDescription

UR5_JOINTS = ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint",
              "wrist_3_joint")


@pytest.fixture(scope="module")
def ur5():
    return FeasibilityChecker(FeasibilityConfig(robot="ur5"))


def test_ur5_model_comes_from_its_urdf(ur5):
    robot = ur5.robot
    assert robot.joint_names == UR5_JOINTS and robot.nq == 6
    assert robot.base_link == "base_link" and robot.ee_frame == "tool0"
    np.testing.assert_allclose(robot.velocity_limit, [3.15, 3.15, 3.15, 3.2, 3.2, 3.2])
    np.testing.assert_allclose(robot.upper, [2 * np.pi, 2 * np.pi, np.pi, 2 * np.pi, 2 * np.pi, 2 * np.pi])
    # no datasheet acceleration limits: the velocity limit reached in ACCELERATION_RAMP seconds
    np.testing.assert_allclose(robot.acceleration_limit, robot.velocity_limit / ACCELERATION_RAMP)
    skeleton = robot.skeleton_points(robot.ready_pose)
    assert skeleton.shape == (8, 3) and np.allclose(skeleton[0], 0.0)
    assert ur5.evaluate(robot.ready_pose).feasible
    assert ur5.joint_names == UR5_JOINTS


def test_ur5_never_accepts_what_the_reference_rejects(ur5):
    rng = np.random.default_rng(5)
    cloud = clutter_cloud(rng)
    config = FeasibilityConfig(robot="ur5")
    checker = FeasibilityChecker(config, ur5.robot)
    assert checker.update_scene(cloud) > 100
    ref = ExhaustiveReference(config, cloud)
    assert ref.arm == UR5_JOINTS
    qs = np.vstack([rng.uniform(ref.lower, ref.upper, (400, 6)),
                    boundary_configurations(rng, ref, n_pairs=30, per_pair=8)])
    report = compare_static(checker, ref, qs)
    assert report.false_accepts == [], f"accepted infeasible configurations: {report.false_accepts[:10]}"
    assert {"self_collision", "scene_collision"} <= set(report.reference_failures)
    assert report.reference_feasible > 50
    assert len(report.false_rejects) < 0.25 * report.reference_feasible


def test_ur5_ik_finds_reachable_poses(ur5):
    rng = np.random.default_rng(3)
    solved = total = 0
    while total < 60:
        q = rng.uniform(ur5.lower, ur5.upper)
        if not ur5.evaluate(q).feasible:
            continue
        pose = ur5.robot.ee_placement(q)
        quat = pin.Quaternion(pose.rotation)
        ur5.reset()
        verdict = ur5.check_ee_pose(pose.translation, [quat.w, quat.x, quat.y, quat.z], 0.0)
        total += 1
        solved += verdict.checks["ik"].passed
        if verdict.checks["ik"].passed:
            reached = ur5.robot.ee_placement(verdict.q).translation
            assert np.linalg.norm(reached - pose.translation) <= ur5.config.ik.position_tolerance + 1e-9
    assert solved >= 57, f"IK solved {solved} of {total} reachable UR5 poses"


def test_wrist_singularity_uses_the_arms_wrist_axes(ur5):
    q = ur5.robot.ready_pose.copy()
    q[4] = 0.0  # UR wrist 2 at zero: the wrist 1 and wrist 3 axes are parallel
    result = ur5.singularity(q)
    assert not result.passed or result.level.value == "warning"
    assert "wrist_1_joint and wrist_3_joint" in result.reason or "singular" in result.reason


def test_limit_messages_name_the_arms_joints(ur5):
    q = ur5.robot.ready_pose.copy()
    q[2] = np.pi + 0.1
    verdict = ur5.evaluate(q)
    assert not verdict.feasible and "elbow_joint" in verdict.checks["joint_limits"].reason


def test_bad_arm_descriptions_say_what_is_wrong():
    with pytest.raises(ValueError, match="unknown arm 'kuka'.*panda, ur5"):
        ArmModel("kuka")
    with pytest.raises(ValueError, match="set both urdf and srdf"):
        FeasibilityConfig(robot="ur5", urdf="/tmp/x.urdf")
    with pytest.raises(ValueError, match="no such file"):
        ArmModel(ARMS["ur5"], urdf="/nonexistent/ur5.urdf", srdf="/nonexistent/ur5.srdf")
    bad = ArmDescription("ur5", "ur_description", "urdf/ur5_robot.urdf", "srdf/ur5.srdf", "base_link", "tool0",
                         ready_pose=(0.0,) * 7)
    with pytest.raises(ValueError, match="ready_pose has 7 values for 6 joints"):
        ArmModel(bad)
    with pytest.raises(ValueError, match="robot model is the panda"):
        FeasibilityChecker(FeasibilityConfig(robot="ur5"), ArmModel("panda"))


def test_an_arm_not_in_the_table_from_its_own_files():
    from morobot import paths

    folder = paths.robot_dir("ur_description")
    custom = ArmDescription("my_ur5", "", "", "", base_link="base_link", ee_frame="ee_link")
    robot = ArmModel(custom, urdf=folder / "urdf/ur5_robot.urdf", srdf=folder / "srdf/ur5.srdf")
    checker = FeasibilityChecker(FeasibilityConfig(robot="my_ur5"), robot)
    assert checker.joint_names == UR5_JOINTS and robot.ee_frame == "ee_link"
    # no ready pose in the description: the middle of the limits
    np.testing.assert_allclose(robot.ready_pose, 0.5 * (robot.lower + robot.upper))
