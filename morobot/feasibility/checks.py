"""Kinematic checks: joint limits, joint-rate window, singularity (manipulability and wrist)."""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from morobot.feasibility import dls_kernel
from morobot.feasibility.model import ArmModel
from morobot.feasibility.verdict import CheckResult, Level


def check_joint_limits(q: np.ndarray, lower: np.ndarray, upper: np.ndarray, margin: float,
                       names: tuple[str, ...] = ()) -> CheckResult:
    """Fail when a joint is closer than ``margin`` to (or beyond) its limit (``names`` name the joints).

    ``value`` is the smallest distance to a limit (rad, negative when violated).
    """
    to_lower = q - (lower + margin)
    to_upper = (upper - margin) - q
    slack = np.minimum(to_lower, to_upper)
    j = int(slack.argmin())
    if slack[j] >= 0.0:
        return CheckResult(True, float(slack[j]) + margin, "ok", Level.OK)
    side = "lower" if to_lower[j] < to_upper[j] else "upper"
    limit = lower[j] if side == "lower" else upper[j]
    return CheckResult.fail(slack[j] + margin,
                            f"{names[j] if j < len(names) else f'joint {j + 1}'} at {q[j]:.3f} rad is within {margin:.3f} rad of its "
                            f"{side} limit {limit:.3f}")


class RateWindow:
    """Joint-rate check over a sliding window of frames.

    A frame violates when some joint moves faster than ``scale * velocity_limit`` since the previous
    frame. The check fails when at least ``min_violations`` of the last ``window`` rated frames
    violate and warns on fewer violations. Frames more than ``max_dt`` after the previous one are
    not rated and restart the window; so are frames whose stamp does not increase.

    Args:
        velocity_limit: URDF velocity limits (rad/s), shape (7,).
        scale: fraction of the limits allowed.
        window: number of rated frames remembered.
        min_violations: violations in the window that make the check fail.
        max_dt: largest rated frame spacing (s).
    """

    def __init__(self, velocity_limit: np.ndarray, scale: float = 0.5, window: int = 5,
                 min_violations: int = 4, max_dt: float = 0.5) -> None:
        self.scale = scale
        self.limit = scale * np.asarray(velocity_limit, float)
        self.min_violations = min_violations
        self.max_dt = max_dt
        self._flags: deque[bool] = deque(maxlen=window)
        self._last_q: np.ndarray | None = None
        self._last_stamp: float | None = None

    def reset(self) -> None:
        """Forget all frames."""
        self._flags.clear()
        self._last_q = None
        self._last_stamp = None

    def rate_ratio(self, q: np.ndarray, stamp: float) -> float | None:
        """Largest ``|dq/dt| / limit`` against the last frame, or None when the frame is not rated."""
        if self._last_q is None:
            return None
        dt = stamp - self._last_stamp
        if not 0.0 < dt <= self.max_dt:
            return None
        return float((np.abs(q - self._last_q) / self.limit).max()) / dt

    def update(self, q: np.ndarray, stamp: float) -> CheckResult:
        """Add a frame and evaluate the window. ``value``: violations in the window."""
        ratio = self.rate_ratio(q, stamp)
        gap = self._last_q is not None and ratio is None
        self._last_q = q.copy()
        self._last_stamp = stamp
        if ratio is None:
            self._flags.clear()
            reason = "frame not rated (gap or non-increasing stamp); window restarted" if gap else "first frame"
            return CheckResult.ok(0, reason)
        self._flags.append(ratio > 1.0)
        count = sum(self._flags)
        if count == 0:
            return CheckResult(True, 0.0, "ok", Level.OK)
        summary = (f"joint rate above {self.scale:.0%} of the URDF velocity limit in {count} of the "
                   f"last {len(self._flags)} frames (now {ratio:.2f}x the allowed rate)")
        if count >= self.min_violations:
            return CheckResult.fail(count, summary)
        return CheckResult.warning(count, summary)


class SingularityCheck:
    """Yoshikawa manipulability ``sqrt(det(J J^T))`` of the TCP Jacobian and wrist alignment.

    Infeasible below ``infeasible``; warning below ``warning`` or when the two wrist joints' axes
    (the robot's ``wrist_axes``: the Panda's joints 5 and 7, the UR5's wrist 1 and 3) are within
    ``wrist_angle`` of parallel. ``value`` is the manipulability.

    Args:
        robot: the kinematic model.
        infeasible: manipulability threshold for infeasible.
        warning: manipulability threshold for a warning.
        wrist_angle: wrist alignment warning angle (rad).
    """

    def __init__(self, robot: ArmModel, infeasible: float = 1e-5, warning: float = 5e-4,
                 wrist_angle: float = 0.1) -> None:
        self.robot = robot
        self.infeasible = infeasible
        self.warning = warning
        self.wrist_cos = math.cos(wrist_angle)
        self._wrist_names = " and ".join(robot.joint_names[i] for i in robot.wrist_axes)
        self._chain = robot.chain
        self._wrist = tuple(robot.wrist_axes) if robot.wrist_axes else (-1, -1)
        self.evaluate(robot.ready_pose)  # compiled (or loaded from numba's cache) now, not at the first frame

    def manipulability(self, q: np.ndarray) -> float:
        """Yoshikawa manipulability at ``q``."""
        return self.evaluate(q)[0]

    def evaluate(self, q: np.ndarray) -> tuple[float, float]:
        """Manipulability and wrist angle (rad, in [0, pi/2]) between the wrist axes (pi/2 without any)."""
        # compiled: the TCP Jacobian, its Gram determinant and the wrist axes in one call
        w, cos = dls_kernel.manipulability(*self._chain, q, *self._wrist)
        return w, math.acos(min(1.0, cos))

    def __call__(self, q: np.ndarray) -> CheckResult:
        w, wrist = self.evaluate(q)
        if w < self.infeasible:
            return CheckResult.fail(w, f"singular: manipulability {w:.2e} < {self.infeasible:.0e}")
        if w < self.warning:
            return CheckResult.warning(w, f"near singular: manipulability {w:.2e} < {self.warning:.0e}")
        if math.cos(wrist) > self.wrist_cos:
            return CheckResult.warning(w, f"wrist near singular: {self._wrist_names} axes {math.degrees(wrist):.1f} deg "
                                          "from parallel")
        return CheckResult.ok(w)
