"""Results of a feasibility check: severity levels, per-check results and the overall verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Level(str, Enum):
    """Severity of a check result; ``warning`` still counts as feasible."""

    OK = "ok"
    WARNING = "warning"
    INFEASIBLE = "infeasible"

    @property
    def rank(self) -> int:
        """0 for ok, 1 for warning, 2 for infeasible."""
        return _RANK[self]


_RANK = {Level.OK: 0, Level.WARNING: 1, Level.INFEASIBLE: 2}


def worst(levels) -> Level:
    """The most severe of ``levels`` (``Level.OK`` for none)."""
    result, rank = Level.OK, 0
    for level in levels:
        if _RANK[level] > rank:
            result, rank = level, _RANK[level]
    return result


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    Attributes:
        passed: False only when the check makes the command infeasible.
        value: the measured quantity (unit depends on the check, see docs/feasibility.md).
        reason: short human-readable explanation.
        level: ok, warning (passed but close to a limit) or infeasible.
    """

    passed: bool
    value: float
    reason: str
    level: Level = Level.OK

    @staticmethod
    def ok(value: float, reason: str = "ok") -> "CheckResult":
        """A passing result."""
        return CheckResult(True, float(value), reason, Level.OK)

    @staticmethod
    def warning(value: float, reason: str) -> "CheckResult":
        """A passing result that deserves the operator's attention."""
        return CheckResult(True, float(value), reason, Level.WARNING)

    @staticmethod
    def fail(value: float, reason: str) -> "CheckResult":
        """A failing result: the command is infeasible."""
        return CheckResult(False, float(value), reason, Level.INFEASIBLE)


@dataclass(frozen=True)
class Verdict:
    """Overall result of one per-frame check.

    Attributes:
        feasible: True when no check failed (warnings allowed).
        level: the worst level among the evaluated checks.
        checks: evaluated checks in evaluation order, name -> result. With early exit, the checks
            after the first failure are absent.
        reason: human-readable summary (the first failure, else the warnings, else "ok").
        q: the joint configuration that was checked (the IK solution in pose mode; the last IK
            iterate when IK failed), shape (7,), or None when no configuration exists.
        stamp: the frame's time stamp (s).
        failed: names of the failed checks.
    """

    feasible: bool
    level: Level
    checks: dict[str, CheckResult]
    reason: str
    q: np.ndarray | None
    stamp: float
    failed: tuple[str, ...] = field(default=())

    @staticmethod
    def from_checks(checks: dict[str, CheckResult], q: np.ndarray | None, stamp: float) -> "Verdict":
        """Combine per-check results into a verdict."""
        failed = tuple(name for name, r in checks.items() if not r.passed)
        level = worst(r.level for r in checks.values())
        if failed:
            reason = "; ".join(checks[name].reason for name in failed)
        else:
            warnings = [r.reason for r in checks.values() if r.level is Level.WARNING]
            reason = "; ".join(warnings) if warnings else "ok"
        return Verdict(not failed, level, checks, reason, q, stamp, failed)
