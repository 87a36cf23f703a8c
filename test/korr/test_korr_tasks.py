"""KORR tasks: fast sim back-end, command generator, env reset/step/success, scripted experts."""

import dataclasses
import math

import numpy as np
import pytest

from morobot.korr.kinematics import MAX_STEP, ArmKinematics, CommandGenerator, wrap_quarter, yaw_from_quat
from morobot.korr.sim import FastPanda, Push, SimSettings
from morobot.korr.tasks import (ACT_DIM, OBS_DIM, OBS_NAMES, KorrVecEnv, features, run_expert_episode,
                                success, task_spec)


@pytest.fixture(scope="module")
def kin():
    return ArmKinematics()


def test_kinematics_matches_pandasim_ee_pose(kin):
    from morobot.sim.panda import READY_POSE, PandaSim

    with PandaSim() as sim:
        q = np.array([0.3, -0.4, 0.2, -2.0, 0.3, 1.9, -0.4])
        sim.reset(q=q)
        pos, rot = kin.tool_pose(q)
        np.testing.assert_allclose(pos, sim.ee_pose().position, atol=1e-9)
        sim.reset(q=READY_POSE)
        assert kin.tool_yaw(kin.tool_pose(np.array(READY_POSE))[1]) == pytest.approx(0.0, abs=1e-6)


def test_angle_helpers():
    assert wrap_quarter(math.pi / 2 + 0.1) == pytest.approx(0.1)
    assert wrap_quarter(-0.1) == pytest.approx(-0.1)
    yaw = 0.7
    assert yaw_from_quat([math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]) == pytest.approx(yaw)


def test_command_generator_moves_reference_and_holds(kin):
    gen = CommandGenerator(kin, 0.1)
    q = kin.solve(np.array([0.45, 0.0, 0.15]))
    gen.reset(q)
    start = gen.tool_ref.copy()
    cmd = gen(q, [1.0, 0.0, 0.0, 0.0, -1.0])
    assert cmd.positions.shape == (7,) and cmd.velocities.shape == (7,)
    assert cmd.gripper == pytest.approx(0.0)
    np.testing.assert_allclose(gen.tool_ref - start, [MAX_STEP, 0, 0], atol=1e-9)
    np.testing.assert_allclose(kin.tool_pose(cmd.positions)[0], gen.tool_ref, atol=3e-3)
    # A measured pose far behind the reference re-anchors it (bounded lag).
    gen(q, np.zeros(5))
    for _ in range(5):
        gen(q, [1.0, 0, 0, 0, 1.0])
    assert np.linalg.norm(gen.tool_ref - kin.tool_pose(q)[0]) <= gen.max_lag + MAX_STEP + 1e-9


def test_fast_sim_tracks_like_pandasim():
    from morobot.sim.panda import PandaSim

    settings = SimSettings()
    fast = FastPanda(settings)
    q0 = ArmKinematics().solve(np.array([0.45, 0.0, 0.15]))
    target = q0 + np.array([0.15, 0.1, -0.1, 0.1, 0.1, -0.1, 0.2])
    pose = (np.array([0.5, 0.0, 0.025]), np.array([1.0, 0, 0, 0]))
    fast.reset(q0, pose)
    with PandaSim() as sim:
        sim.reset(q=q0, object_pose=pose)
        sim.set_joint_command(target, np.zeros(7), 0.08)
        for _ in range(10):
            fast.command(target, np.zeros(7), 0.08)  # refreshes the gravity bias, as the env does
            fast.advance()
            sim.advance(0.1)
            np.testing.assert_allclose(fast.joint_positions()[:7], sim.joint_state().positions[:7], atol=0.01)
        np.testing.assert_allclose(fast.joint_positions()[:7], target, atol=3e-3)
        np.testing.assert_allclose(fast.object_pose()[0], sim.object_pose().position, atol=1e-3)


def test_push_moves_the_block():
    fast = FastPanda()
    q0 = ArmKinematics().solve(np.array([0.35, 0.0, 0.3]))
    fast.reset(q0, (np.array([0.5, 0.0, 0.025]), np.array([1.0, 0, 0, 0])))
    fast.advance()
    before = fast.object_pose()[0]
    fast.advance(Push(np.array([2.5, 0.0, 0.0]), 0.0, 0.05))  # 25 m/s^2 on 0.1 kg, friction ~9.8
    fast.advance()
    moved = fast.object_pose()[0] - before
    assert 0.01 < moved[0] < 0.2 and abs(moved[1]) < 0.01


def test_success_criteria():
    goal = np.array([0.45, 0.3, 0.025])
    assert success("push", [0.46, 0.31, 0.025], goal)
    assert not success("push", [0.45, 0.33, 0.025], goal)
    assert success("insert", [0.452, 0.302, 0.025], goal)
    assert not success("insert", [0.452, 0.302, 0.06], goal)  # still above the hole
    assert not success("insert", [0.46, 0.3, 0.025], goal)


def test_env_reset_step_shapes_and_determinism():
    env = KorrVecEnv("push", 3, "med", "high", seed=1)
    obs = env.reset(seeds=[5, 6, 7])
    assert obs.shape == (3, OBS_DIM) and len(OBS_NAMES) == OBS_DIM and np.all(np.isfinite(obs))
    res = env.step(np.zeros((3, ACT_DIM)))
    assert res.obs.shape == (3, OBS_DIM) and res.reward.shape == (3,)
    assert not res.terminated.any() and not res.truncated.any()
    again = KorrVecEnv("push", 3, "med", "high", seed=1)
    np.testing.assert_allclose(again.reset(seeds=[5, 6, 7]), obs)


def test_env_terminates_on_success_and_truncates():
    env = KorrVecEnv("push", 1, "low", "none", auto_reset=False)
    env.reset(seeds=[0])
    q = env.sims[0].joint_positions()[:7]
    env.sims[0].reset(q, (env.goal.copy(), np.array([1.0, 0, 0, 0])))  # block already on the target
    env._measure(0)
    res = env.step(np.zeros((1, ACT_DIM)))
    assert res.success[0] and res.terminated[0] and res.reward[0] == 1.0
    env = KorrVecEnv("push", 2, "low", "none")
    env.spec = dataclasses.replace(env.spec, max_steps=2)
    env.reset()
    env.step(np.zeros((2, ACT_DIM)))
    res = env.step(np.zeros((2, ACT_DIM)))
    assert res.truncated.all() and not res.terminated.any()
    assert (env.steps == 0).all()  # auto-reset
    assert not np.allclose(res.final_obs, res.obs)


def test_features_layout(kin):
    q9 = np.concatenate([kin.solve(np.array([0.45, 0.0, 0.15])), [0.02, 0.02]])
    obs, st = features(kin, q9, np.zeros(9), [0.5, 0.0, 0.025], [1, 0, 0, 0], [0.45, 0.3, 0.025])
    names = {n: i for i, n in enumerate(OBS_NAMES)}
    assert obs[names["width"]] == pytest.approx(0.04)
    np.testing.assert_allclose(obs[names["tool_x"]:names["tool_z"] + 1], [0.45, 0.0, 0.15], atol=2e-3)
    np.testing.assert_allclose(obs[names["goal_obj_x"]:names["goal_obj_z"] + 1], [-0.05, 0.3, 0.0], atol=1e-9)
    np.testing.assert_allclose(st.ref, st.tool)


@pytest.mark.parametrize("task", ["push", "insert"])
def test_scripted_expert_solves_low_randomness(task):
    env = KorrVecEnv(task, 1, "low", "none", seed=0)
    results = [run_expert_episode(env, seed) for seed in (11, 12)]
    assert all(ok for ok, _ in results), results
    assert all(steps < task_spec(task).max_steps for _, steps in results)
