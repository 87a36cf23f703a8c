"""Patches of slippery ground: flat to the depth cameras, another friction under the feet.

A :class:`Patch` is a rectangle of a world's ground (ice, wet tiles, loose gravel on a slab) whose sliding
friction differs from the rest. The world generator flattens the terrain under it, so its geometry says
nothing about it: the geometric risk of the planners cannot see it, and a model that reads the robot's
proprioception can only learn it from how the robot moves once on it. The simulators turn patches into
contact friction (both: a flat heightfield with contact priority over the terrain, :meth:`Patch.slab_mjcf`; the
rigid body's :mod:`morobot.sim.anymal` also lowers the traction limit of its locomotion abstraction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Thickness (m) of the simulators' patch slabs (flat heightfields), whose top is the patch surface.
SLAB_DEPTH = 0.05
#: How far (m) the simulators' terrain sinks under a patch's slab, so that a foot pressed into the slab (soft contacts,
#: up to 2 cm on low friction) meets the slab's friction alone. Only cells a cell or more inside the patch sink, so
#: the slab covers every sunk face of the terrain and nothing outside the patch changes.
SLAB_SINK = 0.03


@dataclass(frozen=True)
class Patch:
    """A flat rectangle of ground with its own sliding friction, rotated by ``yaw`` about +z.

    Attributes:
        center: ``(x, y)`` of the patch centre (m).
        size: full edge lengths ``(sx, sy)`` (m).
        yaw: rotation about +z (rad).
        friction: sliding friction coefficient of the surface (the rest of the world has the simulator's).
        height: height of the surface (m); the terrain under the patch is flat at it.
    """

    center: tuple[float, float]
    size: tuple[float, float]
    yaw: float
    friction: float
    height: float

    def __post_init__(self) -> None:
        c = np.asarray(self.center, dtype=float)
        s = np.asarray(self.size, dtype=float)
        if c.shape != (2,) or s.shape != (2,) or not (np.all(np.isfinite(c)) and np.all(np.isfinite(s))):
            raise ValueError(f"Patch needs finite 2-vectors center and size, got {self.center}, {self.size}")
        if np.any(s <= 0):
            raise ValueError(f"Patch size must be positive, got {self.size}")
        if not (math.isfinite(self.friction) and 0.0 < self.friction <= 2.0):
            raise ValueError(f"Patch friction must be within (0, 2], got {self.friction}")
        if not (math.isfinite(self.yaw) and math.isfinite(self.height)):
            raise ValueError(f"Patch yaw and height must be finite, got {self.yaw}, {self.height}")
        object.__setattr__(self, "center", tuple(float(v) for v in c))
        object.__setattr__(self, "size", tuple(float(v) for v in s))
        for name in ("yaw", "friction", "height"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def contains(self, x, y) -> np.ndarray:
        """Whether world points ``(x, y)`` lie on the patch (edges included)."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        dx, dy = np.asarray(x, float) - self.center[0], np.asarray(y, float) - self.center[1]
        u, v = c * dx + s * dy, -s * dx + c * dy
        return (np.abs(u) <= 0.5 * self.size[0]) & (np.abs(v) <= 0.5 * self.size[1])

    def grown(self, margin: float) -> "Patch":
        """The same patch with ``margin`` added to each side (negative: shrunk)."""
        return Patch(self.center, tuple(s + 2.0 * margin for s in self.size), self.yaw, self.friction, self.height)

    def corners_xy(self) -> np.ndarray:
        """The four corners ``[4, 2]`` in counter-clockwise order."""
        hx, hy = 0.5 * self.size[0], 0.5 * self.size[1]
        local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return local @ np.array([[c, s], [-s, c]]) + np.array(self.center)

    def slab_mjcf(self, name: str, resolution: float) -> tuple[str, str]:
        """The patch as MuJoCo ``(asset, geom)``: a flat heightfield of class ``world`` at the terrain's
        ``resolution`` (the terrain's own kind of contacts, as many per foot: with soft contacts fewer would let a
        foot creep more at the same friction) whose top is the surface, with contact priority over the terrain (sunk
        under it, :func:`contact_heights`), so a foot on it meets the patch's friction."""
        ncol, nrow = (int(math.ceil(s / resolution)) + 1 for s in self.size)  # MuJoCo: columns along x
        asset = (f'<hfield name="{name}" nrow="{nrow}" ncol="{ncol}" size="{0.5 * self.size[0]:.9g} '
                 f'{0.5 * self.size[1]:.9g} 0.001 {SLAB_DEPTH:.9g}"/>')
        geom = (f'<geom name="{name}" type="hfield" hfield="{name}" class="world" priority="1" '
                f'friction="{self.friction:.6g} 0.005 0.0001" pos="{self.center[0]:.9g} {self.center[1]:.9g} '
                f'{self.height:.9g}" euler="0 0 {self.yaw:.9g}" rgba="0.55 0.75 0.95 1"/>')
        return asset, geom


def friction_at(patches: Sequence[Patch], x, y, default: float) -> np.ndarray:
    """Sliding friction of the ground at world points ``(x, y)``: the lowest of the patches there, else ``default``."""
    out = np.full(np.broadcast(np.asarray(x, float), np.asarray(y, float)).shape, float(default))
    for p in patches:
        out = np.where(p.contains(x, y), np.minimum(out, p.friction), out)
    return out


def contact_heights(heights: np.ndarray, origin: Sequence[float], resolution: float,
                    patches: Sequence[Patch]) -> np.ndarray:
    """The terrain the simulators collide with: ``heights`` with the cells under each patch, a cell or more inside its
    edges, :data:`SLAB_SINK` lower."""
    if not patches:
        return heights
    out = np.array(heights, dtype=np.float64)
    gx, gy = _cell_centres(origin, resolution, out.shape)
    for p in patches:
        if min(p.size) > 2.0 * resolution:
            out[p.grown(-resolution).contains(gx, gy)] -= SLAB_SINK
    return out


def footprint(patch: Patch, origin: Sequence[float], resolution: float, shape: Sequence[int]) -> np.ndarray:
    """Cells ``[nx, ny]`` of a height grid under ``patch`` or within one cell of its edges."""
    return patch.grown(resolution).contains(*_cell_centres(origin, resolution, shape))


def _cell_centres(origin: Sequence[float], resolution: float, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """World ``(x, y)`` ``[nx, ny]`` of the centres of a height grid's cells."""
    xs = origin[0] + resolution * np.arange(shape[0])
    ys = origin[1] + resolution * np.arange(shape[1])
    return np.meshgrid(xs, ys, indexing="ij")


def flatten(heights: np.ndarray, cells: np.ndarray) -> float:
    """Set ``heights[cells]`` (in place) to their median; returns it (a patch's surface height)."""
    if not cells.any():
        raise ValueError("a patch must cover at least one cell of the world")
    level = float(np.median(heights[cells]))
    heights[cells] = level
    return level
