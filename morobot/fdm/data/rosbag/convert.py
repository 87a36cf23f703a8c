"""The conversion of bags into FDM data and the ``morobot convert-bag`` command."""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from morobot.fdm.history import FEATURE_SETS
from morobot.fdm.data.dataset import DatasetError, read_manifest, write_manifest, write_shard
from morobot.fdm.data.rosbag.options import (TERRAIN_SOURCES, TIME_SOURCES, SKIP_REASONS, SOURCE, ConversionError, ConvertOptions)
from morobot.fdm.data.rosbag.series import failure_events
from morobot.fdm.data.rosbag.bags import _Bag, _Mosaic, _open_bag, _read_motion, typestore
from morobot.fdm.data.rosbag.samples import _candidates, _idle, _motion_arrays, _scans_from_maps, _scans_from_points, _select


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
    topics = (opts.odom_topic, opts.cmd_topic, opts.terrain_topic) + opts.joint_topics
    total = sum(bag.topics[t]["messages"] for t in topics)
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
        "topics": {t: bag.topics[t] for t in topics},
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
    parser.add_argument("--history-features", choices=tuple(FEATURE_SETS), default=d.history_features,
                        help="proprioceptive history: base, legged (the 12 leg joints from --joint-states-topic) or "
                             "legged_actions (also the controller's joint targets from --joint-targets-topic)")
    parser.add_argument("--joint-states-topic", default=d.joint_states_topic,
                        help="sensor_msgs/JointState topic (--history-features legged, legged_actions)")
    parser.add_argument("--joint-targets-topic", default=d.joint_targets_topic,
                        help="sensor_msgs/JointState topic of joint position targets (--history-features "
                             "legged_actions)")
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
    parser.add_argument("--body-box", type=float, nargs=6, default=d.body_box,
                        metavar=("X_MIN", "X_MAX", "Y_MIN", "Y_MAX", "Z_MIN", "Z_MAX"),
                        help="--terrain points: base-frame box of the robot's own legs, whose points are dropped "
                             "(the elevation_mapper node's body_box)")
    parser.add_argument("--no-body-filter", action="store_true",
                        help="--terrain points: keep the points inside --body-box")
    parser.add_argument("--resume", action="store_true", help="add to an existing output, skip converted bags")
    parser.add_argument("--no-progress", action="store_true")


def options_from_args(ns: argparse.Namespace) -> ConvertOptions:
    """:class:`ConvertOptions` from parsed arguments of :func:`add_arguments`."""
    return replace(
        ConvertOptions(),
        odom_topic=ns.odom_topic, cmd_topic=ns.cmd_topic, terrain=ns.terrain, map_topic=ns.map_topic,
        history_features=ns.history_features, joint_states_topic=ns.joint_states_topic,
        joint_targets_topic=ns.joint_targets_topic,
        points_topic=ns.points_topic, time_source=ns.time_source, stride=ns.stride, cmd_timeout=ns.cmd_timeout,
        max_odom_gap=ns.max_odom_gap, max_terrain_age=ns.max_terrain_age, stuck_time=ns.stuck_time,
        stuck_min_command=ns.stuck_min_command, stuck_ratio=ns.stuck_ratio, tilt_deg=ns.tilt_deg,
        skip_idle=ns.skip_idle, kind=ns.kind, segment_seconds=ns.segment_seconds, map_size=ns.map_size,
        map_resolution=ns.map_resolution, map_max_age=ns.map_max_age, voxel_size=ns.voxel_size,
        points_to_base=None if ns.points_to_base is None else tuple(ns.points_to_base), resume=ns.resume,
        body_box=None if ns.no_body_filter else tuple(ns.body_box),
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
