"""FeasibilityChecker API: filter and demo modes, input validation, clamping, feedback, overlay."""

import dataclasses
import re

import numpy as np
import pinocchio as pin
import pytest

from morobot.feasibility.checker import FeasibilityChecker
from morobot.feasibility.config import FeasibilityConfig, SceneConfig
from morobot.feasibility.feedback import Debouncer, HapticProfile, haptic_intensity
from morobot.feasibility.model import PandaModel
from morobot.feasibility.overlay import LEVEL_COLOURS, draw_overlay, project_points
from morobot.feasibility.verdict import Level

READY = np.array([0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398])
GOOD = np.array([0.2, -0.5, 0.1, -2.0, 0.1, 1.8, 0.5])  # no warnings
FOLDED = np.array([0.0, 0.5, 0.0, -3.0, 0.0, 1.5, 0.785])  # self collision


@pytest.fixture(scope="module")
def robot():
    return PandaModel()


@pytest.fixture
def checker(robot):
    return FeasibilityChecker(FeasibilityConfig(), robot)


def _wxyz(rotation):
    quat = pin.Quaternion(rotation)
    return np.array([quat.w, quat.x, quat.y, quat.z])


def test_ok_verdict_structure(checker):
    verdict = checker.check_joint_command(GOOD, 0.0)
    assert verdict.feasible and verdict.level is Level.OK and verdict.reason == "ok"
    assert list(verdict.checks) == ["joint_limits", "joint_rate", "singularity", "self_collision", "scene_collision"]
    assert all(r.passed for r in verdict.checks.values())
    np.testing.assert_array_equal(verdict.q, GOOD)
    assert verdict.stamp == 0.0 and verdict.failed == ()
    assert checker.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))


def test_infeasible_verdict_early_exit_and_full(robot):
    early = FeasibilityChecker(FeasibilityConfig(), robot)
    verdict = early.check_joint_command(FOLDED, 0.0)
    assert not verdict.feasible and verdict.level is Level.INFEASIBLE
    assert verdict.failed == ("self_collision",) and "scene_collision" not in verdict.checks
    assert verdict.reason.startswith("self collision")
    full = FeasibilityChecker(FeasibilityConfig(early_exit=False), robot)
    q = FOLDED.copy()
    q[3] = -3.1  # also beyond the joint-4 lower limit
    verdict = full.check_joint_command(q, 0.0)
    assert set(verdict.failed) >= {"joint_limits", "self_collision"}
    assert "scene_collision" in verdict.checks


@pytest.mark.parametrize("bad, match", [
    (np.zeros(6), "7 joint values"),
    (np.zeros(9), "7 joint values"),
    (np.array([0.0, np.nan, 0, -1.5, 0, 1.5, 0]), "NaN"),
    (np.zeros((7, 1)), "7 joint values"),
])
def test_bad_joint_commands_rejected(checker, bad, match):
    with pytest.raises(ValueError, match=match):
        checker.check_joint_command(bad, 0.0)


def test_bad_stamps_and_poses_rejected(checker):
    with pytest.raises(ValueError, match="stamp"):
        checker.check_joint_command(GOOD, float("nan"))
    with pytest.raises(ValueError, match="unit"):
        checker.check_ee_pose([0.4, 0.0, 0.4], [0.0, 2.0, 0.0, 0.0], 0.0)
    with pytest.raises(ValueError, match="NaN"):
        checker.check_ee_pose([0.4, np.inf, 0.4], [0.0, 1.0, 0.0, 0.0], 0.0)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        checker.update_scene(np.zeros((10, 4)))
    with pytest.raises(ValueError, match="q_robot"):
        checker.update_scene(np.zeros((10, 3)), q_robot=np.zeros(3))


def test_config_validation():
    with pytest.raises(ValueError, match="rate_min_violations"):
        FeasibilityConfig(rate_window=3, rate_min_violations=4)
    with pytest.raises(ValueError, match="finite"):
        FeasibilityConfig(self_margin=float("nan"))
    with pytest.raises(ValueError, match="table"):
        FeasibilityConfig(scene=SceneConfig(table_min=None))


def test_demo_mode_reachable_warm_started(checker, robot):
    target = robot.ee_placement(GOOD)
    wxyz = _wxyz(target.rotation)
    first = checker.check_ee_pose(target.translation, wxyz, 0.0)
    assert first.feasible and list(first.checks)[:3] == ["ik", "joint_limits", "joint_rate"]
    reached = robot.ee_placement(first.q)
    assert np.linalg.norm(reached.translation - target.translation) <= 0.005
    # A 2 mm step from the last solution converges at once thanks to the warm start.
    second = checker.check_ee_pose(target.translation + [0.002, 0.0, 0.0], wxyz, 0.02)
    assert second.feasible
    assert int(re.search(r"(\d+) iterations", second.checks["ik"].reason).group(1)) <= 1


def test_demo_mode_unreachable_target(checker, robot):
    wxyz = _wxyz(robot.ee_placement(READY).rotation)
    verdict = checker.check_ee_pose([1.4, 0.0, 0.4], wxyz, 0.0)
    assert not verdict.feasible and verdict.failed == ("ik",)
    assert verdict.reason.startswith("unreachable") and verdict.q.shape == (7,)
    # The failed frame neither moves the warm start nor enters the rate window.
    ok = checker.check_ee_pose(robot.ee_placement(READY).translation, wxyz, 0.01)
    assert ok.feasible


def test_demo_mode_table_collision_target(checker, robot):
    wxyz = np.array([0.0, 1.0, 0.0, 0.0])  # gripper pointing down
    verdict = checker.check_ee_pose([0.5, 0.0, -0.01], wxyz, 0.0)  # fingertips in the table
    assert not verdict.feasible and "table" in verdict.reason


def test_rate_rule_in_filter_mode(checker):
    q = GOOD.copy()
    levels = []
    for k in range(6):
        q = q + np.array([0.03, 0, 0, 0, 0, 0, 0])  # 3 rad/s at 100 Hz > 0.5 * 2.175
        levels.append(checker.check_joint_command(q, k * 0.01).level)
    assert levels == [Level.OK, Level.WARNING, Level.WARNING, Level.WARNING, Level.INFEASIBLE, Level.INFEASIBLE]
    checker.reset()
    assert checker.check_joint_command(q, 0.1).level is Level.OK


def test_scene_update_with_robot_points_and_clear(checker, robot):
    # Points on the robot itself vanish with q_robot; a box in front of the arm stays.
    rng = np.random.default_rng(0)
    skeleton = robot.skeleton_points(GOOD)
    # Points along the skeleton from the base to the hand (the TCP lies in free space).
    on_robot = np.concatenate([a + rng.uniform(0, 1, (50, 1)) * (b - a) for a, b in zip(skeleton[:-2], skeleton[1:-1])])
    box = rng.uniform([0.55, -0.45, 0.05], [0.65, -0.35, 0.15], (300, 3))
    box_voxels = len(np.unique(np.floor(box / 0.02), axis=0))
    assert checker.update_scene(np.vstack([on_robot, box]), q_robot=GOOD) == box_voxels
    assert checker.check_joint_command(GOOD, 0.0).feasible
    assert checker.update_scene(on_robot) > 0
    verdict = checker.check_joint_command(GOOD, 0.01)
    assert not verdict.feasible and verdict.failed == ("scene_collision",)
    checker.clear_scene()
    assert checker.check_joint_command(GOOD, 0.02).feasible


def test_clamp_to_feasible_policy(checker):
    result = checker.clamp_to_feasible(GOOD, READY)
    assert result.action == "pass" and np.array_equal(result.q, GOOD)
    beyond = GOOD.copy()
    beyond[3] = 0.2  # past the joint-4 upper limit (-0.0698)
    result = checker.clamp_to_feasible(beyond, GOOD)
    assert result.action == "clamped" and result.q[3] == pytest.approx(-0.0698 - 0.01)
    assert checker.evaluate(result.q).feasible
    result = checker.clamp_to_feasible(FOLDED, READY)
    assert result.action == "hold" and np.array_equal(result.q, READY) and not result.verdict.feasible
    # Rate bound: a 1 rad jump in 10 ms is shrunk to 0.5 * 2.175 rad/s * 0.01 s on the fastest joint.
    jump = READY + np.array([1.0, 0.5, 0, 0, 0, 0, 0])
    result = checker.clamp_to_feasible(jump, READY, dt=0.01)
    step = result.q - READY
    assert result.action == "clamped" and step[0] == pytest.approx(0.010875) and step[1] == pytest.approx(0.0054375)
    with pytest.raises(ValueError, match="dt"):
        checker.clamp_to_feasible(jump, READY, dt=0.0)


def test_clamp_does_not_touch_the_rate_window(checker):
    q = GOOD.copy()
    for k in range(5):
        checker.check_joint_command(q, k * 0.01)
        checker.clamp_to_feasible(q + 1.0, q, dt=0.01)
    assert checker.check_joint_command(q, 0.05).level is Level.OK


def test_debouncer_five_frames():
    deb = Debouncer(5)
    shown = [deb.update(Level.INFEASIBLE) for _ in range(5)]
    assert shown == [Level.OK] * 4 + [Level.INFEASIBLE]
    # A single ok frame does not clear it; a run of mixed lower levels moves to the least extreme.
    assert deb.update(Level.OK) is Level.INFEASIBLE
    assert deb.update(Level.INFEASIBLE) is Level.INFEASIBLE
    shown = [deb.update(lv) for lv in [Level.OK, Level.WARNING, Level.OK, Level.OK, Level.OK]]
    assert shown[-1] is Level.WARNING and shown[:4] == [Level.INFEASIBLE] * 4
    deb.reset()
    assert deb.level is Level.OK
    # Flicker between warning and infeasible above ok shows warning after five frames.
    shown = [deb.update(lv) for lv in [Level.INFEASIBLE, Level.WARNING] * 3]
    assert shown[4] is Level.WARNING
    with pytest.raises(ValueError):
        Debouncer(0)


def test_haptic_mapping():
    assert haptic_intensity(Level.OK) == 0.0
    assert haptic_intensity(Level.INFEASIBLE, 0.3) == 1.0
    assert haptic_intensity(Level.WARNING) == 0.4
    assert haptic_intensity(Level.WARNING, 0.01) == 0.4 and haptic_intensity(Level.WARNING, 0.2) == 0.0
    assert haptic_intensity(Level.WARNING, 0.2, HapticProfile(warning_pulse_hz=0.0)) == 0.4
    with pytest.raises(ValueError):
        HapticProfile(warning=1.5)


def test_projection_and_overlay(robot):
    k = np.array([[200.0, 0.0, 160.0], [0.0, 200.0, 120.0], [0.0, 0.0, 1.0]])
    pose = np.eye(4)
    pose[:3, :3] = [[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]  # looking along -x, y down
    pose[:3, 3] = [2.0, 0.0, 0.4]
    pixels, valid = project_points(np.array([[0.0, 0.0, 0.4], [0.0, 0.5, 0.4], [3.0, 0.0, 0.4]]), k, pose)
    np.testing.assert_allclose(pixels[0], [160.0, 120.0])
    np.testing.assert_allclose(pixels[1], [210.0, 120.0])  # +y is to the right: 200 px * 0.5 m / 2 m
    assert valid.tolist() == [True, True, False]
    image = np.full((240, 320, 3), 90, np.uint8)
    skeleton = robot.skeleton_points(READY)
    out = draw_overlay(image, skeleton, k, pose, Level.INFEASIBLE, "self collision")
    assert out.shape == image.shape and out.dtype == np.uint8 and np.all(image == 90)
    tcp_px = np.round(project_points(skeleton[-1:], k, pose)[0][0]).astype(int)
    np.testing.assert_array_equal(out[tcp_px[1], tcp_px[0]], LEVEL_COLOURS[Level.INFEASIBLE])
    bgr = draw_overlay(image, skeleton, k, pose, Level.WARNING, rgb=False)
    np.testing.assert_array_equal(bgr[tcp_px[1], tcp_px[0]], LEVEL_COLOURS[Level.WARNING][::-1])
    with pytest.raises(ValueError, match="uint8"):
        draw_overlay(image.astype(float), skeleton, k, pose, Level.OK)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FeasibilityConfig().self_margin = 0.0


def test_config_from_dict():
    from morobot.feasibility.config import config_from_dict
    cfg = config_from_dict({"self_margin": 0.02, "ik": {"damping": 0.02}, "scene.voxel_size": 0.03,
                            "scene.table_min": [-0.3, -0.7, -0.05]})
    assert cfg.self_margin == 0.02 and cfg.ik.damping == 0.02 and cfg.scene.voxel_size == 0.03
    assert cfg.scene.table_min == (-0.3, -0.7, -0.05) and cfg.ik.max_iterations == 40  # issue 18 defaults
    with pytest.raises(ValueError, match="unknown feasibility settings in ik"):
        config_from_dict({"ik.lambda": 0.1})
    with pytest.raises(ValueError, match="margin"):
        config_from_dict({"scene_margin": -1.0})
    with pytest.raises(ValueError, match="mapping"):
        config_from_dict({"ik": 5})
