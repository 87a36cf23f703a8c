"""The arm command filter: what the ``feasibility_checker`` node forwards for each joint command.

Pure (no rclpy); the node parses messages and publishes, :class:`CommandFilter` decides. For one
command ``q`` (7 arm joints, optional fingers) against the measured configuration, at ``now`` on
the node's own clock (never the sender's stamps):

1. **Validation.** Finger positions outside ``[0, MAX_FINGER]`` reject the command (nothing sent).
2. **Checks.** The checker's verdict (limits, joint-rate window rated on the node clock,
   singularity, self and scene collision) and the step from the measured configuration
   (``max_command_step``).
3. **Policy.** A feasible command within the step passes. Anything else: ``clamp`` (into the
   tightened limits and the rate bound over ``clamp_dt``; hold when that is infeasible too) or
   ``hold`` (the measured configuration, projected into the tightened limits unless beyond the URDF
   limits). A hold target that is itself infeasible sends nothing: the arm keeps its last
   forwarded target, which was feasible when it was sent.
4. **Motion limits over time** (:class:`MotionLimiter`). Whatever moves the arm is limited against
   the previous output and the node clock: joint velocity at most ``velocity_scale`` × the URDF
   limit, acceleration at most ``acceleration_scale`` × the robot's limit, a lead over the measured
   configuration of at most one ``max_dt`` of motion, never past the target (a stop may brake harder
   than the acceleration limit, nothing moves faster); after a pause longer than ``max_dt`` the
   reference restarts from the measured configuration at rest. The limited command is checked
   again; ``time_from_start`` is never shorter than the move takes at the limited velocity (a
   negative one is never forwarded).

So an adversarial stream (steps just under ``max_command_step``, stamps that jump, go backwards or
stand still) cannot drive a joint above its URDF velocity limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from morobot.feasibility.checker import FeasibilityChecker
from morobot.feasibility.verdict import Level, Verdict

MAX_FINGER = 0.04  # m, opening of one finger


@dataclass(frozen=True)
class FilterSettings:
    """The filter's settings (node parameters of the same names).

    Attributes:
        policy: ``"clamp"`` or ``"hold"`` for infeasible commands.
        clamp_dt: a clamped command moves at most ``velocity_scale`` × URDF velocity × this (s).
        max_command_step: largest joint distance (rad) of a command from the measured
            configuration (0 = no check).
        acceleration_scale: allowed joint acceleration as a fraction of the robot's limits.
        max_dt: the longest interval (s) one command's motion is computed over; a longer gap
            restarts the motion reference from the measured configuration at rest.
    """

    policy: str = "clamp"
    clamp_dt: float = 0.02
    max_command_step: float = 0.3
    acceleration_scale: float = 0.5
    max_dt: float = 0.1

    def __post_init__(self) -> None:
        if self.policy not in ("clamp", "hold"):
            raise ValueError(f"policy must be clamp or hold, got {self.policy!r}")
        for name in ("clamp_dt", "max_dt", "acceleration_scale"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"{name} must be finite and > 0, got {v!r}")
        if not (math.isfinite(self.max_command_step) and self.max_command_step >= 0.0):
            raise ValueError(f"max_command_step must be finite and >= 0, got {self.max_command_step!r}")


@dataclass
class FilterOutcome:
    """What the filter decided for one command.

    Attributes:
        action: ``pass`` (the command as it came), ``limited`` (a feasible command approached at the
            velocity, acceleration and lead limits: the target sent is on the way to it),
            ``clamped``, ``hold``, ``none`` (nothing sent) or ``rejected``.
        q: arm joint targets to send, or None.
        velocities: joint velocities to send with them (or None: none given).
        time_from_start: the earliest time (s) the target may be reached.
        level: the feedback level of the command as it came (None when rejected).
        reason: one line.
        verdict: the checker's verdict of the command as it came (None when rejected).
        step: largest joint distance of the command from the measured configuration (rad).
        step_ok: whether ``step`` is within ``max_command_step``.
        limited: the target sent is short of the command's (or clamped) target because of the
            velocity, acceleration or lead limits; the arm gets there over the next commands.
    """

    action: str
    q: Optional[np.ndarray]
    velocities: Optional[np.ndarray]
    time_from_start: float
    level: Optional[Level]
    reason: str
    verdict: Optional[Verdict] = None
    step: float = 0.0
    step_ok: bool = True
    limited: bool = False

    @property
    def sends(self) -> bool:
        return self.q is not None


class MotionLimiter:
    """Velocity-, acceleration- and lead-limited joint targets on the caller's clock.

    Args:
        velocity_limit: allowed joint velocities (rad/s), shape (n,).
        acceleration_limit: allowed joint accelerations (rad/s²), shape (n,).
        max_dt: longest interval one target's motion is computed over (s).
    """

    def __init__(self, velocity_limit: np.ndarray, acceleration_limit: np.ndarray, max_dt: float) -> None:
        self.v = np.asarray(velocity_limit, dtype=float)
        self.a = np.asarray(acceleration_limit, dtype=float)
        if self.v.shape != self.a.shape or np.any(self.v <= 0) or np.any(self.a <= 0):
            raise ValueError("velocity and acceleration limits must be positive and of one shape")
        self.max_dt = float(max_dt)
        self.reset()

    def reset(self) -> None:
        """Forget the reference: the next target starts from the measured configuration at rest."""
        self.q: Optional[np.ndarray] = None
        self.qd = np.zeros_like(self.v)
        self.t: Optional[float] = None

    def hold(self, q: np.ndarray, now: float) -> None:
        """The arm was told to stop at ``q``: the reference rests there."""
        self.q, self.qd, self.t = np.array(q, dtype=float), np.zeros_like(self.v), float(now)

    def limit(self, target: np.ndarray, measured: np.ndarray, now: float,
              box: Optional[tuple[np.ndarray, np.ndarray]] = None) -> tuple[np.ndarray, np.ndarray, float]:
        """The next target towards ``target`` that respects the limits at ``now`` (and lies in ``box``,
        a ``(lower, upper)`` pair, when given).

        Returns:
            ``(q, qd, duration)``: the limited target, the reference velocity reaching it and the
            shortest time (s) over which it may be reached.
        """
        target = np.asarray(target, dtype=float)
        measured = np.asarray(measured, dtype=float)
        dt = None if self.t is None else now - self.t
        if dt is None or dt > self.max_dt or dt < 0.0:
            # first command, a pause, or a clock that went back: restart from the arm at rest
            self.q, self.qd, dt = measured.copy(), np.zeros_like(self.v), self.max_dt
        if dt > 0.0:
            v_want = np.clip((target - self.q) / dt, -self.v, self.v)
            v = np.clip(v_want, self.qd - self.a * dt, self.qd + self.a * dt)
            # Never past the target or away from it: there the commanded move is taken as it is (a
            # harder stop than the acceleration limit, never a faster motion).
            overshoot = (v * v_want < 0.0) | (np.abs(v) > np.abs(v_want))
            q = self.q + np.where(overshoot, v_want, v) * dt
        else:
            q = self.q.copy()  # no time has passed: no further motion
        lead = self.v * self.max_dt
        q = np.clip(q, measured - lead, measured + lead)
        if box is not None:
            q = np.clip(q, box[0], box[1])
        v = np.clip((q - self.q) / dt, -self.v, self.v) if dt > 0.0 else self.qd.copy()
        duration = float(np.max(np.abs(q - self.q) / self.v))
        self.q, self.qd, self.t = q, v, float(now)
        return q.copy(), v.copy(), duration


class CommandFilter:
    """Decides what leaves the filter for each command (see the module docstring).

    Args:
        checker: the feasibility checker (its rate window and scene are used and updated).
        settings: filter settings.
        acceleration_limit: the robot's joint acceleration limits (rad/s²), scaled by
            ``settings.acceleration_scale``.
    """

    def __init__(self, checker: FeasibilityChecker, settings: FilterSettings,
                 acceleration_limit: np.ndarray) -> None:
        self.checker = checker
        self.settings = settings
        self.limiter = MotionLimiter(checker.rate.limit, settings.acceleration_scale * np.asarray(acceleration_limit),
                                     settings.max_dt)

    def _validate_fingers(self, fingers: dict) -> Optional[str]:
        bad = {n: v for n, v in fingers.items() if not 0.0 <= v <= MAX_FINGER}
        if bad:
            return f"malformed command: finger positions {bad} outside [0, {MAX_FINGER}] m"
        return None

    def filter(self, q: np.ndarray, qd: Optional[np.ndarray], fingers: dict, q_measured: np.ndarray,
               now: float, time_from_start: float = 0.0) -> FilterOutcome:
        """Filter one command received at ``now`` (node clock) with the arm measured at ``q_measured``."""
        why = self._validate_fingers(fingers)
        if why:
            return FilterOutcome("rejected", None, None, 0.0, None, why)
        checker, s = self.checker, self.settings
        verdict = checker.check_joint_command(q, now)
        step = float(np.max(np.abs(q - q_measured)))
        step_ok = s.max_command_step <= 0.0 or step <= s.max_command_step
        reasons = [] if verdict.feasible else [verdict.reason]
        if not step_ok:
            reasons.append(f"command {step:.3f} rad from the measured configuration "
                           f"(max_command_step {s.max_command_step})")
        level = verdict.level if step_ok else Level.INFEASIBLE
        detail = ""
        # the measured configuration projected into the tightened limits (never from beyond the URDF limits)
        robot = checker.robot
        inside = bool(np.all(q_measured >= robot.lower) and np.all(q_measured <= robot.upper))
        base = np.clip(q_measured, checker.lower, checker.upper) if inside else np.array(q_measured, dtype=float)
        out, action, velocities = None, "hold", None
        if verdict.feasible and step_ok:
            out, action = np.asarray(q, dtype=float), "pass"
            if qd is not None:
                velocities = np.clip(qd, -checker.rate.limit, checker.rate.limit)
        elif s.policy == "clamp":
            result = checker.clamp_to_feasible(q, base, s.clamp_dt)
            if result.action != "hold":
                out, action = result.q, "clamped"
            else:
                detail = f"clamped command infeasible too ({result.verdict.reason})"
        duration, limited_motion = 0.0, False
        if out is not None:
            box = None
            if action == "clamped":  # a clamped target stays within the clamp bound of the arm
                bound = checker.rate.limit * s.clamp_dt
                box = (base - bound, base + bound)
            limited, v_ref, duration = self.limiter.limit(out, q_measured, now, box)
            if not np.allclose(limited, out, rtol=0.0, atol=1e-12):
                if checker.evaluate(limited).feasible:
                    out, limited_motion = limited, True
                    action = "limited" if action == "pass" else action
                    velocities = v_ref if velocities is not None else None
                else:
                    out, action, detail = None, "hold", "rate-limited command infeasible"
        if out is None:
            held = checker.evaluate(base)
            if held.feasible:
                out, velocities = base, (None if qd is None else np.zeros(len(base)))
                self.limiter.hold(base, now)
                duration = float(np.max(np.abs(base - q_measured) / self.limiter.v))
            else:
                action = "none"
                detail = (f"measured configuration infeasible ({held.reason}): nothing sent, the arm keeps "
                          "its last forwarded target")
                self.limiter.reset()
        tfs = max(duration, float(time_from_start) if math.isfinite(time_from_start) and time_from_start > 0 else 0.0)
        reason = "; ".join(reasons) if reasons else verdict.reason
        if detail:
            reason = f"{reason} [{detail}]"
        return FilterOutcome(action, out, velocities, tfs, level, reason, verdict, step, step_ok, limited_motion)
