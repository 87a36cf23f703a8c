"""The training environment's curriculum rule (morobot.locomotion.env): promotion by tracked distance."""

import numpy as np

from morobot.locomotion.env import EnvConfig, LocomotionEnv


def _env():
    return LocomotionEnv(3, EnvConfig(patch_size=8.0, terrain_weights=(1.0, 0.0, 0.0, 0.0, 0.0), levels=10,
                                      start_level=3), seed=0)


def test_tracking_the_commands_promotes_even_when_turning():
    env = _env()
    try:
        env.level[:] = 3
        env.start_xy[:] = env._state["pos"][:, :2]  # no net displacement: a robot that walked in circles
        env.commanded_distance[:] = 10.0
        env.tracked_distance[:] = [9.0, 9.0, 3.0]  # followed its commands, the same but fell, lagged behind
        env._fell[:] = [False, True, False]
        for i in range(3):
            env._reset_one(i)
        assert env.level.tolist() == [4, 3, 2]
    finally:
        env.close()


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
