"""What the locomotion policy sees and how its action becomes joint targets, defined once.

The same functions build the observation in training (:mod:`morobot.locomotion.env`) and on the
robot or in the simulator node (:mod:`morobot.locomotion.policy`), so the two cannot drift apart.

Observation (``OBS_DIM`` = 48 + ``HEIGHT_POINTS``), legged_gym's layout and scales: base linear
velocity (base frame) × 2, base angular velocity × 0.25, gravity in the base frame, the velocity
command (vx, vy, wz) × (2, 2, 0.25), joint positions minus the standing pose, joint velocities ×
0.05, the last action, and ``HEIGHT_POINTS`` terrain samples on a yaw-aligned grid around the base
(``base z - 0.5 - terrain height``, clipped to ±1 m, × 5). All are quantities ANYmal's own
controller has (the heights come from its elevation map; in simulation they are ground truth).

Action: 12 joint position offsets; target = standing pose + ``ACTION_SCALE`` × action.
"""

from __future__ import annotations

import numpy as np

ACTION_SCALE = 0.5
LIN_VEL_SCALE, ANG_VEL_SCALE, DOF_VEL_SCALE, HEIGHT_SCALE = 2.0, 0.25, 0.05, 5.0
COMMAND_SCALE = np.array([LIN_VEL_SCALE, LIN_VEL_SCALE, ANG_VEL_SCALE])
HEIGHT_X = np.round(np.arange(-0.8, 0.81, 0.1), 3)  # 17 rows along the base's heading
HEIGHT_Y = np.round(np.arange(-0.5, 0.51, 0.1), 3)  # 11 columns across it
HEIGHT_GRID = np.stack(np.meshgrid(HEIGHT_X, HEIGHT_Y, indexing="ij"), -1).reshape(-1, 2)
HEIGHT_POINTS = len(HEIGHT_GRID)
PROPRIO_DIM = 48
OBS_DIM = PROPRIO_DIM + HEIGHT_POINTS
NUM_ACTIONS = 12


def quat_to_rot(q: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (w, x, y, z) quaternions → ``[..., 3, 3]`` rotation matrices (body → world)."""
    w, x, y, z = np.moveaxis(np.asarray(q, dtype=float), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def height_sample_points(position: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """World ``(x, y)`` of the height samples: ``[N, HEIGHT_POINTS, 2]`` for ``N`` robots."""
    position = np.atleast_2d(position)
    yaw = np.atleast_1d(yaw)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    gx, gy = HEIGHT_GRID[None, :, 0], HEIGHT_GRID[None, :, 1]
    return np.stack([position[:, 0:1] + c * gx - s * gy, position[:, 1:2] + s * gx + c * gy], -1)


def build_observation(rot: np.ndarray, lin_vel_w: np.ndarray, ang_vel_b: np.ndarray, command: np.ndarray,
                      joint_pos: np.ndarray, joint_vel: np.ndarray, last_action: np.ndarray,
                      base_z: np.ndarray, terrain: np.ndarray, default_pose: np.ndarray) -> np.ndarray:
    """The policy observation of ``N`` robots, ``[N, OBS_DIM]`` float32.

    Args:
        rot: ``[N, 3, 3]`` base orientation (body → world).
        lin_vel_w: ``[N, 3]`` base linear velocity in the world frame.
        ang_vel_b: ``[N, 3]`` base angular velocity in the base frame.
        command: ``[N, 3]`` velocity command (vx, vy, wz), base frame.
        joint_pos, joint_vel: ``[N, 12]`` in :data:`morobot.sim.legged.JOINTS` order.
        last_action: ``[N, 12]``.
        base_z: ``[N]`` base height (world z).
        terrain: ``[N, HEIGHT_POINTS]`` terrain heights at :func:`height_sample_points`.
        default_pose: ``[12]`` standing joint angles.
    """
    rt = np.swapaxes(rot, -1, -2)
    lin_b = np.einsum("nij,nj->ni", rt, lin_vel_w)
    gravity_b = -rt[:, :, 2]
    heights = np.clip(base_z[:, None] - 0.5 - terrain, -1.0, 1.0)
    return np.concatenate([
        lin_b * LIN_VEL_SCALE, ang_vel_b * ANG_VEL_SCALE, gravity_b, command * COMMAND_SCALE,
        joint_pos - default_pose, joint_vel * DOF_VEL_SCALE, last_action, heights * HEIGHT_SCALE,
    ], axis=1).astype(np.float32)


def joint_targets(action: np.ndarray, default_pose: np.ndarray) -> np.ndarray:
    """Joint position targets for ``action`` ``[N, 12]`` (clipped to ±100 like legged_gym's clip)."""
    return default_pose + ACTION_SCALE * np.clip(action, -100.0, 100.0)
