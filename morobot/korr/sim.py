"""Simulation back-ends for KORR training: a fast C-stepped Panda scene and a PandaSim adapter.

``FastPanda`` compiles the very same scene as :class:`morobot.sim.panda.PandaSim` (through
``panda_scene.build_model``) and turns the 7 arm torque motors into affine actuators so the joint
impedance law runs inside MuJoCo and a whole control period is one ``mj_step(nstep=...)`` call::

    tau = ctrl - Kp q - Kd qd,   ctrl = Kp q_cmd + Kd qd_cmd + g(q0)     clipped to the URDF efforts

with ``g(q0)`` the gravity + Coriolis torque at the start of the control period (PandaSim
recomputes it every physics step; over 0.1 s the difference is a few mrad). The velocity term is
integrated implicitly (``implicitfast``), which keeps 5 ms physics steps stable. Same gains,
limits, contacts and masses as PandaSim, ~4x less CPU per control step.

``PandaSimBackend`` wraps a real :class:`PandaSim` with the same interface, to check that a policy
trained on ``FastPanda`` transfers to the simulator the ROS graph runs.

Both apply the KORR perturbations themselves: random planar pushes with a yaw torque on the block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

from morobot.sim.panda import MAX_GRIPPER_WIDTH, PandaSim, PandaSimConfig
from morobot.sim.panda_scene import ARM_JOINTS, FINGER_JOINTS, SceneLayout, build_model

_DEFAULT_SIM = PandaSimConfig()
FINGER_ARMATURE = 0.05  # kg (prismatic), see build_fast_model


@dataclass(frozen=True)
class SimSettings:
    """Physics and control timing.

    Attributes:
        layout: scene geometry (the default is the scene the ROS graph runs).
        timestep: physics step (s); 5 ms is stable with the implicit impedance (see docs/korr.md).
        control_dt: control period (s), i.e. 10 Hz.
        kp: joint stiffness, as PandaSim.
        kd: joint damping, as PandaSim.
    """

    layout: SceneLayout = field(default_factory=SceneLayout)
    timestep: float = 0.005
    control_dt: float = 0.1
    kp: tuple[float, ...] = _DEFAULT_SIM.kp
    kd: tuple[float, ...] = _DEFAULT_SIM.kd

    @property
    def substeps(self) -> int:
        n = int(round(self.control_dt / self.timestep))
        if n < 1 or abs(n * self.timestep - self.control_dt) > 1e-9:
            raise ValueError("control_dt must be a whole multiple of timestep")
        return n


@dataclass
class Push:
    """A push on the block: world-frame force (N) and yaw torque (N m) for ``duration`` seconds."""

    force: np.ndarray
    torque: float
    duration: float


def build_fast_model(settings: SimSettings) -> mujoco.MjModel:
    """The PandaSim scene with the arm impedance moved into affine actuators."""
    model = build_model(settings.layout, settings.timestep)
    kp, kd = np.asarray(settings.kp), np.asarray(settings.kd)
    for i, name in enumerate(ARM_JOINTS):
        act = model.actuator(f"{name}_motor").id
        model.actuator_gaintype[act] = mujoco.mjtGain.mjGAIN_FIXED
        model.actuator_gainprm[act, :3] = [1.0, 0.0, 0.0]
        model.actuator_biastype[act] = mujoco.mjtBias.mjBIAS_AFFINE
        model.actuator_biasprm[act, :3] = [0.0, -kp[i], -kd[i]]
        model.actuator_ctrllimited[act] = 0
    # The 15 g fingers under the kp=1000 gripper servo are stiff for a 5 ms step (omega*dt ~ 1.3):
    # they tunnel through the block. A little finger armature (plus matching servo damping)
    # makes them stable; the grasp then matches PandaSim at 1 ms (same width, same block shift).
    for name in FINGER_JOINTS:
        model.dof_armature[model.jnt_dofadr[model.joint(name).id]] = FINGER_ARMATURE
    grip = model.actuator("gripper").id
    kp_grip = model.actuator_gainprm[grip, 0]
    model.actuator_biasprm[grip, 2] = -2.0 * math.sqrt(kp_grip * (FINGER_ARMATURE + 0.03))
    return model


class FastPanda:
    """One Panda scene stepped a whole control period per call (see module docstring).

    Args:
        settings: timing and gains.
        model: a model from :func:`build_fast_model` to share between instances.
    """

    def __init__(self, settings: SimSettings = SimSettings(), model: mujoco.MjModel | None = None) -> None:
        self.settings = settings
        self.model = build_fast_model(settings) if model is None else model
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._qadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in ARM_JOINTS + FINGER_JOINTS])
        self._dadr = np.array([m.jnt_dofadr[m.joint(n).id] for n in ARM_JOINTS + FINGER_JOINTS])
        self._acts = np.array([m.actuator(f"{n}_motor").id for n in ARM_JOINTS])
        self._grip = m.actuator("gripper").id
        self._block = m.body("block").id
        self._block_qadr = m.jnt_qposadr[m.joint("block_free").id]
        self._block_dadr = m.jnt_dofadr[m.joint("block_free").id]
        base = settings.layout.base_transform()
        self._base_rot, self._base_pos = base[:3, :3], base[:3, 3]
        self._base_quat = np.zeros(4)
        mujoco.mju_mat2Quat(self._base_quat, self._base_rot.ravel())
        self._kp = np.asarray(settings.kp, float)
        self._kd = np.asarray(settings.kd, float)
        self._substeps = settings.substeps

    def reset(self, q, object_pose) -> None:
        """Arm at ``q`` (7) holding still, fingers open, block at ``(position, quat wxyz)`` in link0."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._qadr[:7]] = q
        d.qpos[self._qadr[7:]] = MAX_GRIPPER_WIDTH / 2
        d.ctrl[self._grip] = MAX_GRIPPER_WIDTH / 2
        pos, quat = object_pose
        world = self._base_rot @ np.asarray(pos, float) + self._base_pos
        wq = np.zeros(4)
        mujoco.mju_mulQuat(wq, self._base_quat, np.asarray(quat, float) / np.linalg.norm(quat))
        d.qpos[self._block_qadr:self._block_qadr + 3] = world
        d.qpos[self._block_qadr + 3:self._block_qadr + 7] = wq
        mujoco.mj_forward(m, d)
        self.command(np.asarray(q, float), np.zeros(7), None)

    def command(self, q_cmd, qd_cmd, gripper: float | None) -> None:
        """Joint impedance set-point (held for the next control period) and gripper width."""
        d = self.data
        bias = d.qfrc_bias[self._dadr[:7]]
        d.ctrl[self._acts] = self._kp * q_cmd + self._kd * qd_cmd + bias
        if gripper is not None:
            d.ctrl[self._grip] = float(np.clip(gripper, 0.0, MAX_GRIPPER_WIDTH)) / 2.0

    def advance(self, push: Push | None = None) -> None:
        """Simulates one control period, applying ``push`` to the block during its first part."""
        m, d = self.model, self.data
        if push is None:
            mujoco.mj_step(m, d, nstep=self._substeps)
            return
        n_push = min(self._substeps, max(1, int(round(push.duration / self.settings.timestep))))
        _apply(d, self._block_dadr, push)
        mujoco.mj_step(m, d, nstep=n_push)
        d.qfrc_applied[self._block_dadr:self._block_dadr + 6] = 0.0
        if self._substeps > n_push:
            mujoco.mj_step(m, d, nstep=self._substeps - n_push)

    def joint_positions(self) -> np.ndarray:
        """9 joint positions (7 arm, 2 fingers)."""
        return self.data.qpos[self._qadr].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._dadr].copy()

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Block position and quaternion (w, x, y, z) in ``panda_link0``."""
        d = self.data
        pos = self._base_rot.T @ (d.qpos[self._block_qadr:self._block_qadr + 3] - self._base_pos)
        inv = np.zeros(4)
        mujoco.mju_negQuat(inv, self._base_quat)
        quat = np.zeros(4)
        mujoco.mju_mulQuat(quat, inv, d.qpos[self._block_qadr + 3:self._block_qadr + 7])
        return pos, quat / np.linalg.norm(quat)


class PandaSimBackend:
    """:class:`PandaSim` (1 kHz, per-step impedance in Python) behind the ``FastPanda`` interface."""

    def __init__(self, settings: SimSettings = SimSettings(), timestep: float = 0.001) -> None:
        self.settings = settings
        self.sim = PandaSim(PandaSimConfig(layout=settings.layout, timestep=timestep,
                                           kp=settings.kp, kd=settings.kd))
        self._dadr = self.sim.model.jnt_dofadr[self.sim.model.joint("block_free").id]
        self._rot = settings.layout.base_transform()[:3, :3]

    def reset(self, q, object_pose) -> None:
        self.sim.reset(q=q, object_pose=object_pose)

    def command(self, q_cmd, qd_cmd, gripper: float | None) -> None:
        self.sim.set_joint_command(q_cmd, qd_cmd, gripper)

    def advance(self, push: Push | None = None) -> None:
        dt = self.settings.control_dt
        if push is None:
            self.sim.advance(dt)
            return
        t_push = min(dt, push.duration)
        # PandaSim owns xfrc_applied (its own pushes); KORR pushes go through qfrc_applied.
        _apply(self.sim.data, self._dadr, push)
        self.sim.advance(t_push)
        self.sim.data.qfrc_applied[self._dadr:self._dadr + 6] = 0.0
        if dt - t_push > 1e-9:
            self.sim.advance(dt - t_push)

    def joint_positions(self) -> np.ndarray:
        return self.sim.joint_state().positions

    def joint_velocities(self) -> np.ndarray:
        return self.sim.joint_state().velocities

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        pose = self.sim.object_pose()
        return pose.position, pose.quaternion

    def close(self) -> None:
        self.sim.close()


def _apply(data: mujoco.MjData, dof: int, push: Push) -> None:
    # Free joint: dofs 0-2 are world-frame forces, 3-5 body-frame torques (body z ~ world z on the table).
    data.qfrc_applied[dof:dof + 3] = push.force
    data.qfrc_applied[dof + 3:dof + 6] = (0.0, 0.0, push.torque)


def random_push(rng: np.random.Generator, mass: float, acceleration: float, block_size: float,
                duration: float, base_rot: np.ndarray | None = None) -> Push:
    """A planar push of ``mass * acceleration`` N in a random heading plus a random yaw torque."""
    heading = rng.uniform(0.0, 2.0 * math.pi)
    force = mass * acceleration * np.array([math.cos(heading), math.sin(heading), 0.0])
    if base_rot is not None:
        force = base_rot @ force
    torque = mass * acceleration * (block_size / 2.0) * rng.uniform(-1.0, 1.0)
    return Push(force, torque, duration)
