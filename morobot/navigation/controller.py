"""The navigation control core: odometry, map, goal and clock in; command, plan and status out.

Pure (no rclpy). The ``mppi_planner`` node and the lock-step evaluation
(:mod:`morobot.evaluation.nav`) both drive one :class:`NavigationController`, so every rule below
exists once:

* **Input checks.** Odometry and maps carry the time they arrived on the caller's clock. An input
  stamped more than ``max_stamp_lead`` ahead of its arrival is rejected (a stamp from the future
  would otherwise keep it "fresh" for ever). An input's age is the time since it arrived plus how
  old its stamp already was on arrival, so neither a sender's clock nor a republished old map can
  make stale data look fresh. Odometry older than ``max_odom_age`` or a map older than
  ``max_map_age`` stops the robot. Non-finite odometry is refused by the caller's conversion;
  non-finite (±Inf) map heights are obstacles (:func:`sanitize_heights`), never free ground.
* **Unknown surroundings.** When less than ``min_known_fraction`` of the map within
  ``known_radius`` of the robot is known (the sensor went quiet and the cells aged out, or the map
  is empty), the robot stops: it cannot judge the ground it stands on.
* **Goal, blocked motion, planning, risk stop.** Goal reached within ``goal_tolerance`` stops and
  forgets the goal; the blocked-motion monitor marks obstacles where commanded motion made no
  progress (:mod:`morobot.planning.blocked`); MPPI plans on the marked map; a best plan that fails
  :func:`morobot.planning.cost.should_stop` (or is not finite) stops the robot and resets the warm
  start.
* **Release.** :meth:`NavigationController.release` checks the input ages again at the moment the
  command leaves (a slow cycle must not publish motion computed from data that went stale while it
  ran) and clamps the command into ``speed_limit``; every command the caller sends goes through it.

Where to change a rule: this file. Where to add a planner parameter: a field of
:class:`morobot.navigation.params.PlannerParams` (the node, the YAML check and the evaluation all
read it from there).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from morobot.fdm.history import JOINT_FEATURES, extra_columns
from morobot.freshness import input_age, stamp_lead_error
from morobot.navigation import factory
from morobot.planning.cost import should_stop
from morobot.planning.interface import HeightMap, NavState
from morobot.planning.map_risk import MapRiskOverlay

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels

#: Parameters whose change rebuilds the kinematic (geometric-risk) model.
_GEOMETRY = ("footprint_radius", "step_limit", "slope_limit_deg", "unknown_risk")
#: How far (m) a +Inf cell is put above the highest finite cell of the map, and a -Inf cell below the
#: lowest: an obstacle or a drop of a box's height, well past any step the robot climbs, without the
#: slope of an absurdly tall wall spreading risk far around it.
WALL_HEIGHT = 1.0


@dataclass
class Odometry:
    """One odometry sample as the core needs it.

    Attributes:
        pose: ``(x, y, yaw)`` in odom.
        twist: measured body twist ``(vx, vy, wz)``.
        z: base height in odom (m).
        gravity_b: unit gravity direction in the base frame.
        stamp: the sample's own time stamp (s).
    """

    pose: np.ndarray
    twist: np.ndarray
    z: float
    gravity_b: np.ndarray
    stamp: float
    linear: Optional[np.ndarray] = None  # full body linear velocity (vx, vy, vz): the legged FDM's input
    angular: Optional[np.ndarray] = None  # full body angular velocity (wx, wy, wz)


@dataclass
class Joints:
    """One joint-state sample of the 12 legs (:data:`morobot.robots.ANYMAL_JOINTS` order)."""

    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray
    stamp: float


@dataclass
class Decision:
    """The outcome of one control cycle.

    Attributes:
        command: ``[3]`` body twist to send (zeros when stopping).
        code: what happened: ``waiting`` (no goal; send nothing), ``fault``, ``no_odom``,
            ``stale_odom``, ``no_joints``, ``stale_joints``, ``no_targets``, ``stale_targets``, ``no_map``,
            ``stale_map``, ``unknown_map``, ``goal_reached``,
            ``planning_failed``, ``no_plan``, ``risk_stop``, ``tracking``.
        level: ``OK``/``WARN``/``ERROR`` (diagnostic levels).
        message: one line saying why.
        values: figures for diagnostics.
        plan: the MPPI result when one was computed.
        marked: an obstacle the blocked-motion monitor marked in this cycle.
    """

    command: np.ndarray
    code: str
    level: int
    message: str
    values: dict = field(default_factory=dict)
    plan: Any = None
    marked: Any = None

    @property
    def sends(self) -> bool:
        """Whether a command is sent at all (not while waiting for a goal)."""
        return self.code != "waiting"


def limit_change(command: np.ndarray, previous: np.ndarray, dt: float, accel: Sequence[float]) -> np.ndarray:
    """``command`` moved towards from ``previous`` by at most ``accel * dt`` on each axis (a zero entry of
    ``accel`` leaves that axis unlimited).

    Learned locomotion policies are trained on commands that change every few seconds; a planner's
    command that swings from one bound to the other within a few tenths of a second (e.g. the yaw rate
    from +1 to -1 rad/s while walking at 1 m/s) can make them fall on level ground
    (docs/navigation_eval.md, "Session 17").
    """
    acc = np.asarray(accel, dtype=float)
    cmd = np.asarray(command, dtype=float)
    prev = np.asarray(previous, dtype=float)
    step = acc * max(float(dt), 0.0)
    return np.where(acc > 0.0, prev + np.clip(cmd - prev, -step, step), cmd)  # unlimited axes: bit for bit


def sanitize_heights(hmap: HeightMap) -> tuple[HeightMap, int]:
    """A map whose +Inf cells are walls ``WALL_HEIGHT`` above its highest finite cell and whose -Inf
    cells are drops ``WALL_HEIGHT`` below its lowest.

    NaN stays NaN (unknown). A height of ±Inf is no measurement of ground a robot could stand on, so
    it becomes an obstacle rather than anything the planner might treat as free.

    Returns:
        ``(map, number of cells changed)``; the map is the same object when nothing changed.
    """
    h = hmap.heights
    inf = torch.isinf(h)
    n = int(inf.sum())
    if n == 0:
        return hmap, 0
    finite = h[torch.isfinite(h)]
    top, bottom = (float(finite.max()), float(finite.min())) if finite.numel() else (0.0, 0.0)
    heights = torch.where(h == math.inf, torch.full_like(h, top + WALL_HEIGHT), h)
    heights = torch.where(h == -math.inf, torch.full_like(h, bottom - WALL_HEIGHT), heights)
    return HeightMap(heights, hmap.origin, hmap.resolution, hmap.stamp), n


def known_fraction(hmap: HeightMap, xy: np.ndarray, radius: float) -> float:
    """Fraction of the map's cells within ``radius`` of ``xy`` that are known (finite); cells of the
    disc outside the map count as unknown."""
    xs, ys = hmap.cell_centres()
    res = float(hmap.resolution)
    disc_cells = max(1.0, math.pi * radius ** 2 / res ** 2)
    rows = np.flatnonzero(np.abs(xs - xy[0]) <= radius)
    cols = np.flatnonzero(np.abs(ys - xy[1]) <= radius)
    if not len(rows) or not len(cols):
        return 0.0
    inside = (xs[rows, None] - xy[0]) ** 2 + (ys[None, cols] - xy[1]) ** 2 <= radius ** 2
    block = hmap.heights[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].numpy()
    known = int(np.count_nonzero(inside & np.isfinite(block)))
    return min(1.0, known / disc_cells)


class NavigationController:
    """Goal-directed MPPI with the safety rules of the module docstring.

    Args:
        params: the full planner parameter dict (:class:`~morobot.navigation.params.PlannerParams`
            resolved, or a node's validated values).
        dynamics: a prebuilt dynamics model and its proprioceptive history (``(model, history)``);
            built from ``params`` when None.
        device: torch device of the planner (default: the ``device`` parameter).

    Raises:
        ValueError: a CUDA device on a machine without one.
    """

    def __init__(self, params: Mapping[str, Any], dynamics: Optional[tuple[Any, Any]] = None,
                 device: Optional[str] = None) -> None:
        self.p = dict(params)
        self.device = device or str(self.p.get("device", "cpu"))
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r}: this machine has no CUDA GPU (use device cpu)")
        self.dynamics, self.history = (dynamics if dynamics is not None
                                       else factory.make_dynamics(self.p, self.device))
        self.mppi = factory.make_planner(self.p, self.dynamics, device=self.device)
        self.blocked = factory.make_blocked_monitor(self.p)
        self.goal: Optional[np.ndarray] = None
        self.state = "idle"
        self.odom: Optional[Odometry] = None
        self.hmap: Optional[HeightMap] = None
        self._odom_arrival = self._map_arrival = self._odom_stamp = self._map_stamp = -math.inf
        self.joints: Optional[Joints] = None  # the legged FDM's joint input (history features "legged")
        self._joints_arrival = -math.inf
        self.targets: Optional[tuple[np.ndarray, np.ndarray]] = None  # the last two joint targets, newest first
        self._targets_arrival = -math.inf
        self.fault: Optional[str] = None
        self.last_command = np.zeros(3)
        self._last_release = -math.inf  # when the last command left (node clock)

    # ------------------------------------------------------------------ configuration
    def reconfigure(self, values: Mapping[str, Any]) -> None:
        """Apply accepted run-time parameter changes (dynamics, planner and monitor as needed)."""
        values = dict(values)
        old, self.p = self.p, values
        if any(values[k] != old[k] for k in _GEOMETRY):
            if values["dynamics"] == "kinematic":
                self.dynamics = factory.make_kinematic_model(values)
            elif isinstance(self.dynamics, MapRiskOverlay):
                self.dynamics = MapRiskOverlay(self.dynamics.inner, factory.make_kinematic_model(values),
                                               self.dynamics.cumulative, self.dynamics.commanded,
                                               self.dynamics.learned_poses)
        self.mppi = factory.make_planner(values, self.dynamics, device=self.device)
        if any(values[k] != old[k] for k in factory.BLOCKED_PARAMS):
            kept = [] if self.blocked is None else self.blocked.obstacles
            self.blocked = factory.make_blocked_monitor(values)
            if self.blocked is not None:
                self.blocked.obstacles = list(kept)

    # ------------------------------------------------------------------ inputs
    def _lead(self, what: str, stamp: float, arrival: float) -> Optional[str]:
        return stamp_lead_error(what, stamp, arrival, self.p["max_stamp_lead"])

    def odometry(self, odom: Odometry, arrival: float) -> Optional[str]:
        """Take one odometry sample that arrived at ``arrival`` (caller's clock).

        Returns:
            None, or why the sample was rejected (one line; the robot stops until good odometry
            arrives, as for any invalid input).
        """
        why = self._lead("odometry", odom.stamp, arrival)
        if why is not None:
            self.fault = why
            return why
        if self.fault and self.fault.startswith(("invalid odometry", "odometry stamped")):
            self.fault = None
        self.odom = odom
        self._odom_arrival, self._odom_stamp = float(arrival), float(odom.stamp)
        if self.history is not None:
            extra = self._joint_columns(odom, arrival)
            if self.needs_joints and extra is None:
                return None  # no fresh joint state: input_fault stops the robot until one comes
            try:
                self.history.push(odom.stamp, self.last_command, odom.twist, odom.gravity_b, extra)
            except ValueError:
                self.history.reset()  # time went backwards (a restarted simulator): start afresh
                self.history.push(odom.stamp, self.last_command, odom.twist, odom.gravity_b, extra)
        return None

    @property
    def needs_joints(self) -> bool:
        """Whether the dynamics model's history takes the legs' joint states (a ``legged`` FDM)."""
        return self.history is not None and getattr(self.history, "features", "base") in JOINT_FEATURES

    @property
    def needs_targets(self) -> bool:
        """Whether it also takes the locomotion controller's joint targets (a ``legged_actions`` FDM)."""
        return self.history is not None and getattr(self.history, "features", "base") == "legged_actions"

    def joint_state(self, joints: Joints, arrival: float) -> None:
        """A joint-state sample (the legged FDM's input), received at ``arrival`` (caller's clock)."""
        self.joints = joints
        self._joints_arrival = float(arrival)

    def joint_targets(self, positions: np.ndarray, arrival: float) -> None:
        """The locomotion controller's newest joint position targets (one per control step), received at
        ``arrival``; the one before is kept as the previous action."""
        positions = np.asarray(positions, dtype=float)
        self.targets = (positions, positions if self.targets is None else self.targets[0])
        self._targets_arrival = float(arrival)

    def _fresh(self, arrival: float, now: float) -> bool:
        return now - arrival <= self.p["max_odom_age"]

    def _joint_columns(self, odom: Odometry, now: float) -> Optional[np.ndarray]:
        if not self.needs_joints:
            return None
        j = self.joints
        if j is None or not self._fresh(self._joints_arrival, now) or odom.linear is None:
            return None
        if self.needs_targets and (self.targets is None or not self._fresh(self._targets_arrival, now)):
            return None
        return extra_columns(self.history.features, odom.linear, odom.angular, j.positions, j.velocities,
                             j.efforts, self.targets)

    def invalid_odometry(self, why: str) -> None:
        """An odometry message that could not be read: the robot stops until a valid one comes."""
        self.fault = f"invalid odometry: {why}"

    def map(self, hmap: HeightMap, arrival: float) -> Optional[str]:
        """Take one elevation map that arrived at ``arrival``.

        Returns:
            None, or one line saying what was wrong (a future stamp: rejected; ±Inf cells: made
            obstacles, the map is used).
        """
        why = self._lead("elevation map", hmap.stamp, arrival)
        if why is not None:
            return why
        hmap, n_inf = sanitize_heights(hmap)
        self.hmap = hmap
        self._map_arrival, self._map_stamp = float(arrival), float(hmap.stamp)
        if n_inf:
            return f"elevation map has {n_inf} non-finite (±Inf) cells: treated as obstacles"
        return None

    def set_goal(self, goal: np.ndarray) -> None:
        """A new goal ``(x, y, yaw)`` in odom; the warm start is dropped."""
        self.goal = np.asarray(goal, dtype=float)
        self.state = "active"
        self.mppi.reset()

    def cancel(self) -> None:
        """Forget the goal (the next cycles wait; the caller sends one zero command)."""
        self.goal = None
        self.state = "idle"
        self.mppi.reset()

    # ------------------------------------------------------------------ ages
    def odom_age(self, now: float) -> float:
        return input_age(now, self._odom_arrival, self._odom_stamp)

    def map_age(self, now: float) -> float:
        return input_age(now, self._map_arrival, self._map_stamp)

    def input_fault(self, now: float) -> Optional[tuple[str, str, dict]]:
        """``(code, message, values)`` when an input is missing, invalid or stale at ``now``."""
        if self.fault:
            return "fault", self.fault, {}
        if self.odom is None:
            return "no_odom", "no odometry received", {}
        age = self.odom_age(now)
        if age > self.p["max_odom_age"]:
            return "stale_odom", f"stale odometry ({age:.2f}s old)", {"odom_age": age}
        legged_inputs = (
            (self.needs_joints, self.joints, self._joints_arrival, "joints", "joint state", "the joints"),
            (self.needs_targets, self.targets, self._targets_arrival, "targets", "joint targets", "the last actions"))
        for needed, value, arrival, code, what, why in legged_inputs:
            if not needed:
                continue
            if value is None:
                return f"no_{code}", f"no {what} received (the legged FDM needs {why})", {}
            age = now - arrival
            if age > self.p["max_odom_age"]:
                return f"stale_{code}", f"stale {what} ({age:.2f}s old)", {f"{code}_age": age}
        if self.hmap is None:
            return "no_map", "no elevation map received", {}
        age = self.map_age(now)
        if age > self.p["max_map_age"]:
            return "stale_map", f"stale elevation map ({age:.2f}s old)", {"map_age": age}
        return None

    # ------------------------------------------------------------------ control cycle
    def _stop(self, code: str, level: int, message: str, **values) -> Decision:
        return Decision(np.zeros(3), code, level, message, values)

    def cycle(self, now: float) -> Decision:
        """One control cycle at ``now`` (caller's clock). Send the result through :meth:`release`."""
        if self.goal is None:
            return Decision(np.zeros(3), "waiting", OK, f"{self.state}: waiting for a goal")
        bad = self.input_fault(now)
        if bad is not None:
            code, message, values = bad
            return self._stop(code, ERROR, message, **values)
        odom = self.odom
        dist = math.hypot(self.goal[0] - odom.pose[0], self.goal[1] - odom.pose[1])
        if dist <= self.p["goal_tolerance"]:
            self.goal = None
            self.state = "goal reached"
            self.mppi.reset()
            return self._stop("goal_reached", OK, "goal reached", distance=dist)
        known = known_fraction(self.hmap, odom.pose[:2], self.p["known_radius"])
        if known < self.p["min_known_fraction"]:
            return self._stop("unknown_map", ERROR,
                              f"map around the robot unknown ({100 * known:.0f} % of {self.p['known_radius']} m "
                              f"known < min_known_fraction {self.p['min_known_fraction']})", known=known)
        state = NavState(pose=np.asarray(odom.pose, dtype=float), twist=np.asarray(odom.twist, dtype=float),
                         z=float(odom.z), gravity_b=odom.gravity_b,
                         history=self.history.array() if self.history is not None and len(self.history) else None,
                         stamp=odom.stamp)
        t0 = time.perf_counter()
        hmap, marked = self.hmap, None
        if self.blocked is not None:
            marked = self.blocked.update(state.stamp, state.pose, state.twist, self.last_command, state.z)
            if marked is not None:
                self.mppi.reset(reseed=False)  # do not warm-start into the blocked direction
            hmap = self.blocked.apply(self.hmap, state.stamp)
        try:
            plan = self.mppi.plan(state, hmap, self.goal)
        except ValueError as exc:
            d = self._stop("planning_failed", ERROR, f"planning failed: {exc}")
            d.marked = marked
            return d
        cycle_ms = 1e3 * (time.perf_counter() - t0)
        stop, peak = should_stop(plan.risk, plan.standstill_risk, self.p["dt"], self.p["risk_stop_window"],
                                 self.p["risk_threshold"], factory.risk_stop_margin(self.p), plan.allowed_risk)
        if not np.all(np.isfinite(plan.commands[0])) or not math.isfinite(plan.cost):
            d = self._stop("no_plan", ERROR, "planner produced no finite plan", cycle_ms=cycle_ms)
        elif stop:
            self.mppi.reset(reseed=False)  # next cycle samples around standing still, not the rejected plan
            why = ", and riskier than standing still" if self.p["risk_relative"] else ""
            d = self._stop("risk_stop", WARN,
                           f"best plan too risky (peak risk {peak:.2f} > {self.p['risk_threshold']}{why})",
                           risk=peak, distance=dist, cycle_ms=cycle_ms)
        else:
            cmd = np.asarray(plan.commands[0], dtype=float)
            d = Decision(cmd, "tracking", OK, "tracking plan",
                         dict(distance=dist, risk=peak, cost=plan.cost, cycle_ms=cycle_ms,
                              vx=cmd[0], vy=cmd[1], wz=cmd[2]))
        d.plan, d.marked = plan, marked
        return d

    def release(self, decision: Decision, now: float) -> Decision:
        """The command as it may leave at ``now``: inputs checked again, clamped into ``speed_limit``,
        its change since the last command limited by ``accel_limit``.

        A moving command whose inputs went stale while the cycle ran becomes a stop (code and
        message of the stale input); a stop is never delayed by the acceleration limit. Records the
        command as the last one sent (history, blocked monitor).
        """
        cmd = np.asarray(decision.command, dtype=float)
        if np.any(cmd != 0.0):
            bad = self.input_fault(now)
            if bad is not None:
                code, message, values = bad
                decision = Decision(np.zeros(3), code, ERROR, f"{message} at release", values, decision.plan,
                                    decision.marked)
                cmd = decision.command
            else:
                lim = np.asarray(self.p["speed_limit"], dtype=float)
                period = 1.0 / float(self.p["control_rate"])
                gap = now - self._last_release
                # within two control periods the robot executes the last command; after a longer gap it
                # has stopped by its own command timeout, or soon will, and the ramp starts at zero
                previous, dt = (self.last_command, max(gap, 0.0)) if gap <= 2.0 * period else (np.zeros(3), period)
                cmd = limit_change(np.clip(cmd, -lim, lim), previous, dt, self.p["accel_limit"])
                decision.command = cmd
        if decision.sends:
            self.last_command = np.array(cmd, dtype=float)
            self._last_release = now
        return decision

    def overran(self, cycle_s: float) -> bool:
        """Whether a cycle that took ``cycle_s`` seconds missed the control rate."""
        return cycle_s > 1.0 / self.p["control_rate"]
