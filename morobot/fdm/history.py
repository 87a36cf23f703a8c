"""The proprioceptive history the FDM consumes, and the helper that maintains it.

One history row per ``dt`` (default 0.05 s), oldest first, 9 features::

    0..2  commanded body twist   (vx, vy, wz)  m/s, m/s, rad/s
    3..5  measured body twist    (vx, vy, wz)  m/s, m/s, rad/s
    6..8  gravity in the base frame, unit vector (x, y, z); (0, 0, -1) when level

The same :class:`ProprioHistory` is used by data collection and by the run-time node, so the
model sees identically built histories in training and deployment.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

#: Names of the history features, in column order.
HISTORY_FEATURES = ("cmd_vx", "cmd_vy", "cmd_wz", "vx", "vy", "wz", "gravity_x", "gravity_y", "gravity_z")
#: Width of one history row.
HISTORY_DIM = len(HISTORY_FEATURES)


def _vec3(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape != (3,):
        raise ValueError(f"{name} must have 3 elements, got shape {np.shape(value)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return arr


def history_row(cmd: Any, twist: Any, gravity: Any) -> np.ndarray:
    """One 9-d history row.

    Args:
        cmd: commanded body twist ``(vx, vy, wz)``.
        twist: measured body twist ``(vx, vy, wz)``.
        gravity: gravity direction in the base frame; normalised to unit length.

    Returns:
        ``[9]`` float64 row.

    Raises:
        ValueError: on wrong sizes, non-finite values or a zero gravity vector.
    """
    g = _vec3("gravity", gravity)
    norm = float(np.linalg.norm(g))
    if norm < 1e-6:
        raise ValueError("gravity must be a non-zero vector")
    return np.concatenate((_vec3("cmd", cmd), _vec3("twist", twist), g / norm))


def stationary_history(twist: Any, gravity: Any, length: int = 10) -> np.ndarray:
    """A history in which the robot has been tracking its current twist perfectly.

    Used when no history is available (e.g. right after start-up): the commanded twist equals
    the measured one for all ``length`` rows.

    Args:
        twist: measured body twist.
        gravity: gravity in the base frame.
        length: number of rows.

    Returns:
        ``[length, 9]`` float32 history.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    row = history_row(twist, twist, gravity)
    return np.tile(row.astype(np.float32), (length, 1))


class ProprioHistory:
    """Fixed-rate proprioceptive history built from irregularly timed samples.

    Samples are pushed as they arrive; :meth:`array` resamples them on a regular grid ending at
    the newest stamp (zero-order hold: each grid time takes the latest sample at or before it;
    grid times before the first sample repeat the first sample).

    Args:
        length: number of rows returned by :meth:`array`.
        dt: spacing of the rows (s).
    """

    def __init__(self, length: int = 10, dt: float = 0.05) -> None:
        if int(length) != length or length < 1:
            raise ValueError(f"length must be a positive integer, got {length}")
        if not dt > 0.0:
            raise ValueError(f"dt must be positive, got {dt}")
        self.length = int(length)
        self.dt = float(dt)
        self._stamps: deque[float] = deque()
        self._rows: deque[np.ndarray] = deque()

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def span(self) -> float:
        """Time covered by the stored samples (s)."""
        return self._stamps[-1] - self._stamps[0] if self._stamps else 0.0

    @property
    def ready(self) -> bool:
        """True once the samples cover the whole window, so :meth:`array` holds no padding."""
        return bool(self._stamps) and self.span >= (self.length - 1) * self.dt - 1e-9

    def reset(self) -> None:
        """Forgets all samples (e.g. after a teleport or simulator reset)."""
        self._stamps.clear()
        self._rows.clear()

    def push(self, stamp: float, cmd: Any, twist: Any, gravity: Any) -> None:
        """Adds one sample.

        Args:
            stamp: time of the sample (s); must not be older than the previous sample (a sample
                with the same stamp replaces it).
            cmd: commanded body twist ``(vx, vy, wz)`` in effect at ``stamp``.
            twist: measured body twist ``(vx, vy, wz)``.
            gravity: gravity direction in the base frame.

        Raises:
            ValueError: on a stamp older than the newest stored one or malformed vectors.
        """
        stamp = float(stamp)
        if not np.isfinite(stamp):
            raise ValueError(f"stamp must be finite, got {stamp}")
        row = history_row(cmd, twist, gravity)
        if self._stamps and stamp < self._stamps[-1]:
            raise ValueError(f"stamp {stamp} is older than the newest sample {self._stamps[-1]}")
        if self._stamps and stamp == self._stamps[-1]:
            self._rows[-1] = row
            return
        self._stamps.append(stamp)
        self._rows.append(row)
        horizon = (self.length - 1) * self.dt
        # Keep the newest sample at or before the oldest grid time, drop anything older.
        while len(self._stamps) >= 2 and self._stamps[1] <= stamp - horizon + 1e-9:
            self._stamps.popleft()
            self._rows.popleft()

    def array(self) -> np.ndarray:
        """The history resampled on the regular grid.

        Returns:
            ``[length, 9]`` float32, oldest row first.

        Raises:
            ValueError: if no sample has been pushed yet.
        """
        if not self._stamps:
            raise ValueError("ProprioHistory is empty: push at least one sample first")
        stamps = np.fromiter(self._stamps, dtype=np.float64, count=len(self._stamps))
        rows = np.stack(self._rows)
        grid = stamps[-1] - self.dt * np.arange(self.length - 1, -1, -1)
        idx = np.searchsorted(stamps, grid + 1e-9, side="right") - 1
        return rows[np.clip(idx, 0, len(stamps) - 1)].astype(np.float32)
