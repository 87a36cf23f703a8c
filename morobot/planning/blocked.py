"""Obstacles learned from blocked motion: where the robot pushed and did not move.

A planner trusts its model and its map. Both can be wrong in the same place: a box face the depth
cameras never saw, a step edge the feet catch on while walking backwards, or a learned dynamics
model that predicts free motion where the simulated or real robot is held back. The robot then
commands the same motion cycle after cycle and stays where it is (in the navigation benchmark
every remaining failure of the FDM planner was such a run, pressed against a box or a step edge
for 10-23 s).

:class:`BlockedMotionMonitor` compares the planar command the robot executed with the planar
velocity it measured. When the progress along the commanded direction stays below
``max_ratio`` of the commanded speed for ``duration`` seconds, it marks a virtual obstacle, a
disc just beyond the robot's footprint in the (averaged) commanded direction, in odom
coordinates. :meth:`BlockedMotionMonitor.apply` raises the height-map cells under the active
obstacles, so everything that reads the map sees them as walls: the geometric risk, the
geodesic cost-to-go and the FDM's height scan. Obstacles expire after ``lifetime`` seconds. This
is the role bumper or contact "marking" plays in costmap-based navigation stacks, driven here by
the odometry alone.

Pure numpy/torch; the planner node and the lock-step evaluation both call it the same way
(:func:`morobot.navigation.factory.make_blocked_monitor`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from morobot.planning.interface import HeightMap, finite_vector


@dataclass(frozen=True)
class BlockedMotionConfig:
    """Thresholds of :class:`BlockedMotionMonitor` (SI units).

    Attributes:
        min_command: planar command speed (m/s) below which motion is not judged.
        max_ratio: the motion is blocked while the measured velocity along the commanded
            direction is below this fraction of the commanded speed.
        duration: seconds of continuous blocking before an obstacle is marked.
        clearance: the obstacle disc starts this far (m) from the robot centre. The geometric
            risk of a tall obstacle reaches ``footprint_radius`` plus half the slope window
            (0.45 + 0.4 m with the defaults) around it; a disc closer than that saturates the
            risk at the robot's own position, every plan (standing still included) then has risk
            1 and none is penalised for pushing on. Beyond that reach the robot's position stays
            below the threshold and a plan into the obstacle is riskier than standing still.
        radius: obstacle disc radius (m).
        height: the marked cells are raised to the robot base height plus this (m).
        lifetime: seconds an obstacle stays in the map.
        max_gap: a gap longer than this (s) between two updates restarts the detection. A
            planner that is late may have let the robot stop by itself (the locomotion controller
            stops when commands stay away for 0.5 s), which is no evidence of an obstacle.
        max_obstacles: the oldest obstacles are dropped beyond this many.

    Raises:
        ValueError: a non-finite or out-of-range value.
    """

    min_command: float = 0.15
    max_ratio: float = 0.25
    duration: float = 1.5
    clearance: float = 0.9
    radius: float = 0.2
    height: float = 0.5
    lifetime: float = 60.0
    max_gap: float = 0.4
    max_obstacles: int = 32

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(float(value)) or float(value) <= 0.0:
                raise ValueError(f"BlockedMotionConfig.{name} must be finite and > 0, got {value!r}")
        if self.max_ratio >= 1.0:
            raise ValueError(f"max_ratio must be < 1, got {self.max_ratio!r}")
        if int(self.max_obstacles) != self.max_obstacles:
            raise ValueError(f"max_obstacles must be an integer, got {self.max_obstacles!r}")


@dataclass(frozen=True)
class BlockedObstacle:
    """A marked obstacle: centre ``(x, y)`` in odom (m), top height ``z`` (m), time marked (s)."""

    x: float
    y: float
    z: float
    stamp: float


class BlockedMotionMonitor:
    """Detects blocked motion from odometry and commands, and marks it in the height map.

    Args:
        config: thresholds; defaults if ``None``.
    """

    def __init__(self, config: Optional[BlockedMotionConfig] = None) -> None:
        self.config = config if config is not None else BlockedMotionConfig()
        self.obstacles: list[BlockedObstacle] = []
        self._since: Optional[float] = None
        self._last: Optional[float] = None
        self._direction = np.zeros(2)
        self._cache: Optional[tuple] = None

    def reset(self) -> None:
        """Forget the obstacles and the running detection."""
        self.obstacles = []
        self._since = self._last = None
        self._direction = np.zeros(2)
        self._cache = None

    def update(self, stamp: float, pose: Sequence[float], twist: Sequence[float], command: Sequence[float],
               z: float) -> Optional[BlockedObstacle]:
        """Judge the last control period; mark an obstacle once the motion was blocked long enough.

        Args:
            stamp: time (s) of the odometry.
            pose: ``(x, y, yaw)`` in odom.
            twist: measured body twist ``(vx, vy, wz)``.
            command: the body twist ``(vx, vy, wz)`` commanded during the last period.
            z: base height in odom (m).

        Returns:
            The obstacle marked by this call, or ``None``.

        Raises:
            ValueError: non-finite or wrongly sized inputs.
        """
        p = finite_vector("pose", pose, 3)
        v = finite_vector("twist", twist, 3)
        u = finite_vector("command", command, 3)
        t = float(stamp)
        if not (math.isfinite(t) and math.isfinite(float(z))):
            raise ValueError(f"stamp and z must be finite, got {stamp!r}, {z!r}")
        cfg = self.config
        self._expire(t)
        if self._last is not None and not 0.0 <= t - self._last <= cfg.max_gap:
            self._since = None  # time went backwards (a sim reset) or a gap: start over
        self._last = t
        speed = math.hypot(u[0], u[1])
        if speed < cfg.min_command:
            self._since = None
            return None
        d_body = u[:2] / speed
        if float(v[:2] @ d_body) >= cfg.max_ratio * speed:
            self._since = None
            return None
        c, s = math.cos(p[2]), math.sin(p[2])
        d_odom = np.array([c * d_body[0] - s * d_body[1], s * d_body[0] + c * d_body[1]])
        if self._since is None:
            self._since = t
            self._direction = np.zeros(2)
        self._direction = self._direction + d_odom
        if t - self._since < cfg.duration:
            return None
        norm = float(np.linalg.norm(self._direction))
        d = self._direction / norm if norm > 1e-9 else d_odom
        centre = p[:2] + (cfg.clearance + cfg.radius) * d
        obstacle = BlockedObstacle(float(centre[0]), float(centre[1]), float(z) + cfg.height, t)
        self.obstacles.append(obstacle)
        del self.obstacles[: max(0, len(self.obstacles) - int(cfg.max_obstacles))]
        self._since = None
        self._cache = None
        return obstacle

    def active(self, stamp: float) -> list[BlockedObstacle]:
        """The obstacles still alive at ``stamp``."""
        self._expire(float(stamp))
        return list(self.obstacles)

    def apply(self, hmap: Optional[HeightMap], stamp: float) -> Optional[HeightMap]:
        """The height map with the active obstacles raised into it.

        Cells whose centre lies within ``radius`` of an obstacle get at least the obstacle's
        height (unknown cells get exactly it). Without active obstacles (or without a map) the
        map itself is returned; the result is cached for the same map and obstacles, so the
        planner's per-map caches stay valid between map updates.

        Args:
            hmap: the mapper's height map, or ``None``.
            stamp: current time (s), for the expiry.

        Returns:
            A height map (a new object when something was marked); the input is not modified.
        """
        self._expire(float(stamp))
        if hmap is None or not self.obstacles:
            return hmap
        key = (id(hmap.heights), hmap.heights._version, tuple(self.obstacles))
        if self._cache is not None and self._cache[0] == key and self._cache[1] is hmap.heights:
            return self._cache[2]
        heights = hmap.heights.detach().clone()
        rows, cols = heights.shape
        res = float(hmap.resolution)
        xs = float(hmap.origin[0]) + res * np.arange(rows)
        ys = float(hmap.origin[1]) + res * np.arange(cols)
        r2 = (self.config.radius + 1e-6) ** 2  # centres on the circle count (float round-off)
        for ob in self.obstacles:
            i = np.nonzero(np.abs(xs - ob.x) <= self.config.radius + 0.5 * res)[0]
            j = np.nonzero(np.abs(ys - ob.y) <= self.config.radius + 0.5 * res)[0]
            if i.size == 0 or j.size == 0:
                continue
            inside = (xs[i, None] - ob.x) ** 2 + (ys[None, j] - ob.y) ** 2 <= r2
            if not inside.any():  # a disc smaller than a cell still marks the cell it lies in
                inside[np.unravel_index(np.argmin((xs[i, None] - ob.x) ** 2 + (ys[None, j] - ob.y) ** 2),
                                        inside.shape)] = True
            ii, jj = np.nonzero(inside)
            rr, cc = torch.as_tensor(i[ii]), torch.as_tensor(j[jj])
            cell = heights[rr, cc]
            top = torch.full_like(cell, ob.z)
            heights[rr, cc] = torch.where(torch.isfinite(cell), torch.maximum(cell, top), top)
        out = HeightMap(heights=heights, origin=hmap.origin, resolution=hmap.resolution, stamp=hmap.stamp)
        self._cache = (key, hmap.heights, out)
        return out

    def _expire(self, stamp: float) -> None:
        keep = [ob for ob in self.obstacles if stamp - ob.stamp <= self.config.lifetime and ob.stamp <= stamp]
        if len(keep) != len(self.obstacles):
            self.obstacles = keep
            self._cache = None
