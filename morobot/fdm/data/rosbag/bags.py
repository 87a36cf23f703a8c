"""Reading bags: point clouds, terrain mosaics, typestore, topics and the motion time series."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from morobot import pointcloud
from morobot.fdm.data.rosbag.options import (ODOM_TYPE, TWIST_TYPES, CLOUD_TYPE, JOINT_STATE_TYPE, _NS,
                                             ConversionError, ConvertOptions)
from morobot.fdm.data.rosbag.series import _Commands, _Joints, _Odometry, _Targets, _ns, _unique_sorted
from morobot.fdm.history import JOINT_FEATURES
from morobot.robots import ANYMAL_JOINTS


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
        need = {opts.odom_topic: (ODOM_TYPE,), opts.cmd_topic: TWIST_TYPES, opts.terrain_topic: (CLOUD_TYPE,)}
        need.update({topic: (JOINT_STATE_TYPE,) for topic in opts.joint_topics})
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
    joints: Optional[_Joints] = None  # history_features "legged", "legged_actions"
    targets: Optional[_Targets] = None  # history_features "legged_actions"


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
    dropped = {"odom_invalid": int((~o_ok).sum()), "cmd_invalid": int((~c_ok).sum())}
    joints = targets = None
    if opts.history_features in JOINT_FEATURES:
        joints, dropped["joints_invalid"] = _read_joints(bag, opts, store, bar, offset)
    if opts.history_features == "legged_actions":
        targets, dropped["targets_invalid"] = _read_targets(bag, opts, store, bar, offset)
    return _Motion(odom, cmds, odom_frame, base_frame, offset, int(t[0]), dropped, joints, targets)


def _read_joint_rows(bag: _Bag, topic: str, fields: tuple[str, ...], opts: ConvertOptions, store: Any, bar: Any,
                    offset: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(stamps, rows, invalid)``: the 12 leg joints' ``fields`` (JointState arrays) from ``topic``, by time."""
    stamps, values, bad = [], [], 0
    for conn, bag_ns, raw in bag.reader.messages(connections=bag.conns[topic]):
        bar.update(1)
        msg = store.deserialize_cdr(raw, conn.msgtype)
        names = list(msg.name)
        try:
            index = [names.index(j) for j in ANYMAL_JOINTS]
            row = np.concatenate([np.asarray(getattr(msg, f), np.float64)[index] for f in fields])
        except (ValueError, IndexError):  # a joint, or one of its values, missing
            bad += 1
            continue
        if not np.all(np.isfinite(row)):
            bad += 1
            continue
        header = _stamp_ns(msg.header)
        stamps.append(header if opts.time_source == "header" and header != 0 else bag_ns + offset)
        values.append(row)
    if len(stamps) < 2:
        raise ConversionError(f"{bag.path}: {topic} has fewer than two valid messages with the 12 leg joints "
                              f"({', '.join(ANYMAL_JOINTS[:3])}, ...) and their {', '.join(fields)}")
    t, v = _unique_sorted(np.asarray(stamps, np.int64), np.asarray(values, np.float64))
    return t, v, bad


def _read_joints(bag: _Bag, opts: ConvertOptions, store: Any, bar: Any, offset: int) -> tuple[_Joints, int]:
    """The 12 leg joints' positions, velocities and efforts from ``joint_states_topic``."""
    t, v, bad = _read_joint_rows(bag, opts.joint_states_topic, ("position", "velocity", "effort"), opts, store,
                                 bar, offset)
    return _Joints(t, v), bad


def _read_targets(bag: _Bag, opts: ConvertOptions, store: Any, bar: Any, offset: int) -> tuple[_Targets, int]:
    """The 12 leg joints' position targets from ``joint_targets_topic``."""
    t, v, bad = _read_joint_rows(bag, opts.joint_targets_topic, ("position",), opts, store, bar, offset)
    return _Targets(t, v), bad
