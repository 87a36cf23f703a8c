"""Conversions between ROS messages and numpy arrays.

Every float written into a message goes through ``float(...)``: the PyPI rclpy wheels accept a Python
``int`` in a float64 field silently and deliver garbage on the other side.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, Quaternion, Twist, TwistStamped
from nav_msgs.msg import Odometry, Path
from sensor_msgs.msg import PointCloud2, PointField

from morobot.frames import unit_quaternion_to_rotation
from morobot.planning.interface import HeightMap
from morobot.pointcloud import cloud_xyz


class MessageError(ValueError):
    """A message that cannot be converted (malformed, inconsistent or non-finite)."""


# --------------------------------------------------------------------------------------- time
def stamp_to_sec(stamp: Time) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def sec_to_stamp(t: float) -> Time:
    if not math.isfinite(t) or t < 0.0:
        raise MessageError(f"cannot convert time {t!r} to a stamp")
    sec = int(math.floor(t))
    nanosec = int(round((t - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return Time(sec=sec, nanosec=nanosec)


# -------------------------------------------------------------------------------- orientation
def yaw_to_quaternion(yaw: float) -> Quaternion:
    return Quaternion(x=0.0, y=0.0, z=float(math.sin(yaw / 2.0)), w=float(math.cos(yaw / 2.0)))


def quaternion_to_array(q: Quaternion) -> np.ndarray:
    """Quaternion message → ``(w, x, y, z)``; raises MessageError unless finite and normalised."""
    arr = np.array([q.w, q.x, q.y, q.z], dtype=float)
    if not np.all(np.isfinite(arr)):
        raise MessageError("quaternion has NaN/Inf components")
    norm = float(np.linalg.norm(arr))
    if abs(norm - 1.0) > 1e-3:
        raise MessageError(f"quaternion is not normalised (|q| = {norm:.4f})")
    return arr / norm


def quaternion_wxyz_to_yaw(q: Sequence[float]) -> float:
    w, x, y, z = q
    return float(math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def quaternion_wxyz_to_matrix(q: Sequence[float]) -> np.ndarray:
    """3x3 rotation of a unit quaternion ``(w, x, y, z)`` (unchecked: callers validate)."""
    return unit_quaternion_to_rotation(q)


# ------------------------------------------------------------------------------------ twists
def twist_to_array(msg) -> np.ndarray:
    """``(vx, vy, wz)`` of a Twist or TwistStamped; raises MessageError on NaN/Inf."""
    if hasattr(msg, "twist"):
        msg = msg.twist
    arr = np.array([msg.linear.x, msg.linear.y, msg.angular.z], dtype=float)
    if not np.all(np.isfinite(arr)):
        raise MessageError("twist has NaN/Inf components")
    return arr


def array_to_twist(cmd: Sequence[float]) -> Twist:
    msg = Twist()
    msg.linear.x = float(cmd[0])
    msg.linear.y = float(cmd[1])
    msg.angular.z = float(cmd[2])
    return msg


def cmd_vel_type(stamped: bool) -> type:
    """The message type of ``cmd_vel``: TwistStamped (Nav2's default on Kilted) or Twist."""
    return TwistStamped if stamped else Twist


def make_cmd_vel(cmd: Sequence[float], stamped: bool, stamp: float = 0.0, frame_id: str = "base"):
    """A ``cmd_vel`` message: TwistStamped (header: ``stamp``, ``frame_id``) or Twist."""
    twist = array_to_twist(cmd)
    if not stamped:
        return twist
    msg = TwistStamped()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.twist = twist
    return msg


# ---------------------------------------------------------------------------------- odometry
class OdomState:
    """Odometry in arrays: position (3), quaternion (w,x,y,z), body linear/angular velocity, stamp."""

    __slots__ = ("position", "quaternion", "linear", "angular", "stamp", "frame_id", "child_frame_id")

    def __init__(self, position, quaternion, linear, angular, stamp, frame_id="odom", child_frame_id="base"):
        self.position = np.asarray(position, dtype=float)
        self.quaternion = np.asarray(quaternion, dtype=float)
        self.linear = np.asarray(linear, dtype=float)
        self.angular = np.asarray(angular, dtype=float)
        self.stamp = float(stamp)
        self.frame_id = frame_id
        self.child_frame_id = child_frame_id

    @property
    def yaw(self) -> float:
        return quaternion_wxyz_to_yaw(self.quaternion)

    @property
    def rotation(self) -> np.ndarray:
        return quaternion_wxyz_to_matrix(self.quaternion)

    @property
    def gravity_b(self) -> np.ndarray:
        """Unit gravity direction in the base frame."""
        return self.rotation.T @ np.array([0.0, 0.0, -1.0])


def odometry_to_state(msg: Odometry) -> OdomState:
    """Odometry → OdomState; raises MessageError on NaN/Inf or a bad quaternion."""
    p = msg.pose.pose.position
    position = np.array([p.x, p.y, p.z], dtype=float)
    lin = msg.twist.twist.linear
    ang = msg.twist.twist.angular
    linear = np.array([lin.x, lin.y, lin.z], dtype=float)
    angular = np.array([ang.x, ang.y, ang.z], dtype=float)
    if not (np.all(np.isfinite(position)) and np.all(np.isfinite(linear)) and np.all(np.isfinite(angular))):
        raise MessageError("odometry has NaN/Inf position or twist")
    quat = quaternion_to_array(msg.pose.pose.orientation)
    return OdomState(position, quat, linear, angular, stamp_to_sec(msg.header.stamp),
                     msg.header.frame_id, msg.child_frame_id)


def make_odometry(position, quaternion_wxyz, linear_b, angular_b, stamp: float,
                  frame_id: str = "odom", child_frame_id: str = "base") -> Odometry:
    msg = Odometry()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.child_frame_id = child_frame_id
    pose = msg.pose.pose
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in position)
    w, x, y, z = (float(v) for v in quaternion_wxyz)
    pose.orientation = Quaternion(w=w, x=x, y=y, z=z)
    tw = msg.twist.twist
    tw.linear.x, tw.linear.y, tw.linear.z = (float(v) for v in linear_b)
    tw.angular.x, tw.angular.y, tw.angular.z = (float(v) for v in angular_b)
    return msg


# ------------------------------------------------------------------------------------- poses
def pose_stamped_to_xyyaw(msg: PoseStamped) -> np.ndarray:
    """PoseStamped → ``(x, y, yaw)``; raises MessageError on NaN/Inf or a bad quaternion."""
    p = msg.pose.position
    xy = np.array([p.x, p.y, p.z], dtype=float)
    if not np.all(np.isfinite(xy)):
        raise MessageError("pose has NaN/Inf position")
    q = quaternion_to_array(msg.pose.orientation)
    return np.array([xy[0], xy[1], quaternion_wxyz_to_yaw(q)])


def make_pose_stamped(x: float, y: float, yaw: float, stamp: float, frame_id: str = "odom",
                      z: float = 0.0) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = float(x), float(y), float(z)
    msg.pose.orientation = yaw_to_quaternion(float(yaw))
    return msg


def make_path(poses_xyyaw: np.ndarray, stamp: float, frame_id: str = "odom", z: float = 0.0,
              dt: Optional[float] = None) -> Path:
    """``[N, 3]`` (x, y, yaw) → nav_msgs/Path; with ``dt`` each pose is stamped ``stamp + (i+1)·dt``."""
    msg = Path()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = frame_id
    for i, (x, y, yaw) in enumerate(np.asarray(poses_xyyaw, dtype=float)):
        t = stamp + (i + 1) * dt if dt else stamp
        msg.poses.append(make_pose_stamped(x, y, yaw, t, frame_id, z))
    return msg


def path_to_array(msg: Path) -> np.ndarray:
    """nav_msgs/Path → ``[N, 3]`` (x, y, yaw)."""
    if not msg.poses:
        return np.zeros((0, 3))
    return np.stack([pose_stamped_to_xyyaw(p) for p in msg.poses])


# ----------------------------------------------------------------------------- point clouds
def _xyz_fields(offset: int = 0) -> list[PointField]:
    return [
        PointField(name=n, offset=offset + 4 * i, datatype=PointField.FLOAT32, count=1)
        for i, n in enumerate("xyz")
    ]


def xyz_to_pointcloud2(points: np.ndarray, stamp: float, frame_id: str,
                       shape: Optional[tuple[int, int]] = None) -> PointCloud2:
    """``[N, 3]`` → PointCloud2 with float32 x, y, z. ``shape=(rows, cols)`` makes it organized."""
    pts = np.ascontiguousarray(np.asarray(points, dtype=np.float32).reshape(-1, 3))
    msg = PointCloud2()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = frame_id
    if shape is None:
        msg.height, msg.width = 1, int(pts.shape[0])
    else:
        rows, cols = shape
        if rows * cols != pts.shape[0]:
            raise ValueError(f"organized shape {shape} does not match {pts.shape[0]} points")
        msg.height, msg.width = int(rows), int(cols)
    msg.fields = _xyz_fields()
    msg.is_bigendian = False
    msg.point_step = 12
    msg.row_step = 12 * msg.width
    msg.is_dense = bool(np.all(np.isfinite(pts)))
    msg.data = pts.tobytes()
    return msg


def pointcloud2_to_xyz(msg: PointCloud2, keep_invalid: bool = False) -> np.ndarray:
    """PointCloud2 → ``[N, 3]`` float32 (any field layout with x, y, z).

    Args:
        msg: the cloud.
        keep_invalid: keep NaN/Inf points (organized clouds); by default they are dropped.

    Raises:
        MessageError: missing x/y/z fields, inconsistent sizes or an unsupported datatype.
    """
    try:
        return cloud_xyz(msg, keep_invalid).astype(np.float32)
    except ValueError as exc:
        raise MessageError(str(exc)) from None


def heightmap_to_pointcloud2(hmap: HeightMap, frame_id: str = "odom") -> PointCloud2:
    """Organized ``rows × cols`` cloud of cell centres (x, y, height); NaN height = unknown."""
    heights = hmap.heights.detach().cpu().numpy() if hasattr(hmap.heights, "detach") else np.asarray(hmap.heights)
    xs, ys = hmap.cell_centres()
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    pts = np.stack([gx, gy, heights], axis=-1).reshape(-1, 3)
    return xyz_to_pointcloud2(pts, hmap.stamp, frame_id, shape=heights.shape)


def pointcloud2_to_heightmap(msg: PointCloud2):
    """Organized height-grid cloud → HeightMap (torch heights).

    Raises:
        MessageError: unorganized, degenerate or irregular grid.
    """
    import torch

    from morobot.mapping.elevation import grid_from_points

    rows, cols = int(msg.height), int(msg.width)
    try:
        grid, (x0, y0), res = grid_from_points(pointcloud2_to_xyz(msg, keep_invalid=True).reshape(rows, cols, 3))
    except ValueError as exc:
        raise MessageError(str(exc)) from None
    heights = torch.from_numpy(np.ascontiguousarray(grid).astype(np.float32))
    return HeightMap(heights=heights, origin=(x0, y0), resolution=res, stamp=stamp_to_sec(msg.header.stamp))


# ------------------------------------------------------------------------------ joints, images
def joint_trajectory_to_command(msg, expected: Sequence[str], optional: Sequence[str] = ()):
    """First point of a trajectory_msgs/JointTrajectory → arrays ordered as ``expected``.

    Args:
        msg: the trajectory; exactly the joints of ``expected`` must be present, plus any of
            ``optional`` (e.g. finger joints).
        expected: joint names every command must hold, in the order of the returned arrays.
        optional: joint names that may also appear.

    Returns:
        ``(positions [n], velocities [n] or None, extra {name: position})``.

    Raises:
        MessageError: no points, duplicate/unknown/missing joints, length mismatches, NaN/Inf.
    """
    names = list(msg.joint_names)
    if not msg.points:
        raise MessageError("joint command has no trajectory point")
    if len(set(names)) != len(names):
        raise MessageError("joint command lists a joint twice")
    unknown = [n for n in names if n not in expected and n not in optional]
    if unknown:
        raise MessageError(f"joint command has unknown joints {unknown}")
    missing = [n for n in expected if n not in names]
    if missing:
        raise MessageError(f"joint command lacks joints {missing}")
    point = msg.points[0]
    pos = np.asarray(point.positions, dtype=float)
    if pos.shape != (len(names),):
        raise MessageError(f"joint command has {pos.size} positions for {len(names)} joints")
    vel = np.asarray(point.velocities, dtype=float) if len(point.velocities) else None
    if vel is not None and vel.shape != (len(names),):
        raise MessageError(f"joint command has {vel.size} velocities for {len(names)} joints")
    if not np.all(np.isfinite(pos)) or (vel is not None and not np.all(np.isfinite(vel))):
        raise MessageError("joint command has NaN/Inf values")
    index = [names.index(n) for n in expected]
    extra = {n: float(pos[names.index(n)]) for n in optional if n in names}
    return pos[index], (vel[index] if vel is not None else None), extra


def make_joint_trajectory(names: Sequence[str], positions, stamp: float, velocities=None,
                          time_from_start: float = 0.0):
    """A one-point JointTrajectory (floats converted explicitly)."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.joint_names = list(names)
    point = JointTrajectoryPoint()
    point.positions = [float(v) for v in positions]
    if velocities is not None:
        point.velocities = [float(v) for v in velocities]
    sec = int(time_from_start)
    point.time_from_start = Duration(sec=sec, nanosec=int(round((time_from_start - sec) * 1e9)))
    msg.points = [point]
    return msg


def make_joint_state(names: Sequence[str], positions, velocities=None, efforts=None, stamp: float = 0.0):
    """A sensor_msgs/JointState; velocities and efforts left empty when None (e.g. position targets)."""
    from sensor_msgs.msg import JointState

    msg = JointState()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.name = list(names)
    msg.position = [float(v) for v in positions]
    msg.velocity = [] if velocities is None else [float(v) for v in velocities]
    msg.effort = [] if efforts is None else [float(v) for v in efforts]
    return msg


def joint_state_to_arrays(msg, expected: Sequence[str]):
    """JointState → ``(positions, velocities)`` ordered as ``expected``.

    Raises:
        MessageError: missing joints, length mismatch or NaN/Inf.
    """
    names = list(msg.name)
    missing = [n for n in expected if n not in names]
    if missing:
        raise MessageError(f"joint state lacks joints {missing}")
    pos = np.asarray(msg.position, dtype=float)
    if pos.shape != (len(names),):
        raise MessageError(f"joint state has {pos.size} positions for {len(names)} names")
    vel = np.asarray(msg.velocity, dtype=float) if len(msg.velocity) else np.zeros(len(names))
    if vel.shape != (len(names),):
        raise MessageError(f"joint state has {vel.size} velocities for {len(names)} names")
    index = [names.index(n) for n in expected]
    pos, vel = pos[index], vel[index]
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))):
        raise MessageError("joint state has NaN/Inf values")
    return pos, vel


def make_pose_stamped_quat(position, quaternion_wxyz, stamp: float, frame_id: str) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    w, x, y, z = (float(v) for v in quaternion_wxyz)
    msg.pose.orientation = Quaternion(w=w, x=x, y=y, z=z)
    return msg


def pose_stamped_to_arrays(msg: PoseStamped):
    """PoseStamped → ``(position [3], quaternion wxyz [4])``; raises MessageError when invalid."""
    p = msg.pose.position
    pos = np.array([p.x, p.y, p.z], dtype=float)
    if not np.all(np.isfinite(pos)):
        raise MessageError("pose has NaN/Inf position")
    return pos, quaternion_to_array(msg.pose.orientation)


def rgb_to_image(rgb: np.ndarray, stamp: float, frame_id: str):
    """``[H, W, 3]`` uint8 → sensor_msgs/Image (rgb8)."""
    from sensor_msgs.msg import Image

    arr = np.ascontiguousarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got {arr.shape}")
    msg = Image()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = 3 * msg.width
    msg.data = arr.tobytes()
    return msg


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image (rgb8 or bgr8) → ``[H, W, 3]`` uint8 RGB; raises MessageError otherwise."""
    if msg.encoding not in ("rgb8", "bgr8"):
        raise MessageError(f"unsupported image encoding {msg.encoding!r} (rgb8/bgr8)")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if step < 3 * w or data.size < h * step:
        raise MessageError(f"image data has {data.size} bytes for {h}×{w} (step {step})")
    img = data[: h * step].reshape(h, step)[:, : 3 * w].reshape(h, w, 3)
    return img[:, :, ::-1].copy() if msg.encoding == "bgr8" else img.copy()
