"""Yaw-aligned, robot-centric height scans sampled from an odom-aligned height grid.

The scan is a regular grid in the robot's *yaw* frame (roll and pitch ignored): row ``i`` runs
along the robot's forward axis, column ``j`` along its left axis, with cell centres
``x_i = x_min + (i + 1/2) res`` and ``y_j = y_min + (j + 1/2) res``. The default window reaches
further ahead (4.4 m) than behind (1.5 m) because the robot mostly drives forward.

Heights are relative to the robot base z and clipped to ``[clip_low, clip_high]``; cells whose
source is unknown (NaN) or outside the grid are NaN in :func:`sample_heights` and become
``fill`` plus a zero in the validity channel in :func:`to_channels`.

Sources are either an :class:`~morobot.planning.interface.HeightMap` (the elevation map at run
time) or any object with ``heights [nx, ny]``, ``resolution`` and ``origin`` (the simulator's
ground-truth world). Both use the same convention: row along odom +x, column along odom +y,
``origin`` = odom ``(x, y)`` of the centre of cell ``[0, 0]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

from morobot.planning.interface import HeightMap

#: Number of channels produced by :func:`to_channels`: relative height and validity mask.
SCAN_CHANNELS = 2


@dataclass(frozen=True)
class ScanConfig:
    """Geometry and value range of the robot-centric height scan.

    Attributes:
        x_min: rear edge of the window along the robot's forward axis (m, negative = behind).
        x_max: front edge of the window (m).
        y_min: right edge of the window along the robot's left axis (m).
        y_max: left edge of the window (m).
        resolution: scan cell size (m).
        clip_low: lower clip of the height relative to the base (m).
        clip_high: upper clip of the height relative to the base (m). A model may be trained
            with a lower ceiling than its data was stored with (``morobot train fdm
            --scan-ceiling``): it then sees every obstacle taller than the ceiling as "a wall",
            which matches what forward-looking depth cameras put into the elevation map (they
            see a box's face only up to about their own height, never its top).
        fill: value written to unknown cells in the height channel of :func:`to_channels` (m).
    """

    x_min: float = -1.5
    x_max: float = 4.4
    y_min: float = -2.25
    y_max: float = 2.25
    resolution: float = 0.1
    clip_low: float = -1.0
    clip_high: float = 1.5
    fill: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(value):
                raise ValueError(f"ScanConfig.{name} must be finite, got {value}")
        if self.resolution <= 0.0:
            raise ValueError(f"ScanConfig.resolution must be positive, got {self.resolution}")
        if self.x_max - self.x_min < self.resolution or self.y_max - self.y_min < self.resolution:
            raise ValueError("ScanConfig window must be at least one cell in x and y")
        if self.clip_low >= self.clip_high:
            raise ValueError(f"ScanConfig clip_low {self.clip_low} must be below clip_high {self.clip_high}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the scan: rows along forward x, columns along left y."""
        rows = int(round((self.x_max - self.x_min) / self.resolution))
        cols = int(round((self.y_max - self.y_min) / self.resolution))
        return rows, cols

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Robot-frame x of the rows and y of the columns (cell centres, m)."""
        rows, cols = self.shape
        xs = self.x_min + self.resolution * (np.arange(rows) + 0.5)
        ys = self.y_min + self.resolution * (np.arange(cols) + 0.5)
        return xs, ys

    def compatible_with(self, other: "ScanConfig") -> bool:
        """Same grid as ``other`` and a clip range inside ``other``'s (so this config can read its scans)."""
        same = all(getattr(self, k) == getattr(other, k) for k in ("x_min", "x_max", "y_min", "y_max", "resolution"))
        return same and other.clip_low <= self.clip_low and self.clip_high <= other.clip_high

    def to_dict(self) -> dict[str, float]:
        """JSON-friendly dictionary of the fields."""
        return {k: float(v) for k, v in asdict(self).items()}


def _as_poses(pose: Any) -> tuple[np.ndarray, bool]:
    arr = np.asarray(pose, dtype=np.float64)
    single = arr.ndim == 1
    arr = np.atleast_2d(arr)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"pose must be (x, y, yaw) or [B, 3], got shape {np.shape(pose)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("pose must be finite")
    return arr, single


def sample_heights(
    heights: np.ndarray,
    origin: tuple[float, float],
    resolution: float,
    pose: Any,
    base_z: Any,
    config: ScanConfig = ScanConfig(),
    method: str = "bilinear",
) -> np.ndarray:
    """Samples relative, clipped heights on the yaw-aligned scan grid.

    Bilinear interpolation uses only known, in-grid neighbours (weights renormalised); a sample
    is unknown when less than half of its interpolation weight is known. ``nearest`` takes the
    cell containing the sample point.

    Args:
        heights: ``[nx, ny]`` heights (m, odom z); NaN = unknown.
        origin: odom ``(x, y)`` of the centre of cell ``[0, 0]``.
        resolution: source cell size (m).
        pose: robot ``(x, y, yaw)`` in odom, or ``[B, 3]`` poses.
        base_z: base height(s) in odom (m): a float or ``[B]``.
        config: scan geometry.
        method: ``"bilinear"`` or ``"nearest"``.

    Returns:
        ``[rows, cols]`` (or ``[B, rows, cols]`` for batched poses) float32 heights relative to
        ``base_z``, clipped to ``[clip_low, clip_high]``; NaN where unknown.

    Raises:
        ValueError: on malformed grids, poses or an unknown method.
    """
    grid = np.asarray(heights, dtype=np.float64)
    if grid.ndim != 2 or grid.shape[0] < 1 or grid.shape[1] < 1:
        raise ValueError(f"heights must be a non-empty [nx, ny] array, got shape {grid.shape}")
    if not (isinstance(resolution, (int, float, np.floating)) and resolution > 0 and math.isfinite(resolution)):
        raise ValueError(f"resolution must be a positive number, got {resolution!r}")
    ox, oy = (float(v) for v in origin)
    if not (math.isfinite(ox) and math.isfinite(oy)):
        raise ValueError(f"origin must be finite, got {origin!r}")
    if method not in ("bilinear", "nearest"):
        raise ValueError(f"method must be 'bilinear' or 'nearest', got {method!r}")
    poses, single = _as_poses(pose)
    z = _base_z(base_z, poses.shape[0])

    wx, wy = scan_points(poses, config)
    fi = (wx - ox) / resolution  # fractional row index
    fj = (wy - oy) / resolution
    nx, ny = grid.shape

    if method == "nearest":
        i = np.rint(fi).astype(np.int64)
        j = np.rint(fj).astype(np.int64)
        inside = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
        out = np.full(i.shape, np.nan)
        out[inside] = grid[i[inside], j[inside]]
    else:
        i0 = np.floor(fi).astype(np.int64)
        j0 = np.floor(fj).astype(np.int64)
        di = fi - i0
        dj = fj - j0
        acc = np.zeros(fi.shape)
        wsum = np.zeros(fi.shape)
        for oi, wi in ((0, 1.0 - di), (1, di)):
            for oj, wj in ((0, 1.0 - dj), (1, dj)):
                ii = i0 + oi
                jj = j0 + oj
                ok = (ii >= 0) & (ii < nx) & (jj >= 0) & (jj < ny)
                val = np.full(fi.shape, np.nan)
                val[ok] = grid[ii[ok], jj[ok]]
                known = np.isfinite(val)
                w = np.where(known, wi * wj, 0.0)
                acc += np.where(known, val, 0.0) * w
                wsum += w
        out = np.where(wsum > 0.5 - 1e-9, acc / np.maximum(wsum, 1e-12), np.nan)

    rel = _relative(out, z, config)
    return rel[0] if single else rel


def _relative(heights: np.ndarray, z: np.ndarray, config: ScanConfig) -> np.ndarray:
    rel = heights - z[:, None, None]
    return np.where(np.isfinite(rel), np.clip(rel, config.clip_low, config.clip_high), np.nan).astype(np.float32)


def _base_z(base_z: Any, count: int) -> np.ndarray:
    z = np.asarray(base_z, dtype=np.float64).reshape(-1)
    if z.size == 1:
        z = np.full(count, z[0])
    elif z.size != count:
        raise ValueError(f"base_z must be a scalar or have one value per pose, got {z.size} for {count}")
    if not np.all(np.isfinite(z)):
        raise ValueError("base_z must be finite")
    return z


def scan_points(poses: Any, config: ScanConfig = ScanConfig()) -> tuple[np.ndarray, np.ndarray]:
    """World coordinates of the scan cell centres.

    Args:
        poses: ``[B, 3]`` robot poses ``(x, y, yaw)``.
        config: scan geometry.

    Returns:
        ``(x, y)``, each ``[B, rows, cols]``.
    """
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
    xs, ys = config.cell_centres()
    lx, ly = np.meshgrid(xs, ys, indexing="ij")  # [rows, cols]
    c = np.cos(poses[:, 2])[:, None, None]
    s = np.sin(poses[:, 2])[:, None, None]
    return poses[:, 0, None, None] + c * lx - s * ly, poses[:, 1, None, None] + s * lx + c * ly


def to_channels(relative_heights: np.ndarray, config: ScanConfig = ScanConfig()) -> np.ndarray:
    """Turns relative heights with NaNs into the model's two input channels.

    Args:
        relative_heights: ``[..., rows, cols]`` relative heights, NaN = unknown.
        config: provides the ``fill`` value for unknown cells.

    Returns:
        ``[..., 2, rows, cols]`` float32: channel 0 the height (``fill`` where unknown), channel
        1 the validity mask (1 known, 0 unknown).
    """
    rel = np.asarray(relative_heights, dtype=np.float32)
    if rel.ndim < 2:
        raise ValueError(f"relative_heights must be at least 2-D, got shape {rel.shape}")
    # Clip again: a model may use a lower ceiling than the stored data (see ScanConfig.clip_high).
    rel = np.clip(rel, np.float32(config.clip_low), np.float32(config.clip_high))
    valid = np.isfinite(rel)
    height = np.where(valid, rel, np.float32(config.fill)).astype(np.float32)
    return np.stack((height, valid.astype(np.float32)), axis=-3)


def corrupt(
    relative_heights: np.ndarray,
    rng: np.random.Generator,
    noise_std: float = 0.02,
    dropout: float = 0.05,
    patch_prob: float = 0.3,
    patch_size: tuple[int, int] = (3, 12),
    config: ScanConfig = ScanConfig(),
    yaw: Any = None,
    window_prob: float = 0.0,
    window_half: tuple[float, float] = (2.5, 5.0),
) -> np.ndarray:
    """Makes a ground-truth scan look like an elevation-map scan (training augmentation).

    Adds Gaussian height noise, drops random single cells and, with probability ``patch_prob``
    per scan, a random rectangular patch (occlusion-like unknown areas). With probability
    ``window_prob`` everything outside an odom-aligned square around the robot (half size drawn
    from ``window_half``) becomes unknown, as beyond the edge of a finite robot-centric
    elevation map; this needs the scans' ``yaw``.

    Args:
        relative_heights: ``[rows, cols]`` or ``[B, rows, cols]`` relative heights (NaN = unknown).
        rng: random generator.
        noise_std: standard deviation of the additive height noise (m).
        dropout: probability that a cell becomes unknown.
        patch_prob: probability per scan of an unknown rectangular patch.
        patch_size: min/max patch edge (cells).
        config: clip range applied after the noise.
        yaw: robot yaw per scan (float or ``[B]``), required when ``window_prob > 0``.
        window_prob: probability per scan of the map-window cut.
        window_half: min/max half size of the map window (m).

    Returns:
        A corrupted copy, same shape, float32.

    Raises:
        ValueError: on probabilities outside ``[0, 1]`` or a negative noise level.
    """
    if noise_std < 0.0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    for name, p in (("dropout", dropout), ("patch_prob", patch_prob), ("window_prob", window_prob)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    lo, hi = int(patch_size[0]), int(patch_size[1])
    if lo < 1 or hi < lo:
        raise ValueError(f"patch_size must be 1 <= min <= max, got {patch_size}")
    rel = np.array(relative_heights, dtype=np.float32, copy=True)
    batch = rel[None] if rel.ndim == 2 else rel
    if batch.ndim != 3:
        raise ValueError(f"relative_heights must be [rows, cols] or [B, rows, cols], got {rel.shape}")
    if noise_std > 0.0:
        batch += rng.normal(0.0, noise_std, batch.shape).astype(np.float32)
        np.clip(batch, config.clip_low, config.clip_high, out=batch)
    if dropout > 0.0:
        batch[rng.random(batch.shape) < dropout] = np.nan
    rows, cols = batch.shape[1:]
    yaws = None
    if window_prob > 0.0:
        if yaw is None:
            raise ValueError("corrupt: window_prob > 0 needs the scans' yaw")
        yaws = np.broadcast_to(np.asarray(yaw, dtype=np.float64).reshape(-1), (batch.shape[0],))
        if not 0.0 < window_half[0] <= window_half[1]:
            raise ValueError(f"window_half must be 0 < min <= max, got {window_half}")
    for b in range(batch.shape[0]):
        if yaws is not None and rng.random() < window_prob:
            half = rng.uniform(*window_half)
            dx, dy = scan_points(np.array([[0.0, 0.0, yaws[b]]]), config)
            batch[b][(np.abs(dx[0]) > half) | (np.abs(dy[0]) > half)] = np.nan
        if rng.random() < patch_prob:
            h = int(rng.integers(lo, hi + 1))
            w = int(rng.integers(lo, hi + 1))
            r0 = int(rng.integers(0, max(rows - h, 0) + 1))
            c0 = int(rng.integers(0, max(cols - w, 0) + 1))
            batch[b, r0 : r0 + h, c0 : c0 + w] = np.nan
    return batch[0] if rel.ndim == 2 else batch


def scan_from_heightmap(
    hmap: Optional[HeightMap], pose: Any, base_z: Any, config: ScanConfig = ScanConfig()
) -> np.ndarray:
    """Two-channel scan from the run-time elevation map.

    Args:
        hmap: the height map; ``None`` gives a fully unknown scan.
        pose: robot ``(x, y, yaw)`` in odom (or ``[B, 3]``).
        base_z: base height in odom (m), float or ``[B]``.
        config: scan geometry.

    Returns:
        ``[2, rows, cols]`` (or ``[B, 2, rows, cols]``) float32, see :func:`to_channels`.
    """
    if hmap is None:
        poses, single = _as_poses(pose)
        rel = np.full((poses.shape[0], *config.shape), np.nan, dtype=np.float32)
        return to_channels(rel[0] if single else rel, config)
    heights = hmap.heights
    if hasattr(heights, "detach"):
        heights = heights.detach().cpu().numpy()
    rel = sample_heights(heights, hmap.origin, float(hmap.resolution), pose, base_z, config)
    return to_channels(rel, config)


def scan_from_world(world: Any, pose: Any, base_z: Any, config: ScanConfig = ScanConfig()) -> np.ndarray:
    """Relative heights (NaN = unknown) from a ground-truth world.

    A world with ``elevation_at(x, y)`` (the simulator's :class:`~morobot.sim.worlds.World`:
    terrain *and* box tops, NaN off the grid) is queried at the scan points directly; otherwise
    its ``heights``/``origin``/``resolution`` grid is interpolated bilinearly.

    Args:
        world: the world.
        pose: robot ``(x, y, yaw)`` in the world frame (or ``[B, 3]``).
        base_z: base height (m).
        config: scan geometry.

    Returns:
        ``[rows, cols]`` (or ``[B, rows, cols]``) float32 relative heights, NaN outside the world.

    Raises:
        ValueError: if ``world`` has neither ``elevation_at`` nor a heightfield.
    """
    if callable(getattr(world, "elevation_at", None)):
        poses, single = _as_poses(pose)
        z = _base_z(base_z, poses.shape[0])
        wx, wy = scan_points(poses, config)
        rel = _relative(np.asarray(world.elevation_at(wx, wy), dtype=np.float64), z, config)
        return rel[0] if single else rel
    for attr in ("heights", "resolution", "origin"):
        if not hasattr(world, attr):
            raise ValueError(f"world has no attribute {attr!r}; expected elevation_at or heights, resolution, origin")
    return sample_heights(
        np.asarray(world.heights), tuple(world.origin)[:2], float(world.resolution), pose, base_z, config
    )
