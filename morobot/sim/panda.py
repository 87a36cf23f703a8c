"""Panda manipulation simulator: pure MuJoCo, no ROS.

The Panda (7 arm joints + 2 mimicked finger joints) from example-robot-data stands on a table with
a free block, a flat target marker and a peg-in-hole fixture (see ``panda_scene``). The arm runs a
joint impedance controller at the physics rate (1 kHz by default)::

    tau = Kp (q_cmd - q) + Kd (qd_cmd - qd) + bias(q, qd)      clipped to the URDF effort limits

``bias`` is MuJoCo's gravity + Coriolis term, as the Franka controller compensates gravity itself.
Every pose this module returns is in the ``panda_link0`` frame, quaternions are (w, x, y, z).

Rendering needs an OpenGL backend. On a headless machine use OSMesa (``MUJOCO_GL=osmesa``, Debian
packages ``libosmesa6`` and ``libgl1``); this module picks it when ``MUJOCO_GL`` is unset and
MuJoCo has not been imported yet.
"""

from __future__ import annotations

import atexit
import math
import os
import sys
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

if "mujoco" not in sys.modules:
    os.environ.setdefault("MUJOCO_GL", "osmesa")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from morobot.sim import panda_scene  # noqa: E402
from morobot.sim.panda_scene import ARM_JOINTS, FINGER_JOINTS, SceneLayout  # noqa: E402

_LIVE_SIMS: "weakref.WeakSet[PandaSim]" = weakref.WeakSet()


@atexit.register
def _close_renderers() -> None:
    # GL contexts must go before the interpreter tears down the OpenGL bindings.
    for sim in list(_LIVE_SIMS):
        sim.close()


READY_POSE = (0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398)
MAX_GRIPPER_WIDTH = 0.08


@dataclass(frozen=True)
class PandaSimConfig:
    """Simulator settings.

    Attributes:
        layout: scene geometry.
        timestep: physics step (s).
        kp: joint stiffness (N m / rad), franka_ros joint impedance example values.
        kd: joint damping (N m s / rad).
        command_latency: delay between ``set_joint_command`` and its effect (s).
        joint_noise_std: std of Gaussian noise on reported joint positions (rad).
        joint_velocity_noise_std: std of noise on reported joint velocities (rad/s).
        push_probability: chance per physics step that a random push on the block starts.
        push_acceleration: push force divided by block mass (m/s^2), horizontal, random heading.
        push_duration: how long one push lasts (s).
        cloud_width: ray-cast point cloud columns.
        cloud_height: ray-cast point cloud rows.
        cloud_max_range: rays longer than this return no point (m).
        cloud_noise_std: std of Gaussian range noise on cloud points (m).
    """

    layout: SceneLayout = field(default_factory=SceneLayout)
    timestep: float = 0.001
    kp: tuple[float, ...] = (600.0, 600.0, 600.0, 600.0, 250.0, 150.0, 50.0)
    kd: tuple[float, ...] = (50.0, 50.0, 50.0, 20.0, 20.0, 20.0, 10.0)
    command_latency: float = 0.0
    joint_noise_std: float = 0.0
    joint_velocity_noise_std: float = 0.0
    push_probability: float = 0.0
    push_acceleration: float = 15.0
    push_duration: float = 0.05
    cloud_width: int = 160
    cloud_height: int = 120
    cloud_max_range: float = 4.0
    cloud_noise_std: float = 0.0

    def __post_init__(self) -> None:
        for name in ("kp", "kd"):
            gains = np.asarray(getattr(self, name), float)
            if gains.shape != (7,) or not np.all(np.isfinite(gains)) or np.any(gains < 0):
                raise ValueError(f"{name} must be 7 finite non-negative gains, got {gains}")
        non_negative = ("command_latency", "joint_noise_std", "joint_velocity_noise_std",
                        "push_acceleration", "push_duration", "cloud_noise_std")
        for name in non_negative:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if not 0.0 <= self.push_probability <= 1.0:
            raise ValueError(f"push_probability must be in [0, 1], got {self.push_probability}")
        if self.cloud_width < 2 or self.cloud_height < 2 or not self.cloud_max_range > 0:
            raise ValueError("cloud_width/height must be >= 2 and cloud_max_range > 0")


class JointState(NamedTuple):
    """Measured joint state, ordered as ``PandaSim.joint_names`` (7 arm + 2 finger joints).

    Attributes:
        positions: rad for arm joints, m for finger joints.
        velocities: rad/s, m/s.
        efforts: actuator torques (N m) / finger force (N); the mimicked finger reports 0.
    """

    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray


class Pose(NamedTuple):
    """A pose in ``panda_link0``: position (3,) in m and unit quaternion (w, x, y, z)."""

    position: np.ndarray
    quaternion: np.ndarray


def _finite_vector(name: str, value, size: int) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.shape != (size,):
        raise ValueError(f"{name} must have {size} values, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf: {array}")
    return array


def _unit_quaternion(name: str, value) -> np.ndarray:
    quat = _finite_vector(name, value, 4)
    if abs(np.linalg.norm(quat) - 1.0) > 1e-3:
        raise ValueError(f"{name} must be a unit quaternion (w, x, y, z), norm={np.linalg.norm(quat):.4f}")
    return quat / np.linalg.norm(quat)


class PandaSim:
    """Panda on a table with a block, a target marker and a peg-in-hole fixture.

    Args:
        config: simulator settings.
    """

    def __init__(self, config: PandaSimConfig = PandaSimConfig()) -> None:
        self.config = config
        self.model = panda_scene.build_model(config.layout, config.timestep)
        self.data = mujoco.MjData(self.model)
        limits = panda_scene.urdf_limits()
        self._lower = np.array([limits[j][0] for j in ARM_JOINTS])
        self._upper = np.array([limits[j][1] for j in ARM_JOINTS])
        self._effort = np.array([limits[j][2] for j in ARM_JOINTS])
        self._kp = np.asarray(config.kp, float)
        self._kd = np.asarray(config.kd, float)
        joint_ids = [self.model.joint(n).id for n in ARM_JOINTS + FINGER_JOINTS]
        self._qadr = np.array([self.model.jnt_qposadr[i] for i in joint_ids])
        self._dadr = np.array([self.model.jnt_dofadr[i] for i in joint_ids])
        self._block_body = self.model.body("block").id
        self._block_qadr = self.model.jnt_qposadr[self.model.joint("block_free").id]
        self._block_dadr = self.model.jnt_dofadr[self.model.joint("block_free").id]
        self._tcp_site = self.model.site("tcp").id
        self._camera = self.model.camera("scene_cam").id
        self._base = config.layout.base_transform()
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._rng = np.random.default_rng()
        self._pending: deque[tuple[float, np.ndarray, np.ndarray, float | None]] = deque()
        self._q_cmd = np.zeros(7)
        self._qd_cmd = np.zeros(7)
        self._push_force = np.zeros(3)
        self._push_until = -1.0
        _LIVE_SIMS.add(self)
        self.reset()

    # ------------------------------------------------------------------ state
    @property
    def joint_names(self) -> tuple[str, ...]:
        """Names of the 9 joints reported by ``joint_state`` (7 arm joints, then 2 fingers)."""
        return ARM_JOINTS + FINGER_JOINTS

    @property
    def arm_joint_names(self) -> tuple[str, ...]:
        """Names of the 7 commanded arm joints."""
        return ARM_JOINTS

    @property
    def time(self) -> float:
        """Simulation time (s) since the last reset."""
        return float(self.data.time)

    def reset(self, q=None, object_pose=None, seed: int | None = None) -> None:
        """Reset the scene; the controller then holds ``q``.

        Args:
            q: 7 arm joint positions (rad); default: the SRDF ``default`` ready pose.
            object_pose: block ``(position (3,), quaternion wxyz (4,))`` in ``panda_link0``;
                default: resting on the table at ``layout.block_position``.
            seed: seeds the perturbation and noise generator.
        """
        q = np.array(READY_POSE) if q is None else _finite_vector("q", q, 7)
        if np.any(q < self._lower) or np.any(q > self._upper):
            raise ValueError(f"reset q outside the joint limits: {q}")
        self._rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qadr[:7]] = q
        self.data.qpos[self._qadr[7:]] = MAX_GRIPPER_WIDTH / 2
        self.data.ctrl[7] = MAX_GRIPPER_WIDTH / 2
        if object_pose is None:
            half = self.config.layout.block_size / 2
            object_pose = ((*self.config.layout.block_position, half), (1.0, 0.0, 0.0, 0.0))
        self._set_block_pose(*object_pose)
        self._q_cmd = q.copy()
        self._qd_cmd = np.zeros(7)
        self._pending.clear()
        self._push_force = np.zeros(3)
        self._push_until = -1.0
        mujoco.mj_forward(self.model, self.data)

    def _set_block_pose(self, position, quaternion) -> None:
        position = _finite_vector("object position", position, 3)
        quaternion = _unit_quaternion("object quaternion", quaternion)
        world = self._base @ np.append(position, 1.0)
        base_quat = np.zeros(4)
        mujoco.mju_mat2Quat(base_quat, self._base[:3, :3].ravel())
        world_quat = np.zeros(4)
        mujoco.mju_mulQuat(world_quat, base_quat, quaternion)
        self.data.qpos[self._block_qadr:self._block_qadr + 3] = world[:3]
        self.data.qpos[self._block_qadr + 3:self._block_qadr + 7] = world_quat
        self.data.qvel[self._block_dadr:self._block_dadr + 6] = 0.0

    # ---------------------------------------------------------------- control
    def set_joint_command(self, positions, velocities=None, gripper: float | None = None) -> None:
        """Command the arm (and optionally the gripper); applied after ``command_latency``.

        Args:
            positions: 7 arm joint targets (rad); clipped into the joint limits like the robot does.
            velocities: 7 feed-forward joint velocities (rad/s); default zero.
            gripper: finger opening width (m) in [0, 0.08]; None keeps the previous one.
        """
        q = _finite_vector("positions", positions, 7)
        qd = np.zeros(7) if velocities is None else _finite_vector("velocities", velocities, 7)
        if gripper is not None:
            gripper = float(gripper)
            if not (math.isfinite(gripper) and 0.0 <= gripper <= MAX_GRIPPER_WIDTH):
                raise ValueError(f"gripper width must be in [0, {MAX_GRIPPER_WIDTH}] m, got {gripper}")
        q = np.clip(q, self._lower, self._upper)
        self._pending.append((self.time + self.config.command_latency, q, qd, gripper))

    def advance(self, duration: float) -> None:
        """Simulate ``duration`` seconds (rounded to whole physics steps)."""
        if not (math.isfinite(duration) and duration >= 0.0):
            raise ValueError(f"duration must be finite and >= 0, got {duration}")
        for _ in range(int(round(duration / self.model.opt.timestep))):
            self._step()

    def _step(self) -> None:
        while self._pending and self._pending[0][0] <= self.time + 1e-12:
            _, self._q_cmd, self._qd_cmd, gripper = self._pending.popleft()
            if gripper is not None:
                self.data.ctrl[7] = gripper / 2
        q = self.data.qpos[self._qadr[:7]]
        qd = self.data.qvel[self._dadr[:7]]
        tau = (self._kp * (self._q_cmd - q) + self._kd * (self._qd_cmd - qd)
               + self.data.qfrc_bias[self._dadr[:7]])
        self.data.ctrl[:7] = np.clip(tau, -self._effort, self._effort)
        self._apply_push()
        mujoco.mj_step(self.model, self.data)

    def _apply_push(self) -> None:
        cfg = self.config
        if self.time >= self._push_until and cfg.push_probability > 0.0:
            if self._rng.random() < cfg.push_probability:
                heading = self._rng.uniform(0.0, 2.0 * math.pi)
                force = cfg.push_acceleration * self.config.layout.block_mass
                self._push_force = np.array([force * math.cos(heading), force * math.sin(heading), 0.0])
                self._push_until = self.time + cfg.push_duration
            else:
                self._push_force = np.zeros(3)
        self.data.xfrc_applied[self._block_body, :3] = (
            self._push_force if self.time < self._push_until else 0.0)

    # ---------------------------------------------------------------- sensing
    def joint_state(self) -> JointState:
        """Joint positions, velocities and efforts (with the configured measurement noise)."""
        pos = self.data.qpos[self._qadr].copy()
        vel = self.data.qvel[self._dadr].copy()
        eff = self.data.qfrc_actuator[self._dadr].copy()
        if self.config.joint_noise_std > 0:
            pos[:7] += self._rng.normal(0.0, self.config.joint_noise_std, 7)
        if self.config.joint_velocity_noise_std > 0:
            vel[:7] += self._rng.normal(0.0, self.config.joint_velocity_noise_std, 7)
        return JointState(pos, vel, eff)

    def _world_to_base(self, position: np.ndarray, rotation: np.ndarray) -> Pose:
        rot_b = self._base[:3, :3]
        pos = rot_b.T @ (position - self._base[:3, 3])
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, (rot_b.T @ rotation).ravel())
        return Pose(pos, quat / np.linalg.norm(quat))

    def object_pose(self) -> Pose:
        """Block pose in ``panda_link0``."""
        body = self.data.body(self._block_body)
        return self._world_to_base(body.xpos.copy(), body.xmat.reshape(3, 3).copy())

    def ee_pose(self) -> Pose:
        """Pose of ``panda_hand_tcp`` in ``panda_link0``."""
        site = self.data.site(self._tcp_site)
        return self._world_to_base(site.xpos.copy(), site.xmat.reshape(3, 3).copy())

    def target_position(self) -> np.ndarray:
        """Centre of the flat target marker on the table, in ``panda_link0``."""
        return np.array([*self.config.layout.target_position, 0.0])

    def fixture_position(self) -> np.ndarray:
        """Centre of the peg-in-hole fixture's hole at table height, in ``panda_link0``."""
        return np.array([*self.config.layout.fixture_position, 0.0])

    def table_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Table box ``(min corner, max corner)``, axis-aligned in ``panda_link0`` (top face at z = 0)."""
        return np.array(self.config.layout.table_min), np.array(self.config.layout.table_max)

    # ----------------------------------------------------------------- camera
    def camera_pose(self) -> np.ndarray:
        """4x4 pose of the fixed camera in ``panda_link0``, OpenCV axes (x right, y down, z ahead)."""
        cam = self.data.cam(self._camera)
        rot_world = cam.xmat.reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        tf = np.eye(4)
        tf[:3, :3] = self._base[:3, :3].T @ rot_world
        tf[:3, 3] = self._base[:3, :3].T @ (cam.xpos - self._base[:3, 3])
        return tf

    def camera_intrinsics(self, width: int = 320, height: int = 240) -> np.ndarray:
        """3x3 pinhole matrix of the fixed camera for an image of ``width`` x ``height`` pixels."""
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        fy = 0.5 * height / math.tan(math.radians(self.model.cam_fovy[self._camera]) / 2.0)
        return np.array([[fy, 0.0, width / 2.0], [0.0, fy, height / 2.0], [0.0, 0.0, 1.0]])

    def render(self, width: int = 320, height: int = 240) -> np.ndarray:
        """RGB image (height, width, 3) uint8 from the fixed camera."""
        if not (1 <= width <= 1280 and 1 <= height <= 960):
            raise ValueError(f"image size must be within 1280x960, got {width}x{height}")
        renderer = self._renderers.get((width, height))
        if renderer is None:
            renderer = mujoco.Renderer(self.model, height=height, width=width)
            self._renderers[(width, height)] = renderer
        renderer.update_scene(self.data, camera=self._camera)
        return renderer.render().copy()

    def scene_points(self, include_robot: bool = True) -> np.ndarray:
        """Point cloud (N, 3) in ``panda_link0`` ray-cast from the fixed camera.

        Args:
            include_robot: whether rays may hit the robot (a real camera sees it; the checker
                filters robot points itself).

        Returns:
            Surface points of the table, block, fixture, floor and (optionally) robot within
            ``cloud_max_range``, with the configured range noise.
        """
        cfg = self.config
        k = self.camera_intrinsics(cfg.cloud_width, cfg.cloud_height)
        u, v = np.meshgrid(np.arange(cfg.cloud_width) + 0.5, np.arange(cfg.cloud_height) + 0.5)
        rays_cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
        rays_cam = rays_cam.reshape(-1, 3)
        rays_cam /= np.linalg.norm(rays_cam, axis=1, keepdims=True)
        cam = self.data.cam(self._camera)
        rays_world = rays_cam @ (cam.xmat.reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])).T
        groups = np.zeros(6, np.uint8)
        groups[panda_scene.SCENE_GEOM_GROUP] = 1
        groups[panda_scene.ROBOT_GEOM_GROUP] = 1 if include_robot else 0
        n = len(rays_world)
        geom_id = np.full(n, -1, np.int32)
        dist = np.full(n, -1.0)
        mujoco.mj_multiRay(self.model, self.data, cam.xpos.copy(), rays_world.ravel().copy(), groups, True,
                           -1, geom_id, dist, None, n, cfg.cloud_max_range)
        hit = (geom_id >= 0) & (dist > 0) & (dist <= cfg.cloud_max_range)
        rng_dist = dist[hit]
        if cfg.cloud_noise_std > 0:
            rng_dist = rng_dist + self._rng.normal(0.0, cfg.cloud_noise_std, rng_dist.shape)
        points_world = cam.xpos + rays_world[hit] * rng_dist[:, None]
        return (points_world - self._base[:3, 3]) @ self._base[:3, :3]

    def close(self) -> None:
        """Release the renderers' GL contexts."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def __enter__(self) -> "PandaSim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
