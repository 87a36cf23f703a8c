"""Odometry and command time series of a bag, and the heuristic failure events (see :mod:`morobot.fdm.data.rosbag`)."""

from __future__ import annotations

import math

import numpy as np

from morobot.fdm.data.rosbag.options import (_NS, ConvertOptions)


# ------------------------------------------------------------------------------ time series
def _ns(seconds: float) -> int:
    return int(round(seconds * _NS))


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    """``[N, 4]`` unit quaternions ``(w, x, y, z)`` -> ``[N, 3, 3]`` rotation matrices."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def _unique_sorted(t: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sorts by time; of messages with equal stamps the last received wins."""
    order = np.argsort(t, kind="stable")
    t = t[order]
    keep = np.append(t[1:] != t[:-1], True) if t.size else np.zeros(0, bool)
    return (t[keep],) + tuple(a[order][keep] for a in arrays)


class _Odometry:
    """Valid odometry samples (sorted ns stamps) with interpolation and coverage queries."""

    def __init__(self, t: np.ndarray, values: np.ndarray, bad: np.ndarray, max_gap_ns: int) -> None:
        self.t = t
        self.pos = values[:, 0:3]
        q = values[:, 3:7] / np.linalg.norm(values[:, 3:7], axis=1, keepdims=True)
        dots = np.einsum("ij,ij->i", q[1:], q[:-1])
        sign = np.cumprod(np.concatenate(([1.0], np.where(dots < 0, -1.0, 1.0))))
        self.quat = q * sign[:, None]  # one hemisphere, so neighbours interpolate the short way
        self.lin = values[:, 7:10]
        self.ang = values[:, 10:13]
        self.bad = np.sort(bad)
        gaps = np.diff(t) > max_gap_ns
        self._bad_gaps = np.concatenate(([0], np.cumsum(gaps)))

    def covered(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """True where ``[a, b]`` lies within the odometry and holds no gap longer than the limit."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        inside = (a >= self.t[0]) & (b <= self.t[-1])
        i = np.clip(np.searchsorted(self.t, a, "right") - 1, 0, len(self.t) - 1)
        j = np.clip(np.searchsorted(self.t, b, "left"), 0, len(self.t) - 1)
        return inside & (self._bad_gaps[j] - self._bad_gaps[np.minimum(i, j)] == 0)

    def count_bad(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Number of invalid odometry messages stamped within ``[a, b]``."""
        return np.searchsorted(self.bad, b, "right") - np.searchsorted(self.bad, a, "left")

    def at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Linear interpolation (nlerp for the orientation) at ns stamps ``t`` (clamped to the ends).

        Returns:
            ``position [N, 3]``, ``quaternion [N, 4]`` (w, x, y, z), ``linear [N, 3]``, ``angular [N, 3]``.
        """
        t = np.asarray(t, np.int64).reshape(-1)
        if len(self.t) == 1:
            n = len(t)
            return (np.repeat(self.pos, n, 0), np.repeat(self.quat, n, 0), np.repeat(self.lin, n, 0),
                    np.repeat(self.ang, n, 0))
        i = np.clip(np.searchsorted(self.t, t, "right") - 1, 0, len(self.t) - 2)
        w = np.clip((t - self.t[i]) / (self.t[i + 1] - self.t[i]).astype(np.float64), 0.0, 1.0)[:, None]

        def lerp(v: np.ndarray) -> np.ndarray:
            return v[i] + w * (v[i + 1] - v[i])

        q = lerp(self.quat)
        return lerp(self.pos), q / np.linalg.norm(q, axis=1, keepdims=True), lerp(self.lin), lerp(self.ang)

    def poses(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y, yaw) [N, 3]`` and base height ``[N]`` at ns stamps ``t``."""
        pos, q, _, _ = self.at(t)
        rot = _quat_matrix(q)
        return np.stack((pos[:, 0], pos[:, 1], np.arctan2(rot[:, 1, 0], rot[:, 0, 0])), -1), pos[:, 2]


class _Joints:
    """Joint states ``[N, 36]`` (positions, velocities, efforts of the 12 leg joints), held to the next sample."""

    def __init__(self, t: np.ndarray, values: np.ndarray) -> None:
        self.t, self.values = t, values

    def at(self, t: np.ndarray) -> np.ndarray:
        """The newest sample at or before each of ``t`` (the first sample before it)."""
        idx = np.clip(np.searchsorted(self.t, t, side="right") - 1, 0, len(self.t) - 1)
        return self.values[idx]


class _Targets:
    """Joint targets ``[N, 12]``, one message per control step."""

    def __init__(self, t: np.ndarray, values: np.ndarray) -> None:
        self.t, self.values = t, values

    def last_two(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The newest target at or before each of ``t`` and the one before it (the first ones before them)."""
        idx = np.searchsorted(self.t, t, side="right") - 1
        return self.values[np.clip(idx, 0, len(self.t) - 1)], self.values[np.clip(idx - 1, 0, len(self.t) - 1)]


class _Commands:
    """The held command: each message's twist from its stamp until the next one or the watchdog."""

    def __init__(self, t: np.ndarray, values: np.ndarray, bad: np.ndarray, timeout_ns: int) -> None:
        self.t = t
        self.v = values
        self.bad = np.sort(bad)
        self.timeout_ns = int(timeout_ns)
        nxt = np.append(t[1:], np.iinfo(np.int64).max)
        self._len = (np.minimum(nxt - t, self.timeout_ns)).astype(np.float64) * 1e-9  # segment lengths (s)
        self._cum = np.concatenate((np.zeros((1, 3)), np.cumsum(self.v * self._len[:, None], axis=0)))

    def held(self, t: np.ndarray, left: bool = False) -> np.ndarray:
        """Command in effect at ns stamps ``t`` (``left``: just before ``t``); zero before the first."""
        t = np.asarray(t, np.int64)
        if self.t.size == 0:
            return np.zeros(t.shape + (3,))
        i = np.searchsorted(self.t, t, "left" if left else "right") - 1
        k = np.clip(i, 0, None)
        fresh = (i >= 0) & (t - self.t[k] <= self.timeout_ns)
        return np.where(fresh[..., None], self.v[k], 0.0)

    def _integral(self, t: np.ndarray) -> np.ndarray:
        """Integral of the held command from the beginning up to ns stamps ``t`` (m, m, rad)."""
        i = np.searchsorted(self.t, t, "right") - 1
        k = np.clip(i, 0, None)
        part = np.clip((t - self.t[k]).astype(np.float64) * 1e-9, 0.0, self._len[k])
        return np.where((i >= 0)[..., None], self._cum[k] + self.v[k] * part[..., None], 0.0)

    def mean(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Time average of the held command over ``[a, b]`` (ns, ``b > a``)."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        if self.t.size == 0:
            return np.zeros(a.shape + (3,))
        return (self._integral(b) - self._integral(a)) / ((b - a).astype(np.float64)[..., None] * 1e-9)

    def count_bad(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Number of invalid command messages stamped within ``[a, b]``."""
        return np.searchsorted(self.bad, b, "right") - np.searchsorted(self.bad, a, "left")


def _runs(mask: np.ndarray, t: np.ndarray, max_gap_ns: int) -> list[tuple[int, int]]:
    """``(first, last)`` indices of runs of True in ``mask`` over consecutive, gap-free samples."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = (np.diff(idx) != 1) | (np.diff(t[idx]) > max_gap_ns)
    starts = np.concatenate(([0], np.flatnonzero(breaks) + 1))
    ends = np.concatenate((np.flatnonzero(breaks), [idx.size - 1]))
    return [(int(idx[s]), int(idx[e])) for s, e in zip(starts, ends)]


def failure_events(odom: _Odometry, cmds: _Commands, opts: ConvertOptions) -> list[tuple[int, int, str]]:
    """Failure episodes of the heuristic on the odometry messages.

    Returns:
        ``(onset_ns, end_ns, reason)`` per episode, ``reason`` ``"stuck"`` or ``"tilt"``, by onset.
    """
    gap = _ns(opts.max_odom_gap)
    cmd = cmds.held(odom.t)
    wanted = np.hypot(cmd[:, 0], cmd[:, 1]) + opts.yaw_lever * np.abs(cmd[:, 2])
    achieved = np.hypot(odom.lin[:, 0], odom.lin[:, 1]) + opts.yaw_lever * np.abs(odom.ang[:, 2])
    stuck = (wanted >= max(opts.stuck_min_command, 1e-9)) & (achieved < opts.stuck_ratio * wanted)
    events = [(int(odom.t[s]), int(odom.t[e]), "stuck") for s, e in _runs(stuck, odom.t, gap)
              if odom.t[e] - odom.t[s] >= _ns(opts.stuck_time)]
    cos_tilt = _quat_matrix(odom.quat)[:, 2, 2]
    tilted = cos_tilt < math.cos(math.radians(opts.tilt_deg))
    events += [(int(odom.t[s]), int(odom.t[e]), "tilt") for s, e in _runs(tilted, odom.t, gap)]
    return sorted(events)
