"""Closed-form IK for 7-joint arms with the Panda's geometry, the seventh joint as the free parameter.

For a fixed ``q7`` the tool pose fixes frame 6, whose origin is also joint 5's (the wrist point). The
distance from the shoulder (joints 1-2, whose origins coincide) to the wrist point depends on ``q4``
alone: two values. The wrist point seen from frame 6 and from frame 4 must be the same vector turned
about joint 5's axis: that gives ``q6`` (two values) and then ``q5``. Frame 3's orientation follows,
and joints 1-3 are a Z-Y-Z rotation: two values of ``q2``. Up to 8 solutions per ``q7``.

``solve`` sweeps ``q7`` over its range (the reference's own ``q7`` included) in one compiled pass,
keeps the solutions inside the limits, and returns the one nearest the reference configuration
(the previous frame's solution along a stream, so the arm stays on its branch; the ready pose for a
cold start), with a small preference for mid-range joints. Latency is bounded: no iterations.

The structure is read from the model's joint placements and checked (:meth:`AnalyticIk.for_arm`
returns None for another geometry, which keeps the numerical solver); the numbers (link lengths,
the tool offset) come from the URDF, nothing is hard-coded for the Panda.
"""

from __future__ import annotations

import math
from typing import Optional

import numba
import numpy as np
import pinocchio as pin

from morobot.feasibility import dls_kernel
from morobot.feasibility.model import ArmModel

TOLERANCE = 1e-5  # structure checks on the URDF's placements (rpy="1.5708" passes; the FK check guards the rest)
ALTERNATIVES_Q7_STEP = 0.25  # rad: the q7 spacing of all_solutions (other configurations of one pose)
MID_WEIGHT = 1e-3  # weight of the mid-range preference against the squared distance to the reference (rad^2)


@numba.njit(cache=True, nogil=True)
def _two_angles(a: float, b: float, rhs: float) -> tuple[float, float, bool]:
    """The two solutions of ``a cos x + b sin x = rhs``, and whether they exist."""
    r = math.hypot(a, b)
    if r <= 1e-12 or abs(rhs) > r:
        return 0.0, 0.0, False
    base, spread = math.atan2(b, a), math.acos(min(1.0, max(-1.0, rhs / r)))
    return base + spread, base - spread, True


# Vectors are 3-tuples in the compiled code below: small arrays would each be a heap allocation.
@numba.njit(cache=True, nogil=True)
def _rz(c: float, s: float, v: tuple) -> tuple:
    """``Rz(angle) v`` for ``c, s = cos(angle), sin(angle)``."""
    return c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]


@numba.njit(cache=True, nogil=True)
def _mv(a: np.ndarray, v: tuple) -> tuple:
    """``a v`` for a 3x3 ``a``."""
    return (a[0, 0] * v[0] + a[0, 1] * v[1] + a[0, 2] * v[2], a[1, 0] * v[0] + a[1, 1] * v[1] + a[1, 2] * v[2],
            a[2, 0] * v[0] + a[2, 1] * v[1] + a[2, 2] * v[2])


@numba.njit(cache=True, nogil=True)
def _mtv(a: np.ndarray, v: tuple) -> tuple:
    """``a^T v`` for a 3x3 ``a``."""
    return (a[0, 0] * v[0] + a[1, 0] * v[1] + a[2, 0] * v[2], a[0, 1] * v[0] + a[1, 1] * v[1] + a[2, 1] * v[2],
            a[0, 2] * v[0] + a[1, 2] * v[1] + a[2, 2] * v[2])


@numba.njit(cache=True, nogil=True)
def _dot(u: tuple, v: tuple) -> float:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


@numba.njit(cache=True, nogil=True)
def _solutions(rot, trans, q7, rotations, offsets, shoulder, sigma, g, k, p, q, n):
    """The closed form's solutions (compiled; see :meth:`AnalyticIk.solutions`): for joint 7's frame at
    (``rot``, ``trans``) and each ``q7``, up to two ``q4``, two ``q6`` each, and two Z-Y-Z branches of joints 1-3."""
    count = q7.shape[0]
    out = np.empty((2, 4 * count, 7))
    valid = np.zeros(4 * count, dtype=np.bool_)
    a3, a4, a5, a6 = rotations[3], rotations[4], rotations[5], rotations[6]
    nv = (n[0], n[1], n[2])
    g3 = (g[0], g[1], g[2])
    t4 = (offsets[4, 0], offsets[4, 1], offsets[4, 2])
    t6 = (offsets[6, 0], offsets[6, 1], offsets[6, 2])
    a3_row = (a3[2, 0], a3[2, 1], a3[2, 2])
    r6 = np.empty((3, 3))
    for i in range(count):
        c7, s7 = math.cos(q7[i]), math.sin(q7[i])
        # r6 = R Rz(-q7) A7^T: frame 6's rotation (row by row: (m A7^T)[r] = A7 m[r]); its origin is the wrist point
        for r in range(3):
            row6 = _mv(a6, (c7 * rot[r, 0] - s7 * rot[r, 1], s7 * rot[r, 0] + c7 * rot[r, 1], rot[r, 2]))
            r6[r, 0], r6[r, 1], r6[r, 2] = row6
        o6 = _mv(r6, t6)
        d = (trans[0] - o6[0] - shoulder[0], trans[1] - o6[1] - shoulder[1], trans[2] - o6[2] - shoulder[2])
        first4, second4, ok4 = _two_angles(p, q, _dot(d, d) - k)
        if not ok4:
            continue
        w = _mtv(r6, d)
        w = (-w[0], -w[1], -w[2])  # wrist -> shoulder in frame 6
        alpha = nv[0] * w[0] + nv[1] * w[1]
        beta = nv[1] * w[0] - nv[0] * w[1]
        r6_row = (r6[2, 0], r6[2, 1], r6[2, 2])
        for a in range(2):
            q4 = first4 if a == 0 else second4
            c4, s4 = math.cos(q4), math.sin(q4)
            gz = _rz(c4, -s4, g3)
            u = (-(gz[0] + t4[0]), -(gz[1] + t4[1]), -(gz[2] + t4[2]))  # wrist -> shoulder in frame 4
            first6, second6, ok6 = _two_angles(alpha, beta, _dot(u, nv) - nv[2] * w[2])
            if not ok6:
                continue
            un = _dot(u, nv)
            u_perp = (u[0] - un * nv[0], u[1] - un * nv[1], u[2] - un * nv[2])
            for b in range(2):
                q6 = first6 if b == 0 else second6
                c6, s6 = math.cos(q6), math.sin(q6)
                v = _rz(c6, s6, w)
                vn = _dot(v, nv)
                v_perp = (v[0] - vn * nv[0], v[1] - vn * nv[1], v[2] - vn * nv[2])
                triple = (nv[0] * (u_perp[1] * v_perp[2] - u_perp[2] * v_perp[1])
                          + nv[1] * (u_perp[2] * v_perp[0] - u_perp[0] * v_perp[2])
                          + nv[2] * (u_perp[0] * v_perp[1] - u_perp[1] * v_perp[0]))
                q5 = -math.atan2(triple, _dot(u_perp, v_perp))
                c5, s5 = math.cos(q5), math.sin(q5)
                # frame 3 = r6 Rz(-q6) A6^T Rz(-q5) A5^T Rz(-q4) A4^T = Rz(q1) Ry(s q2) Rz(q3): its third column
                # and third row are all the Z-Y-Z angles need
                col = _mv(r6, _rz(c6, -s6, _mtv(a5, _rz(c5, -s5, _mtv(a4, _rz(c4, -s4, a3_row))))))
                row = _mv(a3, _rz(c4, s4, _mv(a4, _rz(c5, s5, _mv(a5, _rz(c6, s6, r6_row))))))
                c2 = min(1.0, max(-1.0, col[2]))
                q2 = sigma * math.atan2(math.sqrt(max(1.0 - c2 * c2, 0.0)), c2)
                slot = 4 * i + 2 * a + b
                valid[slot] = True
                out[0, slot, 0] = math.atan2(col[1], col[0])
                out[1, slot, 0] = math.atan2(-col[1], -col[0])
                out[0, slot, 1] = q2
                out[1, slot, 1] = -q2
                out[0, slot, 2] = math.atan2(row[1], -row[0])
                out[1, slot, 2] = math.atan2(-row[1], row[0])
                for sign in range(2):
                    out[sign, slot, 3] = q4
                    out[sign, slot, 4] = q5
                    out[sign, slot, 5] = q6
                    out[sign, slot, 6] = q7[i]
    return np.concatenate((out[0][valid], out[1][valid]))


class AnalyticIk:
    """Closed-form IK of an :class:`ArmModel` whose chain has the Panda's structure.

    Args:
        robot: the arm; use :meth:`for_arm`, which checks the structure.
        lower: lower joint bounds the solutions must respect.
        upper: upper joint bounds.
        q7_step: spacing of the ``q7`` sweep (rad).
    """

    def __init__(self, robot: ArmModel, lower: np.ndarray, upper: np.ndarray, q7_step: float = 0.05) -> None:
        m = robot.model
        place = [m.jointPlacements[j] for j in range(1, 8)]
        self.A = [p.rotation.copy() for p in place]
        self.t = [p.translation.copy() for p in place]
        self.lower, self.upper = np.asarray(lower, float), np.asarray(upper, float)
        self._mid = 0.5 * (self.lower + self.upper)
        self._half = np.maximum(0.5 * (self.upper - self.lower), 1e-3)
        self.tool = m.frames[robot.ee_frame_id].placement.copy()  # ee frame in joint 7's frame
        self.shoulder = self.t[0].copy()  # joints 1 and 2 share their origin
        self.sigma = float(self.A[1][:, 2] @ np.array([0.0, 1.0, 0.0]))  # joint 2 turns about +-y of frame 1
        s3 = self.A[2].T @ self.t[2]  # shoulder -> joint 3 origin, along joint 3's axis
        self.s34 = s3 + self.t[3]  # shoulder -> joint 4 origin in frame 3 (independent of q3)
        self.g = self.A[3].T @ self.s34
        t5 = self.t[4]
        self.K = float(self.s34 @ self.s34 + t5 @ t5 + 2.0 * self.g[2] * t5[2])
        self.P = float(2.0 * (self.g[0] * t5[0] + self.g[1] * t5[1]))
        self.Q = float(2.0 * (self.g[1] * t5[0] - self.g[0] * t5[1]))
        self.n5 = self.A[5].T @ np.array([0.0, 0.0, 1.0])  # joint 5's axis in frame 6 (before q6)
        if not q7_step > 0:
            raise ValueError(f"q7_step must be positive, got {q7_step}")
        count = max(2, int(math.ceil((self.upper[6] - self.lower[6]) / q7_step)) + 1)
        self._q7_grid = np.linspace(self.lower[6], self.upper[6], count)
        self._chain = robot.chain
        self.robot = robot
        self._rotations, self._offsets = np.array(self.A), np.array(self.t)
        self.solve(robot.ee_placement(0.5 * (self.lower + self.upper)), self._mid)  # compiled (or cached) now

    @classmethod
    def for_arm(cls, robot: ArmModel, lower: np.ndarray, upper: np.ndarray,
                q7_step: float = 0.05) -> Optional["AnalyticIk"]:
        """The solver if ``robot`` has the Panda's structure (7 revolute z joints; joints 1-2 and 5-6
        sharing origins; joint 2 about y of frame 1, joint 3 back along z; joint 3's offset along its own
        axis; joint 6 undoing joint 5's tilt), else None."""
        m = robot.model
        if m.nq != 7 or m.njoints != 8 or any(m.joints[j].shortname() != "JointModelRZ" for j in range(1, 8)):
            return None
        A = [m.jointPlacements[j].rotation for j in range(1, 8)]
        t = [m.jointPlacements[j].translation for j in range(1, 8)]
        eye = np.eye(3)
        s3 = A[2].T @ t[2]
        checks = (
            np.allclose(A[0], eye, atol=TOLERANCE),
            np.allclose(t[1], 0.0, atol=TOLERANCE),
            np.allclose(A[1] @ A[2], eye, atol=TOLERANCE),
            abs(abs(A[1][1, 2]) - 1.0) < TOLERANCE,
            np.allclose(s3[:2], 0.0, atol=TOLERANCE),
            np.allclose(t[5], 0.0, atol=TOLERANCE),
            np.allclose(A[4] @ A[5], eye, atol=TOLERANCE),
        )
        return cls(robot, lower, upper, q7_step) if all(checks) else None

    def solutions(self, target: pin.SE3, q7: np.ndarray) -> np.ndarray:
        """All closed-form solutions for the ``q7`` values, ``[M, 7]`` (not yet limit-checked), in one compiled
        pass: one branch of joints 1-3 for every ``q7``, ``q4`` and ``q6``, then the other."""
        t_ee = target * self.tool.inverse()  # joint 7's frame
        return _solutions(t_ee.rotation, t_ee.translation, np.ascontiguousarray(q7, float).reshape(-1), self._rotations,
                          self._offsets, self.shoulder, self.sigma, self.g, self.K, self.P, self.Q, self.n5)

    def all_solutions(self, target: pin.SE3, q7_step: float = ALTERNATIVES_Q7_STEP) -> np.ndarray:
        """The closed-form solutions over the ``q7`` range at ``q7_step`` (coarse: one or more per branch and
        stretch of the self-motion, for offering other configurations), ``[M, 7]``, not yet limit-checked."""
        count = max(2, int(math.ceil((self.upper[6] - self.lower[6]) / q7_step)) + 1)
        return self.solutions(target, np.linspace(self.lower[6], self.upper[6], count))

    def _best(self, target: pin.SE3, reference: np.ndarray, q7: np.ndarray,
              tolerance: tuple[float, float]) -> Optional[tuple[np.ndarray, float, float]]:
        """``(q, position error, rotation error)`` of the cheapest valid solution over the ``q7`` values;
        None if there is none."""
        # the best few: one normally passes the forward-kinematics check at once
        ranked = dls_kernel.rank_solutions(self.solutions(target, q7), self.lower, self.upper, reference, self._mid,
                                           self._half, MID_WEIGHT)
        for q in ranked[:4]:
            pos_err, rot_err = dls_kernel.errors(*self._chain, q, target.rotation, target.translation)
            if pos_err <= tolerance[0] and rot_err <= tolerance[1]:
                return q, pos_err, rot_err
        return None

    def solve(self, target: pin.SE3, reference: np.ndarray, tolerance: tuple[float, float] = (1e-4, 1e-3)
              ) -> Optional[tuple[np.ndarray, float, float]]:
        """``(q, position error, rotation error)``: the solution inside the limits nearest ``reference``
        (with the mid-range preference) over the whole ``q7`` range (ten times finer near the reference's
        ``q7``), checked by forward kinematics against ``tolerance`` (m, rad); None if the sweep finds none."""
        reference = np.asarray(reference, float)
        q7_ref = float(np.clip(reference[6], self.lower[6], self.upper[6]))
        step = float(self._q7_grid[1] - self._q7_grid[0])
        near = np.clip(q7_ref + np.linspace(-2 * step, 2 * step, 41), self.lower[6], self.upper[6])  # ten times finer
        return self._best(target, reference, np.concatenate((self._q7_grid, near)), tolerance)
