"""The articulated ANYmal C (morobot.sim.legged) and its locomotion environment (morobot.locomotion.env)."""

import mujoco
import numpy as np
import pytest

from morobot.locomotion.env import TERRAINS, EnvConfig, LocomotionEnv, terrain_params
from morobot.locomotion.observation import OBS_DIM
from morobot.sim.legged import (DEFAULT_POSE, JOINTS, SPAWN_FOOT_CLEARANCE, LeggedIndex, build_patch_model,
                                build_world_model, lift_feet_clear, standing_height)
from morobot.sim.worlds import make_world


@pytest.fixture(scope="module")
def model():
    return build_patch_model(41, 0.1)


def test_model_has_the_urdf_mass_12_actuated_joints_and_collides_with_every_link(model):
    assert model.body_subtreemass[1] == pytest.approx(52.13, abs=0.05)
    assert model.nu == 12 and model.nq == 7 + 12
    idx = LeggedIndex(model)
    assert len(idx.foot_geoms) == 4 and sorted(idx.foot_leg) == [0, 1, 2, 3]
    assert idx.base.sum() > 5 and idx.thigh_shank.sum() >= 8
    lim = model.actuator_forcerange[idx.act]
    assert np.all(lim == [-80.0, 80.0])
    assert [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, int(a)) for a in idx.act] == list(JOINTS)


def test_it_stands_at_anymal_height_on_its_pd_actuators(model):
    assert 0.44 <= standing_height(model) <= 0.52


def test_world_model_holds_the_terrain_tiles_and_boxes():
    world = make_world("cluttered", 3, size=(10.0, 10.0))
    m, _ = build_world_model(world)
    names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, i) or "" for i in range(m.ngeom)]
    assert sum(n.startswith("box") for n in names) == len(world.boxes) and m.nhfield >= 1


@pytest.mark.parametrize("kind", TERRAINS)
def test_terrain_params_make_valid_worlds_at_every_level(kind):
    for difficulty in (0.0, 1.0):
        make_world("flat", 1, size=(12.0, 12.0), start=(0, 0, 0), goal=(3, 0, 0), keepout=0.6, path_bias=0.0,
                   **terrain_params(kind, difficulty))


def test_rubble_ground_lays_the_top_level_rubble_on_rough_ground():
    """``rubble_ground`` (session 33): the rubble of the top level lies on rough ground, as on the navigation
    benchmark's ``rubble_high``; level 0 and the default stay as they were."""
    def relief(difficulty, ground):
        w = make_world("flat", 3, size=(12.0, 12.0), start=(0, 0, 0), goal=(3, 0, 0), keepout=0.6, path_bias=0.0,
                       **terrain_params("rubble", difficulty, ground))
        return float(np.ptp(w.heights))

    assert terrain_params("rubble", 0.0, 0.15) == terrain_params("rubble", 0.0)
    assert relief(1.0, 0.15) > relief(1.0, 0.0) + 0.1
    with pytest.raises(ValueError, match="rubble_ground"):
        EnvConfig(rubble_ground=-0.1)


def test_env_resets_steps_and_gives_finite_observations_and_rewards():
    env = LocomotionEnv(4, EnvConfig(), seed=0)
    obs = env.observations()
    assert obs["policy"].shape == (4, OBS_DIM) and np.isfinite(obs["critic"]).all()
    total_done = 0
    for _ in range(60):
        obs, rew, done, info = env.step(np.zeros((4, 12)))
        assert np.isfinite(obs["policy"]).all() and np.isfinite(rew).all() and np.all(rew >= 0)
        total_done += done.sum()
    # standing on its default pose, the robot does not fall on level-0 terrain
    assert not info["fell"].any()
    assert np.all(env._state["pos"][:, 2] - env._state["ground"] > 0.35)


def test_curriculum_moves_levels_and_a_fall_ends_an_episode():
    env = LocomotionEnv(2, EnvConfig(levels=5, start_level=2), seed=1)
    env.commanded_distance[:] = 10.0  # asked for 10 m, walked nothing: one level down at the reset
    played = env.track[0]
    env._reset_one(0)
    assert env.track_level[0, played] == 1  # the track it played; the others keep their level
    assert np.all(np.delete(env.track_level[0], played) == 2) and env.level[0] == env.track_level[0, env.track[0]]
    env.datas[1].qpos[3:7] = (0.0, 1.0, 0.0, 0.0)  # upside down
    _, _, done, info = env.step(np.zeros((2, 12)))
    assert done[1] and info["fell"][1] and not info["time_outs"][1]
    assert abs(env.datas[1].qpos[4]) < 0.1  # reset upright (yaw only)


def test_lift_feet_clear_raises_the_base_over_the_highest_ground_under_a_foot(model):
    idx, data = LeggedIndex(model), mujoco.MjData(model)
    data.qpos[2] = 0.55
    data.qpos[idx.qpos] = DEFAULT_POSE
    mujoco.mj_forward(model, data)
    radius = model.geom_size[idx.foot_geoms[0], 0]
    flat = lambda x, y: np.zeros_like(x)
    assert lift_feet_clear(model, data, idx, flat) == 0.0 and data.qpos[2] == 0.55  # already clear: untouched
    lf = idx.foot_positions(data)[0]
    bump = lambda x, y: np.where(np.hypot(x - lf[0], y - lf[1]) < 0.05, 0.12, 0.0)  # 12 cm under the LF foot
    lift = lift_feet_clear(model, data, idx, bump)
    feet = idx.foot_positions(data)
    gap = feet[:, 2] - radius - bump(feet[:, 0], feet[:, 1])
    assert lift > 0.1 and data.qpos[2] == pytest.approx(0.55 + lift)
    assert gap.min() == pytest.approx(SPAWN_FOOT_CLEARANCE) and gap.argmin() == 0  # the positions were recomputed
    assert lift_feet_clear(model, data, idx, lambda x, y: np.full_like(x, np.nan)) == 0.0  # no ground: no lift
    z = data.qpos[2]
    half = lambda x, y: np.where(x > lf[0] - 0.1, np.nan, 0.2)  # no ground under the front feet, 20 cm under the hind
    assert lift_feet_clear(model, data, idx, half) > 0.0 and data.qpos[2] > z  # a foot over no ground hides no bump


def test_no_training_episode_starts_with_a_foot_inside_the_ground():
    # rubble laid on rough ground at the top level: before the lift, about half the resets buried a foot (up to 10 cm)
    env = LocomotionEnv(2, EnvConfig(terrain_weights=(0.0, 0.0, 1.0, 0.0, 0.0), rubble_ground=0.15), seed=1)
    env.set_track_levels(np.full((2, env.track_level.shape[1]), 9))
    gaps = []
    for _ in range(8):
        for i in range(2):
            env._reset_one(i, first=True)
            feet = env.idx.foot_positions(env.datas[i])
            xy = np.zeros((2, 4, 2))
            xy[i] = feet[:, :2]
            gaps.append(feet[:, 2] - env.models[i].geom_size[env.idx.foot_geoms[0], 0] - env._terrain_at(xy)[i])
    gaps = np.array(gaps)
    assert gaps.min() >= SPAWN_FOOT_CLEARANCE - 1e-9
    assert np.sum(gaps.min(axis=1) < SPAWN_FOOT_CLEARANCE + 1e-6) >= 2  # lifted ones, exactly clear


def test_default_pose_is_within_the_joint_limits(model):
    idx = LeggedIndex(model)
    assert np.all(DEFAULT_POSE > idx.lower) and np.all(DEFAULT_POSE < idx.upper)
