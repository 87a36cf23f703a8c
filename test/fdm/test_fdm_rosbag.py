"""morobot.fdm.data.rosbag: rosbag2 recordings of a synthetic drive (written here with rosbags) converted into
FDM data and compared value by value with the drive that produced them.

The drive (100 s to 150 s of bag time): a point robot tracks piecewise-constant commands (published at
10 Hz, one value per 0.5 s step, silent from 140 s to 142 s so the 0.5 s watchdog zeroes them) with a
0.2 s first-order lag, with small roll/pitch oscillations; from 118 s to 122 s it is blocked in front of
a 0.3 m box while still commanded forward (the stuck heuristic must fire at 118 s). Odometry at 100 Hz,
elevation maps (8 m, 0.1 m cells, 2 % unknown cells) at 2 Hz, or base-frame point clouds at 2 Hz.
Every message reaches the bag 3 ms after its header stamp (receive latency).
"""

import json
import math

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from fdm_small import SMALL
from morobot.fdm.data import rosbag
from morobot.fdm.training import train
from morobot.fdm.data.dataset import FDMDataset, read_manifest
from morobot.fdm.data.rosbag import ConversionError, ConvertOptions

TS = get_typestore(Stores.ROS2_KILTED)
M = TS.types
SCAN = SMALL["scan"]
T0_NS = 100 * 10**9
LATENCY_NS = 3_000_000
BASE_Z = 0.55
BOX_H = 0.3
BOX_HALF = (0.5, 1.0)
TAU = 0.2
STEPS_MS = 50_000  # 100 s .. 150 s at 1 kHz
STARTS = list(range(101, 146))  # sample starts: multiples of 1 s with 0.45 s history before and 5 s after


def schedule(t):
    """Command the planner sends at time ``t`` (s)."""
    if 118.0 <= t < 122.0:
        return (0.6, 0.0, 0.0)
    if 122.0 <= t < 126.0:
        return (-0.3, 0.0, 0.5)
    k = int((t - 100.0) // 0.5)
    return (0.5 + 0.1 * ((k % 3) - 1), 0.1 * ((k % 4) - 1.5) / 1.5, 0.3 * math.sin(0.7 * k))


def simulate(block=True, tilt=False):
    """The drive at 1 kHz: held command, twist, pose, roll/pitch per millisecond index."""
    pubs = [(m * 100, schedule(100.0 + 0.1 * m)) for m in range(500) if not 140.0 <= 100.0 + 0.1 * m < 142.0]
    n = STEPS_MS + 1
    held = np.zeros((n, 3))
    p = 0
    last = None
    for i in range(n):
        while p < len(pubs) and pubs[p][0] <= i:
            last = pubs[p]
            p += 1
        if last is not None and i - last[0] < 500:  # watchdog: zero 0.5 s after the last command
            held[i] = last[1]
    v = np.zeros((n, 3))
    pose = np.zeros((n, 3))  # x, y, unwrapped yaw
    for i in range(n - 1):
        t_next = i + 1
        if block and 18_000 <= t_next < 22_000:
            v[t_next] = 0.0
            pose[t_next] = pose[i]
            continue
        v[t_next] = v[i] + (held[i] - v[i]) * (0.001 / TAU)
        c, s = math.cos(pose[i, 2]), math.sin(pose[i, 2])
        vx, vy, wz = v[t_next]
        pose[t_next] = pose[i] + 0.001 * np.array([c * vx - s * vy, s * vx + c * vy, wz])
    t = 100.0 + 0.001 * np.arange(n)
    pitch = 0.05 * np.sin(0.5 * t)
    roll = 0.03 * np.cos(0.3 * t)
    if tilt:
        pitch[12_000:12_251] = math.radians(70.0)
    z = BASE_Z + 0.01 * np.sin(t)
    return {"held": held, "v": v, "pose": pose, "pitch": pitch, "roll": roll, "z": z, "pubs": pubs}


class Terrain:
    """Flat ground with a box (top 0.3 m) just in front of where the robot is at 118 s."""

    def __init__(self, drive):
        x, y, yaw = drive["pose"][18_000]
        self.yaw = yaw
        self.centre = np.array([x, y]) + (0.45 + BOX_HALF[0]) * np.array([math.cos(yaw), math.sin(yaw)])

    def box_frame(self, x, y):
        dx, dy = np.asarray(x) - self.centre[0], np.asarray(y) - self.centre[1]
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return c * dx + s * dy, -s * dx + c * dy

    def height(self, x, y):
        u, v = self.box_frame(x, y)
        return np.where((np.abs(u) <= BOX_HALF[0]) & (np.abs(v) <= BOX_HALF[1]), BOX_H, 0.0)

    def edge_distance(self, x, y):
        u, v = self.box_frame(x, y)
        du, dv = np.abs(u) - BOX_HALF[0], np.abs(v) - BOX_HALF[1]
        inside = (du <= 0) & (dv <= 0)
        outside = np.hypot(np.maximum(du, 0), np.maximum(dv, 0))
        return np.where(inside, np.minimum(-du, -dv), outside)


def quaternion(roll, pitch, yaw):
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy)


def header(ns, frame):
    return M["std_msgs/msg/Header"](stamp=M["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
                                    frame_id=frame)


def vec3(x, y, z):
    return M["geometry_msgs/msg/Vector3"](x=float(x), y=float(y), z=float(z))


def twist(c):
    return M["geometry_msgs/msg/Twist"](linear=vec3(c[0], c[1], 0.0), angular=vec3(0.0, 0.0, c[2]))


def odom_msg(ns, drive, i, nan=False):
    x, y, yaw = drive["pose"][i]
    w, qx, qy, qz = quaternion(drive["roll"][i], drive["pitch"][i], yaw)
    pose = M["geometry_msgs/msg/Pose"](
        position=M["geometry_msgs/msg/Point"](x=float("nan") if nan else float(x), y=float(y), z=float(drive["z"][i])),
        orientation=M["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=w))
    return M["nav_msgs/msg/Odometry"](
        header=header(ns, "odom"), child_frame_id="base",
        pose=M["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
        twist=M["geometry_msgs/msg/TwistWithCovariance"](twist=twist(drive["v"][i]), covariance=np.zeros(36)))


def cloud_msg(ns, frame, pts, shape=None):
    pts = np.ascontiguousarray(np.asarray(pts, dtype="<f4").reshape(-1, 3))
    rows, cols = shape if shape is not None else (1, len(pts))
    fields = [M["sensor_msgs/msg/PointField"](name=n, offset=4 * k, datatype=7, count=1) for k, n in enumerate("xyz")]
    return M["sensor_msgs/msg/PointCloud2"](
        header=header(ns, frame), height=rows, width=cols, fields=fields, is_bigendian=False, point_step=12,
        row_step=12 * cols, data=np.frombuffer(pts.tobytes(), dtype=np.uint8), is_dense=False)


def map_msg(ns, drive, terrain, i, rng, size=8.0, res=0.1):
    n = int(round(size / res))
    x, y = drive["pose"][i, :2]
    i0 = int(np.floor(x / res + 0.5)) - n // 2
    j0 = int(np.floor(y / res + 0.5)) - n // 2
    gx, gy = np.meshgrid(res * (i0 + np.arange(n)), res * (j0 + np.arange(n)), indexing="ij")
    h = terrain.height(gx, gy)
    h[rng.random(h.shape) < 0.02] = np.nan
    return cloud_msg(ns, "odom", np.stack([gx, gy, h], -1), shape=(n, n))


def points_msg(ns, drive, terrain, i, radius=3.5, res=0.1):
    """Terrain points at the map cell centres around the robot, in the base frame."""
    x, y, yaw = drive["pose"][i]
    k = np.arange(-int(radius / res), int(radius / res) + 1)
    gx, gy = np.meshgrid(res * (np.round(x / res) + k), res * (np.round(y / res) + k), indexing="ij")
    keep = np.hypot(gx - x, gy - y) <= radius
    world = np.stack([gx[keep], gy[keep], terrain.height(gx[keep], gy[keep])], -1)
    w, qx, qy, qz = quaternion(drive["roll"][i], drive["pitch"][i], yaw)
    rot = np.array([[1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * w), 2 * (qx * qz + qy * w)],
                    [2 * (qx * qy + qz * w), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * w)],
                    [2 * (qx * qz - qy * w), 2 * (qy * qz + qx * w), 1 - 2 * (qx * qx + qy * qy)]])
    base = (world - np.array([x, y, drive["z"][i]])) @ rot  # R^T (p - t)
    return cloud_msg(ns, "base", base)


def joint_msg(ns, i):
    """The 12 leg joints at ``i`` ms: positions j + t, velocities -j, efforts 100 + j (t in s since 100 s)."""
    from morobot.robots import ANYMAL_JOINTS

    j = np.arange(12.0)
    return M["sensor_msgs/msg/JointState"](header=header(ns, ""), name=list(ANYMAL_JOINTS)[::-1],
                                           position=(j + i * 1e-3)[::-1].copy(), velocity=(-j)[::-1].copy(),
                                           effort=(100.0 + j)[::-1].copy())


def write_bag(path, drive, terrain, storage="sqlite3", terrain_topic="elevation_map", stamped_cmd=False,
              odom_gap=None, odom_nan_ms=None, cmd_nan_ms=None, map_gap=None, cmd_from_ms=0, joints=False,
              targets=False):
    """Writes the drive as a rosbag2; the optional defects are (start, end) ms ranges or ms indices."""
    rng = np.random.default_rng(0)
    cmd_type = "geometry_msgs/msg/TwistStamped" if stamped_cmd else "geometry_msgs/msg/Twist"
    out = []
    for i in range(0, STEPS_MS + 1, 10):
        if odom_gap and odom_gap[0] < i < odom_gap[1]:
            continue
        out.append((i, "/odom", odom_msg(T0_NS + i * 10**6, drive, i, nan=i == odom_nan_ms)))
    cmds = [(i, c) for i, c in drive["pubs"] if i >= cmd_from_ms]
    if cmd_nan_ms is not None:
        cmds.append((cmd_nan_ms, (float("nan"), 0.0, 0.0)))
    for i, c in cmds:
        ns = T0_NS + i * 10**6
        msg = M[cmd_type](header=header(ns, "base"), twist=twist(c)) if stamped_cmd else twist(c)
        out.append((i, "/cmd_vel", msg))
    if terrain_topic == "elevation_map":
        for i in range(0, STEPS_MS + 1, 500):
            if map_gap and map_gap[0] < i < map_gap[1]:
                continue
            out.append((i, "/elevation_map", map_msg(T0_NS + i * 10**6, drive, terrain, i, rng)))
    else:
        for i in range(250, STEPS_MS + 1, 500):
            out.append((i, "/points", points_msg(T0_NS + i * 10**6, drive, terrain, i)))
    types = {"/odom": "nav_msgs/msg/Odometry", "/cmd_vel": cmd_type, f"/{terrain_topic}": "sensor_msgs/msg/PointCloud2"}
    if joints:  # reversed name order: the converter must pick joints by name
        types["/joint_states"] = "sensor_msgs/msg/JointState"
        out += [(i, "/joint_states", joint_msg(T0_NS + i * 10**6, i)) for i in range(0, STEPS_MS + 1, 10)]
    if targets:  # one per 20 ms control step: positions 10 j + t; no velocities or efforts
        types["/joint_targets"] = "sensor_msgs/msg/JointState"
        from morobot.robots import ANYMAL_JOINTS

        out += [(i, "/joint_targets", M["sensor_msgs/msg/JointState"](
            header=header(T0_NS + i * 10**6, ""), name=list(ANYMAL_JOINTS), position=10.0 * np.arange(12.0) + i * 1e-3,
            velocity=np.zeros(0), effort=np.zeros(0))) for i in range(0, STEPS_MS + 1, 20)]
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {t: writer.add_connection(t, m, typestore=TS) for t, m in types.items()}
        for i, topic, msg in sorted(out, key=lambda e: e[0]):
            writer.write(conns[topic], T0_NS + i * 10**6 + LATENCY_NS, TS.serialize_cdr(msg, types[topic]))
    return path


def opts(**kw):
    base = dict(scan=SCAN, progress=False)
    base.update(kw)
    return ConvertOptions(**base)


# -------------------------------------------------------------------------------- expectations
def expected(drive, t0):
    """History, commands, relative poses, start pose/height of a sample starting at ``t0`` (s)."""
    i0 = int(round((t0 - 100.0) * 1000))
    rows = []
    for r in range(10):
        i = i0 - (9 - r) * 50
        p, ro = drive["pitch"][i], drive["roll"][i]
        gravity = (math.sin(p), -math.cos(p) * math.sin(ro), -math.cos(p) * math.cos(ro))
        rows.append(np.concatenate((drive["held"][i - 1], drive["v"][i], gravity)))
    commands = np.stack([drive["held"][i0 + 500 * t: i0 + 500 * (t + 1)].mean(0) for t in range(10)])
    x0, y0, yaw0 = drive["pose"][i0]
    rel = []
    for t in range(10):
        x, y, yaw = drive["pose"][i0 + 500 * (t + 1)]
        c, s = math.cos(yaw0), math.sin(yaw0)
        d = yaw - yaw0
        rel.append((c * (x - x0) + s * (y - y0), -s * (x - x0) + c * (y - y0), math.atan2(math.sin(d), math.cos(d))))
    start = (x0, y0, math.atan2(math.sin(yaw0), math.cos(yaw0)))
    return np.stack(rows), commands, np.array(rel), np.array(start), drive["z"][i0]


def start_times(data, drive):
    """Start time of every sample, found from its start pose (each start pose is unique here)."""
    times = []
    for sp in data.arrays["start_pose"]:
        d = np.hypot(drive["pose"][::1000, 0] - sp[0], drive["pose"][::1000, 1] - sp[1])
        times.append(100 + int(np.argmin(d)))
    return np.array(times)


def scan_expectation(terrain, start, z, margin):
    xs = SCAN.x_min + SCAN.resolution * (np.arange(SCAN.shape[0]) + 0.5)
    ys = SCAN.y_min + SCAN.resolution * (np.arange(SCAN.shape[1]) + 0.5)
    lx, ly = np.meshgrid(xs, ys, indexing="ij")
    c, s = math.cos(start[2]), math.sin(start[2])
    wx, wy = start[0] + c * lx - s * ly, start[1] + s * lx + c * ly
    return terrain.height(wx, wy) - z, terrain.edge_distance(wx, wy) > margin


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def drive():
    return simulate(block=True)


@pytest.fixture(scope="module")
def terrain(drive):
    return Terrain(drive)


@pytest.fixture(scope="module")
def bags(tmp_path_factory, drive, terrain):
    root = tmp_path_factory.mktemp("bags")
    return {s: write_bag(root / f"drive_{s}", drive, terrain, storage=s) for s in ("sqlite3", "mcap")}


# ---------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_round_trip_elevation_map(bags, drive, terrain, tmp_path, storage):
    summary = rosbag.convert([bags[storage]], tmp_path / "data", opts())
    # 45 windows (starts 101..145 s); the starts 118..122 s lie in the stuck episode (118.00-122.05 s)
    assert summary["candidates"] == len(STARTS) == 45
    assert summary["skipped"] == {"odom_gap": 0, "no_command": 0, "nan": 0, "in_failure": 5, "segment_edge": 0,
                                  "idle": 0, "stale_terrain": 0}
    assert summary["samples"] == 40 and summary["failure_events"] == {"stuck": 1, "tilt": 0}
    data = FDMDataset(tmp_path / "data")
    assert len(data) == 40 and data.world_kinds == ["real"]
    with np.load(tmp_path / "data" / data.manifest["shards"][0]["file"]) as shard:
        assert shard["history"].dtype == np.float32 and shard["scan"].dtype == np.float16
        assert shard["failed"].dtype == np.uint8 and shard["commands"].shape == (40, 10, 3)
    times = start_times(data, drive)
    assert sorted(times) == [t for t in STARTS if not 118 <= t <= 122]
    for k, t0 in enumerate(times):
        hist, cmds, rel, start, z = expected(drive, t0)
        np.testing.assert_allclose(data.arrays["history"][k], hist, atol=1e-5, err_msg=f"history at {t0}")
        np.testing.assert_allclose(data.arrays["commands"][k], cmds, atol=1e-6, err_msg=f"commands at {t0}")
        fail = data.arrays["failed"][k]
        first = int(np.argmax(fail)) if fail.any() else 10
        np.testing.assert_allclose(data.arrays["poses"][k, :first + 1], rel[:first + 1], atol=1e-5)
        np.testing.assert_allclose(data.arrays["start_pose"][k], start, atol=1e-5)
        assert abs(float(data.arrays["start_z"][k]) - z) < 1e-6
        # the stuck onset at 118 s falls into step ceil((118 - t0) / 0.5) - 1
        onset = int(math.ceil((118 - t0) / 0.5)) - 1 if 113 <= t0 < 118 else None
        assert fail.tolist() == ([0] * onset + [1] * (10 - onset) if onset is not None else [0] * 10), t0
    # the watchdog: last command at 139.9 s, held until 140.4 s, zero after (step 140.0-140.5 s: 4/5 of it)
    k = int(np.flatnonzero(times == 138)[0])
    np.testing.assert_allclose(data.arrays["commands"][k, 4], 0.8 * np.array(schedule(139.9)), atol=1e-6)
    np.testing.assert_allclose(data.arrays["commands"][k, 5:8], 0.0, atol=1e-9)
    # the box ahead at 117 s: relative heights -0.25 on it, -0.55 +- on the ground, away from its edges
    k = int(np.flatnonzero(times == 117)[0])
    scan = data.arrays["scan"][k].astype(np.float32)
    want, clear = scan_expectation(terrain, data.arrays["start_pose"][k], float(data.arrays["start_z"][k]), 0.25)
    known = np.isfinite(scan)
    assert known.mean() > 0.95
    np.testing.assert_allclose(scan[known & clear], want[known & clear], atol=2e-3)
    on_box = known & clear & (want > -0.4)
    assert on_box.sum() >= 15
    rows = np.flatnonzero(on_box.any(axis=1))
    front = SCAN.x_min + SCAN.resolution * (rows + 0.5)
    assert 0.9 < front.min() < 1.5 and front.max() < 2.1  # the box spans ~1.05-2.05 m ahead
    # the manifest: source, heuristic labels, topics, counts
    manifest = read_manifest(tmp_path / "data")
    meta = manifest["meta"]
    assert meta["source"] == "rosbag2" and meta["labels"] == "heuristic"
    assert meta["failure_heuristic"]["stuck_time"] == 1.0 and meta["failure_heuristic"]["tilt_deg"] == 60.0
    (bag,) = meta["bags"]
    assert bag["path"] == str(bags[storage].resolve()) and bag["storage"] == storage
    assert bag["topics"]["/odom"] == {"type": "nav_msgs/msg/Odometry", "messages": 5001}
    assert bag["topics"]["/elevation_map"]["messages"] == 101 and bag["topics"]["/cmd_vel"]["messages"] == 480
    assert abs(bag["clock_offset_s"] + 0.003) < 1e-9  # unstamped commands shifted onto the header clock
    assert bag["odom_frame"] == "odom" and bag["base_frame"] == "base"
    assert manifest["shards"][0]["failures"] == 5 and manifest["total_samples"] == 40
    assert meta["totals"]["skipped"]["in_failure"] == 5


def test_points_variant(tmp_path, drive, terrain):
    bag = write_bag(tmp_path / "drive_points", drive, terrain, terrain_topic="points")
    summary = rosbag.convert([bag], tmp_path / "data", opts(terrain="points"))
    assert summary["samples"] == 40 and summary["skipped"]["stale_terrain"] == 0
    assert summary["bags"][0]["dropped_messages"]["cloud_no_odom"] == 0
    data = FDMDataset(tmp_path / "data")
    times = start_times(data, drive)
    k = int(np.flatnonzero(times == 117)[0])
    scan = data.arrays["scan"][k].astype(np.float32)
    want, clear = scan_expectation(terrain, data.arrays["start_pose"][k], float(data.arrays["start_z"][k]), 0.25)
    known = np.isfinite(scan)
    assert known.mean() > 0.6  # clouds reach 3.5 m around where the robot was at 116.75 s and before
    np.testing.assert_allclose(scan[known & clear], want[known & clear], atol=2e-3)
    assert (known & clear & (want > -0.4)).sum() >= 15
    heights = data.worlds[data.world_ids[0]]["heights"]
    assert np.nanmax(heights) == pytest.approx(BOX_H, abs=1e-6) and np.isfinite(heights).mean() > 0.3


def test_gaps_nan_stale_and_tilt_are_skipped_and_counted(tmp_path):
    drive = simulate(block=False, tilt=True)  # no stuck episode; tilted 70 deg from 112.00 to 112.25 s
    terrain = Terrain(drive)
    bag = write_bag(tmp_path / "defects", drive, terrain, storage="mcap", stamped_cmd=True,
                    odom_gap=(27_000, 28_000), odom_nan_ms=40_000, cmd_nan_ms=30_350, map_gap=(41_000, 45_000),
                    cmd_from_ms=3_000)
    summary = rosbag.convert([bag], tmp_path / "data", opts(max_terrain_age=1.0))
    # odometry missing in (127, 128) s: windows [t0 - 0.45, t0 + 5] touching it, t0 = 123..128
    # first command at 103 s: the windows of t0 = 101..103 begin before it
    # NaN odometry at 140.00 s: t0 = 135..140; NaN command at 130.35 s: t0 = 126..130 (123..128 counted above)
    # tilted at the start t0 = 112; maps missing 141-145 s, older than 1 s at t0 = 143, 144
    assert summary["skipped"] == {"odom_gap": 6, "no_command": 3, "nan": 8, "in_failure": 1, "segment_edge": 0,
                                  "idle": 0, "stale_terrain": 2}
    assert summary["samples"] == 45 - 20
    assert summary["failure_events"] == {"stuck": 0, "tilt": 1}
    assert summary["bags"][0]["dropped_messages"]["odom_invalid"] == 1
    assert summary["bags"][0]["dropped_messages"]["cmd_invalid"] == 1
    data = FDMDataset(tmp_path / "data")
    times = start_times(data, drive)
    gone = set(range(123, 129)) | {101, 102, 103} | {129, 130} | set(range(135, 141)) | {112, 143, 144}
    assert sorted(times) == sorted(set(STARTS) - gone)
    for k, t0 in enumerate(times):
        fail = data.arrays["failed"][k].tolist()
        if 107 <= t0 <= 111:  # tilt onset at 112 s
            onset = int(math.ceil((112 - t0) / 0.5)) - 1
            assert fail == [0] * onset + [1] * (10 - onset), t0
        else:
            assert not any(fail), t0
        hist, cmds, rel, _, _ = expected(drive, t0)  # stamped commands use their header stamps
        np.testing.assert_allclose(data.arrays["commands"][k], cmds, atol=1e-6)
        np.testing.assert_allclose(data.arrays["history"][k], hist, atol=1e-5)


def test_missing_bag_topic_and_occupied_output_give_one_clear_error(bags, tmp_path, capsys):
    with pytest.raises(ConversionError, match="rosbag2 not found: .*nope"):
        rosbag.convert([bags["sqlite3"], tmp_path / "nope"], tmp_path / "a", opts())
    assert not (tmp_path / "a").exists()  # checked before anything was written
    with pytest.raises(ConversionError, match=r"topic /odometry is not in the bag \(it has: /cmd_vel"):
        rosbag.convert([bags["sqlite3"]], tmp_path / "b", opts(odom_topic="/odometry"))
    with pytest.raises(ConversionError, match="topic /points is not in the bag"):
        rosbag.convert([bags["sqlite3"]], tmp_path / "b", opts(terrain="points"))
    with pytest.raises(ConversionError, match="has type nav_msgs/msg/Odometry, expected geometry_msgs"):
        rosbag.convert([bags["sqlite3"]], tmp_path / "b", opts(cmd_topic="/odom"))
    with pytest.raises(ConversionError, match=r"no sample could be made \(drive_sqlite3: 0 windows"):
        rosbag.convert([bags["sqlite3"]], tmp_path / "b", opts(horizon=100))  # 50 s horizon > the 50 s bag
    assert not (tmp_path / "b").exists()
    (tmp_path / "junk").mkdir()
    with pytest.raises(ConversionError, match="not a readable rosbag2"):
        rosbag.convert([tmp_path / "junk"], tmp_path / "b", opts())
    assert rosbag.main([str(tmp_path / "nope"), "--out", str(tmp_path / "c"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("morobot convert-bag: error: rosbag2 not found")
    # CLI happy path, then the occupied output, then --resume skipping the converted bag
    out = str(tmp_path / "cli")
    assert rosbag.main([str(bags["sqlite3"]), "--out", out, "--no-progress", "--stuck-time", "1.0"]) == 0
    line = capsys.readouterr().out
    assert "40 samples of 45 windows from 1 bag(s)" in line and "in_failure 5" in line
    assert rosbag.main([str(bags["sqlite3"]), "--out", out, "--no-progress"]) == 2
    assert "already holds data" in capsys.readouterr().err
    assert rosbag.main([str(bags["sqlite3"]), str(bags["mcap"]), "--out", out, "--no-progress", "--resume"]) == 0
    manifest = read_manifest(out)
    assert manifest["total_samples"] == 80 and len(manifest["meta"]["bags"]) == 2
    assert manifest["worlds"] == ["drive_mcap", "drive_sqlite3"]
    assert "already converted, skipped" in capsys.readouterr().out


def test_segments_load_and_train(bags, tmp_path):
    root = tmp_path / "data"
    summary = rosbag.convert([bags["sqlite3"]], root, opts(segment_seconds=12.0))
    # segments [100, 112), [112, 124), ... s: starts 101-107, 113-117 (118-122 stuck), 125-131, 137-143
    assert summary["samples"] == 26
    assert summary["skipped"]["in_failure"] == 5 and summary["skipped"]["segment_edge"] == 45 - 26 - 5
    manifest = json.loads((root / "manifest.json").read_text())
    assert [s["samples"] for s in manifest["shards"]] == [7, 5, 7, 7]
    data = FDMDataset(root)
    item = data[0]
    assert item["history"].shape == (10, 9) and item["scan"].shape == (2, *SCAN.shape)
    assert item["commands"].shape == (10, 3) and item["poses"].shape == (10, 3) and item["failed"].shape == (10,)
    model = {k: v for k, v in SMALL.items() if k != "scan"}
    model["cnn_channels"] = list(model["cnn_channels"])
    out = train.train(train.TrainArgs(data_dir=str(root), out_dir=str(tmp_path / "run"), epochs=1, batch_size=8,
                                      max_batches=2, ensemble_size=2, val_fraction=0.25, test_fraction=0.25,
                                      num_threads=1, progress=False, plot_every=100, model_overrides=model))
    assert math.isfinite(out["best_score"])
    assert (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize("features", ["legged", "legged_actions"])
def test_legged_history_from_joint_states_and_targets(tmp_path, drive, terrain, features):
    """--history-features legged: the 12 leg joints from /joint_states, by name, on the history grid;
    legged_actions: also the newest joint target at each row and the one before, from /joint_targets."""
    from morobot.fdm.history import feature_names

    actions = features == "legged_actions"
    bag = write_bag(tmp_path / "legged", drive, terrain, joints=True, targets=actions)
    summary = rosbag.convert([bag], tmp_path / "data", opts(history_features=features))
    assert summary["samples"] == 40
    data = FDMDataset(tmp_path / "data")
    names = feature_names(features)
    assert data.spec.history_features == features and data.arrays["history"].shape[1:] == (10, len(names))
    for k, t0 in enumerate(start_times(data, drive)):
        hist = data.arrays["history"][k]
        base, _, _, _, _ = expected(drive, t0)
        np.testing.assert_allclose(hist[:, :9], base, atol=1e-5)
        last = hist[-1]
        for j, joint in enumerate(("LF_HAA", "LF_HFE", "LF_KFE", "RF_HAA")):
            assert last[names.index(f"q_{joint}")] == pytest.approx(j + (t0 - 100.0), abs=1e-3)
            assert last[names.index(f"dq_{joint}")] == -j and last[names.index(f"tau_{joint}")] == 100 + j
        if actions:  # targets every 20 ms: positions 10 j + t
            newest = 20.0 * math.floor((t0 - 100.0) * 50.0 + 1e-6)
            assert last[names.index("a1_LF_HFE")] == pytest.approx(10.0 + newest * 1e-3, abs=1e-3)
            assert last[names.index("a2_LF_HFE")] == pytest.approx(10.0 + (newest - 20.0) * 1e-3, abs=1e-3)
            assert last[names.index("qerr_LF_HFE")] == pytest.approx(
                last[names.index("a1_LF_HFE")] - last[names.index("q_LF_HFE")], abs=1e-4)
    missing = "/joint_targets" if actions else "/joint_states"
    with pytest.raises(rosbag.ConversionError, match=f"{missing} is not in the bag"):
        rosbag.convert([write_bag(tmp_path / "missing", drive, terrain, joints=actions)], tmp_path / "x",
                       opts(history_features=features))


def test_the_body_box_drops_the_robots_legs_as_the_mapper_node_does():
    """The converter maps clouds with the elevation_mapper node's body box by default; the flags change it and
    a bad box is one clear error."""
    import argparse

    from morobot.fdm.data.rosbag.convert import add_arguments, options_from_args
    from morobot.mapping.body import BODY_BOX

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert options_from_args(parser.parse_args(["b", "--out", "o"])).body_box == BODY_BOX
    assert options_from_args(parser.parse_args(["b", "--out", "o", "--no-body-filter"])).body_box is None
    box = options_from_args(parser.parse_args(["b", "--out", "o", "--body-box", "-1", "1", "-1", "1", "-1", "0"]))
    assert box.body_box == (-1.0, 1.0, -1.0, 1.0, -1.0, 0.0)
    with pytest.raises(ConversionError, match="body_box"):
        ConvertOptions(body_box=(1.0, -1.0, -1.0, 1.0, -1.0, 0.0)).validate()
