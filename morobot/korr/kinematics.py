"""Panda kinematics for KORR: forward kinematics, tool yaw and the action -> joint command map.

The policy acts in the end-effector frame: a normalised action ``a`` in ``[-1, 1]^5`` is

    a[0:3]  tool-centre-point displacement along panda_link0 x, y, z   (x ``MAX_STEP`` m)
    a[3]    tool yaw increment about panda_link0 z                      (x ``MAX_YAW_STEP`` rad)
    a[4]    gripper opening: -1 closed ... +1 fully open (0.08 m)

and :class:`CommandGenerator` turns it into a joint command: the action moves a Cartesian tool
reference (position + yaw, tool pointing down), and one damped-least-squares differential-IK
step from the previous command tracks it; the redundancy is pulled towards a rest posture in the
Jacobian null space. The training environment and the runtime policy share this code, so they
compute the same command from the same measurements.

Kinematics use the same MuJoCo scene model as the simulator (site ``tcp`` = ``panda_hand_tcp``),
evaluated on a private ``MjData`` (``mj_kinematics`` + ``mj_comPos``, ~20 us).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import mujoco
import numpy as np

from morobot.sim.panda_scene import ARM_JOINTS, SceneLayout, build_model, urdf_limits

MAX_STEP = 0.025          # m per control step at full action
MAX_YAW_STEP = 0.2        # rad per control step at full action
MAX_GRIPPER_WIDTH = 0.08  # m
#: Tool orientation at yaw 0: z axis pointing down (the READY pose's orientation).
R_DOWN = np.diag([1.0, -1.0, -1.0])
#: Cartesian box the tool centre is kept in (panda_link0, m).
WORKSPACE_LOW = np.array([0.2, -0.45, 0.012])
WORKSPACE_HIGH = np.array([0.75, 0.45, 0.35])
REST_POSTURE = np.array([0.0, 0.0, 0.0, -2.2, 0.0, 2.2, 0.785398])


class JointCommand(NamedTuple):
    """Arm joint command for ``PandaSim.set_joint_command`` / a JointTrajectory point.

    Attributes:
        positions: 7 arm joint targets (rad).
        velocities: 7 feed-forward joint velocities (rad/s).
        gripper: finger opening width (m) in [0, 0.08].
    """

    positions: np.ndarray
    velocities: np.ndarray
    gripper: float


def wrap_angle(angle):
    """Wraps to [-pi, pi)."""
    return (np.asarray(angle) + math.pi) % (2.0 * math.pi) - math.pi


def wrap_quarter(angle):
    """Wraps to [-pi/4, pi/4): the cube looks the same every quarter turn."""
    return (np.asarray(angle) + math.pi / 4) % (math.pi / 2) - math.pi / 4


def yaw_from_quat(quat) -> float:
    """Yaw (rad) of a (w, x, y, z) quaternion about z (exact for rotations about z)."""
    w, x, y, z = quat
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class ArmKinematics:
    """Forward kinematics and Jacobian of the Panda tool centre point in ``panda_link0``.

    Args:
        layout: scene layout (only the base pose matters); a model may be passed instead.
        model: an already compiled scene model to share.
    """

    def __init__(self, layout: SceneLayout = SceneLayout(), model: mujoco.MjModel | None = None) -> None:
        self.model = build_model(layout, 0.005) if model is None else model
        self.data = mujoco.MjData(self.model)
        self._qadr = np.array([self.model.jnt_qposadr[self.model.joint(n).id] for n in ARM_JOINTS])
        self._dadr = np.array([self.model.jnt_dofadr[self.model.joint(n).id] for n in ARM_JOINTS])
        self._site = self.model.site("tcp").id
        base = layout.base_transform()
        self._base_rot = base[:3, :3]
        self._base_pos = base[:3, 3]
        limits = urdf_limits()
        self.lower = np.array([limits[j][0] for j in ARM_JOINTS])
        self.upper = np.array([limits[j][1] for j in ARM_JOINTS])
        self.velocity_limit = np.array([limits[j][3] for j in ARM_JOINTS])
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))

    def _update(self, q) -> None:
        self.data.qpos[self._qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)

    def tool_pose(self, q) -> tuple[np.ndarray, np.ndarray]:
        """Tool position (3,) and rotation (3, 3) in ``panda_link0`` at arm joints ``q``."""
        self._update(q)
        site = self.data.site(self._site)
        pos = self._base_rot.T @ (site.xpos - self._base_pos)
        rot = self._base_rot.T @ site.xmat.reshape(3, 3)
        return pos, rot

    def tool_yaw(self, rot: np.ndarray) -> float:
        """Tool yaw (rad) relative to ``R_DOWN`` (0 at the READY pose)."""
        rel = rot @ R_DOWN.T
        return math.atan2(rel[1, 0], rel[0, 0])

    def jacobian(self, q) -> np.ndarray:
        """6x7 tool Jacobian (linear; angular) in ``panda_link0`` at ``q``."""
        self._update(q)
        return self._jacobian_updated()

    def _jacobian_updated(self) -> np.ndarray:
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self._site)
        jac = np.vstack([self._jacp[:, self._dadr], self._jacr[:, self._dadr]])
        jac[:3] = self._base_rot.T @ jac[:3]
        jac[3:] = self._base_rot.T @ jac[3:]
        return jac

    def ik_step(self, q, target_pos, target_yaw: float, damping: float = 0.02,
                null_gain: float = 0.1) -> np.ndarray:
        """One damped-least-squares step from ``q`` towards a tool pose (pointing down, yaw)."""
        q = np.asarray(q, float)
        pos, rot = self.tool_pose(q)
        jac = self._jacobian_updated()
        rot_d = rot_z(target_yaw) @ R_DOWN
        skew = rot_d @ rot.T - rot @ rot_d.T  # = 2 [sum_i r_i x d_i]_x
        err_rot = 0.5 * np.array([skew[2, 1], skew[0, 2], skew[1, 0]])
        err = np.concatenate([np.asarray(target_pos) - pos, err_rot])
        jjt = jac @ jac.T + damping ** 2 * np.eye(6)
        jinv = jac.T @ np.linalg.inv(jjt)
        dq = jinv @ err
        null = np.eye(7) - jinv @ jac
        dq += null @ (null_gain * (REST_POSTURE - q))
        return np.clip(q + dq, self.lower, self.upper)

    def solve(self, target_pos, target_yaw: float = 0.0, q0=None, iterations: int = 100) -> np.ndarray:
        """Iterated :meth:`ik_step` (for start postures)."""
        q = REST_POSTURE.copy() if q0 is None else np.asarray(q0, float).copy()
        for _ in range(iterations):
            q = self.ik_step(q, target_pos, target_yaw, damping=0.01, null_gain=0.05)
        return q



class CommandGenerator:
    """Turns normalised actions into joint commands by integrating a Cartesian tool reference.

    The reference (tool position, yaw) starts at the measured tool pose, moves by each action's
    displacement (clipped to the workspace) and is re-anchored to the measured pose when the arm
    lags more than ``max_lag`` behind (contact, obstruction). The joint command is one damped
    least-squares IK step from the previous *command* (not the noisy measurement), with the
    command's own rate as feed-forward velocity, so a held action gives a steady tool velocity
    and a zero action holds the pose (no drift from re-anchoring on moving measurements).

    Args:
        kin: kinematics helper.
        control_dt: control period (s).
        max_lag: largest allowed reference-to-measured tool distance (m).
    """

    def __init__(self, kin: ArmKinematics, control_dt: float, max_lag: float = 0.03) -> None:
        self.kin = kin
        self.control_dt = control_dt
        self.max_lag = max_lag
        self.q_ref = REST_POSTURE.copy()
        self.tool_ref = np.zeros(3)
        self.yaw_ref = 0.0

    def reset(self, q_measured) -> None:
        """Anchors the reference at the measured arm configuration (start of an episode)."""
        self.q_ref = np.asarray(q_measured, float)[:7].copy()
        pos, rot = self.kin.tool_pose(self.q_ref)
        self.tool_ref = pos
        self.yaw_ref = self.kin.tool_yaw(rot)

    def __call__(self, q_measured, action, tool_measured=None) -> JointCommand:
        """Joint command for a normalised action (5,), clipped to [-1, 1].

        Args:
            q_measured: 7 (or 9) measured joint positions (rad); used to bound the lag.
            action: normalised action.
            tool_measured: the measured tool position if already computed (saves one FK).
        """
        a = np.clip(np.asarray(action, float), -1.0, 1.0)
        if tool_measured is None:
            tool_measured = self.kin.tool_pose(np.asarray(q_measured, float)[:7])[0]
        lag = self.tool_ref - tool_measured
        dist = float(np.linalg.norm(lag))
        if dist > self.max_lag:
            self.tool_ref = tool_measured + lag * (self.max_lag / dist)
        self.tool_ref = np.clip(self.tool_ref + MAX_STEP * a[:3], WORKSPACE_LOW, WORKSPACE_HIGH)
        self.yaw_ref = float(np.clip(self.yaw_ref + MAX_YAW_STEP * a[3], -2.0, 2.0))
        dt = self.control_dt
        q_cmd = self.kin.ik_step(self.q_ref, self.tool_ref, self.yaw_ref)
        dq = np.clip(q_cmd - self.q_ref, -self.kin.velocity_limit * dt, self.kin.velocity_limit * dt)
        self.q_ref = self.q_ref + dq
        gripper = float(np.clip((a[4] + 1.0) / 2.0 * MAX_GRIPPER_WIDTH, 0.0, MAX_GRIPPER_WIDTH))
        # A step set-point per period: a velocity feed-forward makes the impedance overshoot it.
        return JointCommand(self.q_ref.copy(), np.zeros(7), gripper)
