"""Options, constants and the error of the rosbag2 conversion (see :mod:`morobot.fdm.data.rosbag`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

from morobot.fdm.history import FEATURE_SETS, JOINT_FEATURES, feature_names
from morobot.fdm.data.dataset import DataSpec
from morobot.fdm.heightscan import ScanConfig
from morobot.mapping.body import BODY_BOX, check_box


JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
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
        history_features: ``base``, ``legged`` (the 12 leg joints too, from ``joint_states_topic``) or
            ``legged_actions`` (also the controller's last two joint targets, from ``joint_targets_topic``;
            :mod:`morobot.fdm.history`).
        joint_states_topic: sensor_msgs/JointState topic (``history_features`` ``legged``, ``legged_actions``).
        joint_targets_topic: sensor_msgs/JointState topic whose positions are the locomotion controller's
            joint targets, one message per control step (``history_features="legged_actions"``).
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
        body_box: ``terrain="points"``: the mapper drops the points inside this base-frame box, the robot's own
            legs (``(x_min, x_max, y_min, y_max, z_min, z_max)``, m; the mapper node's ``body_box`` default),
            as the ``elevation_mapper`` node does; ``None``: keep them.
        points_to_base: ``terrain="points"``: static pose of the cloud's sensor frame in the base
            frame, ``(x, y, z, qw, qx, qy, qz)``, used for clouds in neither the odom nor the base
            frame (such clouds are dropped without it).
        resume: add to an existing output directory, skipping bags already converted.
        progress: show a progress bar.
    """

    odom_topic: str = "/odom"
    cmd_topic: str = "/cmd_vel"
    history_features: str = "base"
    joint_states_topic: str = "/joint_states"
    joint_targets_topic: str = "/joint_targets"
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
    body_box: Optional[tuple[float, ...]] = BODY_BOX
    points_to_base: Optional[tuple[float, ...]] = None
    resume: bool = False
    progress: bool = True

    def validate(self) -> None:
        """Raises ConversionError on bad parameters."""
        if self.history_features not in FEATURE_SETS:
            raise ConversionError(f"history_features must be one of {sorted(FEATURE_SETS)}, got {self.history_features!r}")
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
        if self.body_box is not None:
            try:
                check_box(self.body_box)
            except ValueError as exc:
                raise ConversionError(str(exc)) from None
        if self.points_to_base is not None:
            p = np.asarray(self.points_to_base, dtype=float)
            if p.shape != (7,) or not np.all(np.isfinite(p)) or np.linalg.norm(p[3:]) < 1e-9:
                raise ConversionError("points_to_base must be 7 finite numbers x y z qw qx qy qz (|q| > 0)")

    @property
    def window_seconds(self) -> float:
        """Time a sample spans: its history plus its horizon (s)."""
        return (self.history_length - 1) * self.history_dt + self.horizon * self.dt

    @property
    def terrain_topic(self) -> str:
        """The topic the terrain is read from (``map_topic`` or ``points_topic``)."""
        return self.map_topic if self.terrain == "elevation_map" else self.points_topic

    @property
    def joint_topics(self) -> tuple[str, ...]:
        """The JointState topics the history features need: the joint states (``legged``), and the joint
        targets too (``legged_actions``)."""
        topics = (self.joint_states_topic,) if self.history_features in JOINT_FEATURES else ()
        return topics + ((self.joint_targets_topic,) if self.history_features == "legged_actions" else ())

    @property
    def spec(self) -> DataSpec:
        """The data spec of the samples this conversion writes."""
        return DataSpec(scan=self.scan, horizon=self.horizon, dt=self.dt, history_length=self.history_length,
                        history_dt=self.history_dt, history_dim=len(feature_names(self.history_features)),
                        history_features=self.history_features)

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
