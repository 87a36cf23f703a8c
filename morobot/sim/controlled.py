"""What the simulated robots share: a body-twist command with its stamp, and physics advanced in
whole steps with the robot's controller run every ``_substeps`` physics steps."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Optional, Sequence

import mujoco
import numpy as np


class ControlledSim(ABC):
    """Base of :class:`morobot.sim.anymal.AnymalSim` and :class:`morobot.locomotion.sim.LeggedAnymalSim`.

    A subclass sets ``model``, ``data``, ``_substeps`` (physics steps per control step) and
    ``_steps`` (physics steps since reset) and implements ``_control()`` and ``state()``.
    """

    model: mujoco.MjModel
    data: mujoco.MjData
    _substeps: int
    _steps: int

    @property
    def time(self) -> float:
        """Simulation time (s) since the last reset."""
        return float(self.data.time)

    def set_command(self, cmd: Sequence[float], stamp: Optional[float] = None) -> None:
        """Command a body twist ``(vx, vy, wz)``; it is dropped ``command_timeout`` after ``stamp``.

        Args:
            cmd: twist in the base frame (m/s, m/s, rad/s); limits are applied by the locomotion.
            stamp: sim time (s) of the command; default now.

        Raises:
            ValueError: wrong shape or non-finite values.
        """
        c = np.asarray(cmd, dtype=float).ravel()
        if c.shape != (3,) or not np.all(np.isfinite(c)):
            raise ValueError(f"command must be 3 finite numbers (vx, vy, wz), got {cmd!r}")
        st = self.time if stamp is None else float(stamp)
        if not math.isfinite(st):
            raise ValueError(f"command stamp must be finite, got {stamp!r}")
        self._command, self._stamp = c, st

    def advance(self, duration: float) -> Any:
        """Advance physics by ``duration`` seconds of sim time (rounded to whole steps), running the
        controller every ``_substeps`` steps; returns :meth:`state`.

        Raises:
            ValueError: negative or non-finite duration.
        """
        if not (math.isfinite(duration) and duration >= 0):
            raise ValueError(f"duration must be finite and >= 0, got {duration!r}")
        remaining = int(round(duration / self.model.opt.timestep))
        while remaining > 0:
            chunk = min(remaining, self._substeps - self._steps % self._substeps)
            mujoco.mj_step(self.model, self.data, nstep=chunk)
            self._steps += chunk
            remaining -= chunk
            if self._steps % self._substeps == 0:
                self._control()
        return self.state()

    @abstractmethod
    def _control(self) -> None:
        """Run the robot's controller (called every ``_substeps`` physics steps)."""

    @abstractmethod
    def state(self) -> Any:
        """The robot's current state."""
