"""Inverse kinematics for the TCP pose: closed form where the arm has one, else damped least squares.

Arms with the Panda's geometry (checked on the URDF) are solved in closed form over a sweep of the
seventh joint (:mod:`morobot.feasibility.analytic_ik`), arms with the UR geometry in closed form with
up to 8 solutions (:mod:`morobot.feasibility.ur_ik`), taking the solution nearest the warm start; the
numerical solver below runs for other arms and when the closed form finds nothing.

Targets farther from the (fixed) joint-1 origin than the arm's reach bound are rejected without
iterating. Each attempt runs as one compiled call (:func:`morobot.feasibility.dls_kernel.attempt`); this
module decides which starts to try. Each iteration takes ``dq = J^T (J J^T + lambda^2 I)^-1 e`` with
``e = log6(T^-1 T_target)`` and the frame-local Jacobian, scales ``dq`` so that no joint moves more than
``max_step``, and projects the result into the (margin-tightened) joint limits. A joint already at a limit
that ``dq`` pushes further is **held** (its Jacobian column zeroed, the step solved again with the others,
``hold_limits``): a redundant arm then slides along the limit instead of crawling or stalling against
it, which ended most warm starts that failed along smooth streams. An attempt ends early when the projected
step vanishes (stuck at a limit or at the closest reachable pose) or when its error has stopped
falling for ``patience`` iterations (a restart creeping towards a limit or a local minimum; another
start does better sooner; the warm start keeps its full budget).

Redundancy (the Panda's seventh joint): each iteration of the warm-started attempt adds a null-space
step (``nullspace_step`` rad at most) towards the middle of the joint ranges, and a warm start that
already meets the tolerances takes one such step; without it, warm-started streams drift along the self-motion manifold into a
limit, the warm start fails and a restart lands on another branch (3 rad jumps).

Starts, in order: the warm start (the previous solution, so a stream stays on its branch; with a closed
form, only for targets within ``warm_reach`` of its tool pose and for at most ``warm_iterations``, then
the closed form), the given restarts (the ready pose), then the configurations of a **seed library** whose tool poses are
nearest the target (``library_size`` configurations drawn once within the limits, seeded; nearest
by position plus ``0.1 m/rad`` times the rotation angle), then random configurations. A start near
the answer converges in a few iterations, so the library cuts both the failures and the time of
the slow, restarted frames. :meth:`DlsIk.alternatives` gives other solutions of the same pose (other
branches) for a checker whose first solution fails a static check: the closed form's where the arm has one,
else converged from the library's nearest configurations.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pinocchio as pin

from morobot.feasibility import dls_kernel
from morobot.feasibility.analytic_ik import AnalyticIk
from morobot.feasibility.ur_ik import UrIk
from morobot.feasibility.config import IkConfig
from morobot.feasibility.model import ArmModel


ANOTHER_SOLUTION = 0.5  # rad: solutions farther apart than this on some joint are different configurations
LIBRARY_ROTATION_WEIGHT = 0.1  # m per rad: how the seed library weighs orientation against position


@dataclass(frozen=True)
class IkResult:
    """Outcome of an IK solve.

    Attributes:
        q: the final iterate (one value per joint).
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
    values = p.tolist() + quat.tolist()  # plain floats: per-element checks cost less than numpy's on 7 values
    if not all(map(math.isfinite, values)):
        raise ValueError("target pose contains NaN or inf")
    w, x, y, z = values[3:]
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    if abs(norm - 1.0) > 1e-3:
        raise ValueError(f"quaternion must be unit length (w, x, y, z), norm={norm:.4f}")
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
        self._chain = robot.chain
        self._rng = np.random.default_rng(config.seed)
        model = robot.model
        # Joint 1's origin does not move; by the triangle inequality no TCP position is farther
        # from it than the sum of the (rigid) offsets between consecutive joints and the TCP.
        self.reach_centre = model.jointPlacements[1].translation.copy()
        self.reach_radius = sum(float(np.linalg.norm(model.jointPlacements[j].translation))
                                for j in range(2, model.njoints))
        self.reach_radius += float(np.linalg.norm(model.frames[robot.ee_frame_id].placement.translation))
        # revolute joints whose range exceeds a turn (the UR5's +-2 pi): q and q +- 2 pi are the same pose
        revolute = np.array([j.shortname().startswith("JointModelR") for j in model.joints[1:]])  # RX/RY/RZ/Revolute*
        self._turn = revolute & (self.upper - self.lower > 2 * math.pi)
        self._any_turn = bool(self._turn.any())
        mid_pull = 1.0 / np.maximum(0.5 * (self.upper - self.lower), 1e-3) ** 2  # 1 / half range^2
        self._bounds = np.array([self.lower, self.upper, 0.5 * (self.lower + self.upper), mid_pull])
        settings = [config.damping, config.position_tolerance, config.rotation_tolerance, config.max_step, 0.0]
        self._settings = np.array(settings)
        # the warm start also steps towards mid-range in the null space, which exists only with more joints than
        # the pose has dimensions (the Panda's 7)
        settings[dls_kernel.NULLSPACE_STEP] = config.nullspace_step if len(self.lower) > 6 else 0.0
        self._warm_settings = np.array(settings)
        library_rng = np.random.default_rng([config.seed, 1])
        self._library_q = library_rng.uniform(self.lower, self.upper, (config.library_size, len(self.lower)))
        self.analytic = ((AnalyticIk.for_arm(robot, self.lower, self.upper, config.q7_step)
                          or UrIk.for_arm(robot, self.lower, self.upper)) if config.analytic else None)
        poses = [robot.ee_placement(q, self._data) for q in self._library_q]
        self._library_p = np.array([t.translation for t in poses]).reshape(-1, 3)
        self._library_r = np.array([t.rotation for t in poses]).reshape(-1, 3, 3)
        # the compiled attempts are built (or loaded from numba's cache) now, not at the first frame
        ready = robot.ee_placement(robot.ready_pose, self._data)
        self._attempt(ready, robot.ready_pose, warm=True)
        self._attempt(ready, robot.ready_pose)
        self._errors(robot.ready_pose, ready)
        self._nearest_turn(robot.ready_pose, robot.ready_pose)
        dls_kernel.distinct_rows(robot.ready_pose[None, :], robot.ready_pose, ANOTHER_SOLUTION)  # alternatives' kernel

    def library_starts(self, target: pin.SE3, count: int) -> np.ndarray:
        """The ``count`` library configurations whose tool poses are nearest ``target``."""
        if count <= 0 or not len(self._library_q):
            return self._library_q[:0]
        position = np.linalg.norm(self._library_p - target.translation, axis=1)
        # rotation angle from the trace of R_i^T R_target
        trace = np.einsum("nij,ij->n", self._library_r, target.rotation)
        angle = np.arccos(np.clip(0.5 * (trace - 1.0), -1.0, 1.0))
        cost = position + LIBRARY_ROTATION_WEIGHT * angle
        count = min(count, len(cost))
        nearest = np.argpartition(cost, count - 1)[:count]
        return self._library_q[nearest[np.argsort(cost[nearest])]]

    def _errors(self, q: np.ndarray, target: pin.SE3) -> tuple[float, float]:
        """Position (m) and rotation (rad) error of the tool at ``q``."""
        return dls_kernel.errors(*self._chain, q, target.rotation, target.translation)

    def _nearest_turn(self, q: np.ndarray, reference) -> np.ndarray:
        """``q`` with each multi-turn joint shifted by whole turns towards ``reference`` (same pose)
        where the limits allow: a restart must not jump 2 pi on a joint that needs not move."""
        if not self._any_turn:
            return q
        return dls_kernel.nearest_turn(q, np.asarray(reference, float), self._turn, self.lower, self.upper)

    def _attempt(self, target: pin.SE3, q: np.ndarray, warm: bool = False, patient: bool = True,
                 iterations: int | None = None) -> tuple[np.ndarray, bool, int, float, float]:
        """One DLS attempt from ``q`` of at most ``iterations`` (default ``max_iterations``), compiled
        (:func:`morobot.feasibility.dls_kernel.attempt`); ``warm``: the warm start (null-space preference, and
        no patience unless ``patient``). Returns ``(q, success, iterations, position_error, rotation_error)``.

        A warm start that already meets the tolerances takes one null-space step, kept if the pose still meets
        them: along a stream this keeps the redundant joints from drifting to their limits, where the warm start
        would fail and a restart jump branches.
        """
        cfg = self.config
        return dls_kernel.attempt(
            *self._chain, target.rotation, target.translation, np.asarray(q, float), self._bounds,
            self._warm_settings if warm else self._settings, cfg.max_iterations if iterations is None else iterations,
            cfg.patience, warm, patient, cfg.hold_limits)

    def alternatives(self, target: pin.SE3, found: np.ndarray):
        """Up to ``alternatives`` other solutions for ``target`` than ``found`` (each more than
        ``ANOTHER_SOLUTION`` rad from it and from the ones before on some joint): where the arm has a closed
        form, its solutions (the UR's eight, the Panda's over a coarse ``q7`` sweep) nearest ``found`` first;
        otherwise those converged from the library configurations nearest the target. A generator, so a
        caller that takes the first it likes pays for no more."""
        found = np.asarray(found, float)
        cfg = self.config
        if self.analytic is not None:
            ranked = dls_kernel.rank_solutions(self.analytic.all_solutions(target), self.lower, self.upper, found,
                                               found, np.ones_like(found), 0.0)
            for q in ranked[dls_kernel.distinct_rows(ranked, found, ANOTHER_SOLUTION)[:cfg.alternatives]]:
                pos_err, rot_err = self._errors(q, target)
                if pos_err <= cfg.position_tolerance and rot_err <= cfg.rotation_tolerance:
                    yield IkResult(q, True, 0, pos_err, rot_err)
            return
        seen = [found]
        for start in self.library_starts(target, cfg.alternatives):
            q, ok, _, pos_err, rot_err = self._attempt(target, start)
            if not ok:
                continue
            q = self._nearest_turn(q, found)
            if all(float(np.abs(q - other).max()) > ANOTHER_SOLUTION for other in seen):
                seen.append(q)
                yield IkResult(q, True, 0, pos_err, rot_err)

    def solve(self, target: pin.SE3, q_init: np.ndarray, restart_from=()) -> IkResult:
        """Solve for ``target``: DLS from the warm start ``q_init`` (where the arm has a closed form: only for
        a target within ``warm_reach`` of its tool pose, for at most ``warm_iterations``; a converged one
        that moved a joint more than ``warm_jump`` gives way to a nearer closed-form solution); then the closed
        form's solution nearest ``q_init``; then DLS from the warm start if it was skipped, from each of
        ``restart_from``, from the ``library_starts`` nearest library configurations and from up to
        ``random_restarts`` configurations drawn within the limits.

        Args:
            target: desired end-effector pose in the base frame.
            q_init: warm start.
            restart_from: further start configurations tried in order when an attempt fails.

        Returns:
            The first successful attempt, else the attempt with the smallest position error. Targets
            beyond the reach bound fail at once.
        """
        offset = target.translation - self.reach_centre
        distance = math.sqrt(float(offset @ offset))
        if distance > self.reach_radius + self.config.position_tolerance:
            q = np.minimum(np.maximum(np.asarray(q_init, float), self.lower), self.upper)
            pos_err, rot_err = self._errors(q, target)
            return IkResult(q, False, 0, pos_err, rot_err, out_of_reach=True)
        # the warm start first: where it converges it is the continuous answer along a stream (the
        # closed form's q7 parameterisation is ill-conditioned near the shoulder's alignment, q2 = 0)
        cfg, q_init = self.config, np.asarray(q_init, float)
        backed = self.analytic is not None  # a closed form follows: the warm start is cut short
        q_warm = np.minimum(np.maximum(q_init, self.lower), self.upper)
        errors = self._errors(q_warm, target) if backed else None
        # with a closed form, a target far from the warm start's pose (a new stream, a cold start) goes to it
        # first; the warm start is then tried after it, with the restarts
        warm_first = not backed or errors[0] + LIBRARY_ROTATION_WEIGHT * errors[1] <= cfg.warm_reach
        if warm_first:
            q, ok, total, pos_err, rot_err = self._attempt(
                target, q_warm, warm=True, patient=backed,
                iterations=min(cfg.warm_iterations, cfg.max_iterations) if backed else None)
            if ok:
                q = self._nearest_turn(q, q_init)
                step = float(np.max(np.abs(q - q_init)))
                if backed and step > cfg.warm_jump:  # slid onto another branch? the nearest closed-form solution
                    found = self.analytic.solve(target, q_init, (cfg.position_tolerance, cfg.rotation_tolerance))
                    if found is not None and float(np.max(np.abs(found[0] - q_init))) < step:
                        return IkResult(found[0], True, total, found[1], found[2])
                return IkResult(q, True, total, pos_err, rot_err)
            best = (q, pos_err, rot_err)
        else:
            total, best = 0, (q_warm, errors[0], errors[1])
        if backed:  # the solution nearest the warm start, of all there are
            found = self.analytic.solve(target, q_init, (cfg.position_tolerance, cfg.rotation_tolerance))
            if found is not None:
                return IkResult(found[0], True, total, found[1], found[2])
        draws = (self._rng.uniform(self.lower, self.upper) for _ in range(cfg.random_restarts))
        # looked up only when the warm start and the restarts fail
        library = (q for q in (None,) for q in self.library_starts(target, cfg.library_starts))
        skipped = () if warm_first else (q_warm,)
        for start in itertools.chain(skipped, restart_from, library, draws):
            # restarts go straight for the pose (no null-space preference), cut by patience
            q, ok, its, pos_err, rot_err = self._attempt(target, np.asarray(start, float))
            total += its
            if ok:
                return IkResult(self._nearest_turn(q, q_init), True, total, pos_err, rot_err)
            if pos_err < best[1]:
                best = (q, pos_err, rot_err)
        return IkResult(best[0], False, total, best[1], best[2])
