"""Operator feedback state: a debounced level and its haptic intensity."""

from __future__ import annotations

import math
from dataclasses import dataclass

from morobot.feasibility.verdict import Level


class Debouncer:
    """Debounces the feedback level so the overlay and haptics do not flicker.

    The shown level changes only after ``frames`` consecutive frames on the same side of it (all
    more severe, or all less severe). It then moves to the least extreme level seen in that run,
    so a run mixing warning and infeasible frames above an ok level shows warning.

    Args:
        frames: consecutive frames needed for a change (1 = no debouncing).
        initial: the level shown before any frame.
    """

    def __init__(self, frames: int = 5, initial: Level = Level.OK) -> None:
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.frames = frames
        self._initial = Level(initial)
        self.reset()

    @property
    def level(self) -> Level:
        """The level currently shown."""
        return self._level

    def reset(self) -> None:
        """Show the initial level again and forget the pending run."""
        self._level = self._initial
        self._run_dir = 0
        self._run_len = 0
        self._run_level = self._initial

    def update(self, level: Level) -> Level:
        """Add one frame's raw level; returns the level to show."""
        level = Level(level)
        direction = (level.rank > self._level.rank) - (level.rank < self._level.rank)
        if direction == 0:
            self._run_dir, self._run_len = 0, 0
            return self._level
        if direction != self._run_dir:
            self._run_dir, self._run_len, self._run_level = direction, 0, level
        self._run_len += 1
        if (level.rank - self._run_level.rank) * direction < 0:
            self._run_level = level
        if self._run_len >= self.frames:
            self._level = self._run_level
            self._run_dir, self._run_len = 0, 0
        return self._level


@dataclass(frozen=True)
class HapticProfile:
    """Vibration intensity in [0, 1] per level.

    Attributes:
        ok: intensity when feasible without warnings.
        warning: peak intensity of the warning pulses.
        infeasible: steady intensity when infeasible.
        warning_pulse_hz: pulse rate of the warning (on/off square wave); 0 = steady.
    """

    ok: float = 0.0
    warning: float = 0.4
    infeasible: float = 1.0
    warning_pulse_hz: float = 4.0

    def __post_init__(self) -> None:
        for name in ("ok", "warning", "infeasible"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} intensity must be in [0, 1], got {value}")
        if not (math.isfinite(self.warning_pulse_hz) and self.warning_pulse_hz >= 0.0):
            raise ValueError(f"warning_pulse_hz must be finite and >= 0, got {self.warning_pulse_hz}")


def haptic_intensity(level: Level, time: float | None = None, profile: HapticProfile = HapticProfile()) -> float:
    """Vibration intensity in [0, 1] for a (debounced) level.

    Args:
        level: the level to render.
        time: current time (s); with a pulse rate, warnings are on during the first half of
            each period. None gives the peak intensity.
        profile: intensities per level.
    """
    level = Level(level)
    if level is Level.OK:
        return profile.ok
    if level is Level.INFEASIBLE:
        return profile.infeasible
    if time is None or profile.warning_pulse_hz == 0.0:
        return profile.warning
    if not math.isfinite(time):
        raise ValueError(f"time must be finite, got {time}")
    phase = (time * profile.warning_pulse_hz) % 1.0
    return profile.warning if phase < 0.5 else profile.ok
