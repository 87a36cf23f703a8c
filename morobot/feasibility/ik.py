"""Damped-least-squares inverse kinematics for the TCP pose, warm-started.

Targets farther from the (fixed) joint-1 origin than the arm's reach bound are rejected without
iterating. Each iteration takes ``dq = J^T (J J^T + lambda^2 I)^-1 e`` with ``e = log6(T^-1 T_target)`` and the
frame-local Jacobian, scales ``dq`` so that no joint moves more than ``max_step``, and projects
the result into the (margin-tightened) joint limits. An attempt ends early when the projected
step vanishes (stuck at a limit or at the closest reachable pose).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import eigenpy
import numpy as np
import pinocchio as pin

from morobot.feasibility.config import IkConfig
from morobot.feasibility.model import ArmModel


STALL_STEP = 1e-6  # rad: an iterate that moves less than this ends a failed attempt early


@dataclass(frozen=True)
class IkResult:
    """Outcome of an IK solve.

    Attributes:
        q: the final iterate (7,).
        success: both tolerances met.
        iterations: iterations used in total (all attempts).
        position_error: TCP position error of ``q`` (m).
        rotation_error: TCP orientation error of ``q`` (rad).
        out_of_reach: the target is provably beyond the arm's reach (no iterations were run).
    """

    q: np.ndarray
    success: bool
    iterations: int
    position_error: float
    rotation_error: float
    out_of_reach: bool = False


def pose_from_quaternion(position, quaternion_wxyz) -> pin.SE3:
    """SE3 from a position (3,) and a unit quaternion (w, x, y, z); raises ValueError if invalid."""
    p = np.asarray(position, dtype=float)
    quat = np.asarray(quaternion_wxyz, dtype=float)
    if p.shape != (3,) or quat.shape != (4,):
        raise ValueError(f"need position (3,) and quaternion (4,), got {p.shape} and {quat.shape}")
    if not (np.isfinite(p).all() and np.isfinite(quat).all()):
        raise ValueError("target pose contains NaN or inf")
    norm = math.sqrt(float(quat @ quat))
    if abs(norm - 1.0) > 1e-3:
        raise ValueError(f"quaternion must be unit length (w, x, y, z), norm={norm:.4f}")
    w, x, y, z = quat.tolist()
    return pin.SE3(pin.Quaternion(w / norm, x / norm, y / norm, z / norm).toRotationMatrix(), p)


class DlsIk:
    """DLS IK on an ``ArmModel``'s end-effector frame.

    Args:
        robot: the kinematic model.
        config: IK settings.
        lower: lower joint bounds the iterates are kept in (default: URDF limits).
        upper: upper joint bounds (default: URDF limits).
    """

    def __init__(self, robot: ArmModel, config: IkConfig = IkConfig(),
                 lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> None:
        self.robot = robot
        self.config = config
        self.lower = robot.lower if lower is None else np.asarray(lower, float)
        self.upper = robot.upper if upper is None else np.asarray(upper, float)
        self._data = robot.model.createData()
        self._damping = config.damping * np.eye(6)
        self._rng = np.random.default_rng(config.seed)
        model = robot.model
        # Joint 1's origin does not move; by the triangle inequality no TCP position is farther
        # from it than the sum of the (rigid) offsets between consecutive joints and the TCP.
        self.reach_centre = model.jointPlacements[1].translation.copy()
        self.reach_radius = sum(float(np.linalg.norm(model.jointPlacements[j].translation))
                                for j in range(2, model.njoints))
        self.reach_radius += float(np.linalg.norm(model.frames[robot.ee_frame_id].placement.translation))

    def _errors(self, q: np.ndarray, target: pin.SE3) -> tuple[np.ndarray, float, float]:
        # One kinematics pass per iterate: placements and joint Jacobians together.
        model, data = self.robot.model, self._data
        pin.computeJointJacobians(model, data, q)
        current = pin.updateFramePlacement(model, data, self.robot.ee_frame_id)
        twist = pin.log6(current.actInv(target)).vector
        delta = target.translation - current.translation
        pos_err = math.sqrt(float(delta @ delta))
        rot_err = math.sqrt(float(twist[3:] @ twist[3:]))
        return twist, pos_err, rot_err

    def _attempt(self, target: pin.SE3, q: np.ndarray) -> tuple[np.ndarray, bool, int, float, float]:
        cfg, model, data = self.config, self.robot.model, self._data
        lower, upper = self.lower, self.upper
        q = np.minimum(np.maximum(q, lower), upper)
        twist, pos_err, rot_err = self._errors(q, target)
        for it in range(cfg.max_iterations + 1):
            if pos_err <= cfg.position_tolerance and rot_err <= cfg.rotation_tolerance:
                return q, True, it, pos_err, rot_err
            if it == cfg.max_iterations:
                break
            jac = pin.getFrameJacobian(model, data, self.robot.ee_frame_id, pin.LOCAL)
            dq = jac.T @ eigenpy.LLT(jac @ jac.T + self._damping).solve(twist)
            largest = float(np.abs(dq).max())
            if largest > cfg.max_step:
                dq *= cfg.max_step / largest
            q_next = np.minimum(np.maximum(q + dq, lower), upper)
            if float(np.abs(q_next - q).max()) < STALL_STEP:
                break  # stuck against the limits or at the closest reachable pose
            q = q_next
            twist, pos_err, rot_err = self._errors(q, target)
        return q, False, it, pos_err, rot_err

    def solve(self, target: pin.SE3, q_init: np.ndarray, restart_from=()) -> IkResult:
        """Solve for ``target`` starting at ``q_init``; then from each of ``restart_from``; then from
        up to ``random_restarts`` configurations drawn within the limits.

        Args:
            target: desired end-effector pose in the base frame.
            q_init: warm start (7,).
            restart_from: further start configurations tried in order when an attempt fails.

        Returns:
            The first successful attempt, else the attempt with the smallest position error. Targets
            beyond the reach bound fail at once.
        """
        distance = float(np.linalg.norm(target.translation - self.reach_centre))
        if distance > self.reach_radius + self.config.position_tolerance:
            q = np.minimum(np.maximum(np.asarray(q_init, float), self.lower), self.upper)
            _, pos_err, rot_err = self._errors(q, target)
            return IkResult(q, False, 0, pos_err, rot_err, out_of_reach=True)
        total = 0
        best = None
        draws = (self._rng.uniform(self.lower, self.upper) for _ in range(self.config.random_restarts))
        for start in itertools.chain((q_init, *restart_from), draws):
            q, ok, its, pos_err, rot_err = self._attempt(target, np.asarray(start, float))
            total += its
            if ok:
                return IkResult(q, True, total, pos_err, rot_err)
            if best is None or pos_err < best[1]:
                best = (q, pos_err, rot_err)
        return IkResult(best[0], False, total, best[1], best[2])
