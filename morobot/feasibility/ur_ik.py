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

import numba
import numpy as np
import pinocchio as pin

from morobot.feasibility import dls_kernel
from morobot.feasibility.model import ArmModel

TOLERANCE = 1e-5  # structure checks on the URDF's placements
SINGULAR = 1e-6  # |sin q5| below this: the wrist is singular, no unique decomposition
MID_WEIGHT = 1e-3  # weight of the mid-range preference against the squared distance to the reference (rad^2)
TYPES = ("JointModelRZ", "JointModelRY", "JointModelRY", "JointModelRY", "JointModelRZ", "JointModelRY")


@numba.njit(cache=True, nogil=True)
def _solutions(r6, o6, o1, d, a2, a4, alpha3, l1, l2, a1, forearm_angle, t5, d6):
    """The closed form's solutions for frame 6 at (``r6``, ``o6``), compiled (see :meth:`UrIk.solutions`)."""
    out = np.empty((8, 6))
    count = 0
    wx, wy = o6[0] - o1[0], o6[1] - o1[1]
    r = math.hypot(wx, wy)
    if r < abs(d) or r < 1e-12:
        return out[:0]
    base, spread = math.atan2(-wx, wy), math.acos(d / r)  # -sin q1 wx + cos q1 wy = D
    for k in range(2):
        q1 = base + spread if k == 0 else base - spread
        c1, s1 = math.cos(q1), math.sin(q1)
        r1 = np.array([[c1, -s1, 0.0], [s1, c1, 0.0], [0.0, 0.0, 1.0]])
        b = r1 @ a2  # frame 2 before q2
        m = b @ a4  # frame 4 = m Ry(theta), theta = q2 + q3 + q4 + alpha3
        c5 = min(1.0, max(-1.0, -s1 * r6[0, 1] + c1 * r6[1, 1]))  # n . y6, n = r1's second column
        for sign in (1.0, -1.0):
            q5 = sign * math.acos(c5)
            s5 = math.sin(q5)
            if abs(s5) < SINGULAR:
                return out[:0]
            g = m.T @ r6  # = Ry(theta) Rz(q5) Ry(q6)
            theta = math.atan2(g[2, 1] / s5, -g[0, 1] / s5)
            q6 = math.atan2(g[1, 2] / s5, g[1, 0] / s5)
            ct, st = math.cos(theta), math.sin(theta)
            r4 = m @ np.array([[ct, 0.0, st], [0.0, 1.0, 0.0], [-st, 0.0, ct]])
            o4 = o6 - d6 * r4[:, 2] - r4 @ t5  # joint 5's origin, then joint 4's
            u = b.T @ (o4 - o1)  # joint 2 -> joint 4 in frame 2's axes (its y part, the offsets along n, unused)
            u_x, u_z = u[0], u[2]
            c3 = (u_x * u_x + u_z * u_z - l1 * l1 - l2 * l2) / (2.0 * l1 * l2)
            if abs(c3) > 1.0:
                continue
            for elbow in (1.0, -1.0):  # the elbow's angle between the two links
                e = elbow * math.acos(c3)
                q2 = math.atan2(u_x, u_z) - math.atan2(l2 * math.sin(e), l1 + l2 * math.cos(e)) - a1
                q3 = e + a1 - forearm_angle
                q4 = theta - q2 - q3 - alpha3
                angles = (q1, q2, q3, q4, q5, q6)
                for j in range(6):
                    out[count, j] = (angles[j] + math.pi) % (2.0 * math.pi) - math.pi
                count += 1
    return out[:count]


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
        self._chain = robot.chain
        self.solve(robot.ee_placement(self._mid), self._mid)  # compiled (or loaded from numba's cache) now

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
        return _solutions(t6.rotation, t6.translation, self.o1, self.D, self.A2, self.A4, self.alpha3,
                          self.upper_arm_len, self.forearm_len, self.upper_arm_angle, self.forearm_angle, self.t5,
                          self.d6)

    def all_solutions(self, target: pin.SE3) -> np.ndarray:
        """The same as :meth:`solutions` (the interface of :meth:`AnalyticIk.all_solutions`)."""
        return self.solutions(target)

    def solve(self, target: pin.SE3, reference: np.ndarray, tolerance: tuple[float, float] = (1e-4, 1e-3)
              ) -> Optional[tuple[np.ndarray, float, float]]:
        """``(q, position error, rotation error)``: the solution inside the limits nearest ``reference``
        (each multi-turn joint at its turn nearest the reference; a small mid-range preference), checked by
        forward kinematics against ``tolerance``; None if there is none."""
        candidates = dls_kernel.rank_solutions(self.solutions(target), self.lower, self.upper,
                                               np.asarray(reference, float), self._mid, self._half, MID_WEIGHT)
        for q in candidates:
            pos_err, rot_err = dls_kernel.errors(*self._chain, q, target.rotation, target.translation)
            if pos_err <= tolerance[0] and rot_err <= tolerance[1]:
                return q, pos_err, rot_err
        return None
