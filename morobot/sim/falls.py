"""When a legged robot counts as fallen: one rule for the graph supervisor's online stop and for the
classification of a run afterwards (pure, no ROS)."""

from __future__ import annotations

from typing import Optional

import numpy as np


def base_too_low(world, x, y, z, min_base_height: float = 0.25) -> np.ndarray:
    """Where the base counts as fallen by height: less than ``min_base_height`` above the topmost
    surface under it, or, off the map, more than 0.5 m below the world's lowest point."""
    ground = world.elevation_at(x, y)
    z = np.asarray(z, dtype=float)
    return np.where(np.isfinite(ground), z - ground < min_base_height, z < float(world.heights.min()) - 0.5)


def fall_reason(world, position, gravity_b, min_base_height: Optional[float] = 0.25) -> Optional[str]:
    """Why the robot counts as fallen, or ``None``.

    Args:
        world: the world (its ``elevation_at`` gives the topmost surface under the base).
        position: base position (x, y, z) in the world frame.
        gravity_b: unit gravity in the base frame; tipped over when its z component is above -0.5.
        min_base_height: fallen when :func:`base_too_low` (``None``: only tipping counts).
    """
    if gravity_b[2] > -0.5:
        return "robot tipped over"
    if min_base_height is not None and bool(base_too_low(world, *position[:3], min_base_height)):
        return f"robot fell (base less than {min_base_height:.2f} m over the surface under it)"
    return None
