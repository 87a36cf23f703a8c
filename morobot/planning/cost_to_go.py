"""Obstacle-aware cost-to-go: a geodesic distance field to the goal over the height map.

A Euclidean goal distance makes MPPI's terminal cost blind to obstacles: behind a wall or inside a
U-shaped pocket every short rollout that ends closer to the goal looks better than the detour, so
the planner settles in a local minimum. This module replaces ``|p - g|`` by the length of the
cheapest path to the goal through the map, computed once per planning cycle:

1. **Cell costs.** The per-cell risk map of :meth:`KinematicModel.risk_map` (step, slope and
   unknown, already reduced over the robot's footprint, so obstacles are inflated by the footprint
   radius and mean exactly what they mean for the rollout risk) becomes a travel cost per metre
   ``c = 1 + risk_cost * risk + inflation_cost * max(0, 1 - d_lethal / inflation_radius)``; an
   unknown cell has risk ``unknown_risk`` (0.3), so it costs ``1 + 0.3 risk_cost`` per metre. Cells
   whose risk exceeds ``lethal_risk`` are untraversable, except, with a goal ``allowance``
   ``(radius, level)``, cells within ``radius`` of the goal whose risk does not exceed ``level``
   (the goal's own spot on rough ground, :class:`~morobot.planning.cost.NavigationCost`).
2. **Seeds.** A goal inside the map seeds the traversable cells within 1.5 cells of it (or, if the
   goal itself is untraversable, the nearest traversable ones) with their Euclidean distance to
   the goal. A goal outside the map seeds every traversable border cell with its shortest distance
   to the goal *around* the map rectangle (straight if the goal lies on the outer side of the
   cell's edge, else along the border to a corner that sees the goal) plus ``outside_penalty``, so
   the field leads to the best exit.
3. **Dijkstra** from a virtual source joined to the seeds (edge weight = seed offset) over a
   16-connected grid (axis, diagonal and knight moves; 8 is available): an edge costs its length
   times the mean cost of the cells it crosses and is left out if any of them is untraversable.
   16-connectivity bounds the free-space error to 2.7 % (8-connectivity: 8.2 %). The graph
   structure is built once per grid shape; each cycle only recomputes edge weights.
4. **Cut off.** If the goal is on the map but some border cells cannot reach it inside the map,
   a second pass also seeds every border cell with the cheapest walk round the outside of the map
   (the shorter perimeter arc) to a border cell that does reach it, plus that cell's cost-to-go,
   plus ``exit_penalty``: the way round may lie outside the map.
5. **Fill.** Untraversable cells and cells not connected to any seed take the value of the
   nearest reachable cell plus ``lethal_cost`` per metre of distance to it, so the field is finite
   everywhere and leads out of obstacles (a robot that starts inside one still has a gradient).
6. **Excess.** The field is stored as the *excess* ``E = G - |c - g| >= 0`` over the Euclidean
   distance and evaluated as ``d(p) = |p - g| + bilinear(E)(p)``: exact near the goal (no rounded
   apex from interpolating a cone), equal to the Euclidean distance in free space up to the
   metrication error, and larger by the detour length behind obstacles. Points off the map take
   the excess of the nearest border cell.

Sampling is one batched ``grid_sample`` over all rollout poses. Everything here is pure (no rclpy).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from morobot.planning.interface import HeightMap

_UNREACHED = 1e8  # field values above this (inf) were not reached from any seed
_SEED_EPS = 1e-9  # scipy drops explicit zero edges: seed offsets get this added


class RiskMapSource(Protocol):
    """Anything that turns a height map into a per-cell risk map, e.g. ``KinematicModel``."""

    def risk_map(self, hmap: HeightMap) -> torch.Tensor: ...


@dataclass
class CostToGoConfig:
    """Parameters of :class:`CostToGo` (SI units).

    Attributes:
        lethal_risk: cells whose footprint risk exceeds this are untraversable (the planner node's
            ``ctg_lethal_risk``, 0.5 like the safety stop's ``risk_threshold``; it must stay above the risk
            of unknown cells, or they become walls).
        risk_cost: extra travel cost per metre per unit of risk (an unknown cell, risk 0.3 with
            the default kinematic model, costs ``1 + 0.3 risk_cost`` per metre).
        inflation_radius: distance (m) from untraversable cells over which the inflation cost
            decays linearly to 0 (0 disables it): keeps the path off the obstacle boundary.
        inflation_cost: extra cost per metre right next to an untraversable cell.
        lethal_cost: slope (cost per metre) of the field inside untraversable or unreachable
            cells, towards the nearest reachable cell.
        outside_penalty: added to the border seeds when the goal lies outside the map.
        exit_penalty: added to the way round outside the map when the goal lies on the map but
            is cut off from part of it (the outside is unknown).
        connectivity: 8 or 16 (adds knight moves: 2.7 % instead of 8.2 % free-space error).
        downsample: solve on blocks of ``downsample x downsample`` map cells (1 = the map's own
            grid). A block is traversable if any of its cells is (passages never close) and costs
            the mean of its traversable cells; 2 makes a 120 x 120 map about 4x cheaper.
    """

    lethal_risk: float = 0.5
    risk_cost: float = 2.0
    inflation_radius: float = 0.3
    inflation_cost: float = 1.0
    lethal_cost: float = 10.0
    outside_penalty: float = 0.0
    exit_penalty: float = 2.0
    connectivity: int = 16
    downsample: int = 1

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(float(value)) or float(value) < 0.0:
                raise ValueError(f"CostToGoConfig.{name} must be finite and >= 0, got {value!r}")
        if not 0.0 <= self.lethal_risk <= 1.0:
            raise ValueError(f"lethal_risk must lie in [0, 1], got {self.lethal_risk!r}")
        if self.lethal_cost < 1.0:
            raise ValueError(f"lethal_cost must be >= 1 (the field must not fall below the Euclidean distance), "
                             f"got {self.lethal_cost!r}")
        if int(self.downsample) != self.downsample or int(self.downsample) < 1:
            raise ValueError(f"downsample must be a positive integer, got {self.downsample!r}")
        if int(self.connectivity) not in (8, 16):
            raise ValueError(f"connectivity must be 8 or 16, got {self.connectivity!r}")


class GeodesicField:
    """Cost-to-go of one map and goal, sampled at batches of positions.

    Attributes:
        goal: goal ``(x, y)`` in odom.
        origin: odom ``(x, y)`` of cell ``[0, 0]``'s centre.
        resolution: cell size (m).
        values: ``[rows, cols]`` float64 cost-to-go ``G`` at the cell centres (metres of
            equivalent free travel; finite everywhere after the fill).
        traversable: ``[rows, cols]`` bool, cells below the lethal risk.
        reachable: ``[rows, cols]`` bool, traversable cells connected to a seed.
        goal_inside: whether the goal lies on the map.
    """

    def __init__(self, values: np.ndarray, traversable: np.ndarray, reachable: np.ndarray,
                 origin: Sequence[float], resolution: float, goal: Sequence[float], goal_inside: bool) -> None:
        self.values = values
        self.traversable = traversable
        self.reachable = reachable
        self.origin = (float(origin[0]), float(origin[1]))
        self.resolution = float(resolution)
        self.goal = (float(goal[0]), float(goal[1]))
        self.goal_inside = bool(goal_inside)
        rows, cols = values.shape
        xs = self.origin[0] + self.resolution * np.arange(rows)
        ys = self.origin[1] + self.resolution * np.arange(cols)
        euclid = np.hypot(xs[:, None] - self.goal[0], ys[None, :] - self.goal[1])
        self.excess = np.maximum(values - euclid, 0.0)
        # grid_sample needs at least 2 samples per axis for align_corners; repeat a single row.
        padded = np.pad(self.excess, ((0, 1 if rows == 1 else 0), (0, 1 if cols == 1 else 0)), mode="edge")
        self._excess_t = torch.as_tensor(padded, dtype=torch.float32)[None, None]
        self._cache: dict = {}

    def matches(self, goal: Sequence[float], tol: float = 1e-6) -> bool:
        """Whether the field was built for this goal position."""
        return abs(float(goal[0]) - self.goal[0]) <= tol and abs(float(goal[1]) - self.goal[1]) <= tol

    def excess_at(self, xy: torch.Tensor) -> torch.Tensor:
        """Bilinear excess over the Euclidean distance at ``xy [..., 2]`` (border value off the map)."""
        key = (xy.dtype, xy.device)
        grid_map = self._cache.get(key)
        if grid_map is None:
            grid_map = self._excess_t.to(dtype=xy.dtype, device=xy.device)
            self._cache[key] = grid_map
        rows, cols = grid_map.shape[-2:]
        res = self.resolution
        # grid_sample's (x, y) index (width = columns = odom y, height = rows = odom x).
        sx, sy = 2.0 / (res * (cols - 1)), 2.0 / (res * (rows - 1))
        gx = (xy[..., 1] - self.origin[1]) * sx - 1.0
        gy = (xy[..., 0] - self.origin[0]) * sy - 1.0
        grid = torch.stack((gx, gy), dim=-1).reshape(1, -1, 1, 2)
        out = F.grid_sample(grid_map, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return out.reshape(xy.shape[:-1])

    def distance(self, xy: torch.Tensor) -> torch.Tensor:
        """Cost-to-go ``|p - g| + E(p)`` at positions ``xy [..., 2]`` (float32/64, any device).

        Raises:
            ValueError: if ``xy`` is not a floating tensor with a last dimension of 2.
        """
        if not isinstance(xy, torch.Tensor) or xy.dim() < 1 or xy.shape[-1] != 2 or not xy.is_floating_point():
            raise ValueError(f"xy must be a floating [..., 2] tensor, got {getattr(xy, 'shape', type(xy).__name__)}")
        euclid = torch.hypot(xy[..., 0] - self.goal[0], xy[..., 1] - self.goal[1])
        return euclid + self.excess_at(xy)


class CostToGo:
    """Builds :class:`GeodesicField` s from height maps with a shared risk model.

    Args:
        risk_source: provides ``risk_map(hmap)`` (e.g. the planner's ``KinematicModel``; sharing
            the instance shares its per-map cache).
        config: parameters; defaults if ``None``.
    """

    def __init__(self, risk_source: RiskMapSource, config: Optional[CostToGoConfig] = None) -> None:
        if not callable(getattr(risk_source, "risk_map", None)):
            raise ValueError("risk_source must provide risk_map(hmap)")
        self.risk_source = risk_source
        self.config = config if config is not None else CostToGoConfig()
        self._graph: Optional[_GridGraph] = None
        self._last_risk: Optional[torch.Tensor] = None
        self._last_key: Optional[tuple] = None
        self._last_field: Optional[GeodesicField] = None

    def build(self, hmap: HeightMap, goal: Sequence[float],
              allowance: Optional[tuple[float, float]] = None) -> GeodesicField:
        """The field for ``hmap`` and goal ``(x, y[, yaw])``, cached for the same map, goal and ``allowance``
        (``(radius, level)`` near the goal, see :func:`geodesic_field`; ``None``: none).

        Raises:
            ValueError: on a malformed height map or a non-finite goal.
        """
        g = np.asarray(goal, dtype=np.float64).ravel()
        if g.size < 2 or not np.all(np.isfinite(g[:2])):
            raise ValueError(f"goal must hold finite (x, y), got {goal!r}")
        risk = self.risk_source.risk_map(hmap)
        # Keyed on the risk tensor itself (held, so its id cannot be reused) and its version.
        key = (risk._version, tuple(map(float, hmap.origin)), float(hmap.resolution), float(g[0]), float(g[1]),
               None if allowance is None else tuple(map(float, allowance)))
        if self._last_risk is risk and self._last_key == key and self._last_field is not None:
            return self._last_field
        risk_np = risk.detach().to("cpu", torch.float64).numpy()
        factor = int(self.config.downsample)
        shape = (-(-risk_np.shape[0] // factor), -(-risk_np.shape[1] // factor))
        field = geodesic_field(risk_np, hmap.origin, float(hmap.resolution), (g[0], g[1]), self.config,
                               graph=self._graph_for(shape), allowance=allowance)
        self._last_risk, self._last_key, self._last_field = risk, key, field
        return field

    def _graph_for(self, shape: tuple[int, int]) -> "_GridGraph":
        if self._graph is None or self._graph.shape != tuple(shape) or \
                self._graph.connectivity != int(self.config.connectivity):
            self._graph = _GridGraph(tuple(shape), int(self.config.connectivity))
        return self._graph


def geodesic_field(risk: np.ndarray, origin: Sequence[float], resolution: float, goal: Sequence[float],
                   config: Optional[CostToGoConfig] = None, graph: Optional["_GridGraph"] = None,
                   allowance: Optional[tuple[float, float]] = None) -> GeodesicField:
    """Geodesic cost-to-go over a per-cell risk grid (see the module docstring).

    Args:
        risk: ``[rows, cols]`` risk in ``[0, 1]`` (row along odom +x); NaN counts as untraversable.
        origin: odom ``(x, y)`` of cell ``[0, 0]``'s centre.
        resolution: cell size (m).
        goal: goal ``(x, y)``.
        config: parameters; defaults if ``None``.
        graph: a cached grid graph of the same shape and connectivity (built if ``None``).
        allowance: ``(radius, level)``: cells within ``radius`` (m) of the goal are traversable up to
            risk ``level`` when that is above ``lethal_risk``; ``None``: no exception.

    Returns:
        The field; with no traversable seed at all it is the Euclidean distance (excess 0).

    Raises:
        ValueError: on a malformed grid, origin, resolution or goal.
    """
    cfg = config if config is not None else CostToGoConfig()
    risk = np.asarray(risk, dtype=np.float64)
    if risk.ndim != 2 or min(risk.shape) < 1:
        raise ValueError(f"risk must be a non-empty 2-D grid, got shape {risk.shape}")
    res = float(resolution)
    if not math.isfinite(res) or res <= 0.0:
        raise ValueError(f"resolution must be positive and finite, got {resolution!r}")
    ox, oy = (float(v) for v in origin)
    gx, gy = (float(v) for v in goal[:2])
    if not all(math.isfinite(v) for v in (ox, oy, gx, gy)):
        raise ValueError(f"origin and goal must be finite, got {origin!r}, {goal!r}")
    traversable = np.isfinite(risk) & (risk <= cfg.lethal_risk)
    if allowance is not None:
        radius, level = (float(v) for v in allowance)
        if not (math.isfinite(radius) and math.isfinite(level)):
            raise ValueError(f"allowance must be two finite numbers, got {allowance!r}")
        cx = ox + res * np.arange(risk.shape[0])
        cy = oy + res * np.arange(risk.shape[1])
        near = np.hypot(cx[:, None] - gx, cy[None, :] - gy) <= radius
        traversable |= near & np.isfinite(risk) & (risk <= level)
    risk0 = np.where(np.isfinite(risk), np.clip(risk, 0.0, 1.0), 1.0)
    cost = 1.0 + cfg.risk_cost * risk0
    if cfg.inflation_radius > 0.0 and cfg.inflation_cost > 0.0 and not traversable.all():
        d_lethal = ndimage.distance_transform_edt(traversable) * res
        cost += cfg.inflation_cost * np.clip(1.0 - d_lethal / cfg.inflation_radius, 0.0, 1.0)
    factor = int(cfg.downsample)
    if factor > 1:
        traversable, cost = _pool(traversable, cost, factor)
        ox, oy = ox + 0.5 * (factor - 1) * res, oy + 0.5 * (factor - 1) * res
        res *= factor
    rows, cols = cost.shape
    if graph is None or graph.shape != (rows, cols) or graph.connectivity != int(cfg.connectivity):
        graph = _GridGraph((rows, cols), int(cfg.connectivity))

    xs = ox + res * np.arange(rows)
    ys = oy + res * np.arange(cols)
    euclid = np.hypot(xs[:, None] - gx, ys[None, :] - gy)
    fi, fj = (gx - ox) / res, (gy - oy) / res
    goal_inside = -0.5 <= fi <= rows - 0.5 and -0.5 <= fj <= cols - 0.5

    border = np.zeros((rows, cols), dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    exits = np.flatnonzero(border & traversable)
    rect = (xs[0], xs[-1], ys[0], ys[-1])
    exit_xy = np.stack((np.broadcast_to(xs[:, None], (rows, cols)).ravel()[exits],
                        np.broadcast_to(ys[None, :], (rows, cols)).ravel()[exits]), axis=-1)

    if goal_inside:
        near = traversable & (euclid <= 1.5 * res + 1e-9)
        if not near.any() and traversable.any():
            d_min = euclid[traversable].min()
            near = traversable & (euclid <= d_min + res + 1e-9)
        seeds = np.flatnonzero(near)
        offsets = euclid.ravel()[seeds]
    else:
        seeds = exits
        offsets = _outside_distance(exit_xy, rect, (gx, gy)) + cfg.outside_penalty

    if seeds.size == 0:
        values = euclid.copy()
        reachable = np.zeros_like(traversable)
        return GeodesicField(values, traversable, reachable, (ox, oy), res, (gx, gy), goal_inside)
    values = graph.solve(cost, traversable, seeds, offsets, res).reshape(rows, cols)
    reachable = traversable & (values < _UNREACHED)
    if goal_inside and not reachable.all():
        # Part of the map is cut off from the goal inside the map: a way round may lie outside it.
        # Second pass: every exit is seeded with the cheapest walk around the map's outside
        # (shorter perimeter arc) to an exit the goal is reachable from, plus its cost-to-go.
        reached = values.ravel()[exits] < _UNREACHED
        if reached.any() and not reached.all():
            arc = _perimeter_arc(exit_xy, exit_xy[reached], rect)
            via = (arc + values.ravel()[exits][reached][None, :]).min(axis=1) + cfg.exit_penalty
            seeds = np.concatenate((seeds, exits))
            offsets = np.concatenate((offsets, via))
            by_offset = np.argsort(offsets, kind="stable")  # a cell seeded twice keeps its lower offset
            _, first = np.unique(seeds[by_offset], return_index=True)
            seeds, offsets = seeds[by_offset][first], offsets[by_offset][first]
            values = graph.solve(cost, traversable, seeds, offsets, res).reshape(rows, cols)
            reachable = traversable & (values < _UNREACHED)
    if not reachable.all():
        values = _fill(values, reachable, res, cfg.lethal_cost)
    return GeodesicField(values, traversable, reachable, (ox, oy), res, (gx, gy), goal_inside)


def _perimeter_position(xy: np.ndarray, rect: tuple[float, float, float, float]) -> np.ndarray:
    """Arc length along the boundary of ``rect = (x0, x1, y0, y1)`` of points on it.

    The walk starts at ``(x0, y0)`` and goes ``(x0, y1)``, ``(x1, y1)``, ``(x1, y0)``.
    """
    x0, x1, y0, y1 = rect
    w, h = y1 - y0, x1 - x0
    x, y = xy[..., 0], xy[..., 1]
    tol = 1e-6 * max(w, h, 1.0)
    return np.select(
        [np.abs(x - x0) <= tol, np.abs(y - y1) <= tol, np.abs(x - x1) <= tol],
        [y - y0, w + (x - x0), w + h + (y1 - y)],
        2.0 * w + h + (x1 - x),
    )


def _perimeter_arc(a: np.ndarray, b: np.ndarray, rect: tuple[float, float, float, float]) -> np.ndarray:
    """``[len(a), len(b)]`` shorter boundary arc between points on ``rect``'s boundary.

    For two points on the boundary of a convex region this is the shortest path between them
    that does not enter it.
    """
    x0, x1, y0, y1 = rect
    perimeter = 2.0 * ((x1 - x0) + (y1 - y0))
    d = np.abs(_perimeter_position(a, rect)[:, None] - _perimeter_position(b, rect)[None, :])
    return np.minimum(d, perimeter - d)


def _outside_distance(xy: np.ndarray, rect: tuple[float, float, float, float], goal: tuple[float, float]) -> np.ndarray:
    """Shortest distance from points on ``rect``'s boundary to an outside goal, not entering ``rect``.

    Straight if the goal is on the outer side of the point's edge, else along the boundary to a
    corner the goal can see and straight from there.
    """
    x0, x1, y0, y1 = rect
    gx, gy = goal
    x, y = xy[:, 0], xy[:, 1]
    tol = 1e-6 * max(x1 - x0, y1 - y0, 1.0)
    visible = (((np.abs(x - x0) <= tol) & (gx <= x0)) | ((np.abs(x - x1) <= tol) & (gx >= x1))
               | ((np.abs(y - y0) <= tol) & (gy <= y0)) | ((np.abs(y - y1) <= tol) & (gy >= y1)))
    direct = np.hypot(x - gx, y - gy)
    corners = np.array([[x0, y0], [x0, y1], [x1, y1], [x1, y0]])
    corner_sees = np.array([gx <= x0 or gy <= y0, gx <= x0 or gy >= y1, gx >= x1 or gy >= y1,
                            gx >= x1 or gy <= y0])
    if not corner_sees.any():  # only for a goal on the boundary itself
        return direct
    around = (_perimeter_arc(xy, corners[corner_sees], rect)
              + np.hypot(corners[corner_sees, 0] - gx, corners[corner_sees, 1] - gy)[None, :]).min(axis=1)
    return np.where(visible, direct, around)


def _pool(traversable: np.ndarray, cost: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of ``factor x factor`` cells: traversable if any cell is, mean cost of those cells."""
    rows, cols = cost.shape
    pr, pc = -rows % factor, -cols % factor
    trav = np.pad(traversable, ((0, pr), (0, pc)), constant_values=False)
    cst = np.pad(cost, ((0, pr), (0, pc)), constant_values=0.0)
    shape = (trav.shape[0] // factor, factor, trav.shape[1] // factor, factor)
    trav_b, cost_b = trav.reshape(shape), cst.reshape(shape)
    count = trav_b.sum(axis=(1, 3))
    valid = np.pad(np.ones((rows, cols)), ((0, pr), (0, pc))).reshape(shape).sum(axis=(1, 3))
    mean_trav = np.where(trav_b, cost_b, 0.0).sum(axis=(1, 3)) / np.maximum(count, 1)
    mean_all = cost_b.sum(axis=(1, 3)) / valid
    return count > 0, np.where(count > 0, mean_trav, mean_all)


def _fill(values: np.ndarray, reachable: np.ndarray, res: float, slope: float) -> np.ndarray:
    """Unreachable cells: nearest reachable value plus ``slope`` times the distance to it."""
    if not reachable.any():
        return values
    dist, (ii, jj) = ndimage.distance_transform_edt(~reachable, return_indices=True)
    filled = values[ii, jj] + slope * res * dist
    return np.where(reachable, values, filled)


class _GridGraph:
    """Fixed CSR structure of an 8/16-connected grid plus a virtual source row for the seeds.

    Every cell has one slot per move (``connectivity`` slots, in both directions): a cycle's weights
    are a dense ``[rows, cols, moves]`` array filled by shifted slices, and the CSR arrays are
    that array masked by the unblocked slots (already in row order: no sorting). Slots that leave
    the grid count as blocked.
    """

    def __init__(self, shape: tuple[int, int], connectivity: int) -> None:
        rows, cols = shape
        self.shape = (rows, cols)
        self.connectivity = connectivity
        self.n = rows * cols
        half = [((1, 0), ()), ((0, 1), ()), ((1, 1), ((1, 0), (0, 1))), ((1, -1), ((1, 0), (0, -1)))]
        if connectivity == 16:
            # Knight moves cross their two middle cells.
            half += [((2, 1), ((1, 0), (1, 1))), ((1, 2), ((0, 1), (1, 1))),
                     ((2, -1), ((1, 0), (1, -1))), ((1, -2), ((0, -1), (1, -1)))]
        moves = []
        for (di, dj), mids in half:
            moves.append(((di, dj), mids))
            moves.append(((-di, -dj), tuple((mi - di, mj - dj) for mi, mj in mids)))
        # (offset, middle cells, length in cells, middle cells enter the cost?) -- diagonals only
        # touch their side cells: those block (no squeezing between two corners) but do not cost.
        self.moves = [(d, mids, math.hypot(*d), abs(d[0]) + abs(d[1]) == 3) for d, mids in moves]
        ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        here = ii * cols + jj
        slots = np.empty((rows, cols, len(moves)), dtype=np.int32)
        for k, ((di, dj), _mids, _len, _mid_cost) in enumerate(self.moves):
            ti, tj = ii + di, jj + dj
            inside = (ti >= 0) & (ti < rows) & (tj >= 0) & (tj < cols)
            slots[..., k] = np.where(inside, ti * cols + tj, here)
        self.indices = slots.ravel()
        self.pad = 2

    def solve(self, cost: np.ndarray, traversable: np.ndarray, seeds: np.ndarray, offsets: np.ndarray,
              res: float) -> np.ndarray:
        """Cheapest-path cost from the seeds (with their offsets) to every cell, ``[rows * cols]``."""
        rows, cols = self.shape
        p = self.pad
        cp = np.pad(cost, p, mode="constant", constant_values=1.0)
        bp = np.pad(~traversable, p, mode="constant", constant_values=True)
        centre = cost
        blocked_here = ~traversable
        data = np.empty((rows, cols, len(self.moves)))
        keep = np.empty((rows, cols, len(self.moves)), dtype=bool)

        def shifted(arr, di, dj):
            return arr[p + di : p + di + rows, p + dj : p + dj + cols]

        for k, ((di, dj), mids, length, mid_cost) in enumerate(self.moves):
            total = centre + shifted(cp, di, dj)
            bad = blocked_here | shifted(bp, di, dj)
            for mi, mj in mids:
                bad = bad | shifted(bp, mi, mj)
                if mid_cost:
                    total = total + shifted(cp, mi, mj)
            data[..., k] = total * (length * res / (4.0 if mid_cost else 2.0))
            keep[..., k] = ~bad
        # Blocked edges are left out (Dijkstra is about 2x faster than with huge weights).
        counts = keep.sum(axis=-1).ravel()
        indptr = np.zeros(self.n + 2, dtype=np.int32)
        np.cumsum(counts, out=indptr[1 : self.n + 1])
        indptr[-1] = indptr[-2] + seeds.size
        data = np.concatenate((data[keep], offsets + _SEED_EPS))
        indices = np.concatenate((self.indices[keep.ravel()], seeds.astype(np.int32)))
        graph = csr_matrix((data, indices, indptr), shape=(self.n + 1, self.n + 1))
        dist = dijkstra(graph, directed=True, indices=self.n)
        return dist[: self.n] - _SEED_EPS
