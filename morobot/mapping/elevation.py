"""Robot-centric elevation mapping from point clouds already expressed in ``odom``.

Pipeline of :meth:`ElevationMapper.integrate`:

1. drop non-finite points, points outside the map window around the robot, points outside
   ``[min_height, max_height]`` (odom z) and, with ``body_box``, the robot's own legs and body: the points
   inside that box in the base frame (:func:`body_mask`; depth cameras on a legged robot see its swinging
   feet, which would otherwise be mapped as obstacles next to it);
2. open3d voxel downsampling (and optional statistical outlier removal);
3. numpy binning: per cell, a robust *upper surface* estimate (the ``surface_quantile`` of the
   point heights in the cell, so sparse spikes below it are ignored and overhangs are kept);
4. temporal fusion into a world-fixed store: a cell that is unknown or older than ``max_age``
   takes the new value, otherwise ``(1 - fusion_weight) * old + fusion_weight * new``; each
   cell keeps the stamp of its last observation.

The store is a ``[rows, cols]`` window whose origin is snapped to a multiple of the resolution
and re-centred on the robot (the array is shifted by whole cells), so cells stay fixed in the
world while the robot moves. :meth:`ElevationMapper.height_map` marks cells older than
``max_age`` unknown (NaN) and returns a :class:`~morobot.planning.interface.HeightMap`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
import open3d as o3d
import torch

from morobot.frames import normalized_quaternion, points_and_position, unit_quaternion_to_rotation
from morobot.mapping.body import body_mask, check_box
from morobot.planning.interface import HeightMap


@dataclass
class ElevationMapConfig:
    """Parameters of :class:`ElevationMapper` (metres, seconds).

    Attributes:
        size_x: map extent along odom x.
        size_y: map extent along odom y.
        resolution: cell edge length.
        max_age: a cell not observed for longer than this becomes unknown.
        min_height: points with odom z below this are discarded.
        max_height: points with odom z above this are discarded.
        voxel_size: open3d voxel-downsampling size (0 disables downsampling).
        outlier_removal: run open3d statistical outlier removal after downsampling.
        outlier_neighbors: neighbours considered by the outlier removal.
        outlier_std_ratio: standard-deviation ratio of the outlier removal.
        surface_quantile: per-cell quantile of point heights taken as the surface, in [0, 1].
        fusion_weight: weight of a new observation for a cell that is still fresh, in (0, 1].
        body_box: ``(x_min, x_max, y_min, y_max, z_min, z_max)`` in the base frame (m): points inside it are
            the robot's own body and are dropped (:meth:`ElevationMapper.integrate` then needs the base
            pose); ``None``: no body filter.

    Raises:
        ValueError: (at construction) on non-finite, non-positive or inconsistent values.
    """

    size_x: float = 6.0
    size_y: float = 6.0
    resolution: float = 0.1
    max_age: float = 5.0
    min_height: float = -5.0
    max_height: float = 5.0
    voxel_size: float = 0.05
    outlier_removal: bool = False
    outlier_neighbors: int = 10
    outlier_std_ratio: float = 2.0
    surface_quantile: float = 0.9
    fusion_weight: float = 0.5
    body_box: Optional[tuple[float, ...]] = None

    def __post_init__(self) -> None:
        if self.body_box is not None:
            self.body_box = check_box(self.body_box)
        for name, value in asdict(self).items():
            if name not in ("outlier_removal", "body_box") and not math.isfinite(float(value)):
                raise ValueError(f"ElevationMapConfig.{name} must be finite, got {value!r}")
        for name in ("size_x", "size_y", "resolution", "max_age", "outlier_std_ratio"):
            if float(getattr(self, name)) <= 0.0:
                raise ValueError(f"ElevationMapConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.voxel_size < 0.0:
            raise ValueError(f"voxel_size must be >= 0, got {self.voxel_size!r}")
        if self.min_height >= self.max_height:
            raise ValueError(f"min_height ({self.min_height}) must be below max_height ({self.max_height})")
        if int(self.outlier_neighbors) < 1:
            raise ValueError(f"outlier_neighbors must be >= 1, got {self.outlier_neighbors!r}")
        if not 0.0 <= self.surface_quantile <= 1.0:
            raise ValueError(f"surface_quantile must lie in [0, 1], got {self.surface_quantile!r}")
        if not 0.0 < self.fusion_weight <= 1.0:
            raise ValueError(f"fusion_weight must lie in (0, 1], got {self.fusion_weight!r}")
        if round(self.size_x / self.resolution) < 1 or round(self.size_y / self.resolution) < 1:
            raise ValueError("the map must hold at least one cell along each axis")


class ElevationMapper:
    """Fuses odom-frame point clouds into a scrolling, world-fixed height grid.

    Args:
        config: map parameters; defaults if ``None``.
    """

    def __init__(self, config: ElevationMapConfig | None = None) -> None:
        self.config = config if config is not None else ElevationMapConfig()
        self.rows = int(round(self.config.size_x / self.config.resolution))
        self.cols = int(round(self.config.size_y / self.config.resolution))
        self.reset()

    def reset(self) -> None:
        """Forget everything observed so far."""
        self._heights = np.full((self.rows, self.cols), np.nan)
        self._stamps = np.full((self.rows, self.cols), -np.inf)
        self._i0: int | None = None  # world cell index of row 0
        self._j0: int | None = None  # world cell index of column 0

    @property
    def origin(self) -> tuple[float, float]:
        """Odom ``(x, y)`` of the centre of cell ``[0, 0]`` (NaN before the first call)."""
        if self._i0 is None or self._j0 is None:
            return (math.nan, math.nan)
        res = self.config.resolution
        return (self._i0 * res, self._j0 * res)

    def integrate(self, points_odom: np.ndarray, robot_xy: Sequence[float], stamp: float,
                  base_pose: Optional[tuple[Sequence[float], Sequence[float]]] = None) -> int:
        """Fuse one point cloud, already transformed into odom.

        Args:
            points_odom: ``[N, 3]`` points (m); rows with NaN/Inf are dropped, ``N`` may be 0.
            robot_xy: odom ``(x, y)`` of the robot; the map window is centred on it.
            stamp: time of the cloud (s); stamps should not go backwards (call :meth:`reset`
                after a clock jump, or cells keep their future stamps until time catches up).
            base_pose: ``(position, quaternion_wxyz)`` of the base in odom when the cloud was taken; needed
                with ``body_box`` (the points inside the box are dropped), ignored without it.

        Returns:
            Number of cells updated.

        Raises:
            ValueError: if ``points_odom`` is not ``[N, 3]``, ``robot_xy``/``stamp`` are not finite, or
                ``body_box`` is set and ``base_pose`` is missing or invalid.
        """
        points = np.asarray(points_odom, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points_odom must be an [N, 3] array, got shape {points.shape}")
        stamp = _finite_scalar("stamp", stamp)
        cfg = self.config
        if cfg.body_box is not None and base_pose is None:
            raise ValueError("the mapper filters the robot's body (body_box): integrate needs base_pose")
        self._recentre(robot_xy)
        points = points[np.isfinite(points).all(axis=1)]
        points = points[(points[:, 2] >= cfg.min_height) & (points[:, 2] <= cfg.max_height)]
        if cfg.body_box is not None:
            points = points[~body_mask(points, base_pose[0], base_pose[1], cfg.body_box)]
        points = self._filter(points[self._cells(points)[2]])
        if points.shape[0] == 0:
            return 0
        ii, jj, inside = self._cells(points)
        cells, surface = _cell_quantile(ii * self.cols + jj, points[inside, 2], cfg.surface_quantile)
        self._fuse(cells, surface, stamp)
        return int(cells.shape[0])

    def height_map(self, robot_xy: Sequence[float], stamp: float) -> HeightMap:
        """Robot-centric, odom-aligned height grid at ``stamp``.

        Args:
            robot_xy: odom ``(x, y)`` of the robot; the window is re-centred on it.
            stamp: current time (s); cells observed more than ``max_age`` before it are NaN.

        Returns:
            HeightMap with float32 ``heights [rows, cols]`` (NaN = unknown), ``origin`` a
            multiple of the resolution.

        Raises:
            ValueError: if ``robot_xy`` or ``stamp`` are not finite.
        """
        stamp = _finite_scalar("stamp", stamp)
        self._recentre(robot_xy)
        expired = (stamp - self._stamps) > self.config.max_age
        self._heights[expired] = np.nan
        self._stamps[expired] = -np.inf
        heights = torch.from_numpy(self._heights.astype(np.float32))
        return HeightMap(heights=heights, origin=self.origin, resolution=self.config.resolution, stamp=stamp)

    # ------------------------------------------------------------------ internals
    def _recentre(self, robot_xy: Sequence[float]) -> None:
        xy = np.asarray(robot_xy, dtype=np.float64)
        if xy.shape != (2,) or not np.all(np.isfinite(xy)):
            raise ValueError(f"robot_xy must be two finite numbers, got {robot_xy!r}")
        res = self.config.resolution
        i0 = int(np.floor(xy[0] / res + 0.5)) - self.rows // 2
        j0 = int(np.floor(xy[1] / res + 0.5)) - self.cols // 2
        if self._i0 is None or self._j0 is None:
            self._i0, self._j0 = i0, j0
            return
        di, dj = i0 - self._i0, j0 - self._j0
        if di == 0 and dj == 0:
            return
        self._heights = _shift(self._heights, di, dj, np.nan)
        self._stamps = _shift(self._stamps, di, dj, -np.inf)
        self._i0, self._j0 = i0, j0

    def _cells(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Window cell indices of finite points and the mask of those inside the window."""
        res = self.config.resolution
        fi = np.floor(points[:, 0] / res + 0.5) - self._i0
        fj = np.floor(points[:, 1] / res + 0.5) - self._j0
        inside = (fi >= 0) & (fi < self.rows) & (fj >= 0) & (fj < self.cols)
        return fi[inside].astype(np.int64), fj[inside].astype(np.int64), inside

    def _filter(self, points: np.ndarray) -> np.ndarray:
        cfg = self.config
        if points.shape[0] == 0 or (cfg.voxel_size <= 0.0 and not cfg.outlier_removal):
            return points
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
        if cfg.voxel_size > 0.0:
            cloud = cloud.voxel_down_sample(cfg.voxel_size)
        if cfg.outlier_removal and len(cloud.points) > cfg.outlier_neighbors:
            cloud, _ = cloud.remove_statistical_outlier(int(cfg.outlier_neighbors), float(cfg.outlier_std_ratio))
        return np.asarray(cloud.points)

    def _fuse(self, cells: np.ndarray, surface: np.ndarray, stamp: float) -> None:
        flat_h = self._heights.reshape(-1)
        flat_t = self._stamps.reshape(-1)
        old = flat_h[cells]
        fresh = np.isfinite(old) & ((stamp - flat_t[cells]) <= self.config.max_age)
        w = self.config.fusion_weight
        flat_h[cells] = np.where(fresh, (1.0 - w) * old + w * surface, surface)
        flat_t[cells] = np.maximum(flat_t[cells], stamp)


def _cell_quantile(cells: np.ndarray, z: np.ndarray, quantile: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell ``quantile`` of ``z`` (lower order statistic); returns ``(unique cells, values)``."""
    order = np.lexsort((z, cells))
    cells_sorted, z_sorted = cells[order], z[order]
    uniq, start, count = np.unique(cells_sorted, return_index=True, return_counts=True)
    pick = start + np.floor(quantile * (count - 1) + 1e-9).astype(np.int64)
    return uniq, z_sorted[pick]


def _shift(grid: np.ndarray, di: int, dj: int, fill: float) -> np.ndarray:
    """Re-index ``grid`` so that new cell ``[r, c]`` is old cell ``[r + di, c + dj]``."""
    rows, cols = grid.shape
    out = np.full_like(grid, fill)
    if abs(di) >= rows or abs(dj) >= cols:
        return out
    src_r = slice(max(di, 0), rows + min(di, 0))
    dst_r = slice(max(-di, 0), rows + min(-di, 0))
    src_c = slice(max(dj, 0), cols + min(dj, 0))
    dst_c = slice(max(-dj, 0), cols + min(-dj, 0))
    out[dst_r, dst_c] = grid[src_r, src_c]
    return out


def _finite_scalar(name: str, value: float) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a finite number, got {value!r}") from exc
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return out


def quat_to_yaw(quaternion_wxyz: Sequence[float]) -> float:
    """Yaw (rad, about odom z) of a ``(w, x, y, z)`` quaternion (normalised internally).

    Raises:
        ValueError: if the quaternion is not four finite numbers with non-zero norm.
    """
    q = normalized_quaternion(quaternion_wxyz)
    w, x, y, z = q
    return float(math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def transform_points(points: np.ndarray, position: Sequence[float], quaternion_wxyz: Sequence[float]) -> np.ndarray:
    """Apply the pose ``(position, quaternion)`` of a frame to points expressed in it.

    With the base pose in odom this maps base-frame points to odom: ``p_odom = R p + t``.

    Args:
        points: ``[N, 3]`` points (m); non-finite rows pass through (as non-finite).
        position: ``(x, y, z)`` translation (m).
        quaternion_wxyz: ``(w, x, y, z)`` rotation (normalised internally).

    Returns:
        ``[N, 3]`` float64 transformed points.

    Raises:
        ValueError: on a wrong points shape, a non-finite position, or an invalid quaternion.
    """
    pts, t = points_and_position(points, position)
    return pts @ unit_quaternion_to_rotation(normalized_quaternion(quaternion_wxyz)).T + t


def grid_from_points(points: np.ndarray) -> tuple[np.ndarray, tuple[float, float], float]:
    """An organized ``[rows, cols, 3]`` height-grid cloud (as the mapper publishes it) as a grid.

    Args:
        points: cell centres with their heights (NaN where unknown); rows run along x.

    Returns:
        ``(heights [rows, cols] float64, origin (x, y) of cell [0, 0], resolution)``.

    Raises:
        ValueError: a degenerate grid, no valid origin/resolution, or not a regular x-major grid.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[2] != 3 or pts.shape[0] < 2 or pts.shape[1] < 2:
        raise ValueError(f"elevation map must be an organized grid of at least 2 x 2, got shape {pts.shape}")
    x0, y0 = float(pts[0, 0, 0]), float(pts[0, 0, 1])
    res = float(pts[1, 0, 0] - pts[0, 0, 0])
    if not (math.isfinite(x0) and math.isfinite(y0) and math.isfinite(res)) or res <= 0:
        raise ValueError("elevation map grid has no valid origin/resolution")
    xs = x0 + res * np.arange(pts.shape[0])
    ys = y0 + res * np.arange(pts.shape[1])
    tol = 1e-3 * res + 1e-5
    if not (np.all(np.abs(pts[:, :, 0] - xs[:, None]) <= tol) and np.all(np.abs(pts[:, :, 1] - ys[None, :]) <= tol)):
        raise ValueError("elevation map is not a regular x-major grid")
    return pts[:, :, 2], (x0, y0), res
