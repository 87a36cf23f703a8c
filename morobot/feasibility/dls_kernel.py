"""Compiled kinematics and damped-least-squares attempts of a chain of one-degree-of-freedom joints.

One call of :func:`attempt` runs a whole DLS attempt (every iteration: forward kinematics, the
frame-local Jacobian of the tool frame, ``log6`` of the pose error, the 6x6 Cholesky solve, joints held
at their limits, the null-space step, the step bound and the projection into the limits) in code that
numba compiles once (cached on disk), instead of some thirty numpy and pinocchio calls per iteration
from Python, whose per-call overhead was most of a demo-mode frame's time (docs/feasibility.md). The
arrays are tiny (3x3 rotations, a 6 x n Jacobian), so products are written as loops: a BLAS call per
3x3 product would cost more than the product.

:func:`chain_arrays` reads the chain from a pinocchio model: each joint's placement in its parent, its axis
(revolute or prismatic, any direction) and the tool frame's placement in its joint. The results equal
pinocchio's ``forwardKinematics``, ``getFrameJacobian(..., LOCAL)`` and ``log6`` to rounding
(``test/feasibility/test_dls_kernel.py``). :class:`morobot.feasibility.ik.DlsIk` decides which starts to
try; this module only iterates.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
import pinocchio as pin

#: an iterate that moves less than this (rad) ends a failed attempt early
STALL_STEP = 1e-6

_jit = numba.njit(cache=True, nogil=True)

# entries of the settings array that attempt() takes
DAMPING, POSITION_TOLERANCE, ROTATION_TOLERANCE, MAX_STEP, NULLSPACE_STEP = range(5)


class Chain(NamedTuple):
    """A joint chain as the compiled kernels take it (three arrays: numba's dispatch is cheap for arrays)."""

    placements: np.ndarray  # (n + 1, 4, 4): each joint's placement in its parent joint's frame, last the tool frame's
    axes: np.ndarray  # (n, 4): each joint's unit axis in its own frame, then 1.0 for prismatic, 0.0 for revolute
    parents: np.ndarray  # (n + 1,) int: each joint's parent joint (-1: the base), last the tool frame's joint


def chain_arrays(model: pin.Model, frame_id: int) -> Chain:
    """The joint chain of a pinocchio model up to the frame ``frame_id``.

    Raises:
        ValueError: a joint with more than one degree of freedom, or not revolute or prismatic about a fixed axis.
    """
    n = model.njoints - 1
    if not (model.nq == model.nv == n >= 1):
        raise ValueError(f"need one-degree-of-freedom joints, got nq={model.nq}, nv={model.nv}")
    # each joint's motion subspace in its own frame: (v, w) = (0, axis) revolute, (axis, 0) prismatic
    data = model.createData()
    pin.computeJointJacobians(model, data, pin.neutral(model))
    columns = np.asarray(data.J).reshape(6, n)  # (6,) for a single joint
    axes = np.zeros((n, 4))
    for j in range(1, n + 1):
        local = data.oMi[j].actInv(pin.Motion(columns[:, j - 1])).vector
        linear, angular = np.linalg.norm(local[:3]), np.linalg.norm(local[3:])
        if angular > 1e-9 and linear < 1e-9:
            axes[j - 1, :3] = local[3:] / angular
        elif linear > 1e-9 and angular < 1e-9:
            axes[j - 1, :3], axes[j - 1, 3] = local[:3] / linear, 1.0
        else:
            raise ValueError(f"joint {model.names[j]!r} is neither revolute nor prismatic about a fixed axis")
    frame = model.frames[frame_id]
    placements = np.array([model.jointPlacements[j].homogeneous for j in range(1, n + 1)]
                          + [frame.placement.homogeneous])
    parents = np.array([model.parents[j] - 1 for j in range(1, n + 1)] + [int(frame.parentJoint) - 1], dtype=np.int64)
    return Chain(np.ascontiguousarray(placements), axes, parents)


@_jit
def _rotation(axis, angle, out):
    """``out`` = rotation by ``angle`` about the unit ``axis`` (Rodrigues)."""
    x, y, z = axis[0], axis[1], axis[2]
    c, s = math.cos(angle), math.sin(angle)
    t = 1.0 - c
    out[0, 0] = c + x * x * t
    out[0, 1] = x * y * t - z * s
    out[0, 2] = x * z * t + y * s
    out[1, 0] = y * x * t + z * s
    out[1, 1] = c + y * y * t
    out[1, 2] = y * z * t - x * s
    out[2, 0] = z * x * t - y * s
    out[2, 1] = z * y * t + x * s
    out[2, 2] = c + z * z * t


@_jit
def _compose(r1, t1, r2, t2, r_out, t_out):
    """(r_out, t_out) = (r1, t1) * (r2, t2); the outputs must not alias the inputs."""
    for i in range(3):
        for k in range(3):
            r_out[i, k] = r1[i, 0] * r2[0, k] + r1[i, 1] * r2[1, k] + r1[i, 2] * r2[2, k]
        t_out[i] = t1[i] + r1[i, 0] * t2[0] + r1[i, 1] * t2[1] + r1[i, 2] * t2[2]


@_jit
def forward(placements, axes, parents, q):
    """World rotations (n + 1, 3, 3) and origins (n + 1, 3) of the joints, the tool frame's last."""
    n = q.shape[0]
    rot = np.empty((n + 1, 3, 3))
    pos = np.empty((n + 1, 3))
    motion = np.empty((3, 3))
    local_r = np.empty((3, 3))
    local_t = np.empty(3)
    zero = np.zeros(3)
    for j in range(n + 1):
        place_r, place_t = placements[j, :3, :3], placements[j, :3, 3]
        # the joint's frame in its parent's: its placement, then its own motion (the tool frame has none)
        if j == n:
            local_r[:, :] = place_r
            local_t[:] = place_t
        elif axes[j, 3] != 0.0:  # prismatic
            local_r[:, :] = place_r
            for i in range(3):
                local_t[i] = place_t[i] + q[j] * (place_r[i, 0] * axes[j, 0] + place_r[i, 1] * axes[j, 1]
                                                  + place_r[i, 2] * axes[j, 2])
        else:
            _rotation(axes[j, :3], q[j], motion)
            _compose(place_r, place_t, motion, zero, local_r, local_t)
        p = parents[j]
        if p < 0:
            rot[j, :, :] = local_r
            pos[j, :] = local_t
        else:
            _compose(rot[p], pos[p], local_r, local_t, rot[j], pos[j])
    return rot, pos


@_jit
def local_jacobian(axes, parents, rot, pos):
    """The tool frame's Jacobian (6, n) in its own frame (pinocchio's LOCAL): rows linear, then angular."""
    n = axes.shape[0]
    jac = np.zeros((6, n))
    tool_r, tool_t = rot[n], pos[n]
    a = np.empty(3)
    lin = np.empty(3)
    j = parents[n]
    while j >= 0:  # the tool frame's joint and its ancestors move it
        for i in range(3):  # the axis in the world
            a[i] = rot[j, i, 0] * axes[j, 0] + rot[j, i, 1] * axes[j, 1] + rot[j, i, 2] * axes[j, 2]
        if axes[j, 3] != 0.0:
            lin[:] = a
            a[:] = 0.0
        else:  # a x (tool origin - joint origin)
            dx, dy, dz = tool_t[0] - pos[j, 0], tool_t[1] - pos[j, 1], tool_t[2] - pos[j, 2]
            lin[0] = a[1] * dz - a[2] * dy
            lin[1] = a[2] * dx - a[0] * dz
            lin[2] = a[0] * dy - a[1] * dx
        for i in range(3):  # into the tool frame: R^T v
            jac[i, j] = tool_r[0, i] * lin[0] + tool_r[1, i] * lin[1] + tool_r[2, i] * lin[2]
            jac[3 + i, j] = tool_r[0, i] * a[0] + tool_r[1, i] * a[1] + tool_r[2, i] * a[2]
        j = parents[j]
    return jac


@_jit
def log3(r):
    """The rotation vector of a rotation matrix (its axis times its angle in [0, pi])."""
    out = np.empty(3)
    out[0] = r[2, 1] - r[1, 2]  # 2 sin(angle) axis
    out[1] = r[0, 2] - r[2, 0]
    out[2] = r[1, 0] - r[0, 1]
    cos_angle = min(1.0, max(-1.0, 0.5 * (r[0, 0] + r[1, 1] + r[2, 2] - 1.0)))
    # atan2 keeps the angle accurate near 0 and pi, where acos of the trace alone is not
    angle = math.atan2(0.5 * math.sqrt(out[0] ** 2 + out[1] ** 2 + out[2] ** 2), cos_angle)
    if angle < 1e-4:  # angle / sin(angle) to second order
        for i in range(3):
            out[i] *= 0.5 * (1.0 + angle * angle / 6.0)
        return out
    if angle < math.pi - 1e-3:
        for i in range(3):
            out[i] *= 0.5 * angle / math.sin(angle)
        return out
    # near a half turn the skew part vanishes: the axis from the symmetric part, (R + R^T) / 2 =
    # cos I + (1 - cos) a a^T; the largest component's sign from the skew part, the others' relative to it
    k = 1.0 - cos_angle
    i = 0
    for m in range(1, 3):
        if r[m, m] > r[i, i]:
            i = m
    largest = math.sqrt(max((r[i, i] - cos_angle) / k, 0.0))
    if out[i] < 0.0:
        largest = -largest
    axis = np.empty(3)
    for m in range(3):
        axis[m] = largest if m == i else 0.5 * (r[i, m] + r[m, i]) / (k * largest)
    norm = math.sqrt(axis[0] ** 2 + axis[1] ** 2 + axis[2] ** 2)
    for m in range(3):
        out[m] = axis[m] * angle / norm
    return out


@_jit
def log6(r, t):
    """SE(3) logarithm (linear, angular) of the transform (r, t), as pinocchio's ``log6``."""
    w = log3(r)
    angle = math.sqrt(w[0] ** 2 + w[1] ** 2 + w[2] ** 2)
    if angle < 1e-4:
        a2 = angle * angle
        alpha = 1.0 - a2 / 12.0 - a2 * a2 / 720.0
        beta = 1.0 / 12.0 + a2 / 720.0
    else:
        s, c = math.sin(angle), math.cos(angle)
        alpha = angle * s / (2.0 * (1.0 - c))
        beta = 1.0 / (angle * angle) - s / (2.0 * angle * (1.0 - c))
    wt = w[0] * t[0] + w[1] * t[1] + w[2] * t[2]
    out = np.empty(6)
    out[0] = alpha * t[0] - 0.5 * (w[1] * t[2] - w[2] * t[1]) + beta * wt * w[0]
    out[1] = alpha * t[1] - 0.5 * (w[2] * t[0] - w[0] * t[2]) + beta * wt * w[1]
    out[2] = alpha * t[2] - 0.5 * (w[0] * t[1] - w[1] * t[0]) + beta * wt * w[2]
    out[3:6] = w
    return out


@_jit
def _pose_error(placements, axes, parents, q, target_r, target_t):
    """The twist ``log6(T(q)^-1 T_target)``, the position and rotation errors, and the joint frames at ``q``."""
    rot, pos = forward(placements, axes, parents, q)
    n = q.shape[0]
    tool_r, tool_t = rot[n], pos[n]
    rel_r = np.empty((3, 3))
    rel_t = np.empty(3)
    delta = np.empty(3)
    for i in range(3):
        delta[i] = target_t[i] - tool_t[i]
    for i in range(3):  # R^T R_target, R^T (t_target - t)
        for k in range(3):
            rel_r[i, k] = tool_r[0, i] * target_r[0, k] + tool_r[1, i] * target_r[1, k] + tool_r[2, i] * target_r[2, k]
        rel_t[i] = tool_r[0, i] * delta[0] + tool_r[1, i] * delta[1] + tool_r[2, i] * delta[2]
    twist = log6(rel_r, rel_t)
    pos_err = math.sqrt(delta[0] ** 2 + delta[1] ** 2 + delta[2] ** 2)
    rot_err = math.sqrt(twist[3] ** 2 + twist[4] ** 2 + twist[5] ** 2)
    return twist, pos_err, rot_err, rot, pos


@_jit
def errors(placements, axes, parents, q, target_r, target_t):
    """Position (m) and rotation (rad) error of the tool at ``q`` against the target pose."""
    _, pos_err, rot_err, _, _ = _pose_error(placements, axes, parents, q, target_r, target_t)
    return pos_err, rot_err


@_jit
def _damped_solve(jac, damping, b):
    """``J^T (J J^T + damping I)^-1 b`` (Cholesky of the 6x6 matrix)."""
    n = jac.shape[1]
    gram = np.empty((6, 6))
    for i in range(6):
        for k in range(i + 1):
            s = 0.0
            for m in range(n):
                s += jac[i, m] * jac[k, m]
            gram[i, k] = s + (damping if i == k else 0.0)
    low = np.zeros((6, 6))
    for i in range(6):
        for k in range(i + 1):
            s = gram[i, k]
            for m in range(k):
                s -= low[i, m] * low[k, m]
            low[i, k] = math.sqrt(s) if i == k else s / low[k, k]
    x = np.empty(6)
    for i in range(6):  # L y = b
        s = b[i]
        for m in range(i):
            s -= low[i, m] * x[m]
        x[i] = s / low[i, i]
    for i in range(5, -1, -1):  # L^T x = y
        s = x[i]
        for m in range(i + 1, 6):
            s -= low[m, i] * x[m]
        x[i] = s / low[i, i]
    out = np.zeros(n)
    for m in range(n):
        for i in range(6):
            out[m] += jac[i, m] * x[i]
    return out


@_jit
def _nullspace(jac, damping, q, bounds, held, step):
    """A step that keeps the tool pose to first order and moves the joints towards mid-range, at most ``step``
    rad per joint; ``held`` joints do not move. ``bounds``: lower, upper, middle and 1 / half range^2."""
    n = q.shape[0]
    z = np.empty(n)
    for j in range(n):
        z[j] = 0.0 if held[j] else (bounds[2, j] - q[j]) * bounds[3, j]
    jz = np.zeros(6)
    for i in range(6):
        for m in range(n):
            jz[i] += jac[i, m] * z[m]
    z -= _damped_solve(jac, damping, jz)
    largest = np.abs(z).max()
    if largest <= 1e-12:
        return z * 0.0
    return z * min(1.0, step / largest)


@_jit
def attempt(placements, axes, parents, target_r, target_t, q_start, bounds, settings, iterations, patience,
            warm, patient, hold_limits):
    """One DLS attempt from ``q_start`` (see :mod:`morobot.feasibility.ik`).

    ``bounds``: (4, n) lower and upper limits, mid-range and 1 / half range^2; ``settings``: damping, position
    and rotation tolerance, largest step, null-space step (indexed by this module's constants). A null-space
    step > 0 shapes a ``warm`` start; a warm start that already meets the tolerances then takes one such step,
    kept if the pose still meets them. Returns ``(q, success, iterations, position_error, rotation_error)``.
    """
    n = q_start.shape[0]
    damping, pos_tol, rot_tol = settings[DAMPING], settings[POSITION_TOLERANCE], settings[ROTATION_TOLERANCE]
    max_step, shaping_step = settings[MAX_STEP], settings[NULLSPACE_STEP]
    lower, upper = bounds[0], bounds[1]
    shaping = warm and shaping_step > 0.0
    q = np.minimum(np.maximum(q_start, lower), upper)
    twist, pos_err, rot_err, rot, pos = _pose_error(placements, axes, parents, q, target_r, target_t)
    no_hold = np.zeros(n, dtype=np.bool_)
    held = np.zeros(n, dtype=np.bool_)
    best, since_best = math.inf, 0
    it = 0
    while True:
        if pos_err <= pos_tol and rot_err <= rot_tol:
            if it == 0 and shaping:
                # settle: one null-space step, kept if the pose still meets the tolerances
                jac = local_jacobian(axes, parents, rot, pos)
                moved = np.minimum(np.maximum(q + _nullspace(jac, damping, q, bounds, no_hold, shaping_step),
                                              lower), upper)
                _, pos2, rot2, _, _ = _pose_error(placements, axes, parents, moved, target_r, target_t)
                if pos2 <= pos_tol and rot2 <= rot_tol:
                    return moved, True, 1, pos2, rot2
                return q, True, 1, pos_err, rot_err
            return q, True, it, pos_err, rot_err
        if it == iterations:
            break
        # progress in tolerance units: the error must keep falling by 1 % to keep this start
        err = max(pos_err / pos_tol, rot_err / rot_tol)
        if err < 0.99 * best:
            best, since_best = err, 0
        else:
            since_best += 1
            if patience > 0 and since_best >= patience and (patient or not warm):
                break
        jac = local_jacobian(axes, parents, rot, pos)
        dq = _damped_solve(jac, damping, twist)
        if shaping:
            dq += _nullspace(jac, damping, q, bounds, no_hold, shaping_step)
        # joints at a limit that the step pushes further are held, and the step is solved again with the
        # others: a redundant arm then slides along the limit instead of stalling there
        any_held = False
        for j in range(n):
            held[j] = (q[j] <= lower[j] and dq[j] < 0.0) or (q[j] >= upper[j] and dq[j] > 0.0)
            any_held = any_held or held[j]
        if hold_limits and any_held:
            for j in range(n):
                if held[j]:
                    jac[:, j] = 0.0
            dq = _damped_solve(jac, damping, twist)
            if shaping:
                dq += _nullspace(jac, damping, q, bounds, held, shaping_step)
        largest = np.abs(dq).max()
        if largest > max_step:
            dq *= max_step / largest
        q_next = np.minimum(np.maximum(q + dq, lower), upper)
        if np.abs(q_next - q).max() < STALL_STEP:
            break  # stuck against the limits or at the closest reachable pose
        q = q_next
        twist, pos_err, rot_err, rot, pos = _pose_error(placements, axes, parents, q, target_r, target_t)
        it += 1
    return q, False, it, pos_err, rot_err


@_jit
def manipulability(placements, axes, parents, q, wrist_a, wrist_b):
    """Yoshikawa manipulability ``sqrt(det(J J^T))`` of the tool frame's Jacobian at ``q``, and ``|cos|`` of the
    angle between joints ``wrist_a`` and ``wrist_b``'s axes (the angular rows of their columns; 0 when either
    index is negative)."""
    rot, pos = forward(placements, axes, parents, q)
    jac = local_jacobian(axes, parents, rot, pos)
    gram = jac @ jac.T
    w = math.sqrt(max(np.linalg.det(gram), 0.0))
    if wrist_a < 0 or wrist_b < 0:
        return w, 0.0
    cos = jac[3, wrist_a] * jac[3, wrist_b] + jac[4, wrist_a] * jac[4, wrist_b] + jac[5, wrist_a] * jac[5, wrist_b]
    return w, abs(cos)


@_jit
def nearest_turn(q, reference, turn, lower, upper):
    """``q`` with each joint marked in ``turn`` (revolute, more than a turn of range) shifted by whole turns
    towards ``reference`` (the same pose), where the shifted value stays inside the limits."""
    out = q.copy()
    for j in range(q.shape[0]):
        if turn[j]:
            shifted = q[j] + 2.0 * math.pi * np.rint((reference[j] - q[j]) / (2.0 * math.pi))
            if lower[j] <= shifted <= upper[j]:
                out[j] = shifted
    return out


@_jit
def rank_solutions(candidates, lower, upper, reference, mid, half, mid_weight):
    """Closed-form solutions (rows) inside the limits, cheapest first. Each joint takes its value, or the value
    a whole turn away, that lies inside the limits and nearest ``reference`` (rows where a joint has none are
    dropped). The cost is the squared distance to ``reference`` plus ``mid_weight`` times the squared distance
    from mid-range in units of the half range (``mid``, ``half``)."""
    two_pi = 2.0 * math.pi
    q = np.empty_like(candidates)
    cost = np.empty(candidates.shape[0])
    m = 0
    for i in range(candidates.shape[0]):
        ok = True
        for j in range(candidates.shape[1]):
            best, gap = 0.0, math.inf
            for turn in (-1.0, 0.0, 1.0):
                x = candidates[i, j] + two_pi * turn
                if lower[j] <= x <= upper[j] and abs(x - reference[j]) < gap:
                    best, gap = x, abs(x - reference[j])
            if gap == math.inf:
                ok = False
                break
            q[m, j] = best
        if ok:
            c = 0.0
            for j in range(candidates.shape[1]):
                c += (q[m, j] - reference[j]) ** 2 + mid_weight * ((q[m, j] - mid[j]) / half[j]) ** 2
            cost[m] = c
            m += 1
    return q[:m][np.argsort(cost[:m])]


@_jit
def distinct_rows(rows, found, apart):
    """Indices of the rows, in order, that lie more than ``apart`` (largest joint difference) from ``found`` and
    from every row kept before them: one representative per branch of an ordered list of solutions."""
    kept = np.empty(rows.shape[0], dtype=np.int64)
    m = 0
    for i in range(rows.shape[0]):
        far = True
        for j in range(-1, m):
            other = found if j < 0 else rows[kept[j]]
            gap = 0.0
            for k in range(rows.shape[1]):
                gap = max(gap, abs(rows[i, k] - other[k]))
            if gap <= apart:
                far = False
                break
        if far:
            kept[m] = i
            m += 1
    return kept[:m]
