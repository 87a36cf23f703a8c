"""The training environment (morobot.locomotion.env): curriculum rule, stairs starts on a landing or in a pit."""

import numpy as np
import pytest

from morobot.locomotion.env import FALL_CAUSES, TRACKS, EnvConfig, LocomotionEnv, centre_stairs


def _env():
    return LocomotionEnv(3, EnvConfig(patch_size=8.0, terrain_weights=(1.0, 0.0, 0.0, 0.0, 0.0), levels=10,
                                      start_level=3), seed=0)


def _levels_after_episode(walked: float, tracked: list, fell: list) -> list:
    """Curriculum levels (from 3) after three episodes that asked for 10 m each."""
    env = _env()
    try:
        env.level[:] = 3
        env.start_xy[:] = env._state["pos"][:, :2] - [[walked, 0.0]] * 3
        env.commanded_distance[:] = 10.0
        env.tracked_distance[:] = tracked
        env._fell[:] = fell
        for i in range(3):
            env._reset_one(i)
        return env.level.tolist()
    finally:
        env.close()


def test_tracking_the_commands_promotes_even_when_turning():
    # no net displacement (a robot that walked in circles); followed its commands, the same but fell, lagged behind
    assert _levels_after_episode(0.0, [9.0, 9.0, 3.0], [False, True, False]) == [4, 2, 2]


def test_steps_accumulate_the_tracked_distance_along_the_command():
    env = _env()
    try:
        env.commands[:] = [[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.0]]
        for _ in range(5):
            env.step(np.zeros((3, 12), dtype=np.float32))
        assert np.all(np.isfinite(env.tracked_distance)) and env.tracked_distance[2] == 0.0
        assert np.allclose(env.commanded_distance, [5 * env.dt, 2.5 * env.dt, 0.0])
        assert np.all(env.tracked_distance[:2] <= env.commanded_distance[:2] + 0.05)
    finally:
        env.close()


def test_a_fall_demotes_however_far_the_robot_went():
    # 5 m from the start (past promote_distance); 6 of 10 m tracked: not enough to promote, not little enough to demote
    assert _levels_after_episode(5.0, [6.0, 6.0, 6.0], [False, True, False]) == [4, 2, 4]


def test_each_curriculum_track_keeps_its_own_level():
    # stairs only, every episode in a pit: a fall there demotes the climbing track and no other
    env = LocomotionEnv(2, EnvConfig(patch_size=8.0, terrain_weights=(0.0, 0.0, 0.0, 0.0, 1.0), levels=10,
                                     start_level=5, stairs_start_top=0.0, stairs_start_pit=1.0), seed=0)
    try:
        up = TRACKS.index("stairs_up")
        assert list(env.track) == [up, up] and list(env.level) == [5, 5]
        env.track_level[1, up] = 2
        env.commanded_distance[:] = 10.0
        env.tracked_distance[:] = 10.0
        env._fell[:] = True
        for i in range(2):
            env._reset_one(i)
        assert list(env.track_level[:, up]) == [4, 4]  # each demoted from the level its episode played
        others = np.delete(env.track_level, up, axis=1)
        assert np.all(others == 5) and list(env.level) == [4, 4]
    finally:
        env.close()


def test_a_fall_reports_its_cause():
    env = _env()
    try:
        tilt = 1.2  # rad about the body x axis, past max_tilt, 2 m above the ground: nothing touches
        d = env.datas[1]
        d.qpos[2], d.qpos[3:7] = 2.0, (np.cos(0.5 * tilt), np.sin(0.5 * tilt), 0.0, 0.0)
        _, _, done, info = env.step(np.zeros((3, 12)))
        assert list(done) == [False, True, False] and list(info["fell"]) == [False, True, False]
        assert [FALL_CAUSES[c] for c in info["fall_cause"]] == ["", "tipped over", ""]
    finally:
        env.close()


def test_centre_stairs_are_a_stepped_pyramid_or_pit_round_the_start():
    top = centre_stairs(80, 0.1, rise=0.15, steps=3, tread=0.4, landing=1.6, down=True)
    pit = centre_stairs(80, 0.1, rise=0.15, steps=3, tread=0.4, landing=1.6, down=False)
    c = 40  # cell centre at +0.05 m: on the landing
    assert top[c, c] == pytest.approx(0.45) and top[0, 0] == 0.0 and top[c, 0] == 0.0
    assert pit[c, c] == pytest.approx(-0.45) and pit[0, 0] == 0.0
    row = top[c, c:]  # outwards along +y: the landing, then three risers of 0.15 m, one every 0.4 m
    assert sorted(set(np.round(row, 6)), reverse=True) == pytest.approx([0.45, 0.3, 0.15, 0.0])
    drops = np.flatnonzero(np.diff(row) < -1e-9)
    assert np.allclose(np.diff(drops), 4)  # treads of 4 cells
    assert np.all(np.diff(row) <= 1e-12)  # only down from the landing, never up
    with pytest.raises(ValueError):
        centre_stairs(80, 0.1, rise=0.0, steps=3, tread=0.4, landing=1.6, down=True)


@pytest.mark.parametrize("top, pit, sign", [(1.0, 0.0, -1.0), (0.0, 1.0, 1.0)])
def test_stairs_episodes_can_start_on_a_landing_or_in_a_pit(top, pit, sign):
    cfg = EnvConfig(patch_size=8.0, terrain_weights=(0.0, 0.0, 0.0, 0.0, 1.0), start_level=6, curriculum=False,
                    stairs_start_top=top, stairs_start_pit=pit)
    env = LocomotionEnv(2, cfg, seed=1)
    try:
        c = env.cells // 2
        for h in env.heights:
            assert abs(h[c, c]) < 0.03  # heights are relative to the start
            rim = np.concatenate([h[0], h[-1], h[:, 0], h[:, -1]])
            assert np.all(sign * rim > 0.15)  # every way off the landing goes down, out of the pit up
        # the robot stands where it starts, and the physics has the same terrain as the observations
        for _ in range(10):
            env.step(np.zeros((2, 12), dtype=np.float32))
        assert np.all(np.abs(env._state["pos"][:, 2] - env._state["ground"] - 0.5) < 0.1)
    finally:
        env.close()


def test_stairs_start_fractions_are_validated():
    with pytest.raises(ValueError):
        EnvConfig(stairs_start_top=0.7, stairs_start_pit=0.5)
    with pytest.raises(ValueError):
        EnvConfig(stairs_start_top=-0.1)


def test_command_periods_are_drawn_per_episode_when_asked():
    # default: every episode resamples every command_period; with command_period_min, each draws its own period
    fixed = LocomotionEnv(2, EnvConfig(patch_size=8.0, terrain_weights=(1.0, 0.0, 0.0, 0.0, 0.0)), seed=0)
    fixed.close()
    assert list(fixed.command_steps) == [500, 500]
    cfg = EnvConfig(patch_size=8.0, terrain_weights=(1.0, 0.0, 0.0, 0.0, 0.0), command_period=1.0,
                    command_period_min=0.1, standing_fraction=0.0, push_speed=0.0)
    env = LocomotionEnv(6, cfg, seed=3)
    try:
        steps = env.command_steps.copy()
        assert np.all((steps >= 5) & (steps <= 50)) and len(set(steps.tolist())) > 1
        changed = np.zeros((6, 50), dtype=bool)
        for k in range(50):
            before = env.commands.copy()
            _, _, done, _ = env.step(np.zeros((6, 12), dtype=np.float32))
            assert not done.any()
            changed[:, k] = np.any(env.commands != before, axis=1)
        for i in range(6):  # new commands exactly at the episode's own period, and only there
            assert np.flatnonzero(changed[i]).tolist() == list(range(steps[i] - 1, 50, steps[i]))
    finally:
        env.close()
    with pytest.raises(ValueError):
        EnvConfig(command_period=1.0, command_period_min=2.0)
