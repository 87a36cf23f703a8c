"""Real-robot FDM data: rosbag2 recordings converted into the data format of :mod:`morobot.fdm.data.collect`.

``python -m morobot.fdm.data.rosbag BAG [BAG ...] --out data/fdm_real`` (``morobot convert-bag ...``)

Reads, with the pure-Python ``rosbags`` package (no ROS install, no rclpy):

* ``/odom`` (nav_msgs/Odometry): pose in the odom frame, body twist in the base frame (as the
  simulator and ANYmal's state estimator publish it); gravity in the base frame follows from the
  orientation quaternion, ``R^T (0, 0, -1)``.
* ``/cmd_vel`` (geometry_msgs/Twist or TwistStamped): the last command is held and replaced by zero
  ``cmd_timeout`` (0.5 s) after it arrived, like the locomotion watchdog of the simulator.
* terrain, either ``/elevation_map`` (sensor_msgs/PointCloud2, the organized ``rows x cols`` grid of
  cell centres ``(x, y, height)`` in odom that the ``elevation_mapper`` node publishes, NaN height =
  unknown) or ``/points`` (PointCloud2 in the odom frame, in the base frame, or in a sensor frame
  with a given static sensor-to-base transform), fused into a height grid with the mapper's own
  :class:`morobot.mapping.elevation.ElevationMapper`, in message order, as the node does.

Everything is resampled onto the collector's time grid: a sample starts at every multiple of
``stride * dt`` (1 s) of the bag's clock; its history has ``history_length`` rows ``history_dt``
apart ending at the start (odometry interpolated linearly, the orientation by normalised
quaternion interpolation, the command held as it was just before each row time), assembled by the
same :class:`~morobot.fdm.history.ProprioHistory` the collector and the run-time nodes use; its
``horizon`` commands are the time averages of the held command over each ``dt`` step (exact
integrals of the piecewise-constant command, watchdog included); its poses are the odometry at the
end of each step, relative to the start pose; its scan is sampled from the newest terrain at or
before the start with :func:`morobot.fdm.heightscan.sample_heights` (relative to the start base
height, no augmentation). Windows are skipped, and counted per reason, when odometry has a gap
longer than ``max_odom_gap`` or ends (``odom_gap``), the window begins before the first command
message, so whether the robot was commanded is unknown (``no_command``), an odometry or command message in the window
holds NaN/Inf or an unnormalised quaternion (``nan``), the start lies inside a failure episode
(``in_failure``, as the collector starts no sample after a failure), the window crosses a segment
border (``segment_edge``), the robot idles (``idle``, only with ``skip_idle``), or no terrain
newer than ``max_terrain_age`` exists at the start (``stale_terrain``).

Failure labels are a heuristic (a real bag has no contact ground truth); the manifest says so
(``meta.labels == "heuristic"``) and records the parameters. A failure happens at the onset of

* **stuck**: commanded motion ``|v_cmd,xy| + yaw_lever |w_cmd,z| >= stuck_min_command`` while the
  measured motion (same measure on the odometry twist) stays below ``stuck_ratio`` times it,
  continuously over odometry messages for at least ``stuck_time`` — the real-data counterpart of
  the simulator's stuck flag, which also catches running into walls and unclimbable steps;
* **tilt**: the base z axis tilted more than ``tilt_deg`` from vertical (the simulator's fall
  criterion).

As in the collector, the flags of a sample are 1 from the step containing the onset, later poses
are frozen at the end of that step, and no sample starts inside an episode.

Output: one shard per bag (or per ``segment_seconds`` segment of a bag, so that
:func:`~morobot.fdm.data.dataset.split_worlds` can hold segments out) written atomically, and the
manifest rewritten after every bag, with the source bags, topics, message counts, skip counts and
the heuristic's parameters; ``--resume`` skips bags already converted. ``world_heights`` of a
shard is a mosaic of all terrain seen (latest observation per cell), for plots.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from morobot import pointcloud
from morobot.fdm.data.dataset import DataSpec, DatasetError, freeze_after_failure, read_manifest, write_manifest, write_shard
from morobot.fdm.heightscan import ScanConfig, sample_heights
from morobot.fdm.history import ProprioHistory

ODOM_TYPE = "nav_msgs/msg/Odometry"
TWIST_TYPES = ("geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped")
CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
TERRAIN_SOURCES = ("elevation_map", "points")
TIME_SOURCES = ("header", "bag")
#: Reasons a candidate window is skipped, in the order they are checked (each window counts once).
SKIP_REASONS = ("odom_gap", "no_command", "nan", "in_failure", "segment_edge", "idle", "stale_terrain")
SOURCE = "rosbag2"

_NS = 1_000_000_000
# sensor_msgs/PointField datatypes -> numpy
class ConversionError(ValueError):
    """A bag, topic or option that makes the conversion impossible (the message says which and why)."""


@dataclass
class ConvertOptions:
    """Parameters of a rosbag2 conversion.

    Attributes:
        odom_topic: nav_msgs/Odometry topic.
        cmd_topic: geometry_msgs/Twist or TwistStamped topic.
        terrain: ``"elevation_map"`` (read height grids) or ``"points"`` (map point clouds).
        map_topic: organized PointCloud2 height grid in the odom frame (``terrain="elevation_map"``).
        points_topic: PointCloud2 point clouds (``terrain="points"``).
        time_source: ``"header"`` (message header stamps; unstamped or zero-stamped messages use
            their bag time shifted by the median header-minus-bag offset of the odometry) or
            ``"bag"`` (receive times of every message).
        scan: scan geometry (part of the data spec).
        horizon: steps ``T`` per sample.
        dt: step duration (s).
        history_length: history rows.
        history_dt: history spacing (s).
        stride: steps between sample starts (starts lie on multiples of ``stride * dt``).
        cmd_timeout: a command is replaced by zero this long after it was received (s).
        max_odom_gap: longest gap between odometry messages inside a window (s).
        max_terrain_age: oldest terrain (map stamp, or newest integrated cloud) usable at a start (s).
        stuck_time: minimum duration of a stuck episode (s).
        stuck_min_command: commanded motion (m/s, yaw through ``yaw_lever``) needed to count as stuck.
        stuck_ratio: stuck while measured motion < ``stuck_ratio`` x commanded motion.
        yaw_lever: lever arm (m) converting yaw rates into motion for the stuck test.
        tilt_deg: base tilt from vertical counted as a fall (deg).
        skip_idle: skip windows without commands and without motion.
        kind: terrain kind written to the shards (``split_worlds`` stratifies by it).
        segment_seconds: cut every bag into segments of this length, one world each (0 = one per bag).
        world_resolution: cell size of the terrain mosaic stored as ``world_heights`` (m).
        map_size: ``terrain="points"``: mapper window edge (m).
        map_resolution: ``terrain="points"``: mapper cell size (m).
        map_max_age: ``terrain="points"``: mapper cell lifetime (s).
        voxel_size: ``terrain="points"``: voxel downsampling (m, 0 = off).
        points_to_base: ``terrain="points"``: static pose of the cloud's sensor frame in the base
            frame, ``(x, y, z, qw, qx, qy, qz)``, used for clouds in neither the odom nor the base
            frame (such clouds are dropped without it).
        resume: add to an existing output directory, skipping bags already converted.
        progress: show a progress bar.
    """

    odom_topic: str = "/odom"
    cmd_topic: str = "/cmd_vel"
    terrain: str = "elevation_map"
    map_topic: str = "/elevation_map"
    points_topic: str = "/points"
    time_source: str = "header"
    scan: ScanConfig = field(default_factory=ScanConfig)
    horizon: int = 10
    dt: float = 0.5
    history_length: int = 10
    history_dt: float = 0.05
    stride: int = 2
    cmd_timeout: float = 0.5
    max_odom_gap: float = 0.2
    max_terrain_age: float = 2.0
    stuck_time: float = 1.0
    stuck_min_command: float = 0.1
    stuck_ratio: float = 0.25
    yaw_lever: float = 0.4
    tilt_deg: float = 60.0
    skip_idle: bool = False
    kind: str = "real"
    segment_seconds: float = 0.0
    world_resolution: float = 0.1
    map_size: float = 12.0
    map_resolution: float = 0.1
    map_max_age: float = 20.0
    voxel_size: float = 0.05
    points_to_base: Optional[tuple[float, ...]] = None
    resume: bool = False
    progress: bool = True

    def validate(self) -> None:
        """Raises ConversionError on bad parameters."""
        if self.terrain not in TERRAIN_SOURCES:
            raise ConversionError(f"terrain must be one of {TERRAIN_SOURCES}, got {self.terrain!r}")
        if self.time_source not in TIME_SOURCES:
            raise ConversionError(f"time_source must be one of {TIME_SOURCES}, got {self.time_source!r}")
        for name in ("horizon", "history_length", "stride"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ConversionError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        positive = ("dt", "history_dt", "cmd_timeout", "max_odom_gap", "max_terrain_age", "stuck_time",
                    "world_resolution", "map_size", "map_resolution", "map_max_age")
        for name in positive:
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ConversionError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        for name in ("stuck_min_command", "yaw_lever", "segment_seconds", "voxel_size"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value >= 0):
                raise ConversionError(f"{name} must be a number >= 0, got {getattr(self, name)!r}")
        if not 0.0 < self.stuck_ratio < 1.0:
            raise ConversionError(f"stuck_ratio must lie in (0, 1), got {self.stuck_ratio!r}")
        if not 0.0 < self.tilt_deg < 180.0:
            raise ConversionError(f"tilt_deg must lie in (0, 180), got {self.tilt_deg!r}")
        if self.segment_seconds and self.segment_seconds < self.window_seconds:
            raise ConversionError(f"segment_seconds ({self.segment_seconds}) must be 0 or at least one "
                                  f"sample window ({self.window_seconds:.2f} s)")
        if not self.kind or not all(c.isalnum() or c in "-_" for c in self.kind):
            raise ConversionError(f"kind must be letters, digits, '-' or '_', got {self.kind!r}")
        if self.points_to_base is not None:
            p = np.asarray(self.points_to_base, dtype=float)
            if p.shape != (7,) or not np.all(np.isfinite(p)) or np.linalg.norm(p[3:]) < 1e-9:
                raise ConversionError("points_to_base must be 7 finite numbers x y z qw qx qy qz (|q| > 0)")

    @property
    def window_seconds(self) -> float:
        """Time a sample spans: its history plus its horizon (s)."""
        return (self.history_length - 1) * self.history_dt + self.horizon * self.dt

    @property
    def spec(self) -> DataSpec:
        """The data spec of the samples this conversion writes."""
        return DataSpec(scan=self.scan, horizon=self.horizon, dt=self.dt, history_length=self.history_length,
                        history_dt=self.history_dt)

    def heuristic(self) -> dict[str, Any]:
        """The failure heuristic's description and parameters (stored in the manifest)."""
        return {
            "stuck": ("commanded motion |v_xy| + yaw_lever |w_z| >= min_command while the measured motion "
                      "stays below ratio x commanded, continuously for >= time seconds; fails at the onset"),
            "stuck_time": self.stuck_time,
            "stuck_min_command": self.stuck_min_command,
            "stuck_ratio": self.stuck_ratio,
            "yaw_lever": self.yaw_lever,
            "tilt": "base z axis more than tilt_deg from vertical; fails at the onset",
            "tilt_deg": self.tilt_deg,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary of the options."""
        out = asdict(self)
        out["scan"] = self.scan.to_dict()
        out["points_to_base"] = None if self.points_to_base is None else [float(v) for v in self.points_to_base]
        return out


# ------------------------------------------------------------------------------ time series
def _ns(seconds: float) -> int:
    return int(round(seconds * _NS))


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    """``[N, 4]`` unit quaternions ``(w, x, y, z)`` -> ``[N, 3, 3]`` rotation matrices."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def _unique_sorted(t: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sorts by time; of messages with equal stamps the last received wins."""
    order = np.argsort(t, kind="stable")
    t = t[order]
    keep = np.append(t[1:] != t[:-1], True) if t.size else np.zeros(0, bool)
    return (t[keep],) + tuple(a[order][keep] for a in arrays)


class _Odometry:
    """Valid odometry samples (sorted ns stamps) with interpolation and coverage queries."""

    def __init__(self, t: np.ndarray, values: np.ndarray, bad: np.ndarray, max_gap_ns: int) -> None:
        self.t = t
        self.pos = values[:, 0:3]
        q = values[:, 3:7] / np.linalg.norm(values[:, 3:7], axis=1, keepdims=True)
        dots = np.einsum("ij,ij->i", q[1:], q[:-1])
        sign = np.cumprod(np.concatenate(([1.0], np.where(dots < 0, -1.0, 1.0))))
        self.quat = q * sign[:, None]  # one hemisphere, so neighbours interpolate the short way
        self.lin = values[:, 7:10]
        self.ang = values[:, 10:13]
        self.bad = np.sort(bad)
        gaps = np.diff(t) > max_gap_ns
        self._bad_gaps = np.concatenate(([0], np.cumsum(gaps)))

    def covered(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """True where ``[a, b]`` lies within the odometry and holds no gap longer than the limit."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        inside = (a >= self.t[0]) & (b <= self.t[-1])
        i = np.clip(np.searchsorted(self.t, a, "right") - 1, 0, len(self.t) - 1)
        j = np.clip(np.searchsorted(self.t, b, "left"), 0, len(self.t) - 1)
        return inside & (self._bad_gaps[j] - self._bad_gaps[np.minimum(i, j)] == 0)

    def count_bad(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Number of invalid odometry messages stamped within ``[a, b]``."""
        return np.searchsorted(self.bad, b, "right") - np.searchsorted(self.bad, a, "left")

    def at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Linear interpolation (nlerp for the orientation) at ns stamps ``t`` (clamped to the ends).

        Returns:
            ``position [N, 3]``, ``quaternion [N, 4]`` (w, x, y, z), ``linear [N, 3]``, ``angular [N, 3]``.
        """
        t = np.asarray(t, np.int64).reshape(-1)
        if len(self.t) == 1:
            n = len(t)
            return (np.repeat(self.pos, n, 0), np.repeat(self.quat, n, 0), np.repeat(self.lin, n, 0),
                    np.repeat(self.ang, n, 0))
        i = np.clip(np.searchsorted(self.t, t, "right") - 1, 0, len(self.t) - 2)
        w = np.clip((t - self.t[i]) / (self.t[i + 1] - self.t[i]).astype(np.float64), 0.0, 1.0)[:, None]

        def lerp(v: np.ndarray) -> np.ndarray:
            return v[i] + w * (v[i + 1] - v[i])

        q = lerp(self.quat)
        return lerp(self.pos), q / np.linalg.norm(q, axis=1, keepdims=True), lerp(self.lin), lerp(self.ang)

    def poses(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y, yaw) [N, 3]`` and base height ``[N]`` at ns stamps ``t``."""
        pos, q, _, _ = self.at(t)
        rot = _quat_matrix(q)
        return np.stack((pos[:, 0], pos[:, 1], np.arctan2(rot[:, 1, 0], rot[:, 0, 0])), -1), pos[:, 2]


class _Commands:
    """The held command: each message's twist from its stamp until the next one or the watchdog."""

    def __init__(self, t: np.ndarray, values: np.ndarray, bad: np.ndarray, timeout_ns: int) -> None:
        self.t = t
        self.v = values
        self.bad = np.sort(bad)
        self.timeout_ns = int(timeout_ns)
        nxt = np.append(t[1:], np.iinfo(np.int64).max)
        self._len = (np.minimum(nxt - t, self.timeout_ns)).astype(np.float64) * 1e-9  # segment lengths (s)
        self._cum = np.concatenate((np.zeros((1, 3)), np.cumsum(self.v * self._len[:, None], axis=0)))

    def held(self, t: np.ndarray, left: bool = False) -> np.ndarray:
        """Command in effect at ns stamps ``t`` (``left``: just before ``t``); zero before the first."""
        t = np.asarray(t, np.int64)
        if self.t.size == 0:
            return np.zeros(t.shape + (3,))
        i = np.searchsorted(self.t, t, "left" if left else "right") - 1
        k = np.clip(i, 0, None)
        fresh = (i >= 0) & (t - self.t[k] <= self.timeout_ns)
        return np.where(fresh[..., None], self.v[k], 0.0)

    def _integral(self, t: np.ndarray) -> np.ndarray:
        """Integral of the held command from the beginning up to ns stamps ``t`` (m, m, rad)."""
        i = np.searchsorted(self.t, t, "right") - 1
        k = np.clip(i, 0, None)
        part = np.clip((t - self.t[k]).astype(np.float64) * 1e-9, 0.0, self._len[k])
        return np.where((i >= 0)[..., None], self._cum[k] + self.v[k] * part[..., None], 0.0)

    def mean(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Time average of the held command over ``[a, b]`` (ns, ``b > a``)."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        if self.t.size == 0:
            return np.zeros(a.shape + (3,))
        return (self._integral(b) - self._integral(a)) / ((b - a).astype(np.float64)[..., None] * 1e-9)

    def count_bad(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Number of invalid command messages stamped within ``[a, b]``."""
        return np.searchsorted(self.bad, b, "right") - np.searchsorted(self.bad, a, "left")


def _runs(mask: np.ndarray, t: np.ndarray, max_gap_ns: int) -> list[tuple[int, int]]:
    """``(first, last)`` indices of runs of True in ``mask`` over consecutive, gap-free samples."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = (np.diff(idx) != 1) | (np.diff(t[idx]) > max_gap_ns)
    starts = np.concatenate(([0], np.flatnonzero(breaks) + 1))
    ends = np.concatenate((np.flatnonzero(breaks), [idx.size - 1]))
    return [(int(idx[s]), int(idx[e])) for s, e in zip(starts, ends)]


def failure_events(odom: _Odometry, cmds: _Commands, opts: ConvertOptions) -> list[tuple[int, int, str]]:
    """Failure episodes of the heuristic on the odometry messages.

    Returns:
        ``(onset_ns, end_ns, reason)`` per episode, ``reason`` ``"stuck"`` or ``"tilt"``, by onset.
    """
    gap = _ns(opts.max_odom_gap)
    cmd = cmds.held(odom.t)
    wanted = np.hypot(cmd[:, 0], cmd[:, 1]) + opts.yaw_lever * np.abs(cmd[:, 2])
    achieved = np.hypot(odom.lin[:, 0], odom.lin[:, 1]) + opts.yaw_lever * np.abs(odom.ang[:, 2])
    stuck = (wanted >= max(opts.stuck_min_command, 1e-9)) & (achieved < opts.stuck_ratio * wanted)
    events = [(int(odom.t[s]), int(odom.t[e]), "stuck") for s, e in _runs(stuck, odom.t, gap)
              if odom.t[e] - odom.t[s] >= _ns(opts.stuck_time)]
    cos_tilt = _quat_matrix(odom.quat)[:, 2, 2]
    tilted = cos_tilt < math.cos(math.radians(opts.tilt_deg))
    events += [(int(odom.t[s]), int(odom.t[e]), "tilt") for s, e in _runs(tilted, odom.t, gap)]
    return sorted(events)


# ------------------------------------------------------------------------------ point clouds
def cloud_xyz(msg: Any, keep_invalid: bool = False) -> np.ndarray:
    """x, y, z of a sensor_msgs/PointCloud2 (rosbags message) as ``[N, 3]`` float64.

    Raises:
        ConversionError: see :func:`morobot.pointcloud.cloud_xyz`.
    """
    try:
        return pointcloud.cloud_xyz(msg, keep_invalid)
    except ValueError as exc:
        raise ConversionError(str(exc)) from None


def cloud_to_grid(msg: Any) -> tuple[np.ndarray, tuple[float, float], float]:
    """An organized height-grid cloud (as the elevation_mapper publishes it) as a grid.

    Returns:
        ``(heights [rows, cols], origin (x, y) of cell [0, 0], resolution)``; rows run along x.

    Raises:
        ConversionError: unorganized, degenerate or irregular grids.
    """
    from morobot.mapping.elevation import grid_from_points

    rows, cols = int(msg.height), int(msg.width)
    try:
        return grid_from_points(cloud_xyz(msg, keep_invalid=True).reshape(rows, cols, 3))
    except ValueError as exc:
        raise ConversionError(str(exc)) from None


class _Mosaic:
    """All terrain seen in a bag on one odom-aligned grid (latest observation per cell)."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, resolution: float, max_cells: int = 4_000_000) -> None:
        res = float(resolution)
        while math.ceil((hi[0] - lo[0]) / res + 1) * math.ceil((hi[1] - lo[1]) / res + 1) > max_cells:
            res *= 2.0
        self.resolution = res
        self.origin = (math.floor(lo[0] / res) * res, math.floor(lo[1] / res) * res)
        nx = int(math.ceil((hi[0] - self.origin[0]) / res)) + 1
        ny = int(math.ceil((hi[1] - self.origin[1]) / res)) + 1
        self.heights = np.full((nx, ny), np.nan, dtype=np.float32)

    def paste(self, heights: np.ndarray, origin: tuple[float, float], resolution: float) -> None:
        i, j = np.nonzero(np.isfinite(heights))
        mi = np.rint((origin[0] + resolution * i - self.origin[0]) / self.resolution).astype(np.int64)
        mj = np.rint((origin[1] + resolution * j - self.origin[1]) / self.resolution).astype(np.int64)
        ok = (mi >= 0) & (mi < self.heights.shape[0]) & (mj >= 0) & (mj < self.heights.shape[1])
        self.heights[mi[ok], mj[ok]] = heights[i[ok], j[ok]]

    def crop(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(heights, origin)`` of the part covering ``[lo, hi]`` (at least one cell)."""
        res = self.resolution
        i0 = int(np.clip(math.floor((lo[0] - self.origin[0]) / res), 0, self.heights.shape[0] - 1))
        j0 = int(np.clip(math.floor((lo[1] - self.origin[1]) / res), 0, self.heights.shape[1] - 1))
        i1 = int(np.clip(math.ceil((hi[0] - self.origin[0]) / res) + 1, i0 + 1, self.heights.shape[0]))
        j1 = int(np.clip(math.ceil((hi[1] - self.origin[1]) / res) + 1, j0 + 1, self.heights.shape[1]))
        origin = np.array([self.origin[0] + i0 * res, self.origin[1] + j0 * res])
        return self.heights[i0:i1, j0:j1].copy(), origin


# ------------------------------------------------------------------------------------ bags
def typestore() -> Any:
    """The ROS 2 Kilted message definitions of ``rosbags`` (Odometry, Twist and PointCloud2 are the
    same in Humble, Jazzy and Kilted)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * _NS + int(header.stamp.nanosec)


@dataclass
class _Bag:
    path: Path
    reader: Any
    topics: dict[str, dict[str, Any]]
    conns: dict[str, list]
    storage: str


def _open_bag(path: str | Path, opts: ConvertOptions) -> _Bag:
    """Opens a bag and checks that it holds the needed topics with the right types."""
    from rosbags.rosbag2 import Reader

    p = Path(path)
    if not p.exists():
        raise ConversionError(f"rosbag2 not found: {p}")
    try:
        reader = Reader(p)
        reader.open()
    except Exception as exc:  # rosbags raises ReaderError, yaml and sqlite errors for foreign files
        raise ConversionError(f"{p} is not a readable rosbag2: {exc}") from exc
    try:
        topics = {t: {"type": info.msgtype, "messages": int(info.msgcount)} for t, info in reader.topics.items()}
        terrain_topic = opts.map_topic if opts.terrain == "elevation_map" else opts.points_topic
        need = {opts.odom_topic: (ODOM_TYPE,), opts.cmd_topic: TWIST_TYPES, terrain_topic: (CLOUD_TYPE,)}
        for topic, types in need.items():
            if topic not in topics:
                have = ", ".join(f"{t} ({v['type']})" for t, v in sorted(topics.items())) or "none"
                raise ConversionError(f"{p}: topic {topic} is not in the bag (it has: {have}); "
                                      f"choose the topic with the matching --*-topic option")
            if topics[topic]["type"] not in types:
                raise ConversionError(f"{p}: topic {topic} has type {topics[topic]['type']}, expected "
                                      f"{' or '.join(types)}")
            if topics[topic]["messages"] == 0:
                raise ConversionError(f"{p}: topic {topic} holds no messages")
        conns = {t: [c for c in reader.connections if c.topic == t] for t in need}
        storage = "mcap" if any(f.suffix == ".mcap" for f in ([p] if p.is_file() else p.iterdir())) else "sqlite3"
    except BaseException:
        reader.close()
        raise
    return _Bag(p, reader, topics, conns, storage)


@dataclass
class _Motion:
    odom: _Odometry
    cmds: _Commands
    odom_frame: str
    base_frame: str
    clock_offset_ns: int
    t_ref: int
    dropped: dict[str, int]


def _read_motion(bag: _Bag, opts: ConvertOptions, store: Any, bar: Any) -> _Motion:
    """Pass 1: odometry and commands into arrays."""
    odom_hdr, odom_bag, odom_val = [], [], []
    cmd_hdr, cmd_bag, cmd_val = [], [], []
    frames: dict[tuple[str, str], int] = {}
    for conn, bag_ns, raw in bag.reader.messages(connections=bag.conns[opts.odom_topic] + bag.conns[opts.cmd_topic]):
        bar.update(1)
        msg = store.deserialize_cdr(raw, conn.msgtype)
        if conn.topic == opts.odom_topic:
            p, q = msg.pose.pose.position, msg.pose.pose.orientation
            tl, ta = msg.twist.twist.linear, msg.twist.twist.angular
            odom_hdr.append(_stamp_ns(msg.header))
            odom_bag.append(bag_ns)
            odom_val.append((p.x, p.y, p.z, q.w, q.x, q.y, q.z, tl.x, tl.y, tl.z, ta.x, ta.y, ta.z))
            key = (msg.header.frame_id, msg.child_frame_id)
            frames[key] = frames.get(key, 0) + 1
        else:
            twist = msg.twist if conn.msgtype.endswith("TwistStamped") else msg
            cmd_hdr.append(_stamp_ns(msg.header) if conn.msgtype.endswith("TwistStamped") else 0)
            cmd_bag.append(bag_ns)
            cmd_val.append((twist.linear.x, twist.linear.y, twist.angular.z))
    o_hdr, o_bag = np.asarray(odom_hdr, np.int64), np.asarray(odom_bag, np.int64)
    o_val = np.asarray(odom_val, np.float64).reshape(-1, 13)
    c_hdr, c_bag = np.asarray(cmd_hdr, np.int64), np.asarray(cmd_bag, np.int64)
    c_val = np.asarray(cmd_val, np.float64).reshape(-1, 3)
    offset = 0
    if opts.time_source == "header":
        nz = o_hdr != 0
        offset = int(np.median(o_hdr[nz] - o_bag[nz])) if nz.any() else 0
        o_t = np.where(nz, o_hdr, o_bag + offset)
        c_t = np.where(c_hdr != 0, c_hdr, c_bag + offset)
    else:
        o_t, c_t = o_bag, c_bag
    qn = np.linalg.norm(o_val[:, 3:7], axis=1)
    o_ok = np.all(np.isfinite(o_val), axis=1) & (np.abs(qn - 1.0) <= 1e-2)
    c_ok = np.all(np.isfinite(c_val), axis=1)
    t, vals = _unique_sorted(o_t[o_ok], o_val[o_ok])
    if t.size < 2:
        raise ConversionError(f"{bag.path}: {opts.odom_topic} has fewer than two valid messages")
    odom = _Odometry(t, vals, o_t[~o_ok], _ns(opts.max_odom_gap))
    ct, cv = _unique_sorted(c_t[c_ok], c_val[c_ok])
    cmds = _Commands(ct, cv, c_t[~c_ok], _ns(opts.cmd_timeout))
    (odom_frame, base_frame) = max(frames, key=frames.get)
    return _Motion(odom, cmds, odom_frame, base_frame, offset, int(t[0]),
                   {"odom_invalid": int((~o_ok).sum()), "cmd_invalid": int((~c_ok).sum())})


# --------------------------------------------------------------------------------- samples
def _candidates(motion: _Motion, opts: ConvertOptions) -> np.ndarray:
    """Start stamps on the grid of multiples of ``stride * dt`` whose window lies within the odometry."""
    step = _ns(opts.stride * opts.dt)
    lo = int(motion.odom.t[0]) + _ns((opts.history_length - 1) * opts.history_dt)
    hi = int(motion.odom.t[-1]) - _ns(opts.horizon * opts.dt)
    first = -(-lo // step) * step
    return np.arange(first, hi + 1, step, dtype=np.int64) if hi >= first else np.zeros(0, np.int64)


def _select(t0: np.ndarray, motion: _Motion, events: list, opts: ConvertOptions) -> tuple[np.ndarray, dict, np.ndarray]:
    """Applies the odometry, NaN, failure and segment checks.

    Returns:
        ``(kept start stamps, skip counts, segment index of each kept start)``.
    """
    skipped = {r: 0 for r in SKIP_REASONS}
    hist_ns = _ns((opts.history_length - 1) * opts.history_dt)
    a, b = t0 - hist_ns, t0 + _ns(opts.horizon * opts.dt)
    first_cmd = motion.cmds.t[0] if motion.cmds.t.size else np.iinfo(np.int64).max
    checks = [
        ("odom_gap", motion.odom.covered(a, b)),
        ("no_command", a > first_cmd),
        ("nan", (motion.odom.count_bad(a, b) == 0)
         & (motion.cmds.count_bad(a - _ns(opts.history_dt), b) == 0)),
    ]
    in_fail = np.zeros(t0.shape, bool)
    for onset, end, _ in events:
        in_fail |= (t0 >= onset) & (t0 <= end)
    checks.append(("in_failure", ~in_fail))
    seg = np.zeros(t0.shape, np.int64)
    if opts.segment_seconds:
        seg_ns = _ns(opts.segment_seconds)
        seg = (t0 - motion.t_ref) // seg_ns
        start = motion.t_ref + seg * seg_ns
        checks.append(("segment_edge", (a >= start) & (b <= start + seg_ns)))
    keep = np.ones(t0.shape, bool)
    for reason, ok in checks:
        skipped[reason] += int((keep & ~ok).sum())
        keep &= ok
    return t0[keep], skipped, seg[keep]


def _motion_arrays(t0: np.ndarray, motion: _Motion, events: list, opts: ConvertOptions) -> dict[str, np.ndarray]:
    """History, commands, poses, failure flags and start pose of the samples starting at ``t0``."""
    odom, cmds = motion.odom, motion.cmds
    n, horizon, dt_ns, hdt_ns = len(t0), opts.horizon, _ns(opts.dt), _ns(opts.history_dt)
    steps = np.arange(horizon + 1, dtype=np.int64) * dt_ns
    edges = t0[:, None] + steps[None, :]  # [n, T + 1] step boundaries
    commands = cmds.mean(edges[:, :-1], edges[:, 1:])
    start_pose, start_z = odom.poses(t0)
    end_pose, _ = odom.poses(edges[:, 1:].reshape(-1))
    end_pose = end_pose.reshape(n, horizon, 3)
    c, s = np.cos(start_pose[:, 2])[:, None], np.sin(start_pose[:, 2])[:, None]
    dx, dy = end_pose[..., 0] - start_pose[:, :1], end_pose[..., 1] - start_pose[:, 1:2]
    dyaw = end_pose[..., 2] - start_pose[:, 2:3]
    rel = np.stack((c * dx + s * dy, -s * dx + c * dy, np.arctan2(np.sin(dyaw), np.cos(dyaw))), -1)
    failed = np.zeros((n, horizon), np.uint8)
    for onset, _, _ in events:
        delay = onset - t0
        for k in np.flatnonzero((delay > 0) & (delay <= horizon * dt_ns)):
            failed[k, int(-(-delay[k] // dt_ns)) - 1:] = 1
    rel, failed = freeze_after_failure(rel, failed)

    offsets = np.arange(opts.history_length - 1, -1, -1, dtype=np.int64) * hdt_ns
    grid = t0[:, None] - offsets[None, :]  # [n, L] row stamps, oldest first
    _, q, lin, ang = odom.at(grid.reshape(-1))
    gravity = -_quat_matrix(q)[:, 2, :].reshape(n, opts.history_length, 3)
    twist = np.stack((lin[:, 0], lin[:, 1], ang[:, 2]), -1).reshape(n, opts.history_length, 3)
    cmd = cmds.held(grid, left=True)
    history = np.empty((n, opts.history_length, 9), np.float32)
    rel_s = -offsets * 1e-9
    for k in range(n):  # the collector's and the nodes' own history class, fed on the grid
        hist = ProprioHistory(opts.history_length, opts.history_dt)
        for r in range(opts.history_length):
            hist.push(rel_s[r], cmd[k, r], twist[k, r], gravity[k, r])
        history[k] = hist.array()
    return {
        "history": history,
        "commands": commands.astype(np.float32),
        "poses": rel.astype(np.float32),
        "failed": failed,
        "start_pose": start_pose.astype(np.float32),
        "start_z": start_z.astype(np.float32),
        "_start_pose64": start_pose,
        "_start_z64": start_z,
        "_end_xy": end_pose[..., :2],
    }


def _idle(arrays: dict[str, np.ndarray]) -> np.ndarray:
    still = np.all(np.abs(arrays["history"][:, :, 3:6]) < 0.05, axis=(1, 2))
    no_cmd = np.all(np.abs(arrays["commands"]) < 1e-3, axis=(1, 2)) & np.all(
        np.abs(arrays["history"][:, :, 0:3]) < 1e-3, axis=(1, 2))
    no_motion = np.all(np.abs(arrays["poses"]) < 0.05, axis=(1, 2))
    return still & no_cmd & no_motion


def _terrain_stamp(msg: Any, bag_ns: int, motion: _Motion, opts: ConvertOptions) -> int:
    if opts.time_source == "header":
        stamp = _stamp_ns(msg.header)
        return stamp if stamp != 0 else bag_ns + motion.clock_offset_ns
    return bag_ns


def _scans_from_maps(bag: _Bag, motion: _Motion, t0: np.ndarray, pose: np.ndarray, z: np.ndarray,
                     opts: ConvertOptions, store: Any, bar: Any, mosaic: _Mosaic,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Pass 2 (``/elevation_map``): each start takes the newest map at or before it."""
    rows, cols = opts.scan.shape
    scans = np.full((len(t0), rows, cols), np.nan, np.float32)
    ok = np.zeros(len(t0), bool)
    dropped = {"map_malformed": 0, "map_wrong_frame": 0, "map_out_of_order": 0}
    frames: set[str] = set()
    max_age = _ns(opts.max_terrain_age)
    state = {"k": 0, "map": None}

    def flush(until: Optional[int]) -> None:
        k = state["k"]
        j = len(t0) if until is None else int(np.searchsorted(t0, until, "left"))
        if state["map"] is not None and j > k:
            stamp, heights, origin, res = state["map"]
            sel = np.arange(k, j)
            sel = sel[(t0[sel] >= stamp) & (t0[sel] - stamp <= max_age)]
            if sel.size:
                scans[sel] = sample_heights(heights, origin, res, pose[sel], z[sel], opts.scan)
                ok[sel] = True
        state["k"] = max(k, j)

    for conn, bag_ns, raw in bag.reader.messages(connections=bag.conns[opts.map_topic]):
        bar.update(1)
        msg = store.deserialize_cdr(raw, conn.msgtype)
        frame = msg.header.frame_id
        if frame and frame != motion.odom_frame:
            dropped["map_wrong_frame"] += 1
            frames.add(frame)
            continue
        try:
            heights, origin, res = cloud_to_grid(msg)
        except ConversionError:
            dropped["map_malformed"] += 1
            continue
        stamp = _terrain_stamp(msg, bag_ns, motion, opts)
        if state["map"] is not None and stamp < state["map"][0]:
            dropped["map_out_of_order"] += 1
            continue
        flush(stamp)
        state["map"] = (stamp, heights, origin, res)
        mosaic.paste(heights, origin, res)
    flush(None)
    if frames:
        dropped["map_frames_seen"] = sorted(frames)
    return scans, ok, dropped


def _scans_from_points(bag: _Bag, motion: _Motion, t0: np.ndarray, pose: np.ndarray, z: np.ndarray,
                       opts: ConvertOptions, store: Any, bar: Any, mosaic: _Mosaic,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Pass 2 (``/points``): clouds fused by the elevation mapper in message order; each start
    samples the map as it stands then (clouds stamped after the start are not yet in it)."""
    from morobot.mapping.elevation import ElevationMapConfig, ElevationMapper, transform_points

    mapper = ElevationMapper(ElevationMapConfig(size_x=opts.map_size, size_y=opts.map_size,
                                                resolution=opts.map_resolution, max_age=opts.map_max_age,
                                                voxel_size=opts.voxel_size))
    rows, cols = opts.scan.shape
    scans = np.full((len(t0), rows, cols), np.nan, np.float32)
    ok = np.zeros(len(t0), bool)
    dropped = {"cloud_malformed": 0, "cloud_wrong_frame": 0, "cloud_no_odom": 0}
    frames: set[str] = set()
    max_age = _ns(opts.max_terrain_age)
    state: dict[str, Any] = {"k": 0, "last": None}
    extrinsic = None if opts.points_to_base is None else np.asarray(opts.points_to_base, np.float64)

    def sec(t: int) -> float:
        return (int(t) - motion.t_ref) * 1e-9

    def flush(until: Optional[int]) -> None:
        k = state["k"]
        j = len(t0) if until is None else int(np.searchsorted(t0, until, "left"))
        for s in range(k, j):
            last = state["last"]
            if last is None or t0[s] - last > max_age:
                continue
            hmap = mapper.height_map(pose[s, :2], sec(t0[s]))
            heights = hmap.heights.numpy().astype(np.float64)
            scans[s] = sample_heights(heights, hmap.origin, hmap.resolution, pose[s], z[s], opts.scan)
            ok[s] = True
            mosaic.paste(heights, hmap.origin, hmap.resolution)
        state["k"] = max(k, j)

    for conn, bag_ns, raw in bag.reader.messages(connections=bag.conns[opts.points_topic]):
        bar.update(1)
        msg = store.deserialize_cdr(raw, conn.msgtype)
        stamp = _terrain_stamp(msg, bag_ns, motion, opts)
        frame = msg.header.frame_id
        if frame != motion.odom_frame and frame != motion.base_frame and extrinsic is None:
            dropped["cloud_wrong_frame"] += 1
            frames.add(frame)
            continue
        try:
            pts = cloud_xyz(msg)
        except ConversionError:
            dropped["cloud_malformed"] += 1
            continue
        if not motion.odom.covered(np.array([stamp]), np.array([stamp]))[0]:
            dropped["cloud_no_odom"] += 1
            continue
        pos, q, _, _ = motion.odom.at(np.array([stamp]))
        if frame != motion.odom_frame:
            if frame != motion.base_frame:
                pts = transform_points(pts, extrinsic[:3], extrinsic[3:])
            pts = transform_points(pts, pos[0], q[0])
        flush(stamp)  # starts before this cloud's stamp see the map without it
        mapper.integrate(pts, pos[0, :2], sec(stamp))
        state["last"] = stamp if state["last"] is None else max(state["last"], stamp)
    flush(None)
    if frames:
        dropped["cloud_frames_seen"] = sorted(frames)
    return scans, ok, dropped


# --------------------------------------------------------------------------------- convert
def _world_name(path: Path, taken: set[str]) -> str:
    stem = path.stem if path.is_file() else path.name
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "bag"
    name, n = base, 2
    while name in taken or any(t.startswith(name + "-s") for t in taken):
        name, n = f"{base}_{n}", n + 1
    return name


def _convert_bag(bag: _Bag, opts: ConvertOptions, store: Any, name: str, out_dir: Path,
                 progress: bool) -> tuple[list[dict], dict[str, Any]]:
    """Converts one opened bag; writes its shards and returns ``(manifest entries, bag record)``."""
    from tqdm import tqdm

    t_start = time.time()
    terrain_topic = opts.map_topic if opts.terrain == "elevation_map" else opts.points_topic
    total = sum(bag.topics[t]["messages"] for t in (opts.odom_topic, opts.cmd_topic, terrain_topic))
    bar = tqdm(total=total, desc=name, unit="msg", disable=not progress, leave=False)
    try:
        motion = _read_motion(bag, opts, store, bar)
        events = failure_events(motion.odom, motion.cmds, opts)
        cand = _candidates(motion, opts)
        t0, skipped, seg = _select(cand, motion, events, opts)
        arrays = _motion_arrays(t0, motion, events, opts)
        if opts.skip_idle and len(t0):
            busy = ~_idle(arrays)
            skipped["idle"] = int((~busy).sum())
            t0, seg = t0[busy], seg[busy]
            arrays = {k: v[busy] for k, v in arrays.items()}
        margin = max(abs(opts.scan.x_min), abs(opts.scan.x_max), abs(opts.scan.y_min), abs(opts.scan.y_max)) + 0.5
        lo = motion.odom.pos[:, :2].min(0) - margin
        hi = motion.odom.pos[:, :2].max(0) + margin
        mosaic = _Mosaic(lo, hi, opts.world_resolution)
        scan_fn = _scans_from_maps if opts.terrain == "elevation_map" else _scans_from_points
        scans, fresh, dropped = scan_fn(bag, motion, t0, arrays["_start_pose64"], arrays["_start_z64"], opts, store,
                                        bar, mosaic)
    finally:
        bar.close()
    skipped["stale_terrain"] = int((~fresh).sum())
    t0, seg, scans = t0[fresh], seg[fresh], scans[fresh]
    arrays = {k: v[fresh] for k, v in arrays.items()}
    entries = []
    event_counts = {"stuck": 0, "tilt": 0}
    for _, _, reason in events:
        event_counts[reason] += 1
    for s in np.unique(seg):
        sel = seg == s
        world_id = f"{name}-s{int(s):03d}" if opts.segment_seconds else name
        xy = np.concatenate((arrays["_start_pose64"][sel, :2], arrays["_end_xy"][sel].reshape(-1, 2)))
        heights, origin = mosaic.crop(xy.min(0) - margin, xy.max(0) + margin)
        shard = {k: arrays[k][sel] for k in ("history", "commands", "poses", "failed", "start_pose", "start_z")}
        shard.update(scan=scans[sel], world_heights=heights, world_origin=origin,
                     world_resolution=mosaic.resolution, world_id=world_id, kind=opts.kind)
        entry = write_shard(out_dir, world_id, shard, opts.spec)
        entry["stats"] = {"bag": str(bag.path), "segment": int(s), "samples": int(sel.sum()),
                          "start": round((int(t0[sel][0]) - motion.t_ref) * 1e-9, 3),
                          "end": round((int(t0[sel][-1]) - motion.t_ref) * 1e-9, 3)}
        entries.append(entry)
    n = int(len(t0))
    record = {
        "path": str(bag.path.resolve()),
        "name": name,
        "storage": bag.storage,
        "topics": {t: bag.topics[t] for t in (opts.odom_topic, opts.cmd_topic, terrain_topic)},
        "duration_s": round((int(motion.odom.t[-1]) - int(motion.odom.t[0])) * 1e-9, 3),
        "start_stamp_ns": int(motion.odom.t[0]),
        "time_source": opts.time_source,
        "clock_offset_s": round(motion.clock_offset_ns * 1e-9, 6),
        "odom_frame": motion.odom_frame,
        "base_frame": motion.base_frame,
        "candidates": int(len(cand)),
        "samples": n,
        "skipped": skipped,
        "dropped_messages": {**motion.dropped, **dropped},
        "failure_events": event_counts,
        "failure_heuristic": opts.heuristic(),
        "samples_with_failure": int(arrays["failed"][:, -1].sum()) if n else 0,
        "world_ids": [e["world_id"] for e in entries],
        "seconds": round(time.time() - t_start, 2),
    }
    return entries, record


def _meta(opts: ConvertOptions, bags: list[dict]) -> dict[str, Any]:
    skipped = {r: sum(b["skipped"].get(r, 0) for b in bags) for r in SKIP_REASONS}
    return {
        "source": SOURCE,
        "converter": "morobot.fdm.data.rosbag",
        "labels": "heuristic",
        "failure_heuristic": opts.heuristic(),
        "options": opts.to_dict(),
        "bags": bags,
        "totals": {"bags": len(bags), "candidates": sum(b["candidates"] for b in bags),
                   "samples": sum(b["samples"] for b in bags), "skipped": skipped},
    }


def convert(bag_paths: Sequence[str | Path], out_dir: str | Path, options: Optional[ConvertOptions] = None
            ) -> dict[str, Any]:
    """Converts rosbag2 recordings into an FDM data directory (shards + manifest).

    All bags are opened and checked (existence, topics, types) before anything is written.

    Args:
        bag_paths: rosbag2 directories (or single ``.mcap`` / ``.db3`` files).
        out_dir: data directory to write.
        options: conversion parameters (defaults if None).

    Returns:
        Summary: ``out_dir``, ``samples``, ``candidates``, ``skipped`` (per reason),
        ``samples_with_failure``, ``failure_events``, per-bag records under ``bags`` (skipped bags
        of a resumed run are not listed), ``data_hash`` and the final ``manifest``.

    Raises:
        ConversionError: missing or unreadable bags, missing topics or wrong types, bad options,
            an occupied output directory without ``resume``, or no sample at all.
    """
    opts = options if options is not None else ConvertOptions()
    opts.validate()
    paths = [Path(p) for p in bag_paths]
    if not paths:
        raise ConversionError("no bag given")
    root = Path(out_dir)
    spec = opts.spec
    entries: list[dict] = []
    old_bags: list[dict] = []
    if (root / "manifest.json").exists() or (root / "shards").exists():
        if not opts.resume:
            raise ConversionError(f"{root} already holds data; pass --resume to add bags or choose another --out")
        if (root / "manifest.json").exists():
            try:
                old = read_manifest(root)
            except DatasetError as exc:
                raise ConversionError(str(exc)) from exc
            if old["spec"] != spec.to_dict():
                raise ConversionError(f"{root} holds data of another data spec; cannot add to it")
            if old.get("meta", {}).get("source") != SOURCE:
                raise ConversionError(f"{root} holds data of another source ({old.get('meta', {}).get('source')})")
            entries = list(old["shards"])
            old_bags = list(old["meta"].get("bags", []))
    done = {b["path"] for b in old_bags}
    todo: list[Path] = []
    for p in paths:  # each bag once, and not again when resuming
        if str(p.resolve()) not in done:
            done.add(str(p.resolve()))
            todo.append(p)
    store = typestore()
    opened = []
    try:
        for p in todo:  # fail before writing anything
            opened.append(_open_bag(p, opts))
        taken = {e["world_id"] for e in entries} | {b["name"] for b in old_bags}
        records: list[dict] = []
        manifest = None
        for bag in opened:
            name = _world_name(bag.path, taken)
            taken.add(name)
            new, record = _convert_bag(bag, opts, store, name, root, opts.progress)
            bag.reader.close()
            files = {e["file"] for e in new}
            entries = [e for e in entries if e["file"] not in files] + new
            records.append(record)
            if entries:
                manifest = write_manifest(root, spec, entries, _meta(opts, old_bags + records), complete=False)
    finally:
        for bag in opened:
            if bag.reader.is_open:
                bag.reader.close()
    all_bags = old_bags + records
    if not entries:
        reasons = ", ".join(f"{b['name']}: {b['candidates']} windows, skipped {b['skipped']}, dropped "
                            f"{b['dropped_messages']}" for b in records)
        raise ConversionError(f"no sample could be made ({reasons})")
    manifest = write_manifest(root, spec, entries, _meta(opts, all_bags))
    return {
        "out_dir": str(root),
        "samples": sum(r["samples"] for r in records),
        "candidates": sum(r["candidates"] for r in records),
        "skipped": {k: sum(r["skipped"][k] for r in records) for k in SKIP_REASONS},
        "samples_with_failure": sum(r["samples_with_failure"] for r in records),
        "failure_events": {k: sum(r["failure_events"][k] for r in records) for k in ("stuck", "tilt")},
        "bags": records,
        "skipped_bags": sorted({str(p) for p in paths if p not in todo}),
        "total_samples": manifest["total_samples"],
        "data_hash": manifest["data_hash"],
        "manifest": manifest,
    }


# ------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the conversion's command-line arguments to ``parser``."""
    d = ConvertOptions()
    parser.add_argument("bags", nargs="+", help="rosbag2 directories (or .mcap/.db3 files)")
    parser.add_argument("--out", required=True, help="data directory to write")
    parser.add_argument("--odom-topic", default=d.odom_topic, help="nav_msgs/Odometry topic")
    parser.add_argument("--cmd-topic", default=d.cmd_topic, help="geometry_msgs/Twist(Stamped) topic")
    parser.add_argument("--terrain", choices=TERRAIN_SOURCES, default=d.terrain,
                        help="read height grids (elevation_map) or map point clouds (points)")
    parser.add_argument("--map-topic", default=d.map_topic, help="elevation map PointCloud2 topic (odom frame)")
    parser.add_argument("--points-topic", default=d.points_topic, help="point cloud topic (--terrain points)")
    parser.add_argument("--time-source", choices=TIME_SOURCES, default=d.time_source,
                        help="message header stamps or bag receive times")
    parser.add_argument("--stride", type=int, default=d.stride, help="steps between sample starts")
    parser.add_argument("--cmd-timeout", type=float, default=d.cmd_timeout, help="command watchdog (s)")
    parser.add_argument("--max-odom-gap", type=float, default=d.max_odom_gap, help="longest odometry gap (s)")
    parser.add_argument("--max-terrain-age", type=float, default=d.max_terrain_age, help="oldest usable terrain (s)")
    parser.add_argument("--stuck-time", type=float, default=d.stuck_time, help="stuck heuristic: duration (s)")
    parser.add_argument("--stuck-min-command", type=float, default=d.stuck_min_command,
                        help="stuck heuristic: commanded motion needed (m/s)")
    parser.add_argument("--stuck-ratio", type=float, default=d.stuck_ratio,
                        help="stuck heuristic: measured/commanded motion below which the robot is stuck")
    parser.add_argument("--tilt-deg", type=float, default=d.tilt_deg, help="tilt counted as a fall (deg)")
    parser.add_argument("--skip-idle", action="store_true", help="skip windows without commands and motion")
    parser.add_argument("--kind", default=d.kind, help="terrain kind written to the shards")
    parser.add_argument("--segment-seconds", type=float, default=d.segment_seconds,
                        help="one world per segment of this length (0 = one per bag)")
    parser.add_argument("--map-size", type=float, default=d.map_size, help="--terrain points: map edge (m)")
    parser.add_argument("--map-resolution", type=float, default=d.map_resolution, help="--terrain points: cell (m)")
    parser.add_argument("--map-max-age", type=float, default=d.map_max_age, help="--terrain points: cell lifetime (s)")
    parser.add_argument("--voxel-size", type=float, default=d.voxel_size, help="--terrain points: voxel size (m)")
    parser.add_argument("--points-to-base", type=float, nargs=7, default=None,
                        metavar=("X", "Y", "Z", "QW", "QX", "QY", "QZ"),
                        help="--terrain points: pose of the cloud's sensor frame in the base frame")
    parser.add_argument("--resume", action="store_true", help="add to an existing output, skip converted bags")
    parser.add_argument("--no-progress", action="store_true")


def options_from_args(ns: argparse.Namespace) -> ConvertOptions:
    """:class:`ConvertOptions` from parsed arguments of :func:`add_arguments`."""
    return replace(
        ConvertOptions(),
        odom_topic=ns.odom_topic, cmd_topic=ns.cmd_topic, terrain=ns.terrain, map_topic=ns.map_topic,
        points_topic=ns.points_topic, time_source=ns.time_source, stride=ns.stride, cmd_timeout=ns.cmd_timeout,
        max_odom_gap=ns.max_odom_gap, max_terrain_age=ns.max_terrain_age, stuck_time=ns.stuck_time,
        stuck_min_command=ns.stuck_min_command, stuck_ratio=ns.stuck_ratio, tilt_deg=ns.tilt_deg,
        skip_idle=ns.skip_idle, kind=ns.kind, segment_seconds=ns.segment_seconds, map_size=ns.map_size,
        map_resolution=ns.map_resolution, map_max_age=ns.map_max_age, voxel_size=ns.voxel_size,
        points_to_base=None if ns.points_to_base is None else tuple(ns.points_to_base), resume=ns.resume,
        progress=not ns.no_progress,
    )


def run(ns: argparse.Namespace) -> int:
    """Runs a conversion from parsed arguments; prints a summary (or one error line); returns the exit code."""
    try:
        summary = convert(ns.bags, ns.out, options_from_args(ns))
    except (ConversionError, DatasetError) as exc:
        print(f"morobot convert-bag: error: {exc}", file=sys.stderr)
        return 2
    skipped = ", ".join(f"{k} {v}" for k, v in summary["skipped"].items() if v) or "none"
    events = ", ".join(f"{k} {v}" for k, v in summary["failure_events"].items())
    print(f"{summary['samples']} samples of {summary['candidates']} windows from {len(summary['bags'])} bag(s) "
          f"into {summary['out_dir']} ({summary['samples_with_failure']} with a heuristic failure; events: "
          f"{events}); skipped: {skipped}; data set {summary['total_samples']} samples, "
          f"hash {summary['data_hash'][:12]}")
    if summary["skipped_bags"]:
        print(f"already converted, skipped: {', '.join(summary['skipped_bags'])}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (``python -m morobot.fdm.data.rosbag``, ``morobot convert-bag``)."""
    parser = argparse.ArgumentParser(prog="morobot convert-bag",
                                     description="Convert rosbag2 recordings of a robot into FDM training data.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
