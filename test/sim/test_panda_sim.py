"""PandaSim: model, control, object and EE poses in panda_link0, camera, point cloud, perturbations."""

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from morobot.feasibility.model import PandaModel  # noqa: E402
from morobot.feasibility.overlay import project_points  # noqa: E402
from morobot.sim.panda import READY_POSE, PandaSim, PandaSimConfig  # noqa: E402
from morobot.sim.panda_scene import SceneLayout, urdf_limits  # noqa: E402

STRETCHED = np.array([0.0, 0.4, 0.0, -1.2, 0.0, 1.6, 0.785])  # arm reaching forward: large gravity torque


@pytest.fixture(scope="module")
def sim():
    s = PandaSim()
    yield s
    s.close()


@pytest.fixture(scope="module")
def kinematics():
    return PandaModel()


def test_model_loads_with_actuators_from_urdf(sim):
    fingers = ("panda_finger_joint1", "panda_finger_joint2")
    assert sim.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8)) + fingers
    model = sim.model
    assert model.nu == 8 and model.opt.timestep == pytest.approx(0.001)
    limits = urdf_limits()
    for i, name in enumerate(sim.arm_joint_names):
        assert model.actuator_forcerange[i, 1] == pytest.approx(limits[name][2])
        assert tuple(model.jnt_range[model.joint(name).id]) == pytest.approx(limits[name][:2])
    assert model.body("panda_link1").mass[0] == pytest.approx(4.970684)


def test_holds_position_under_gravity(sim):
    sim.reset(q=STRETCHED)
    sim.advance(1.0)
    state = sim.joint_state()
    np.testing.assert_allclose(state.positions[:7], STRETCHED, atol=2e-3)
    assert np.all(np.abs(state.velocities[:7]) < 1e-2)
    assert abs(state.efforts[1]) > 10.0  # the shoulder carries the arm
    assert sim.time == pytest.approx(1.0)


def test_tracks_joint_command_within_torque_limits(sim):
    sim.reset()
    target = np.array(READY_POSE) + np.array([0.4, 0.3, -0.3, 0.4, 0.3, -0.3, 0.5])
    sim.set_joint_command(target)
    efforts = []
    for _ in range(30):
        sim.advance(0.05)
        efforts.append(np.abs(sim.joint_state().efforts[:7]))
    np.testing.assert_allclose(sim.joint_state().positions[:7], target, atol=0.01)
    limits = np.array([urdf_limits()[j][2] for j in sim.arm_joint_names])
    assert np.all(np.max(efforts, axis=0) <= limits + 1e-9)


def test_ee_pose_matches_pinocchio(sim, kinematics):
    q = np.array([0.3, -0.4, 0.2, -2.0, 0.3, 1.9, -0.4])
    sim.reset(q=q)
    pose = sim.ee_pose()
    expected = kinematics.ee_placement(q)
    np.testing.assert_allclose(pose.position, expected.translation, atol=1e-6)
    w, x, y, z = pose.quaternion
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                    [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                    [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    np.testing.assert_allclose(rot, expected.rotation, atol=1e-6)


def test_object_pose_in_link0_with_rotated_base():
    layout = SceneLayout(base_position=(0.2, -0.3, 0.75), base_yaw=0.6)
    with PandaSim(PandaSimConfig(layout=layout)) as rotated:
        yaw = 0.3
        quat = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
        rotated.reset(object_pose=([0.45, 0.1, 0.025], quat))
        pose = rotated.object_pose()
        np.testing.assert_allclose(pose.position, [0.45, 0.1, 0.025], atol=1e-9)
        np.testing.assert_allclose(pose.quaternion, quat, atol=1e-9)
        rotated.advance(0.5)  # rests on the table: stays put in the base frame
        pose = rotated.object_pose()
        np.testing.assert_allclose(pose.position, [0.45, 0.1, 0.025], atol=2e-3)
        assert abs(abs(pose.quaternion[0]) - np.cos(yaw / 2)) < 1e-2


def test_block_falls_onto_table(sim):
    sim.reset(object_pose=([0.5, 0.0, 0.2], [1.0, 0.0, 0.0, 0.0]))
    sim.advance(1.0)
    assert sim.object_pose().position[2] == pytest.approx(0.025, abs=2e-3)


def test_render_and_camera_model(sim):
    sim.reset()
    image = sim.render(320, 240)
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8 and image.std() > 10
    # The block (red) appears where the pinhole model projects its centre.
    k, pose = sim.camera_intrinsics(320, 240), sim.camera_pose()
    pixel, valid = project_points(sim.object_pose().position[None], k, pose)
    assert valid[0]
    u, v = np.round(pixel[0]).astype(int)
    r, g, b = image[v, u].astype(int)
    assert r > 100 and r > 2 * g and r > 2 * b
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
    with pytest.raises(ValueError):
        sim.render(5000, 10)


def test_scene_points_in_link0(sim):
    sim.reset()
    points = sim.scene_points()
    assert points.ndim == 2 and points.shape[1] == 3 and len(points) > 1000
    on_table = np.abs(points[:, 2]) < 1e-6
    assert on_table.sum() > 300  # the table top is z = 0 in panda_link0
    block = sim.object_pose().position
    near_block = np.all(np.abs(points - block) <= 0.025 + 1e-6, axis=1)
    assert near_block.sum() > 5 and points[near_block, 2].max() == pytest.approx(0.05, abs=1e-6)
    # Rays hit the arm (nothing else is near the elbow) unless the robot is excluded.
    elbow = sim.ee_pose().position + [-0.45, 0.0, 0.1]
    near_elbow = np.linalg.norm(points - elbow, axis=1) < 0.15
    assert near_elbow.sum() > 20
    without_robot = sim.scene_points(include_robot=False)
    assert np.sum(np.linalg.norm(without_robot - elbow, axis=1) < 0.15) == 0


def test_command_latency_and_gripper():
    with PandaSim(PandaSimConfig(command_latency=0.05)) as delayed:
        q0 = delayed.joint_state().positions[:7].copy()
        delayed.set_joint_command(q0 + 0.2, gripper=0.0)
        delayed.advance(0.045)
        np.testing.assert_allclose(delayed.joint_state().positions[:7], q0, atol=1e-4)
        delayed.advance(1.0)
        np.testing.assert_allclose(delayed.joint_state().positions[:7], q0 + 0.2, atol=0.01)
        assert np.all(delayed.joint_state().positions[7:] < 0.003)


def test_perturbations_noise_and_pushes():
    config = PandaSimConfig(joint_noise_std=0.01, push_probability=0.05, push_acceleration=40.0)
    with PandaSim(config) as noisy:
        noisy.reset(seed=1)
        a, b = noisy.joint_state().positions, noisy.joint_state().positions
        assert 0.001 < np.std(a[:7] - b[:7]) < 0.05
        start = noisy.object_pose().position
        noisy.advance(1.0)
        assert np.linalg.norm(noisy.object_pose().position[:2] - start[:2]) > 0.01


@pytest.mark.parametrize("call, match", [
    (lambda s: s.set_joint_command(np.zeros(6)), "7 values"),
    (lambda s: s.set_joint_command([np.nan] * 7), "NaN"),
    (lambda s: s.set_joint_command(READY_POSE, gripper=0.2), "gripper"),
    (lambda s: s.reset(object_pose=([0.5, 0, 0.1], [1.0, 1.0, 0, 0])), "unit quaternion"),
    (lambda s: s.reset(q=[0.0, 0, 0, 0.5, 0, 1, 0]), "limits"),
    (lambda s: s.advance(-1.0), "duration"),
])
def test_bad_input_rejected(sim, call, match):
    with pytest.raises(ValueError, match=match):
        call(sim)


def test_config_validation():
    with pytest.raises(ValueError, match="kp"):
        PandaSimConfig(kp=(1.0, 2.0))
    with pytest.raises(ValueError, match="push_probability"):
        PandaSimConfig(push_probability=1.5)
