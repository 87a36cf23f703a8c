"""feasibility_checker: per-frame feasibility of arm commands (filter mode) or demonstrations (demo mode).

The arm is the Panda by default; ``robot:=ur5`` (or ``urdf``/``srdf`` of another arm, see
:class:`morobot.robots.ArmDescription`) checks another one: joints, limits, links and collision pairs
come from its URDF and SRDF, frames and joint names from its description.

**Filter mode** (``mode:=filter``): every ``/joint_command_raw`` (trajectory_msgs/JointTrajectory, one
point) is checked against the latest ``/joint_states`` and the obstacle scene from ``/points``
(PointCloud2 in ``panda_link0``; the robot's own points are removed at the configuration measured
when the cloud was taken). The decision is :class:`morobot.feasibility.filter.CommandFilter`'s, on
this node's clock (joint-state age by arrival; the joint-rate check and the velocity/acceleration
limits never trust the sender's stamps). A feasible command whose largest joint distance from the
measured configuration is within ``max_command_step`` goes to ``/joint_command`` (limited over time
to ``velocity_scale`` x URDF velocity and ``acceleration_scale`` x the robot's acceleration limits).
Anything else follows ``filter_policy``:

* ``clamp`` (default): clip into the margin-tightened limits and shrink the step from the measured
  configuration to ``velocity_scale`` x URDF velocity x ``clamp_dt``; send that when it passes the
  static checks, else hold;
* ``hold``: send the measured configuration (the arm stops where it is).

Both start from the measured configuration projected into the tightened limits (the same unless the
arm overshot into the limit margin, at most ``limit_margin`` away; without it no step could leave the
margin; never projected from beyond the URDF limits).

A hold target is itself checked: when the measured configuration is infeasible too (a new
obstacle, an overshoot into the margin), nothing is sent and the arm keeps its last forwarded
target, which was feasible when it was sent. An infeasible command is never forwarded. Malformed
commands (unknown/missing joints, NaN/Inf, no point, finger values outside [0, 0.04] m) and
commands without a fresh joint state are rejected: nothing is sent.

**Demo mode** (``mode:=demo``): every ``/demo/ee_pose`` (PoseStamped in ``panda_link0``) is checked
through IK (``check_ee_pose``); the level is debounced for the operator: ``/feasibility/haptic``
(std_msgs/Float32, 0 fine ... 1 infeasible) on every pose and ``/feasibility/overlay`` (the latest
``/camera/image_raw`` with the arm at the IK solution drawn green/orange/red and the reason) on
every camera image. Rejected poses (NaN, non-unit quaternion, wrong frame) count as infeasible.

Both modes publish ``/feasibility/status`` (diagnostic_msgs/DiagnosticArray) for every frame: the
overall status ``feasibility_checker`` (level from the raw verdict; values ``verdict``,
``action``, ``debounced``, ...), ``feasibility_checker/input`` and one status per check
(``feasibility_checker/<check>``; STALE = not evaluated because an earlier check failed).
A 1 Hz heartbeat says so when no input arrives.

Length: the node's two modes (filter and demo) share its inputs, scene, parameters and status reporting; the decisions themselves live in ``morobot.feasibility``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, PointCloud2
from std_msgs.msg import Float32
from trajectory_msgs.msg import JointTrajectory

from morobot.feasibility import (ArmModel, Debouncer, FeasibilityChecker, FeasibilityConfig, Level,
                                 config_from_dict, draw_overlay, haptic_intensity)
from morobot.freshness import input_age, stamp_lead_error
from morobot.feasibility.filter import CommandFilter, FilterSettings
from morobot.robots import ARMS, franka_joint_names
from morobot.ros import qos
from morobot.ros.gripper_action import GripperActionOutput
from morobot.ros.conversions import (MessageError, image_to_rgb, joint_state_to_arrays,
                                     joint_trajectory_to_command, make_joint_trajectory, pointcloud2_to_xyz,
                                     pose_stamped_to_arrays, quaternion_wxyz_to_matrix, rgb_to_image,
                                     sec_to_stamp, stamp_to_sec)
from morobot.ros.params import ParamSpec, declare
from morobot.ros.runner import spin_node

OK, WARN, ERROR, STALE = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.STALE
LEVEL_TO_DIAG = {Level.OK: OK, Level.WARNING: WARN, Level.INFEASIBLE: ERROR}
NAME = "feasibility_checker"
FILTER_CHECKS = ("joint_limits", "joint_rate", "singularity", "self_collision", "scene_collision", "command_step")
DEMO_CHECKS = ("ik", "joint_limits", "joint_rate", "singularity", "self_collision", "scene_collision")
HEARTBEAT_S = 1.0

# The simulator's fixed camera (morobot.sim.panda.PandaSim.camera_intrinsics(320, 240) and
# camera_pose()); test_feasibility_node checks these against PandaSim.
SIM_CAMERA_MATRIX = [230.51785523653993, 0.0, 160.0, 0.0, 230.51785523653993, 120.0, 0.0, 0.0, 1.0]
SIM_CAMERA_RESOLUTION = [320, 240]
SIM_CAMERA_POSITION = [1.35, 0.8, 0.85]
SIM_CAMERA_ORIENTATION = [-0.25828301798842423, 0.3609269662790013, 0.7287417521822142, -0.5214950299454679]

_D = FeasibilityConfig()
_F = FilterSettings()

PARAMS = (
    ParamSpec("mode", "filter", "filter: check /joint_command_raw and forward to /joint_command; demo: check "
              "/demo/ee_pose and give overlay/haptic feedback", choices=("filter", "demo"), read_only=True),
    ParamSpec("arm_frame", "", "frame of /points and /demo/ee_pose, others are rejected (\"\": the arm's base "
              "link, panda_link0 / base_link)", read_only=True),
    ParamSpec("joint_prefix", "", "joint names on the wire (\"\": the URDF's). Panda: <prefix>joint1..7 and "
              "<prefix>finger_joint1/2 (fr3_ for franka_ros2's FR3); other arms: the prefix is prepended to the "
              "URDF's names (UR's tf_prefix)", read_only=True),
    ParamSpec("filter_policy", _F.policy, "infeasible command: clamp (into limits and rate bound, hold if that "
              "is infeasible too) or hold (send the measured configuration)", choices=("clamp", "hold")),
    ParamSpec("clamp_dt", _F.clamp_dt, "a clamped command moves at most velocity_scale x URDF velocity x clamp_dt "
              "from the measured configuration (s)", 0.001, 1.0, tighten="down"),
    ParamSpec("max_command_step", _F.max_command_step, "a command farther than this from the measured configuration (largest "
              "joint, rad) is not passed as is but clamped/held (0 = off)", 0.0, 1.0, tighten="down"),
    ParamSpec("acceleration_scale", _F.acceleration_scale, "allowed joint acceleration, fraction of the robot's limits (Franka "
              "datasheet)", 0.01, 1.0, tighten="down"),
    ParamSpec("motion_max_dt", _F.max_dt, "longest interval (s) one command's motion is computed over; a longer gap "
              "restarts from the measured configuration at rest", 0.005, 0.5, tighten="down"),
    ParamSpec("gripper_output", "joint_command", "where finger commands go: joint_command (in the forwarded "
              "trajectory, as the sim and position-controlled fingers take them) or action (control_msgs "
              "GripperCommand on gripper_action, e.g. franka_ros2's franka_gripper; needs control_msgs)",
              choices=("joint_command", "action"), read_only=True),
    ParamSpec("gripper_max_effort", 20.0, "gripper_output action: max_effort of each goal (N)", 0.0, 200.0),
    ParamSpec("gripper_tolerance", 0.001, "gripper_output action: a new goal when the finger target moves more "
              "than this (m)", 0.0, 0.04),
    ParamSpec("joint_state_max_age", 0.25, "joint states that arrived longer ago than this (s, node clock) reject "
              "commands", 0.005, 10.0, tighten="down"),
    ParamSpec("max_stamp_lead", 0.25, "joint states stamped further than this (s) ahead of the node clock are "
              "rejected", 0.0, 5.0, tighten="down"),
    ParamSpec("scene_update_rate", 2.0, "largest rate at which /points clouds update the obstacles (Hz; 0 = "
              "ignore /points, only at start-up)", 0.0, 50.0, tighten="up"),
    ParamSpec("object_exclusion_radius", 0.0, "cloud points within this distance (m) of the latest "
              "/object_pose are the manipulated object, not an obstacle (0 = keep them)", 0.0, 0.5),
    ParamSpec("overlay", True, "demo mode: publish /feasibility/overlay on every camera image"),
    ParamSpec("camera_matrix", SIM_CAMERA_MATRIX, "3x3 intrinsics (row-major) for camera_resolution; scaled to "
              "the received image size"),
    ParamSpec("camera_resolution", SIM_CAMERA_RESOLUTION, "image size (width, height) camera_matrix is for"),
    ParamSpec("camera_position", SIM_CAMERA_POSITION, "camera position in arm_frame (m)"),
    ParamSpec("camera_orientation", SIM_CAMERA_ORIENTATION, "camera orientation (w, x, y, z) in arm_frame, OpenCV "
              "axes (x right, y down, z ahead)"),
)

#: Parameters mapped onto FeasibilityConfig (same names; ``ik.*``/``scene.*`` are its nested settings).
CHECKER_PARAMS = (
    ParamSpec("robot", _D.robot, "the arm (its URDF/SRDF from example-robot-data unless urdf/srdf are set)",
              choices=tuple(ARMS), read_only=True),
    ParamSpec("urdf", _D.urdf, "URDF file of the arm (\"\": example-robot-data's)", read_only=True),
    ParamSpec("srdf", _D.srdf, "SRDF file of the arm, with urdf (\"\": example-robot-data's)", read_only=True),
    ParamSpec("ee_frame", _D.ee_frame, "frame /demo/ee_pose targets (\"\": the arm's tool frame, panda_hand_tcp / "
              "tool0)", read_only=True),
    ParamSpec("finger_opening", _D.finger_opening, "finger opening for the collision geometry (m)", 0.0, 0.04,
              read_only=True),
    ParamSpec("limit_margin", _D.limit_margin, "joint limits tightened by this (rad)", 0.0, 0.5),
    ParamSpec("velocity_scale", _D.velocity_scale, "allowed joint rate, fraction of the URDF velocity limits",
              0.01, 1.0, tighten="down"),
    ParamSpec("rate_window", _D.rate_window, "frames in the joint-rate window", 1, 100),
    ParamSpec("rate_min_violations", _D.rate_min_violations, "violating frames in the window that fail the rate "
              "check", 1, 100),
    ParamSpec("rate_max_dt", _D.rate_max_dt, "frames further apart (s) are not rated", 0.001, 10.0),
    ParamSpec("manipulability_infeasible", _D.manipulability_infeasible, "Yoshikawa manipulability below this is "
              "infeasible", 0.0, 1.0),
    ParamSpec("manipulability_warning", _D.manipulability_warning, "manipulability below this is a warning",
              0.0, 1.0),
    ParamSpec("wrist_warning_angle", _D.wrist_warning_angle, "warn when the wrist axes (Panda joints 5/7, UR "
              "wrist 1/3) are this close to parallel (rad)", 0.0, 1.5),
    ParamSpec("self_margin", _D.self_margin, "minimum clearance between links (m)", 0.0, 0.2),
    ParamSpec("scene_margin", _D.scene_margin, "minimum clearance to obstacles and the table (m)", 0.0, 0.2),
    ParamSpec("debounce_frames", _D.debounce_frames, "frames a new feedback level must persist", 1, 1000),
    ParamSpec("early_exit", _D.early_exit, "stop at the first failing check"),
    ParamSpec("ik.damping", _D.ik.damping, "DLS damping lambda^2", 1e-6, 10.0),
    ParamSpec("ik.max_iterations", _D.ik.max_iterations, "IK iterations per attempt", 1, 1000),
    ParamSpec("ik.max_step", _D.ik.max_step, "largest joint change per IK iteration (rad)", 1e-3, 3.0),
    ParamSpec("ik.position_tolerance", _D.ik.position_tolerance, "IK position tolerance (m)", 1e-5, 0.1),
    ParamSpec("ik.rotation_tolerance", _D.ik.rotation_tolerance, "IK orientation tolerance (rad)", 1e-5, 1.0),
    ParamSpec("ik.restarts", _D.ik.restarts, "IK attempts from the ready pose after a failed warm start", 0, 10),
    ParamSpec("ik.random_restarts", _D.ik.random_restarts, "further IK attempts from random configurations within "
              "the limits (seeded)", 0, 100),
    ParamSpec("ik.library_size", _D.ik.library_size, "configurations in the IK seed library (drawn once within the "
              "limits)", 0, 100_000, read_only=True),
    ParamSpec("ik.library_starts", _D.ik.library_starts, "IK attempts from the library configurations nearest the "
              "target, after the restarts", 0, 100),
    ParamSpec("ik.patience", _D.ik.patience, "an IK restart (not the warm start) is abandoned after this many "
              "iterations without 1 % progress (0 = never)", 0, 1000),
    ParamSpec("ik.nullspace_step", _D.ik.nullspace_step, "warm-started IK: largest null-space step towards mid-range "
              "joints per iteration (rad; 0 = off)", 0.0, 0.5),
    ParamSpec("ik.seed", _D.ik.seed, "seed of the random IK restarts and the library", 0, 2**31 - 1, read_only=True),
    ParamSpec("scene.voxel_size", _D.scene.voxel_size, "obstacle voxel edge (m)", 0.002, 0.5),
    ParamSpec("scene.robot_padding", _D.scene.robot_padding, "cloud points this close to the robot are its own "
              "(m)", 0.0, 0.2),
    ParamSpec("scene.table_clearance", _D.scene.table_clearance, "cloud points this close to the table box are "
              "table (m)", 0.0, 0.2),
    ParamSpec("scene.table", True, "model the table as a box (scene.table_min/max)"),
    ParamSpec("scene.table_min", list(_D.scene.table_min), "table box lower corner in arm_frame (m)"),
    ParamSpec("scene.table_max", list(_D.scene.table_max), "table box upper corner in arm_frame (m)"),
    ParamSpec("scene.workspace_min", list(_D.scene.workspace_min), "cloud points outside this box are dropped (m)"),
    ParamSpec("scene.workspace_max", list(_D.scene.workspace_max), "upper corner of the workspace box (m)"),
    ParamSpec("scene.ignored_links", "", "comma-separated links not checked against the scene (e.g. fingers "
              "while grasping)"),
)

ALL_PARAMS = PARAMS + CHECKER_PARAMS


def checker_config(p: dict) -> FeasibilityConfig:
    """FeasibilityConfig from the node's parameter values; raises ValueError when invalid."""
    values = {}
    for spec in CHECKER_PARAMS:
        values[spec.name] = p[spec.name]
    for name in ("scene.table_min", "scene.table_max", "scene.workspace_min", "scene.workspace_max"):
        vec = [float(v) for v in p[name]]
        if len(vec) != 3:
            raise ValueError(f"{name} must hold 3 numbers, got {len(vec)}")
        values[name] = tuple(vec)
    if not p["scene.table"]:
        values["scene.table_min"] = values["scene.table_max"] = None
    del values["scene.table"]
    links = [s.strip() for s in str(p["scene.ignored_links"]).split(",") if s.strip()]
    values["scene.ignored_links"] = tuple(links)
    return config_from_dict(values)


def wire_joint_names(robot: ArmModel, prefix: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(arm joints, gripper joints)`` as named on the wire: the URDF's names with ``prefix`` applied
    (the Panda: ``<prefix>joint1..7``, ``<prefix>finger_joint1/2``; other arms: prefix + URDF name)."""
    if robot.description.name == "panda" and prefix:
        return franka_joint_names(prefix)
    if prefix and not all(c.isalnum() or c == "_" for c in prefix):
        raise ValueError(f"joint prefix must be letters, digits and _, got {prefix!r}")
    return (tuple(prefix + n for n in robot.joint_names), tuple(prefix + n for n in robot.description.gripper_joints))


def camera_from_params(p: dict) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
    """``(K 3x3, (width, height), pose 4x4)`` from the camera parameters; raises ValueError."""
    k = np.asarray(p["camera_matrix"], float)
    if k.shape != (9,) or not np.all(np.isfinite(k)):
        raise ValueError("camera_matrix must hold 9 finite numbers (row-major 3x3)")
    k = k.reshape(3, 3)
    if k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], [0, 0, 1]):
        raise ValueError("camera_matrix needs fx, fy > 0 and a last row (0, 0, 1)")
    res = list(p["camera_resolution"])
    if len(res) != 2 or any(int(v) < 1 for v in res):
        raise ValueError("camera_resolution must be (width, height) > 0")
    pos = np.asarray(p["camera_position"], float)
    quat = np.asarray(p["camera_orientation"], float)
    if pos.shape != (3,) or not np.all(np.isfinite(pos)):
        raise ValueError("camera_position must hold 3 finite numbers")
    if quat.shape != (4,) or not np.all(np.isfinite(quat)) or abs(np.linalg.norm(quat) - 1.0) > 1e-3:
        raise ValueError("camera_orientation must be a unit quaternion (w, x, y, z)")
    pose = np.eye(4)
    pose[:3, :3] = quaternion_wxyz_to_matrix(quat / np.linalg.norm(quat))
    pose[:3, 3] = pos
    return k, (int(res[0]), int(res[1])), pose


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, float):
        value = f"{value:.6g}"
    return KeyValue(key=key, value=str(value))


class FeasibilityCheckerNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NAME, **kwargs)
        self._robot: Optional[ArmModel] = None
        self._candidate: Optional[FeasibilityChecker] = None
        self.p = declare(self, ALL_PARAMS, on_change=self._on_change, cross_check=self._cross_check)
        self.mode = self.p["mode"]
        self.checker = self._candidate
        # the robot's joint names on the wire (panda_joint1..7, fr3_joint1..7, shoulder_pan_joint, ...)
        self.arm_names, self.finger_names = wire_joint_names(self.checker.robot, self.p["joint_prefix"])
        self.arm_frame = self.p["arm_frame"] or self.checker.robot.base_link
        self._gripper = None
        if self.p["gripper_output"] == "action" and self.p["mode"] == "filter":
            self._gripper = GripperActionOutput(self, "gripper_action", self.p["gripper_max_effort"],
                                                self.p["gripper_tolerance"])
        self.filter = self._make_filter()
        self.camera = camera_from_params(self.p)
        self.debouncer = Debouncer(self.p["debounce_frames"])
        self._states: deque = deque(maxlen=500)  # (stamp, q, arrival) of recent joint states
        self._state_fault: Optional[str] = None
        self._scene_cloud = None  # (points, q_robot) last applied, re-applied after a reconfiguration
        self._scene_stamp: Optional[float] = None
        self._scene_voxels = 0
        self._last_scene_time = -math.inf
        self._last_input = -math.inf
        self._last_verdict = None
        self._shown_reason = "waiting for /demo/ee_pose"
        self.counts = {"frames": 0, "pass": 0, "limited": 0, "clamped": 0, "hold": 0, "rejected": 0, "none": 0}
        self._status_pub = self.create_publisher(DiagnosticArray, "feasibility/status", qos.STATE)
        self.create_subscription(JointState, "joint_states", self._on_joint_state, qos.STATE)
        self.create_subscription(PointCloud2, "points", self._on_points, qos.SENSOR)
        self._object_position: Optional[np.ndarray] = None
        self.create_subscription(PoseStamped, "object_pose", self._on_object, qos.STATE)
        if self.mode == "filter":
            self._cmd_pub = self.create_publisher(JointTrajectory, "joint_command", qos.STATE)
            self.create_subscription(JointTrajectory, "joint_command_raw", self._on_command, qos.STATE)
        else:
            self._haptic_pub = self.create_publisher(Float32, "feasibility/haptic", qos.STATE)
            self._overlay_pub = self.create_publisher(Image, "feasibility/overlay", qos.STATE)
            self.create_subscription(PoseStamped, "demo/ee_pose", self._on_pose, qos.STATE)
            self.create_subscription(Image, "camera/image_raw", self._on_image, qos.SENSOR)
        self.create_timer(HEARTBEAT_S, self._heartbeat)
        self.get_logger().info(f"feasibility checker ready: mode {self.mode}, policy {self.p['filter_policy']}")

    # ------------------------------------------------------------------ parameters
    def _cross_check(self, values: dict) -> Optional[str]:
        try:
            cfg = checker_config(values)
            camera_from_params(values)
            if self._robot is None:
                self._robot = ArmModel(cfg.robot, cfg.finger_opening, cfg.ee_frame, cfg.urdf or None, cfg.srdf or None)
            self._candidate = FeasibilityChecker(cfg, robot=self._robot)
        except ValueError as exc:
            return str(exc)
        return None

    def _make_filter(self) -> CommandFilter:
        settings = FilterSettings(self.p["filter_policy"], self.p["clamp_dt"], self.p["max_command_step"],
                                  self.p["acceleration_scale"], self.p["motion_max_dt"])
        return CommandFilter(self.checker, settings, self.checker.robot.acceleration_limit)

    def _on_change(self, values: dict) -> None:
        self.p = values
        self.camera = camera_from_params(values)
        if values["debounce_frames"] != self.debouncer.frames:
            self.debouncer = Debouncer(values["debounce_frames"])
        if self._gripper is not None:
            self._gripper.max_effort, self._gripper.tolerance = values["gripper_max_effort"], values["gripper_tolerance"]
        if self._candidate.config == self.checker.config:
            self.filter = self._make_filter()  # keeps the checker's state (rate window, IK warm start)
            return
        self.checker = self._candidate  # built and validated by _cross_check
        self.filter = self._make_filter()
        if self._scene_cloud is not None:
            self._scene_voxels = self.checker.update_scene(*self._scene_cloud)

    # ------------------------------------------------------------------ helpers
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _stamp(self, header, now: float) -> float:
        t = stamp_to_sec(header.stamp)
        return t if t > 0.0 else now

    def _current_state(self, now: float) -> tuple[Optional[np.ndarray], str]:
        """The latest measured arm configuration if fresh, else (None, why)."""
        if self._state_fault:
            return None, f"invalid joint state: {self._state_fault}"
        if not self._states:
            return None, "no joint state received on /joint_states"
        stamp, q, arrival = self._states[-1]
        age = input_age(now, arrival, stamp)
        if abs(age) > self.p["joint_state_max_age"]:
            return None, (f"stale joint states ({age:.3f} s old > joint_state_max_age "
                          f"{self.p['joint_state_max_age']} s)")
        return q, ""

    def _state_near(self, stamp: float) -> tuple[Optional[np.ndarray], Optional[str]]:
        """The recorded joint state closest in time to ``stamp``."""
        if not self._states:
            return None, None
        best = min(self._states, key=lambda s: abs(s[0] - stamp))
        if abs(best[0] - stamp) > self.p["joint_state_max_age"]:
            return None, f"no joint state within {self.p['joint_state_max_age']} s of the cloud"
        return best[1], None

    # ------------------------------------------------------------------ inputs
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            q, _ = joint_state_to_arrays(msg, self.arm_names)
        except MessageError as exc:
            self._state_fault = str(exc)
            self.get_logger().error(f"ignoring invalid /joint_states: {exc}", throttle_duration_sec=2.0)
            return
        now = self._now()
        stamp = self._stamp(msg.header, now)
        why = stamp_lead_error("joint state", stamp, now, self.p["max_stamp_lead"])
        if why:
            self._state_fault = why
            self.get_logger().error(f"ignoring /joint_states: {why}", throttle_duration_sec=2.0)
            return
        self._state_fault = None
        self._states.append((stamp, q, now))

    def _on_object(self, msg: PoseStamped) -> None:
        """The manipulated object: its points are not obstacles (object_exclusion_radius)."""
        try:
            if msg.header.frame_id not in ("", self.arm_frame):
                raise MessageError(f"frame '{msg.header.frame_id}', expected '{self.arm_frame}'")
            self._object_position, _ = pose_stamped_to_arrays(msg)
        except MessageError as exc:
            self._object_position = None
            self.get_logger().error(f"ignoring /object_pose: {exc}", throttle_duration_sec=5.0)

    def _on_points(self, msg: PointCloud2) -> None:
        rate = self.p["scene_update_rate"]
        now = self._now()
        if rate <= 0.0:
            return
        if self._last_scene_time <= now < self._last_scene_time + 1.0 / rate:
            return  # rate limit (a clock that jumped back, e.g. a restarted sim, is accepted)
        frame = msg.header.frame_id
        if frame != self.arm_frame:
            self.get_logger().warning(f"ignoring /points in frame '{frame}': expected '{self.arm_frame}' "
                                      "(no tf2 here)", throttle_duration_sec=5.0)
            return
        try:
            points = pointcloud2_to_xyz(msg)
        except MessageError as exc:
            self.get_logger().error(f"ignoring malformed /points: {exc}", throttle_duration_sec=5.0)
            return
        radius = self.p["object_exclusion_radius"]
        if radius > 0.0 and self._object_position is not None and len(points):
            points = points[np.linalg.norm(points - self._object_position, axis=1) > radius]
        stamp = self._stamp(msg.header, now)
        q_robot, why = self._state_near(stamp)
        if why:
            self.get_logger().warning(f"ignoring /points: {why} (cannot remove the robot's own points)",
                                      throttle_duration_sec=5.0)
            return
        try:
            self._scene_voxels = self.checker.update_scene(points, q_robot)
        except ValueError as exc:
            self.get_logger().error(f"ignoring /points: {exc}", throttle_duration_sec=5.0)
            return
        self._scene_cloud = (points, q_robot)
        self._scene_stamp = stamp
        self._last_scene_time = now

    # ------------------------------------------------------------------ filter mode
    def _on_command(self, msg: JointTrajectory) -> None:
        now = self._now()
        self._last_input = now
        self.counts["frames"] += 1
        try:
            q, qd, extra = joint_trajectory_to_command(msg, self.arm_names, optional=self.finger_names)
        except MessageError as exc:
            return self._reject(f"malformed command: {exc}", now)
        q_current, why = self._current_state(now)
        if q_current is None:
            return self._reject(why, now)
        tfs = msg.points[0].time_from_start
        r = self.filter.filter(q, qd, extra, q_current, now, tfs.sec + 1e-9 * tfs.nanosec)
        if r.action == "rejected":
            return self._reject(r.reason, now)
        if r.sends and self._gripper is not None and extra:
            # the fingers through their own action; the arm's controller gets the arm joints only
            self._gripper.send(float(np.mean(list(extra.values()))))
            extra = {}
        if r.sends:
            names = list(self.arm_names) + list(extra)
            positions = list(r.q) + list(extra.values())
            vel = None if r.velocities is None else list(r.velocities) + [0.0] * len(extra)
            cmd = make_joint_trajectory(names, positions, now, velocities=vel, time_from_start=r.time_from_start)
            self._cmd_pub.publish(cmd)
        self.counts[r.action] += 1
        shown = self.debouncer.update(r.level)
        step_reason = ("ok" if r.step_ok else f"command {r.step:.3f} rad from the measured configuration "
                       f"(max_command_step {self.p['max_command_step']})")
        step_check = (OK if r.step_ok else ERROR, step_reason, r.step)
        self._publish_status(r.level, r.action, r.reason, now, verdict=r.verdict, shown=shown,
                             extra_checks={"command_step": step_check}, checks=FILTER_CHECKS,
                             values={"max_step": r.step, "limited": str(r.limited).lower()})

    def _reject(self, reason: str, now: float) -> None:
        self.counts["rejected"] += 1
        self.get_logger().error(f"rejected: {reason}", throttle_duration_sec=1.0)
        shown = self.debouncer.update(Level.INFEASIBLE)
        checks = FILTER_CHECKS if self.mode == "filter" else DEMO_CHECKS
        if self.mode == "demo":
            self._last_verdict = None
            self._shown_reason = f"rejected: {reason}"
            self._publish_haptic(shown, now)
        self._publish_status(None, "rejected", reason, now, shown=shown, checks=checks, input_error=reason)

    # ------------------------------------------------------------------ demo mode
    def _on_pose(self, msg: PoseStamped) -> None:
        now = self._now()
        self._last_input = now
        self.counts["frames"] += 1
        frame = msg.header.frame_id
        if frame not in ("", self.arm_frame):
            return self._reject(f"pose in frame '{frame}', expected '{self.arm_frame}' (no tf2 here)", now)
        try:
            position, quat = pose_stamped_to_arrays(msg)
        except MessageError as exc:
            return self._reject(f"malformed pose: {exc}", now)
        stamp = self._stamp(msg.header, now)
        try:
            verdict = self.checker.check_ee_pose(position, quat, stamp)
        except ValueError as exc:
            return self._reject(f"malformed pose: {exc}", now)
        shown = self.debouncer.update(verdict.level)
        self._last_verdict = verdict
        if verdict.level is shown:
            self._shown_reason = verdict.reason
        self.counts["none"] += 1
        haptic = self._publish_haptic(shown, now)
        self._publish_status(verdict.level, "none", verdict.reason, now, verdict=verdict, shown=shown,
                             checks=DEMO_CHECKS, values={"haptic": haptic})

    def _publish_haptic(self, shown: Level, now: float) -> float:
        value = float(haptic_intensity(shown, now))
        self._haptic_pub.publish(Float32(data=value))
        return value

    def _on_image(self, msg: Image) -> None:
        if not self.p["overlay"]:
            return
        try:
            rgb = image_to_rgb(msg)
        except MessageError as exc:
            self.get_logger().error(f"ignoring /camera/image_raw: {exc}", throttle_duration_sec=5.0)
            return
        k, (width, height), pose = self.camera
        h, w = rgb.shape[:2]
        k = np.diag([w / width, h / height, 1.0]) @ k
        verdict = self._last_verdict
        if verdict is not None and verdict.q is not None:
            skeleton = self.checker.skeleton_points(verdict.q)
        else:
            skeleton = np.zeros((0, 3))
        level = self.debouncer.level if self.counts["frames"] else Level.WARNING
        out = rgb_to_image(draw_overlay(rgb, skeleton, k, pose, level, self._shown_reason), 0.0,
                           msg.header.frame_id)
        out.header.stamp = msg.header.stamp
        self._overlay_pub.publish(out)

    # ------------------------------------------------------------------ outputs
    def _heartbeat(self) -> None:
        now = self._now()
        if now - self._last_input < HEARTBEAT_S and not now < self._last_input:
            return
        topic = "/joint_command_raw" if self.mode == "filter" else "/demo/ee_pose"
        _, why = self._current_state(now)
        msg = f"idle: waiting for {topic}" + (f"; {why}" if why and self.mode == "filter" else "")
        self._publish_status(Level.OK, "none", msg, now, checks=(), heartbeat=True)

    def _publish_status(self, level: Optional[Level], action: str, reason: str, now: float, verdict=None,
                        shown: Optional[Level] = None, checks=(), extra_checks=None, values=None,
                        input_error: Optional[str] = None, heartbeat: bool = False) -> None:
        """One DiagnosticArray: overall status, input status, one status per check."""
        msg = DiagnosticArray()
        msg.header.stamp = sec_to_stamp(max(now, 0.0))
        verdict_text = "rejected" if level is None else level.value
        overall = DiagnosticStatus(level=ERROR if level is None else LEVEL_TO_DIAG[level], name=NAME,
                                   message=f"{action}: {reason}" if not heartbeat else reason,
                                   hardware_id="panda")
        kv = [_kv("mode", self.mode), _kv("verdict", verdict_text), _kv("action", action)]
        if shown is not None:
            kv.append(_kv("debounced", shown.value))
        if verdict is not None:
            kv.append(_kv("stamp", repr(float(verdict.stamp))))  # exact: recorders rebuild the stream
        kv += [_kv("scene_voxels", self._scene_voxels),
               _kv("scene_age", float(now - self._scene_stamp) if self._scene_stamp is not None else "none")]
        kv += [_kv(k, v) for k, v in (values or {}).items()]
        if heartbeat:
            kv.append(_kv("heartbeat", "true"))
        overall.values = kv
        statuses = [overall]
        if not heartbeat:
            statuses.append(DiagnosticStatus(level=ERROR if input_error else OK, name=f"{NAME}/input",
                                             message=input_error or "valid", hardware_id="panda"))
        extra_checks = extra_checks or {}
        for name in checks:
            st = DiagnosticStatus(name=f"{NAME}/{name}", hardware_id="panda")
            if name in extra_checks:
                st.level, st.message, value = extra_checks[name]
                st.values = [_kv("value", float(value))]
            elif verdict is not None and name in verdict.checks:
                result = verdict.checks[name]
                st.level, st.message = LEVEL_TO_DIAG[result.level], result.reason
                st.values = [_kv("value", float(result.value))]
            else:
                st.level = STALE
                st.message = ("not evaluated (invalid input)" if input_error
                              else "not evaluated (an earlier check failed)")
            statuses.append(st)
        msg.status = statuses
        self._status_pub.publish(msg)


def main(args=None) -> int:
    return spin_node(FeasibilityCheckerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
