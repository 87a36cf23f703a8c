"""The robot's own body in its point clouds: a box fixed to the base whose points the elevation mapper drops.

Depth cameras on a legged robot see its own legs: on the simulated ANYmal C the side cameras see them in
nearly every frame, the front and rear ones catch a swinging foot up to 0.94 m ahead of the base. Mapped,
such points are obstacles right next to the robot, and they stay in the map for as long as the cell is not
seen again. A base-frame box around the legs that stops 5 cm above the ground removes them and keeps the
ground under and beside the robot (a URDF self-filter would need the joint states in the mapper).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from morobot.frames import normalized_quaternion, points_and_position, unit_quaternion_to_rotation

#: Base-frame box (x_min, x_max, y_min, y_max, z_min, z_max; m) around the simulated ANYmal C's legs: its four
#: depth cameras saw leg points within x -0.93..0.94, y -0.55..0.54, z -0.54..0.01 during two minutes of
#: walking at every speed, those below z = -0.5 the feet on the ground, which lies at about z = -0.55
#: (test/locomotion/test_legged_sim.py checks a hard-turning walk).
BODY_BOX = (-0.95, 0.95, -0.6, 0.6, -0.5, 0.1)


def body_mask(points_odom: np.ndarray, position: Sequence[float], quaternion_wxyz: Sequence[float],
              box: Sequence[float]) -> np.ndarray:
    """Which odom-frame points lie inside a box fixed to the base (the robot's own legs and body).

    Args:
        points_odom: ``[N, 3]`` points (m).
        position: base position in odom (m).
        quaternion_wxyz: base orientation in odom (normalised here).
        box: ``(x_min, x_max, y_min, y_max, z_min, z_max)`` in the base frame (m).

    Returns:
        ``[N]`` bool, True inside the box (non-finite points are never inside).

    Raises:
        ValueError: on a wrong points shape, an invalid pose or box.
    """
    pts, t = points_and_position(points_odom, position)
    b = check_box(box)
    rot = unit_quaternion_to_rotation(normalized_quaternion(quaternion_wxyz))
    inside = np.zeros(len(pts), dtype=bool)
    finite = np.isfinite(pts).all(axis=1)
    local = (pts[finite] - t) @ rot  # R^T (p - t), row-wise
    inside[finite] = np.all((local >= np.array(b[0::2])) & (local <= np.array(b[1::2])), axis=1)
    return inside


def check_box(box: Sequence[float]) -> tuple[float, ...]:
    """``box`` as six floats ``(x_min, x_max, y_min, y_max, z_min, z_max)``; ValueError unless finite with min < max."""
    try:
        b = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"body_box must be six numbers (x_min, x_max, y_min, y_max, z_min, z_max), got {box!r}")
    if len(b) != 6 or not all(math.isfinite(v) for v in b) or not all(b[i] < b[i + 1] for i in (0, 2, 4)):
        raise ValueError(f"body_box must be six finite numbers (x_min, x_max, y_min, y_max, z_min, z_max) with each "
                         f"min below its max, got {box!r}")
    return b
