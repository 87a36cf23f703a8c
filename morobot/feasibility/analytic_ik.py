"""Closed-form IK for 7-joint arms with the Panda's geometry, the seventh joint as the free parameter.

For a fixed ``q7`` the tool pose fixes frame 6, whose origin is also joint 5's (the wrist point). The
distance from the shoulder (joints 1-2, whose origins coincide) to the wrist point depends on ``q4``
alone: two values. The wrist point seen from frame 6 and from frame 4 must be the same vector turned
about joint 5's axis: that gives ``q6`` (two values) and then ``q5``. Frame 3's orientation follows,
and joints 1-3 are a Z-Y-Z rotation: two values of ``q2``. Up to 8 solutions per ``q7``.

``solve`` sweeps ``q7`` over its range (the reference's own ``q7`` included) in one vectorised pass,
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

import numpy as np
import pinocchio as pin

from morobot.feasibility.model import ArmModel

TOLERANCE = 1e-5  # structure checks on the URDF's placements (rpy="1.5708" passes; the FK check guards the rest)
MID_WEIGHT = 1e-3  # weight of the mid-range preference against the squared distance to the reference (rad^2)


def _rz(c: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``Rz(angle) v`` for ``c, s = cos(angle), sin(angle)``, elementwise over broadcast shapes
    (``v[..., 3]``): no 3x3 products, which cost several times more in numpy at these sizes."""
    x, y = v[..., 0], v[..., 1]
    first = c * x - s * y
    out = np.empty(first.shape + (3,))
    out[..., 0] = first
    out[..., 1] = s * x + c * y
    out[..., 2] = v[..., 2]
    return out


def _two_angles(a: np.ndarray, b: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solutions of ``a cos x + b sin x = rhs`` (``[..., 2]``) and whether they exist."""
    r = np.hypot(a, b)
    ratio = np.divide(rhs, r, out=np.full_like(rhs, np.inf), where=r > 1e-12)
    ok = np.abs(ratio) <= 1.0
    base, spread = np.arctan2(b, a), np.arccos(np.clip(ratio, -1.0, 1.0))
    return np.stack((base + spread, base - spread), -1), ok


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
        self._data = m.createData()
        self.robot = robot

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
        """All closed-form solutions for the ``q7`` values, ``[M, 7]`` (not yet limit-checked).

        Written as chains of rotations applied to vectors (elementwise about z, one matrix product per
        constant placement): batched 3x3 products cost several times more in numpy."""
        q7 = np.asarray(q7, float).reshape(-1)
        t_ee = target * self.tool.inverse()  # joint 7's frame
        # r6 = R_ee Rz(-q7) A7^T, rows computed as one product: [N, 3, 3]
        rot, c7, s7 = t_ee.rotation, np.cos(q7)[:, None], np.sin(q7)[:, None]
        m = np.stack((c7 * rot[:, 0] - s7 * rot[:, 1], s7 * rot[:, 0] + c7 * rot[:, 1],
                      np.broadcast_to(rot[:, 2], (len(q7), 3))), -1)  # R_ee Rz(-q7)
        r6 = m @ self.A[6].T
        o6 = t_ee.translation - r6 @ self.t[6]  # the wrist point: joints 5 and 6's origin
        d = o6 - self.shoulder
        q4, ok4 = _two_angles(np.full(len(q7), self.P), np.full(len(q7), self.Q),
                              np.einsum("ni,ni->n", d, d) - self.K)  # [N, 2], [N]
        c4, s4 = np.cos(q4), np.sin(q4)
        u4 = -(_rz(c4, -s4, self.g) + self.t[4])  # wrist -> shoulder in frame 4, [N, 2, 3]
        w = np.einsum("nji,nj->ni", r6, -d)  # the same in frame 6, [N, 3]
        n = self.n5
        alpha = n[0] * w[:, 0] + n[1] * w[:, 1]
        beta = n[1] * w[:, 0] - n[0] * w[:, 1]
        rhs = u4 @ n - n[2] * w[:, 2][:, None]  # [N, 2]
        q6, ok6 = _two_angles(alpha[:, None].repeat(2, 1), beta[:, None].repeat(2, 1), rhs)  # [N, 2, 2], [N, 2]
        valid = ok4[:, None, None] & ok6[:, :, None]
        c6, s6 = np.cos(q6), np.sin(q6)
        v = _rz(c6, s6, w[:, None, None, :])  # [N, 2(q4), 2(q6), 3]
        u = u4[:, :, None, :]
        u_perp, v_perp = u - (u @ n)[..., None] * n, v - (v @ n)[..., None] * n
        # n . (u x v) as the determinant of (n, u, v), without np.cross's axis juggling
        triple = (n[0] * (u_perp[..., 1] * v_perp[..., 2] - u_perp[..., 2] * v_perp[..., 1])
                  + n[1] * (u_perp[..., 2] * v_perp[..., 0] - u_perp[..., 0] * v_perp[..., 2])
                  + n[2] * (u_perp[..., 0] * v_perp[..., 1] - u_perp[..., 1] * v_perp[..., 0]))
        q5 = -np.arctan2(triple, np.sum(u_perp * v_perp, -1))
        q4b, c4, s4 = q4[:, :, None], c4[:, :, None], s4[:, :, None]
        c5, s5 = np.cos(q5), np.sin(q5)
        # frame 3 = r6 Rz(-q6) A6^T Rz(-q5) A5^T Rz(-q4) A4^T = Rz(q1) Ry(s q2) Rz(q3): its third column
        # and third row are all the Z-Y-Z angles need
        col = _rz(c4, -s4, self.A[3][2]) @ self.A[4]  # A5^T Rz(-q4) A4^T e3
        col = _rz(c6, -s6, _rz(c5, -s5, col) @ self.A[5])
        col = np.einsum("nij,nabj->nabi", r6, col)
        row = _rz(c6, s6, r6[:, None, None, 2, :]) @ self.A[5].T  # (r3^T e3) = A4 Rz(q4) A5 Rz(q5) A6 Rz(q6) r6^T e3
        row = _rz(c4, s4, _rz(c5, s5, row) @ self.A[4].T) @ self.A[3].T
        c2 = np.clip(col[..., 2], -1.0, 1.0)
        sb = np.sqrt(np.maximum(1.0 - c2 * c2, 0.0))
        q = np.empty((2,) + q6.shape + (7,))  # [sign, N, 2, 2, 7]
        q[0, ..., 0] = np.arctan2(col[..., 1], col[..., 0])
        q[1, ..., 0] = np.arctan2(-col[..., 1], -col[..., 0])
        q[0, ..., 1] = self.sigma * np.arctan2(sb, c2)
        q[1, ..., 1] = -q[0, ..., 1]
        q[0, ..., 2] = np.arctan2(row[..., 1], -row[..., 0])
        q[1, ..., 2] = np.arctan2(-row[..., 1], row[..., 0])
        q[:, ..., 3] = q4b
        q[:, ..., 4] = q5
        q[:, ..., 5] = q6
        q[:, ..., 6] = q7[:, None, None]
        return q[:, np.broadcast_to(valid, q6.shape)].reshape(-1, 7)

    def _in_limits(self, q: np.ndarray) -> np.ndarray:
        """``q`` with each joint moved by a whole turn into its limits where that helps; rows inside the
        limits only."""
        two_pi = 2.0 * math.pi
        q = np.where(q < self.lower, q + two_pi, q)
        q = np.where(q > self.upper, q - two_pi, q)
        inside = np.all((q >= self.lower) & (q <= self.upper), axis=1)
        return q[inside]

    def _best(self, target: pin.SE3, reference: np.ndarray, q7: np.ndarray,
              tolerance: tuple[float, float]) -> Optional[tuple[np.ndarray, float, float]]:
        """``(q, position error, rotation error)`` of the cheapest valid solution over the ``q7`` values;
        None if there is none."""
        candidates = self._in_limits(self.solutions(target, q7))
        if not len(candidates):
            return None
        cost = self._cost(candidates, reference)
        for i in np.argsort(cost)[:4]:  # the best few: one normally passes at once
            q = candidates[i]
            current = self.robot.ee_placement(q, self._data)
            pos_err = float(np.linalg.norm(target.translation - current.translation))
            rot_err = float(np.linalg.norm(pin.log6(current.actInv(target)).vector[3:]))
            if pos_err <= tolerance[0] and rot_err <= tolerance[1]:
                return q, pos_err, rot_err
        return None

    def _cost(self, candidates: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Squared joint distance to ``reference`` plus the mid-range preference."""
        cost = np.sum((candidates - reference) ** 2, axis=1)
        return cost + MID_WEIGHT * np.sum(((candidates - self._mid) / self._half) ** 2, axis=1)

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
