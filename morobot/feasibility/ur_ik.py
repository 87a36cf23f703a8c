"""Closed-form IK for 6-joint arms with the UR geometry: up to 8 solutions per pose, no iterations.

The structure (read from the URDF's joint placements and checked by :meth:`UrIk.for_arm`): joint 1
turns about the vertical; joints 2, 3 and 4 turn about one horizontal axis ``n`` (their frames turn
about their own y); joint 5 about an axis perpendicular to ``n``; joint 6 about the y axis of frame
5. Every offset along ``n`` adds up to one distance ``D``, and the rest lies in the plane of the arm.

* ``q1``: the wrist point (joint 6's origin, fixed by the tool pose) lies at ``D`` along ``n`` from
  the base axis, whatever the other joints do: ``n(q1) . (o6 - o1) = D``, two values.
* ``q5``: joint 6's axis ``y6`` (fixed by the tool pose) makes the angle ``q5`` with ``n``:
  ``cos q5 = n . y6``, two values.
* ``q2 + q3 + q4`` and ``q6``: frame 6 is frame 1 turned by ``Ry(q2 + q3 + q4) Rz(q5) Ry(q6)``, a
  Y-Z-Y rotation whose middle angle is known.
* ``q2``, ``q3``: joint 4's origin then follows, and the upper arm and forearm are a planar two-link
  arm: two values of the elbow.

Joints whose range spans more than a turn (the UR's +-2 pi) take the value nearest the reference.
The numbers (link lengths, offsets, the tool) come from the URDF; nothing is hard-coded for the UR5.
At the wrist singularity (``y6`` parallel to ``n``: ``q5`` = 0 or pi) the decomposition has no unique
answer and the solver returns None; the numerical solver takes over.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pinocchio as pin

from morobot.feasibility.model import ArmModel

TOLERANCE = 1e-5  # structure checks on the URDF's placements
SINGULAR = 1e-6  # |sin q5| below this: the wrist is singular, no unique decomposition
MID_WEIGHT = 1e-3  # weight of the mid-range preference against the squared distance to the reference (rad^2)
TYPES = ("JointModelRZ", "JointModelRY", "JointModelRY", "JointModelRY", "JointModelRZ", "JointModelRY")


def _ry(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class UrIk:
    """Closed-form IK of an :class:`ArmModel` with the UR structure; use :meth:`for_arm`.

    Args:
        robot: the arm.
        lower: lower joint bounds the solutions must respect.
        upper: upper joint bounds.
    """

    def __init__(self, robot: ArmModel, lower: np.ndarray, upper: np.ndarray) -> None:
        m = robot.model
        A = [m.jointPlacements[j].rotation.copy() for j in range(1, 7)]
        t = [m.jointPlacements[j].translation.copy() for j in range(1, 7)]
        self.robot = robot
        self.lower, self.upper = np.asarray(lower, float), np.asarray(upper, float)
        self._mid = 0.5 * (self.lower + self.upper)
        self._half = np.maximum(0.5 * (self.upper - self.lower), 1e-3)
        self.o1 = t[0].copy()  # joint 1's origin, on the vertical axis
        self.A2, self.A4 = A[1], A[3]
        self.alpha3 = float(math.atan2(A[2][0, 2], A[2][0, 0]))  # frame 3's placement turns about y by this
        self.D = float(t[1][1] + t[2][1] + t[3][1] + t[4][1])  # offsets along n, in frames 1-4
        self.s2 = float(t[1][1])
        # the arm's plane, in frame 2 before q2: upper arm t3 (x, z), forearm A3 t4 (x, z), as lengths and
        # angles from z about y
        self.upper_arm_len = float(math.hypot(t[2][0], t[2][2]))
        self.upper_arm_angle = float(math.atan2(t[2][0], t[2][2]))
        forearm = A[2] @ t[3]
        self.forearm_len = float(math.hypot(forearm[0], forearm[2]))
        self.forearm_angle = float(math.atan2(forearm[0], forearm[2]))  # its direction from z, about y
        self.t5 = t[4].copy()
        self.d6 = float(t[5][2])
        self.tool = m.frames[robot.ee_frame_id].placement.copy()
        self._data = m.createData()

    @classmethod
    def for_arm(cls, robot: ArmModel, lower: np.ndarray, upper: np.ndarray) -> Optional["UrIk"]:
        """The solver if ``robot`` has the UR structure, else None."""
        m = robot.model
        if m.nq != 6 or m.njoints != 7 or tuple(m.joints[j].shortname() for j in range(1, 7)) != TYPES:
            return None
        A = [m.jointPlacements[j].rotation for j in range(1, 7)]
        t = [m.jointPlacements[j].translation for j in range(1, 7)]
        ey = np.array([0.0, 1.0, 0.0])
        eye = np.eye(3)
        checks = (
            np.allclose(A[0], eye, atol=TOLERANCE), np.allclose(t[0][:2], 0.0, atol=TOLERANCE),  # base axis
            all(np.allclose(A[i] @ ey, ey, atol=TOLERANCE) for i in (1, 2, 3)),  # frames 2-4 turn about y
            abs(t[1][0]) < TOLERANCE and abs(t[1][2]) < TOLERANCE,  # shoulder offset along n only
            np.allclose(A[4], eye, atol=TOLERANCE) and abs(t[4][0]) < TOLERANCE and abs(t[4][2]) < TOLERANCE,
            np.allclose(A[5], eye, atol=TOLERANCE) and np.allclose(t[5][:2], 0.0, atol=TOLERANCE),
        )
        return cls(robot, lower, upper) if all(checks) else None

    def solutions(self, target: pin.SE3) -> np.ndarray:
        """All closed-form solutions, ``[M, 6]`` (angles in (-pi, pi], not yet limit-checked); empty at
        the wrist singularity or out of reach."""
        t6 = target * self.tool.inverse()  # frame 6
        r6, o6 = t6.rotation, t6.translation
        y6 = r6[:, 1]
        w = o6 - self.o1
        r = math.hypot(w[0], w[1])
        if r < abs(self.D) or r < 1e-12:
            return np.zeros((0, 6))
        out = []
        base, spread = math.atan2(-w[0], w[1]), math.acos(self.D / r)  # -sin q1 wx + cos q1 wy = D
        for q1 in (base + spread, base - spread):
            r1 = _rz(q1)
            n = r1[:, 1]
            b = r1 @ self.A2  # frame 2 before q2
            m = b @ self.A4  # frame 4 = m Ry(theta), theta = q2 + q3 + q4 + alpha3
            c5 = float(np.clip(n @ y6, -1.0, 1.0))
            for q5 in (math.acos(c5), -math.acos(c5)):
                s5 = math.sin(q5)
                if abs(s5) < SINGULAR:
                    return np.zeros((0, 6))
                g = m.T @ r6  # = Ry(theta) Rz(q5) Ry(q6)
                theta = math.atan2(g[2, 1] / s5, -g[0, 1] / s5)
                q6 = math.atan2(g[1, 2] / s5, g[1, 0] / s5)
                r4 = m @ _ry(theta)
                o4 = o6 - self.d6 * r4[:, 2] - r4 @ self.t5  # joint 5's origin, then joint 4's
                u = b.T @ (o4 - self.o1) - np.array([0.0, self.s2, 0.0])  # joint 2 -> joint 4, frame 2 axes
                u_x, u_z = float(u[0]), float(u[2])
                l1, l2, a1 = self.upper_arm_len, self.forearm_len, self.upper_arm_angle
                c3 = (u_x * u_x + u_z * u_z - l1 * l1 - l2 * l2) / (2.0 * l1 * l2)
                if abs(c3) > 1.0:
                    continue
                for e in (math.acos(c3), -math.acos(c3)):  # the elbow's angle between the two links
                    q2 = math.atan2(u_x, u_z) - math.atan2(l2 * math.sin(e), l1 + l2 * math.cos(e)) - a1
                    q3 = e + a1 - self.forearm_angle
                    q4 = theta - q2 - q3 - self.alpha3
                    out.append((q1, q2, q3, q4, q5, q6))
        if not out:
            return np.zeros((0, 6))
        return (np.asarray(out) + math.pi) % (2 * math.pi) - math.pi

    def solve(self, target: pin.SE3, reference: np.ndarray, tolerance: tuple[float, float] = (1e-4, 1e-3)
              ) -> Optional[tuple[np.ndarray, float, float]]:
        """``(q, position error, rotation error)``: the solution inside the limits nearest ``reference``
        (each multi-turn joint at its turn nearest the reference; a small mid-range preference), checked by
        forward kinematics against ``tolerance``; None if there is none."""
        reference = np.asarray(reference, float)
        candidates = self.solutions(target)
        if not len(candidates):
            return None
        two_pi = 2.0 * math.pi
        turns = candidates[:, :, None] + two_pi * np.array([-1.0, 0.0, 1.0])  # [M, 6, 3]
        inside = (turns >= self.lower[:, None]) & (turns <= self.upper[:, None])
        gap = np.where(inside, np.abs(turns - reference[:, None]), np.inf)
        pick = np.argmin(gap, axis=2)
        q = np.take_along_axis(turns, pick[:, :, None], axis=2)[:, :, 0]
        valid = np.isfinite(np.take_along_axis(gap, pick[:, :, None], axis=2)[:, :, 0]).all(axis=1)
        q = q[valid]
        cost = np.sum((q - reference) ** 2, axis=1) + MID_WEIGHT * np.sum(((q - self._mid) / self._half) ** 2, axis=1)
        for i in np.argsort(cost):
            current = self.robot.ee_placement(q[i], self._data)
            pos_err = float(np.linalg.norm(target.translation - current.translation))
            rot_err = float(np.linalg.norm(pin.log6(current.actInv(target)).vector[3:]))
            if pos_err <= tolerance[0] and rot_err <= tolerance[1]:
                return q[i], pos_err, rot_err
        return None
