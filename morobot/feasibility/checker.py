"""The per-frame feasibility checker: filter mode (joint commands) and demo mode (TCP poses).

Checks, cheapest first: IK (demo mode), joint limits, joint-rate window, singularity, self
collision, scene collision. With ``early_exit`` the checks after the first failure are skipped
(the rate window is still updated, so it sees every frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from morobot.feasibility.checks import RateWindow, SingularityCheck, check_joint_limits
from morobot.feasibility.collision import SceneCollision, SelfCollision
from morobot.feasibility.config import FeasibilityConfig
from morobot.feasibility.ik import DlsIk, pose_from_quaternion
from morobot.feasibility.model import ArmModel, validate_q
from morobot.feasibility.scene import RobotSurface, filter_points, voxel_centres
from morobot.feasibility.verdict import CheckResult, Verdict


@dataclass(frozen=True)
class FilterResult:
    """Output of ``clamp_to_feasible``.

    Attributes:
        q: the joint command to send (one value per arm joint).
        action: "pass" (command unchanged), "clamped" (moved into the limits / rate bound) or
            "hold" (stay at the current configuration).
        verdict: static verdict of the command that was examined last.
    """

    q: np.ndarray
    action: str
    verdict: Verdict


def _validate_stamp(stamp: float) -> float:
    stamp = float(stamp)
    if not math.isfinite(stamp):
        raise ValueError(f"stamp must be finite, got {stamp}")
    return stamp


class FeasibilityChecker:
    """Feasibility of an arm's joint commands and TCP targets, in its base frame (``panda_link0``).

    Args:
        config: checker settings (``robot``/``urdf``/``srdf`` choose the arm).
        robot: a prebuilt model to share between checkers (must match the config's arm, finger
            opening and end-effector frame).
    """

    def __init__(self, config: FeasibilityConfig = FeasibilityConfig(), robot: ArmModel | None = None) -> None:
        self.config = config
        self.robot = robot or ArmModel(config.robot, config.finger_opening, config.ee_frame,
                                       config.urdf or None, config.srdf or None)
        if self.robot.description.name != config.robot:
            raise ValueError(f"robot model is the {self.robot.description.name}, config wants {config.robot!r}")
        if config.ee_frame and self.robot.ee_frame != config.ee_frame:
            raise ValueError(f"robot model uses {self.robot.ee_frame!r}, config wants {config.ee_frame!r}")
        if abs(self.robot.finger_opening - config.finger_opening) > 1e-9:
            raise ValueError(f"robot model has finger opening {self.robot.finger_opening}, "
                             f"config wants {config.finger_opening}")
        margin = config.limit_margin
        self.lower = self.robot.lower + margin
        self.upper = self.robot.upper - margin
        self.ik = DlsIk(self.robot, config.ik, self.lower, self.upper)
        self.rate = RateWindow(self.robot.velocity_limit, config.velocity_scale, config.rate_window,
                               config.rate_min_violations, config.rate_max_dt)
        self.singularity = SingularityCheck(self.robot, config.manipulability_infeasible,
                                            config.manipulability_warning, config.wrist_warning_angle)
        self.self_collision = SelfCollision(self.robot, config.self_margin, config.early_exit)
        sc = config.scene
        self.scene_collision = SceneCollision(self.robot, config.scene_margin, sc.table_min, sc.table_max,
                                              sc.ignored_links, config.early_exit)
        self._surface: RobotSurface | None = None
        rng = np.random.default_rng(0)
        extra = [rng.uniform(self.lower, self.upper) for _ in range(max(config.ik.restarts - 1, 0))]
        ready = np.clip(self.robot.ready_pose, self.lower, self.upper)
        self._restart_seeds = tuple([ready] + extra)[: config.ik.restarts]
        self._warm = ready.copy()

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The arm joints, in the order every ``q`` uses."""
        return self.robot.joint_names

    def reset(self, q=None) -> None:
        """Forget the rate window; the IK warm start becomes ``q`` (e.g. the arm's measured configuration
        when a recording starts) or the ready pose."""
        self.rate.reset()
        start = self.robot.ready_pose if q is None else validate_q(q, self.robot.nq)
        self._warm = np.clip(start, self.lower, self.upper)

    # ------------------------------------------------------------------ scene
    def update_scene(self, points, q_robot=None) -> int:
        """Replace the obstacles with a new point cloud.

        Args:
            points: (N, 3) cloud in the base frame; NaN rows are dropped.
            q_robot: arm configuration when the cloud was taken; the robot's own points (within
                ``scene.robot_padding`` of its surface) are dropped. None: the cloud must not
                contain the robot.

        Returns:
            The number of obstacle voxels.
        """
        sc = self.config.scene
        surface = None
        if q_robot is not None:
            q_robot = validate_q(q_robot, self.robot.nq, name="q_robot")
            if self._surface is None:
                self._surface = RobotSurface(self.robot)
            surface = self._surface
        kept = filter_points(points, sc, surface, q_robot)
        centres = voxel_centres(kept, sc.voxel_size)
        self.scene_collision.set_voxels(centres, sc.voxel_size)
        return len(centres)

    def clear_scene(self) -> None:
        """Remove all obstacle voxels (the table stays)."""
        self.scene_collision.set_voxels(np.zeros((0, 3)), self.config.scene.voxel_size)

    # ----------------------------------------------------------------- checks
    def _limits(self, q: np.ndarray) -> CheckResult:
        return check_joint_limits(q, self.robot.lower, self.robot.upper, self.config.limit_margin,
                                  self.robot.joint_names)

    def _static(self, q: np.ndarray, checks: dict[str, CheckResult]) -> None:
        early = self.config.early_exit
        if early and any(not r.passed for r in checks.values()):
            return
        steps = (("singularity", self.singularity), ("self_collision", self.self_collision),
                 ("scene_collision", self.scene_collision))
        for name, check in steps:
            result = check(q)
            checks[name] = result
            if early and not result.passed:
                return

    def evaluate(self, q, stamp: float = 0.0) -> Verdict:
        """Stateless check of one configuration: limits, singularity, self and scene collision."""
        q = validate_q(q, self.robot.nq)
        checks = {"joint_limits": self._limits(q)}
        self._static(q, checks)
        return Verdict.from_checks(checks, q, _validate_stamp(stamp))

    def check_joint_command(self, q, stamp: float) -> Verdict:
        """Filter mode: check a joint position command received at ``stamp`` (s)."""
        q = validate_q(q, self.robot.nq)
        stamp = _validate_stamp(stamp)
        checks = {"joint_limits": self._limits(q),
                  "joint_rate": self.rate.update(q, stamp)}
        self._static(q, checks)
        return Verdict.from_checks(checks, q, stamp)

    def check_ee_pose(self, position, quaternion_wxyz, stamp: float) -> Verdict:
        """Demo mode: check a TCP target pose in the base frame via IK warm-started from the last solution."""
        target = pose_from_quaternion(position, quaternion_wxyz)
        stamp = _validate_stamp(stamp)
        sol = self.ik.solve(target, self._warm, self._restart_seeds)
        detail = (f"{sol.iterations} iterations, error {sol.position_error * 1000:.1f} mm / "
                  f"{sol.rotation_error:.3f} rad")
        if not sol.success:
            why = (f"target beyond the {self.ik.reach_radius:.2f} m reach" if sol.out_of_reach
                   else f"IK failed ({detail})")
            checks = {"ik": CheckResult.fail(sol.position_error, f"unreachable: {why}")}
            return Verdict.from_checks(checks, sol.q, stamp)
        static = self._pose_checks(sol.q)
        if not all(r.passed for r in static.values()):
            # the pose is feasible if any configuration reaching it is: another solution (branch) that
            # passes is taken (a jump from the last one then shows in the rate check)
            for other in self.ik.alternatives(target, sol.q):
                other_static = self._pose_checks(other.q)
                if all(r.passed for r in other_static.values()):
                    sol, static = other, other_static
                    detail += ", another IK solution: the first failed a static check"
                    break
        self._warm = sol.q
        checks = {"ik": CheckResult.ok(sol.position_error, f"IK solved ({detail})"),
                  "joint_limits": static["joint_limits"], "joint_rate": self.rate.update(sol.q, stamp), **static}
        return Verdict.from_checks(checks, sol.q, stamp)

    def _pose_checks(self, q: np.ndarray) -> dict[str, CheckResult]:
        """The checks of one configuration that do not depend on the last one: limits, then the static ones."""
        checks = {"joint_limits": self._limits(q)}
        self._static(q, checks)
        return checks

    def clamp_to_feasible(self, q_cmd, q_current, dt: float | None = None) -> FilterResult:
        """Filter policy for an infeasible command: clamp, else hold.

        1. Clip ``q_cmd`` into the margin-tightened joint limits.
        2. With ``dt`` (s), shrink the step from ``q_current`` uniformly (direction kept) so no
           joint exceeds ``velocity_scale`` times its velocity limit.
        3. If the result passes the static checks (warnings allowed) send it, otherwise hold
           ``q_current`` (also when ``q_current`` itself is infeasible: holding never moves the
           arm deeper into a violation).

        Does not touch the rate window or the IK warm start.
        """
        q_cmd = validate_q(q_cmd, self.robot.nq, name="q_cmd")
        q_current = validate_q(q_current, self.robot.nq, name="q_current")
        q = np.clip(q_cmd, self.lower, self.upper)
        if dt is not None:
            dt = float(dt)
            if not (math.isfinite(dt) and dt > 0.0):
                raise ValueError(f"dt must be finite and > 0, got {dt}")
            step = q - q_current
            max_step = self.rate.limit * dt
            largest = float(np.max(np.abs(step) / max_step))
            if largest > 1.0:
                q = q_current + step / largest
        verdict = self.evaluate(q)
        if verdict.feasible:
            action = "pass" if np.array_equal(q, q_cmd) else "clamped"
            return FilterResult(q, action, verdict)
        return FilterResult(q_current.copy(), "hold", verdict)

    def skeleton_points(self, q) -> np.ndarray:
        """Frame origins (N, 3) from the base to the TCP, for drawing the arm."""
        return self.robot.skeleton_points(q)
