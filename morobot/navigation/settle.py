"""When a dropped robot stands still: the rule that holds a benchmark's goal until the start is settled.

The legged simulator puts the robot down above the terrain in its default pose (:meth:`LeggedAnymalSim.reset`);
on rough ground the policy takes a moment to find its footing, and on some starts it keeps sliding or stepping.
A goal sent in that moment makes the run partly a test of the drop. :class:`SettleGate` says when to send it:
once the base has been still (speed and turn rate below :class:`SettleRule`'s thresholds) for ``hold`` seconds,
or at the latest ``limit`` seconds after the first state, so that a start that never settles still runs and is
marked as such. The lock-step benchmark (:class:`morobot.evaluation.nav.LockstepRunner`) and the ROS supervisor
(:func:`morobot.ros.supervisor.supervise`) both ask it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from morobot.params import param, specs


@dataclass(frozen=True)
class SettleRule:
    """How still the base must stand, and for how long, before the goal is sent."""

    speed: float = param(0.05, "the base counts as still below this linear speed (m/s, 3D, body frame)", 0.0, 5.0)
    rate: float = param(0.15, "and below this angular speed (rad/s, 3D)", 0.0, 10.0)
    hold: float = param(0.5, "still for this long (s) without a break", 0.0, 10.0)
    limit: float = param(2.0, "send the goal after this long (s) from the first state even if the robot never "
                         "stood still (the run records it as unsettled)", 0.0, 60.0)

    def validate(self) -> "SettleRule":
        """Return self; ValueError names a value that is not finite or out of its range."""
        for spec in specs(type(self)):
            reason = spec.check(getattr(self, spec.name))
            if reason:
                raise ValueError(f"settle rule: {reason}")
        if self.hold > self.limit:
            raise ValueError(f"settle hold ({self.hold} s) is longer than its limit ({self.limit} s)")
        return self


class SettleGate:
    """Feed it the base velocity at each state; it opens once (``update`` returns True from then on).

    Attributes:
        settled: None while closed; True when the robot stood still, False when the limit opened it.
        opened_at: the time it opened (None while closed).
        waited: seconds from the first state to the opening (None while closed).
    """

    def __init__(self, rule: SettleRule = SettleRule()):
        self.rule = rule.validate()
        self._t0: Optional[float] = None
        self._still_since: Optional[float] = None
        self.settled: Optional[bool] = None
        self.opened_at: Optional[float] = None

    @property
    def waited(self) -> Optional[float]:
        return None if self.opened_at is None else self.opened_at - self._t0

    def update(self, t: float, linear: Sequence[float], angular: Sequence[float]) -> bool:
        """One state at time ``t`` (s): base linear and angular velocity (3 each). True once open.

        A non-finite velocity is never still (and restarts the hold); a non-finite time is ignored.
        """
        if self.opened_at is not None:
            return True
        if not math.isfinite(t):
            return False
        if self._t0 is None:
            self._t0 = t
        v, w = np.asarray(linear, dtype=float), np.asarray(angular, dtype=float)
        still = bool(np.all(np.isfinite(v)) and np.all(np.isfinite(w)) and np.linalg.norm(v) < self.rule.speed
                     and np.linalg.norm(w) < self.rule.rate)
        if not still:
            self._still_since = None
        elif self._still_since is None:
            self._still_since = t
        if still and t - self._still_since >= self.rule.hold:
            self.settled, self.opened_at = True, t
        elif t - self._t0 >= self.rule.limit:
            self.settled, self.opened_at = False, t
        return self.opened_at is not None
