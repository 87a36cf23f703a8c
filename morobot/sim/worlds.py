"""Procedural navigation worlds: a terrain heightfield plus box obstacles, a start and a goal.

A :class:`World` is pure data (numpy), independent of MuJoCo; :mod:`morobot.sim.anymal` turns it
into a simulation. Conventions follow ``docs/architecture.md``: heights are indexed ``[i, j]`` with
row ``i`` along +x and column ``j`` along +y, ``origin`` is the (x, y) of the centre of cell
``[0, 0]``; poses are ``(x, y, yaw)``; SI units.

Every generated world is checked for a traversable connection between start and goal (see
:func:`is_reachable`): a grid search over cells whose clearance to untraversable terrain (step
edges above ``max_step``, slopes above ``max_slope``) and to tall boxes is at least the robot
radius. Worlds that fail are regenerated from a derived seed; as a last resort a corridor is
cleared along the straight start-goal line.

The terrain features the generator draws (roughness, hills, ramps, stairs, platforms, boxes, rubble, slippery
patches) are in :mod:`morobot.sim.terrain_features`.

Length: the World model, its reachability test, ``make_world`` and ``load_world`` stay one module: ``make_world``
validates every world with the World's own reachability test (and clears a corridor through the World when it fails),
and ``load_world`` builds worlds through ``make_world``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import yaml
from scipy import ndimage

from morobot.sim import terrain_features as tf
from morobot.sim.patches import Patch, footprint, friction_at

KINDS = ("flat", "rough", "slopes", "steps", "boxes", "cluttered", "mixed")
"""World kinds understood by :func:`make_world`."""

_REGENERATE_ATTEMPTS = 8


@dataclass(frozen=True)
class Box:
    """An upright box obstacle, rotated by ``yaw`` about +z.

    Attributes:
        center: ``(x, y, z)`` of the box centre (m).
        size: full edge lengths ``(sx, sy, sz)`` (m).
        yaw: rotation about +z (rad).
    """

    center: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float = 0.0

    def __post_init__(self) -> None:
        c = np.asarray(self.center, dtype=float)
        s = np.asarray(self.size, dtype=float)
        if c.shape != (3,) or s.shape != (3,) or not np.all(np.isfinite(c)) or not np.all(np.isfinite(s)):
            raise ValueError(f"Box needs finite 3-vectors center and size, got {self.center}, {self.size}")
        if np.any(s <= 0):
            raise ValueError(f"Box size must be positive, got {self.size}")
        if not math.isfinite(self.yaw):
            raise ValueError(f"Box yaw must be finite, got {self.yaw}")
        object.__setattr__(self, "center", tuple(float(v) for v in c))
        object.__setattr__(self, "size", tuple(float(v) for v in s))
        object.__setattr__(self, "yaw", float(self.yaw))

    @property
    def top(self) -> float:
        """Height of the top face (m)."""
        return self.center[2] + 0.5 * self.size[2]

    def local_xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates of world points in the box's yawed frame, relative to its centre."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        dx, dy = np.asarray(x, float) - self.center[0], np.asarray(y, float) - self.center[1]
        return c * dx + s * dy, -s * dx + c * dy

    def distance_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Planar distance (m) from points to the box footprint (0 inside)."""
        u, v = self.local_xy(x, y)
        du = np.maximum(np.abs(u) - 0.5 * self.size[0], 0.0)
        dv = np.maximum(np.abs(v) - 0.5 * self.size[1], 0.0)
        return np.hypot(du, dv)

    def corners_xy(self) -> np.ndarray:
        """The four footprint corners ``[4, 2]`` in counter-clockwise order."""
        hx, hy = 0.5 * self.size[0], 0.5 * self.size[1]
        local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        rot = np.array([[c, -s], [s, c]])
        return local @ rot.T + np.array(self.center[:2])


@dataclass(frozen=True)
class TraversabilityLimits:
    """What the traversability check assumes the robot can do.

    Slightly conservative with respect to :class:`morobot.sim.locomotion.LocomotionConfig`
    (max step 0.22 m, max slope 30 deg) so that "reachable" worlds are reliably walkable.

    Attributes:
        max_step: largest height difference (m) between neighbouring cells that is climbable.
        max_slope_deg: steepest walkable slope (deg), measured on terrain smoothed over
            ``slope_window`` so that climbable step edges do not count as slopes.
        robot_radius: obstacle inflation radius (m) for the path search.
        slope_window: smoothing window (m) for the slope estimate (about a foot stance).
    """

    max_step: float = 0.2
    max_slope_deg: float = 28.0
    robot_radius: float = 0.5
    slope_window: float = 0.5


@dataclass(eq=False)
class World:
    """A navigation world.

    Attributes:
        name: world name (the YAML stem for named worlds).
        kind: generator kind, one of :data:`KINDS`.
        seed: generator seed.
        heights: float32 ``[nx, ny]`` terrain heights (m); row along +x, column along +y.
        resolution: cell edge length (m).
        origin: ``(x, y)`` of the centre of cell ``[0, 0]``.
        boxes: box obstacles standing on the terrain.
        start: start pose ``(x, y, yaw)``.
        goal: goal pose ``(x, y, yaw)``.
        limits: traversability limits used for obstacles, clearance and reachability.
        patches: flat patches of ground with their own friction (:mod:`morobot.sim.patches`).
    """

    name: str
    kind: str
    seed: int
    heights: np.ndarray
    resolution: float = 0.1
    origin: tuple[float, float] = (0.0, 0.0)
    boxes: list[Box] = field(default_factory=list)
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    goal: tuple[float, float, float] = (0.0, 0.0, 0.0)
    limits: TraversabilityLimits = field(default_factory=TraversabilityLimits)
    patches: list[Patch] = field(default_factory=list)
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        h = np.asarray(self.heights)
        if h.ndim != 2 or min(h.shape) < 2:
            raise ValueError(f"World heights must be a 2-D grid of at least 2x2, got shape {h.shape}")
        if not np.all(np.isfinite(h)):
            raise ValueError("World heights must be finite (no NaN/inf)")
        self.heights = np.ascontiguousarray(h, dtype=np.float32)
        if not (math.isfinite(self.resolution) and self.resolution > 0):
            raise ValueError(f"World resolution must be positive, got {self.resolution}")
        self.origin = _finite_tuple(self.origin, 2, "origin")
        self.start = _finite_tuple(self.start, 3, "start")
        self.goal = _finite_tuple(self.goal, 3, "goal")
        self.boxes = list(self.boxes)
        self.patches = list(self.patches)
        if not all(isinstance(p, Patch) for p in self.patches):
            raise ValueError("World patches must be morobot.sim.patches.Patch objects")

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int]:
        """Grid shape ``(nx, ny)``."""
        return self.heights.shape  # type: ignore[return-value]

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(xmin, xmax, ymin, ymax)`` of the cell centres (the terrain surface's footprint)."""
        nx, ny = self.shape
        return (
            self.origin[0],
            self.origin[0] + (nx - 1) * self.resolution,
            self.origin[1],
            self.origin[1] + (ny - 1) * self.resolution,
        )

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """x coordinates of the rows and y coordinates of the columns."""
        nx, ny = self.shape
        return (
            self.origin[0] + self.resolution * np.arange(nx),
            self.origin[1] + self.resolution * np.arange(ny),
        )

    def height_at(self, x: Any, y: Any, interp: str = "bilinear") -> np.ndarray:
        """Terrain height at world points (boxes excluded).

        Args:
            x: x coordinates (any shape, broadcast with ``y``).
            y: y coordinates.
            interp: ``"bilinear"``, or ``"triangle"`` for the piecewise-planar surface exactly as
                MuJoCo triangulates the heightfield.

        Returns:
            Heights (m) with the broadcast shape; NaN outside the grid.

        Raises:
            ValueError: on NaN inputs or an unknown ``interp``.
        """
        xa, ya = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        if np.isnan(xa).any() or np.isnan(ya).any():
            raise ValueError("height_at: coordinates must not be NaN")
        if interp not in ("bilinear", "triangle"):
            raise ValueError(f"height_at: interp must be 'bilinear' or 'triangle', got {interp!r}")
        return interpolate_grid(self.heights, self.origin, self.resolution, xa, ya, interp == "triangle")

    def elevation_at(self, x: Any, y: Any, interp: str = "bilinear") -> np.ndarray:
        """Height of the topmost surface (terrain or box top) at world points; NaN off the grid."""
        h = self.height_at(x, y, interp)
        if not self.boxes:
            return h
        xa, ya = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        for box in self.boxes:
            u, v = box.local_xy(xa, ya)
            inside = (np.abs(u) <= 0.5 * box.size[0]) & (np.abs(v) <= 0.5 * box.size[1])
            h = np.where(inside, np.fmax(h, box.top), h)
        return h

    # ------------------------------------------------------------------ traversability
    def terrain_obstacle_mask(self) -> np.ndarray:
        """Cells the robot cannot stand on because of the terrain (step edges, steep slopes)."""
        if "terrain_mask" not in self._cache:
            self._cache["terrain_mask"] = _terrain_obstacles(self.heights, self.resolution, self.limits)
        return self._cache["terrain_mask"]

    def obstacle_boxes(self) -> list[Box]:
        """Boxes that are too tall to climb (top above the surrounding ground by ``max_step``)."""
        out = []
        for box in self.boxes:
            ground = self.height_at(box.center[0], box.center[1])
            if not np.isfinite(ground) or box.top - float(ground) > self.limits.max_step:
                out.append(box)
        return out

    def obstacle_mask(self) -> np.ndarray:
        """Boolean ``[nx, ny]`` ground truth of untraversable cells (terrain or tall box)."""
        if "mask" not in self._cache:
            mask = self.terrain_obstacle_mask().copy()
            xs, ys = self.cell_centres()
            gx, gy = np.meshgrid(xs, ys, indexing="ij")
            for box in self.obstacle_boxes():
                mask |= box.distance_xy(gx, gy) <= 0.5 * self.resolution
            self._cache["mask"] = mask
        return self._cache["mask"]

    def clearance(self, x: Any, y: Any) -> np.ndarray:
        """Distance (m) from points to the nearest tall box or untraversable terrain cell.

        Box distances are exact; terrain distances are resolved to one cell. Points off the grid
        use the nearest border cell. Returns ``inf`` when the world has no obstacles.
        """
        xa, ya = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        if np.isnan(xa).any() or np.isnan(ya).any():
            raise ValueError("clearance: coordinates must not be NaN")
        out = np.full(xa.shape, np.inf)
        terrain = self.terrain_obstacle_mask()
        if terrain.any():
            if "edt" not in self._cache:
                self._cache["edt"] = ndimage.distance_transform_edt(~terrain) * self.resolution
            nx, ny = self.shape
            i = np.clip(np.rint((xa - self.origin[0]) / self.resolution).astype(np.int64), 0, nx - 1)
            j = np.clip(np.rint((ya - self.origin[1]) / self.resolution).astype(np.int64), 0, ny - 1)
            out = np.maximum(self._cache["edt"][i, j] - 0.5 * self.resolution, 0.0)
        for box in self.obstacle_boxes():
            out = np.minimum(out, box.distance_xy(xa, ya))
        return out

    def clearance_grid(self) -> np.ndarray:
        """:meth:`clearance` evaluated at every cell centre, ``[nx, ny]``."""
        if "clear_grid" not in self._cache:
            xs, ys = self.cell_centres()
            gx, gy = np.meshgrid(xs, ys, indexing="ij")
            self._cache["clear_grid"] = self.clearance(gx, gy)
        return self._cache["clear_grid"]

    def friction_at(self, x: Any, y: Any, default: float) -> np.ndarray:
        """Sliding friction of the ground at ``(x, y)``: a patch's where there is one, else ``default``."""
        return friction_at(self.patches, x, y, default)

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """Index of the cell whose centre is nearest to ``(x, y)`` (clamped to the grid)."""
        nx, ny = self.shape
        i = int(np.clip(round((x - self.origin[0]) / self.resolution), 0, nx - 1))
        j = int(np.clip(round((y - self.origin[1]) / self.resolution), 0, ny - 1))
        return i, j


def interpolate_grid(heights: np.ndarray, origin: Sequence[float], resolution: float, x: np.ndarray,
                     y: np.ndarray, triangle: bool = False) -> np.ndarray:
    """Interpolate a height grid at points (no input validation; NaN outside the grid).

    Args:
        heights: ``[nx, ny]`` grid, row along +x.
        origin: ``(x, y)`` of cell ``[0, 0]``'s centre.
        resolution: cell size (m).
        x: query x coordinates (same shape as ``y``).
        y: query y coordinates.
        triangle: interpolate on MuJoCo's heightfield triangles (diagonal from ``[i, j]`` to
            ``[i+1, j+1]``) instead of bilinearly.
    """
    nx, ny = heights.shape
    fx = (x - origin[0]) * (1.0 / resolution)
    fy = (y - origin[1]) * (1.0 / resolution)
    eps = 1e-6  # cells: tolerate round-off at the border
    inside = (fx >= -eps) & (fx <= nx - 1 + eps) & (fy >= -eps) & (fy <= ny - 1 + eps)
    i = np.minimum(np.maximum(np.floor(fx), 0), nx - 2).astype(np.intp)
    j = np.minimum(np.maximum(np.floor(fy), 0), ny - 2).astype(np.intp)
    tx, ty = fx - i, fy - j
    h00, h10, h01, h11 = heights[i, j], heights[i + 1, j], heights[i, j + 1], heights[i + 1, j + 1]
    if triangle:
        out = np.where(tx >= ty, h00 + tx * (h10 - h00) + ty * (h11 - h10),
                       h00 + ty * (h01 - h00) + tx * (h11 - h01))
    else:
        out = (h00 * (1 - tx) + h10 * tx) * (1 - ty) + (h01 * (1 - tx) + h11 * tx) * ty
    return np.where(inside, out, np.nan)


def _finite_tuple(v: Sequence[float], n: int, what: str) -> tuple:
    a = np.asarray(v, dtype=float).ravel()
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ValueError(f"World {what} must be {n} finite numbers, got {v!r}")
    return tuple(float(t) for t in a)


def _terrain_obstacles(h: np.ndarray, res: float, lim: TraversabilityLimits) -> np.ndarray:
    """Step edges above ``max_step`` and cells steeper than ``max_slope`` on smoothed terrain."""
    h = h.astype(np.float64)
    mask = np.zeros(h.shape, dtype=bool)
    dx = np.abs(np.diff(h, axis=0)) > lim.max_step
    dy = np.abs(np.diff(h, axis=1)) > lim.max_step
    mask[:-1] |= dx
    mask[1:] |= dx
    mask[:, :-1] |= dy
    mask[:, 1:] |= dy
    win = max(1, int(round(lim.slope_window / res)))
    smooth = ndimage.uniform_filter(h, size=win, mode="nearest")
    gx, gy = np.gradient(smooth, res)
    mask |= np.hypot(gx, gy) > math.tan(math.radians(lim.max_slope_deg))
    return mask


def free_space(world: World) -> np.ndarray:
    """Cells where the robot centre fits: clearance at least ``robot_radius``, away from the border."""
    free = world.clearance_grid() >= world.limits.robot_radius
    border = int(math.ceil(world.limits.robot_radius / world.resolution))
    free[:border] = free[-border:] = False
    free[:, :border] = free[:, -border:] = False
    return free


def is_reachable(world: World) -> bool:
    """True if start and goal are free cells connected through free space (8-connected)."""
    free = free_space(world)
    si, sj = world.cell_of(*world.start[:2])
    gi, gj = world.cell_of(*world.goal[:2])
    if not (free[si, sj] and free[gi, gj]):
        return False
    labels, _ = ndimage.label(free, structure=np.ones((3, 3), dtype=bool))
    return bool(labels[si, sj] == labels[gi, gj])


# ---------------------------------------------------------------------- generation
_DEFAULTS: dict[str, dict[str, Any]] = {
    "flat": {},
    "rough": {"amplitude": 0.08},
    "slopes": {"n_hills": 3, "n_ramps": 2, "amplitude": 0.02},
    "steps": {"n_stairs": 2, "n_blocks_high": 3, "n_blocks_low": 3, "amplitude": 0.01},
    "boxes": {"n_boxes": 6, "n_walls": 3},
    "cluttered": {"n_boxes": 22, "n_walls": 4, "amplitude": 0.03},
    "mixed": {
        "amplitude": 0.05, "n_hills": 2, "n_ramps": 1, "n_stairs": 1,
        "n_blocks_high": 2, "n_boxes": 5, "n_walls": 2,
    },
}
_BASE_PARAMS: dict[str, Any] = {
    "amplitude": 0.0,        # roughness: peak height of the multi-octave noise (m)
    "wavelength": 2.0,       # roughness: longest noise wavelength (m)
    "rubble": 0.0,           # foot-scale bumps and hollows: peak height (m); 0 = none
    "rubble_size": 0.4,      # foot-scale bumps and hollows: spacing (m)
    "n_hills": 0,            # Gaussian hills/dips
    "n_ramps": 0,            # plateaus reached by ramps (cliff sides)
    "max_slope_deg": 25.0,   # steepest slope of hills and ramps (deg)
    "n_stairs": 0,           # staircases (up, landing, down)
    "closed_sides": False,   # ramps and staircases rise on all four sides (pyramids, no cliff sides)
    "step_rise": (0.10, 0.15),  # stair riser range (m)
    "n_blocks_low": 0,       # climbable platforms (0.08-0.15 m)
    "n_blocks_high": 0,      # unclimbable platforms (0.35-0.6 m)
    "n_boxes": 0,            # box obstacles
    "n_walls": 0,            # thin walls
    "path_bias": 0.5,        # fraction of features placed near the start-goal line
    "keepout": 1.5,          # feature-free radius around start and goal (m)
    "n_patches": 0,          # flat patches of slippery ground (morobot.sim.patches)
    "patch_size": (1.5, 3.0),  # patch edge length range (m)
    "patch_friction": (0.1, 0.25),  # patch sliding friction range
}


def _box_on_terrain(world: World, cx: float, cy: float, sx: float, sy: float, height: float,
                    yaw: float) -> Box:
    """A box of ``height`` above the highest terrain under its footprint, sunk 5 cm into the lowest."""
    if min(sx, sy, height) <= 0:
        raise ValueError(f"box size must be positive, got {(sx, sy, height)}")
    n_u = max(2, int(math.ceil(sx / world.resolution)) + 1)
    n_v = max(2, int(math.ceil(sy / world.resolution)) + 1)
    u, v = np.meshgrid(np.linspace(-0.5 * sx, 0.5 * sx, n_u), np.linspace(-0.5 * sy, 0.5 * sy, n_v))
    c, s = math.cos(yaw), math.sin(yaw)
    hs = world.height_at(cx + c * u - s * v, cy + s * u + c * v)
    if np.all(np.isnan(hs)):
        raise ValueError(f"box at ({cx:.2f}, {cy:.2f}) lies outside the world")
    bottom, top = float(np.nanmin(hs)) - 0.05, float(np.nanmax(hs)) + height
    return Box((cx, cy, 0.5 * (bottom + top)), (sx, sy, top - bottom), yaw)


def _default_start_goal(size: tuple[float, float], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    sx, sy = size
    start = np.array([-0.35 * sx, rng.uniform(-0.15, 0.15) * sy, 0.0])
    goal = np.array([0.35 * sx, rng.uniform(-0.15, 0.15) * sy, 0.0])
    yaw = math.atan2(goal[1] - start[1], goal[0] - start[0])
    start[2] = goal[2] = yaw
    return start, goal


def _pose(p: Optional[Sequence[float]], default: np.ndarray, what: str) -> np.ndarray:
    if p is None:
        return default
    a = np.asarray(p, dtype=float).ravel()
    if a.shape == (2,):
        a = np.append(a, default[2])
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be (x, y) or (x, y, yaw) of finite numbers, got {p!r}")
    return a


def _clear_corridor(world: World, fixed: int) -> None:
    """Smooth the terrain and drop generated boxes along the straight start-goal corridor."""
    a, b = np.array(world.start[:2]), np.array(world.goal[:2])
    xs, ys = world.cell_centres()
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    seg = b - a
    t = np.clip(((gx - a[0]) * seg[0] + (gy - a[1]) * seg[1]) / max(seg @ seg, 1e-9), 0.0, 1.0)
    dist = np.hypot(gx - (a[0] + t * seg[0]), gy - (a[1] + t * seg[1]))
    half = world.limits.robot_radius + 0.6
    weight = np.clip((half + 0.6 - dist) / 0.6, 0.0, 1.0)
    smooth = ndimage.gaussian_filter(world.heights.astype(np.float64), sigma=1.0 / world.resolution)
    world.heights = (weight * smooth + (1.0 - weight) * world.heights).astype(np.float32)
    keep = world.boxes[:fixed]
    samples = a + np.linspace(0.0, 1.0, 200)[:, None] * seg
    for box in world.boxes[fixed:]:
        if float(box.distance_xy(samples[:, 0], samples[:, 1]).min()) > half:
            keep.append(box)
    world.boxes = keep
    # a patch whose ground the smoothing touched is no longer flat: keep only the untouched ones
    world.patches = [p for p in world.patches
                     if not np.any(weight[footprint(p, world.origin, world.resolution, world.shape)] > 0)]
    world._cache.clear()


def make_world(kind: str, seed: int, size: Sequence[float] = (20.0, 20.0), resolution: float = 0.1, *,
               name: Optional[str] = None, start: Optional[Sequence[float]] = None,
               goal: Optional[Sequence[float]] = None, boxes: Sequence[dict] = (),
               limits: Optional[TraversabilityLimits] = None, **params: Any) -> World:
    """Generate a world, deterministic in ``(kind, seed, size, resolution, params)``.

    Args:
        kind: one of :data:`KINDS`; it sets default ``params`` (any kind accepts all of them).
        seed: random seed.
        size: ``(sx, sy)`` world size (m); the world is centred on the origin.
        resolution: heightfield cell size (m).
        name: world name (defaults to ``kind``).
        start: start ``(x, y[, yaw])``; default on the -x side.
        goal: goal ``(x, y[, yaw])``; default on the +x side.
        boxes: fixed extra boxes, dicts with ``center`` (x, y), ``size`` (sx, sy, height above the
            terrain) and optional ``yaw``; they are never removed by corridor clearing.
        limits: traversability limits (default :class:`TraversabilityLimits`).
        **params: generator parameters, see ``_BASE_PARAMS`` (amplitude, wavelength, n_hills,
            n_ramps, max_slope_deg, n_stairs, step_rise, closed_sides, n_blocks_low, n_blocks_high, n_boxes,
            n_walls, path_bias, keepout, rubble, rubble_size, n_patches, patch_size, patch_friction).

    Returns:
        A world whose goal is reachable from its start.

    Raises:
        ValueError: unknown kind or parameter, bad sizes, or fixed boxes that block every path.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown world kind {kind!r}; expected one of {KINDS}")
    unknown = set(params) - set(_BASE_PARAMS)
    if unknown:
        raise ValueError(f"unknown world parameters {sorted(unknown)}; allowed: {sorted(_BASE_PARAMS)}")
    size_t = _finite_tuple(size, 2, "size")
    if min(size_t) < 4.0:
        raise ValueError(f"world size must be at least 4 m per side, got {size}")
    if not (math.isfinite(resolution) and 0.02 <= resolution <= 0.5):
        raise ValueError(f"resolution must be within [0.02, 0.5] m, got {resolution}")
    p = {**_BASE_PARAMS, **_DEFAULTS[kind], **params}
    limits = limits or TraversabilityLimits()
    base_rng = np.random.default_rng(seed)
    d_start, d_goal = _default_start_goal(size_t, base_rng)
    start_a, goal_a = _pose(start, d_start, "start"), _pose(goal, d_goal, "goal")
    for q in (start_a, goal_a):
        if abs(q[0]) > 0.5 * size_t[0] - 1.0 or abs(q[1]) > 0.5 * size_t[1] - 1.0:
            raise ValueError(f"start/goal {tuple(q)} must be at least 1 m inside the {size_t} world")
    world = None
    for attempt in range(_REGENERATE_ATTEMPTS):
        world = _generate(kind, seed, attempt, size_t, resolution, p, start_a, goal_a, boxes, limits, name)
        if is_reachable(world):
            return world
    assert world is not None
    _clear_corridor(world, fixed=len(boxes))
    if not is_reachable(world):
        raise ValueError(f"world {world.name!r}: goal unreachable from start even after clearing a "
                         "corridor; the fixed boxes or start/goal poses block every path")
    return world


def _generate(kind: str, seed: int, attempt: int, size: tuple[float, float], res: float, p: dict,
              start: np.ndarray, goal: np.ndarray, fixed: Sequence[dict], limits: TraversabilityLimits,
              name: Optional[str]) -> World:
    rng = np.random.default_rng([int(seed), attempt])
    cv = tf.Canvas(size, res, rng, start, goal, float(p["keepout"]), float(p["path_bias"]))
    tf.add_rough(cv, float(p["amplitude"]), float(p["wavelength"]))
    tf.add_hills(cv, int(p["n_hills"]), float(p["max_slope_deg"]))
    tf.add_ramps(cv, int(p["n_ramps"]), float(p["max_slope_deg"]), bool(p["closed_sides"]))
    tf.add_stairs(cv, int(p["n_stairs"]), p["step_rise"], bool(p["closed_sides"]))
    tf.add_blocks(cv, int(p["n_blocks_low"]), tf.LOW)
    tf.add_blocks(cv, int(p["n_blocks_high"]), tf.HIGH)
    tf.add_boxes(cv, int(p["n_boxes"]), int(p["n_walls"]))
    tf.add_rubble(cv, float(p["rubble"]), float(p["rubble_size"]))  # earlier features keep their draws
    patches = tf.add_patches(cv, int(p["n_patches"]), p["patch_size"], p["patch_friction"])  # after the rubble: flat
    world = World(name=name or kind, kind=kind, seed=int(seed), heights=cv.h, resolution=res,
                  origin=cv.origin, patches=patches, start=tuple(start), goal=tuple(goal), limits=limits)
    boxes = []
    for spec in fixed:
        boxes.append(_fixed_box(world, spec))
    for cx, cy, sx, sy, sz, yaw in cv.boxes_xy:
        boxes.append(_box_on_terrain(world, cx, cy, sx, sy, sz, yaw))
    world.boxes = boxes
    return world


def _fixed_box(world: World, spec: dict) -> Box:
    if not isinstance(spec, dict) or "center" not in spec or "size" not in spec:
        raise ValueError(f"fixed box needs 'center' (x, y) and 'size' (sx, sy, height), got {spec!r}")
    c = np.asarray(spec["center"], dtype=float).ravel()
    s = np.asarray(spec["size"], dtype=float).ravel()
    if c.shape != (2,) or s.shape != (3,) or not (np.all(np.isfinite(c)) and np.all(np.isfinite(s))):
        raise ValueError(f"fixed box center must be (x, y) and size (sx, sy, height), got {spec!r}")
    return _box_on_terrain(world, c[0], c[1], s[0], s[1], s[2], float(spec.get("yaw", 0.0)))


def load_world(name_or_path: str | Path) -> World:
    """Load a named world (``config/worlds/<name>.yaml``) or a YAML file.

    The YAML holds ``kind`` and ``seed`` and optionally ``size``, ``resolution``, ``params``,
    ``start``, ``goal`` and ``boxes`` (see :func:`make_world`).

    Raises:
        FileNotFoundError: no such world file.
        ValueError: malformed YAML content.
    """
    from morobot.paths import config_path

    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.is_file()):
        named = world_names()
        if text not in named:
            raise FileNotFoundError(f"no world named {text!r}; named worlds: {', '.join(named)} (or a YAML path)")
        path = config_path(f"worlds/{text}.yaml")
    if not path.is_file():
        raise FileNotFoundError(f"world file not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            spec = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(spec, dict) or "kind" not in spec or "seed" not in spec:
        raise ValueError(f"{path}: a world file needs at least 'kind' and 'seed'")
    allowed = {"name", "kind", "seed", "size", "resolution", "params", "start", "goal", "boxes"}
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: 'params' must be a mapping")
    try:
        return make_world(
            spec["kind"], int(spec["seed"]), size=spec.get("size", (20.0, 20.0)),
            resolution=float(spec.get("resolution", 0.1)), name=spec.get("name", path.stem),
            start=spec.get("start"), goal=spec.get("goal"), boxes=spec.get("boxes") or (), **params,
        )
    except (TypeError, ValueError, KeyError) as exc:  # one line, numbers as written (no numpy reprs)
        message = re.sub(r"np\.(?:float|int)\d+\(([^)]*)\)", r"\1", str(exc)).splitlines()[0]
        raise ValueError(f"{path}: {message}") from None


def world_names() -> list[str]:
    """The named worlds (``config/worlds/*.yaml``)."""
    from morobot import paths

    return sorted(p.stem for p in (paths.share_dir() / "config" / "worlds").glob("*.yaml"))


def plot_world(ax: Any, world: World, show_clearance: bool = False) -> Any:
    """Draw a top-down view: height colormap, box outlines, start (circle) and goal (star).

    Args:
        ax: a matplotlib ``Axes``.
        world: the world to draw.
        show_clearance: also outline untraversable terrain cells.

    Returns:
        The ``AxesImage`` of the heightfield (for a colorbar).
    """
    from matplotlib.patches import Polygon

    x0, x1, y0, y1 = world.extent
    r = 0.5 * world.resolution
    img = ax.imshow(world.heights.T, origin="lower", extent=(x0 - r, x1 + r, y0 - r, y1 + r),
                    cmap="terrain", interpolation="nearest")
    if show_clearance and world.terrain_obstacle_mask().any():
        xs, ys = world.cell_centres()
        ax.contour(xs, ys, world.terrain_obstacle_mask().T.astype(float), levels=[0.5],
                   colors="k", linewidths=0.5)
    for box in world.boxes:
        ax.add_patch(Polygon(box.corners_xy(), closed=True, fill=True, facecolor="0.35",
                             edgecolor="k", alpha=0.8))
    for patch in world.patches:
        ax.add_patch(Polygon(patch.corners_xy(), closed=True, fill=True, facecolor="tab:cyan", edgecolor="tab:blue",
                             hatch="//", alpha=0.5))
    for pose, marker, colour in ((world.start, "o", "tab:blue"), (world.goal, "*", "tab:red")):
        ax.plot(pose[0], pose[1], marker, color=colour, markersize=12, markeredgecolor="k")
        ax.arrow(pose[0], pose[1], 0.6 * math.cos(pose[2]), 0.6 * math.sin(pose[2]), width=0.05,
                 color=colour)
    ax.set_xlim(x0 - r, x1 + r)
    ax.set_ylim(y0 - r, y1 + r)
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_title(f"{world.name} ({world.kind}, seed {world.seed})")
    return img
