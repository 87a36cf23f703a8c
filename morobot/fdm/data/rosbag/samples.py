"""Sample windows of a bag: candidates, selection, motion arrays, scans from maps or clouds."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from morobot.fdm.data.dataset import freeze_after_failure
from morobot.fdm.heightscan import sample_heights
from morobot.fdm.history import JOINT_FEATURES, ProprioHistory, extra_columns
from morobot.fdm.data.rosbag.options import (SKIP_REASONS, ConversionError, ConvertOptions)
from morobot.fdm.data.rosbag.series import _ns, _quat_matrix
from morobot.fdm.data.rosbag.bags import _Bag, _Motion, _Mosaic, cloud_to_grid, cloud_xyz, _stamp_ns


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
    legged = opts.history_features in JOINT_FEATURES
    actions = opts.history_features == "legged_actions"
    if legged:
        joints = motion.joints.at(grid.reshape(-1)).reshape(n, opts.history_length, 36)
        lin3, ang3 = lin.reshape(n, opts.history_length, 3), ang.reshape(n, opts.history_length, 3)
    if actions:
        a1, a2 = (a.reshape(n, opts.history_length, 12) for a in motion.targets.last_two(grid.reshape(-1)))
    history = np.empty((n, opts.history_length, opts.spec.history_dim), np.float32)
    rel_s = -offsets * 1e-9
    for k in range(n):  # the collector's and the nodes' own history class, fed on the grid
        hist = ProprioHistory(opts.history_length, opts.history_dt, opts.history_features)
        for r in range(opts.history_length):
            extra = (extra_columns(opts.history_features, lin3[k, r], ang3[k, r], joints[k, r, :12],
                                   joints[k, r, 12:24], joints[k, r, 24:], (a1[k, r], a2[k, r]) if actions else None)
                     if legged else None)
            hist.push(rel_s[r], cmd[k, r], twist[k, r], gravity[k, r], extra)
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
                                                voxel_size=opts.voxel_size, body_box=opts.body_box))
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
        mapper.integrate(pts, pos[0, :2], sec(stamp), base_pose=(pos[0], q[0]))
        state["last"] = stamp if state["last"] is None else max(state["last"], stamp)
    flush(None)
    if frames:
        dropped["cloud_frames_seen"] = sorted(frames)
    return scans, ok, dropped
