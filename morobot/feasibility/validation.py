"""Checker-vs-reference comparisons on random scenes, configurations, pose targets and streams.

Used by the correctness test (about 1.5k configurations) and ``bench/bench_feasibility.py``
(10k+). The safety property is: nothing the checker accepts is infeasible for the reference
(``false_accepts == 0``); false rejections measure how conservative the checker is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pinocchio as pin

from morobot.feasibility.checker import FeasibilityChecker
from morobot.feasibility.reference import ExhaustiveReference


def box_surface_points(rng: np.random.Generator, centre, size, n: int) -> np.ndarray:
    """``n`` points sampled uniformly on the faces of an axis-aligned box."""
    size = np.asarray(size, float)
    pts = rng.uniform(-0.5, 0.5, (n, 3)) * size
    axis = rng.integers(0, 3, n)
    pts[np.arange(n), axis] = np.where(rng.random(n) < 0.5, -0.5, 0.5) * size[axis]
    return pts + np.asarray(centre, float)


def clutter_cloud(rng: np.random.Generator, n_boxes: int = 4, points_per_box: int = 1500) -> np.ndarray:
    """A random cluttered scene in the arm's base frame: boxes on and above the table plus a shelf."""
    clouds = []
    for _ in range(n_boxes):
        size = rng.uniform([0.05, 0.05, 0.05], [0.2, 0.2, 0.35])
        centre = np.append(rng.uniform([0.25, -0.55], [0.75, 0.55]), size[2] / 2 + rng.choice([0.0, 0.2]))
        clouds.append(box_surface_points(rng, centre, size, points_per_box))
    shelf = np.array([rng.uniform(0.3, 0.6), rng.uniform(-0.3, 0.3), rng.uniform(0.75, 0.95)])
    clouds.append(box_surface_points(rng, shelf, [0.3, 0.4, 0.03], points_per_box))
    return np.concatenate(clouds)


def boundary_configurations(rng: np.random.Generator, ref: ExhaustiveReference, n_pairs: int,
                            per_pair: int, steps: int = 8, spread: float = 0.03) -> np.ndarray:
    """Configurations around the reference's feasible/infeasible boundary (where bugs show).

    Bisects segments between a reference-feasible and a reference-infeasible configuration
    and samples ``per_pair`` configurations within ``spread`` (segment fraction) of the crossing.
    """
    out = []
    while len(out) < n_pairs * per_pair:
        a, b = rng.uniform(ref.lower, ref.upper, (2, len(ref.lower)))
        fa, fb = ref.static_feasible(a)[0], ref.static_feasible(b)[0]
        if fa == fb:
            continue
        good, bad = (a, b) if fa else (b, a)
        lo, hi = 0.0, 1.0
        for _ in range(steps):
            mid = (lo + hi) / 2
            if ref.static_feasible(good + mid * (bad - good))[0]:
                lo = mid
            else:
                hi = mid
        for t in np.clip(hi + rng.uniform(-spread, spread, per_pair), 0.0, 1.0):
            out.append(good + t * (bad - good))
    return np.array(out)


@dataclass
class Comparison:
    """Counts from one comparison.

    Attributes:
        frames: number of verdicts compared.
        accepted: verdicts the checker called feasible.
        reference_feasible: frames the reference calls feasible.
        false_accepts: indices the checker accepted although the reference rejects them.
        false_rejects: indices the checker rejected although the reference accepts them.
        reference_failures: reference failure reason -> count.
    """

    frames: int = 0
    accepted: int = 0
    reference_feasible: int = 0
    false_accepts: list[int] = field(default_factory=list)
    false_rejects: list[int] = field(default_factory=list)
    reference_failures: dict[str, int] = field(default_factory=dict)

    def add(self, index: int, accepted: bool, ref_ok: bool, ref_reason: str) -> None:
        """Record one frame."""
        self.frames += 1
        self.accepted += accepted
        self.reference_feasible += ref_ok
        if not ref_ok:
            self.reference_failures[ref_reason] = self.reference_failures.get(ref_reason, 0) + 1
        if accepted and not ref_ok:
            self.false_accepts.append(index)
        if ref_ok and not accepted:
            self.false_rejects.append(index)


def compare_static(checker: FeasibilityChecker, ref: ExhaustiveReference, qs: np.ndarray) -> Comparison:
    """``checker.evaluate`` vs ``ref.static_feasible`` on each configuration."""
    result = Comparison()
    for i, q in enumerate(qs):
        ok, reason = ref.static_feasible(q)
        result.add(i, checker.evaluate(q).feasible, ok, reason)
    return result


def pose_stream(rng: np.random.Generator, ref: ExhaustiveReference, n_goals: int, dt: float = 0.05,
                speeds=(0.5, 1.6), unreachable: float = 0.15) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """TCP targets ``(position, quaternion wxyz, stamp)`` along joint-space paths between random goals.

    Each segment moves the fastest joint at a random speed in ``speeds`` (rad/s; the default rate
    limit is about 1.1-1.3 rad/s, so some segments violate it). With probability ``unreachable`` a
    segment's targets are pushed out of reach (positions scaled by 1.6-2.5).
    """
    frames = []
    stamp = 0.0
    previous = rng.uniform(ref.lower, ref.upper)
    for _ in range(n_goals):
        goal = rng.uniform(ref.lower, ref.upper)
        speed = rng.uniform(*speeds)
        steps = max(2, int(np.ceil(np.max(np.abs(goal - previous)) / (speed * dt))))
        scale = rng.uniform(1.6, 2.5) if rng.random() < unreachable else 1.0
        for s in range(1, steps + 1):
            pose = ref.fk(previous + (goal - previous) * s / steps)
            quat = pin.Quaternion(pose.rotation)
            frames.append((pose.translation * scale, np.array([quat.w, quat.x, quat.y, quat.z]), stamp))
            stamp += dt
        previous = goal
    return frames


def compare_pose_targets(checker: FeasibilityChecker, ref: ExhaustiveReference, frames) -> Comparison:
    """Demo mode: an accepted target must be reached by ``verdict.q`` within the IK tolerances,
    and ``verdict.q`` must pass the reference's static checks and rate rule (on the stream of
    IK solutions)."""
    checker.reset()
    result = Comparison()
    solved_q, solved_t = [], []
    tail = checker.config.rate_window + 1  # the last frame's rate verdict depends on these only
    for i, (position, wxyz, stamp) in enumerate(frames):
        verdict = checker.check_ee_pose(position, wxyz, stamp)
        if "ik" in verdict.checks and verdict.checks["ik"].passed:
            solved_q.append(verdict.q)
            solved_t.append(stamp)
        if not verdict.feasible:
            result.add(i, False, True, "")
            continue
        reason = ""
        if not ref.pose_reached(verdict.q, position, wxyz):
            reason = "pose_not_reached"
        elif not ref.rate_feasible(solved_q[-tail:], solved_t[-tail:])[-1]:
            reason = "joint_rate"
        else:
            reason = ref.static_feasible(verdict.q)[1]
        result.add(i, True, reason == "", reason)
    # Rejected frames are not compared here (no reference IK); only acceptances can be wrong.
    result.false_rejects.clear()
    return result


def compare_rate_streams(checker: FeasibilityChecker, ref: ExhaustiveReference, rng: np.random.Generator,
                         n_frames: int) -> Comparison:
    """Filter mode rate rule vs the brute-force reference on a random stream (random dt, gaps,
    stamps that do not increase, runs of slow and fast steps). Both directions must agree exactly."""
    checker.reset()
    q = checker.robot.ready_pose.copy()
    qs, stamps, verdicts = [], [], []
    stamp = 0.0
    speed = 0.5
    for _ in range(n_frames):
        dt = rng.choice([0.01, 0.02, 0.0, 0.7], p=[0.6, 0.3, 0.05, 0.05])
        stamp += dt
        if rng.random() < 0.15:
            speed = rng.choice([0.3, 0.9, 1.5, 3.0])  # rad/s, held for a few frames
        direction = rng.normal(size=len(ref.lower))
        q = q + direction / np.max(np.abs(direction)) * speed * max(dt, 0.01) * rng.uniform(0.6, 1.4)
        qs.append(q.copy())
        stamps.append(stamp)
        verdict = checker.check_joint_command(q, stamp)
        verdicts.append(verdict.checks["joint_rate"].passed)
    expected = ref.rate_feasible(qs, stamps)
    result = Comparison()
    for i, (got, want) in enumerate(zip(verdicts, expected)):
        result.add(i, got, want, "joint_rate")
    return result
