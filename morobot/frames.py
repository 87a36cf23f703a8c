"""A tree of coordinate frames, as ``/tf`` and ``/tf_static`` describe it (REP 105), without ROS.

Each frame has one parent; an edge holds the transform that maps points in the child frame into
the parent frame. Static edges (``/tf_static``: sensor mounts, ``map`` -> ``odom`` in simulation)
hold one transform for all time; dynamic edges (``/tf``: ``odom`` -> ``base``) keep a short history
and are looked up at the sample nearest in time, within ``max_lag`` seconds: a cloud or a goal is
never moved with a transform from another moment. The nodes feed this tree from the wire
(:mod:`morobot.ros.tf`) and ask it for ``T_target_source``; a frame it cannot connect gives a
``LookupError`` that says which frames it knows.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np


def quaternion_wxyz_to_rotation(q) -> np.ndarray:
    """3x3 rotation of a quaternion ``(w, x, y, z)``; raises ValueError unless finite and near unit length."""
    w, x, y, z = (float(v) for v in q)
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    if not math.isfinite(norm) or abs(norm - 1.0) > 1e-3:
        raise ValueError(f"quaternion must be finite and of unit length, got norm {norm:.4g}")
    return unit_quaternion_to_rotation((w / norm, x / norm, y / norm, z / norm))


def unit_quaternion_to_rotation(q) -> np.ndarray:
    """3x3 rotation of a unit quaternion ``(w, x, y, z)``, unchecked (callers that validate use this)."""
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def normalized_quaternion(quaternion_wxyz) -> np.ndarray:
    """``(w, x, y, z)`` scaled to unit length; ValueError unless four finite numbers with a non-zero norm."""
    q = np.asarray(quaternion_wxyz, dtype=np.float64)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise ValueError(f"quaternion must be four finite numbers (w, x, y, z), got {quaternion_wxyz!r}")
    norm = float(np.linalg.norm(q))
    if norm < 1e-12:
        raise ValueError("quaternion has zero norm")
    return q / norm


def points_and_position(points, position) -> tuple[np.ndarray, np.ndarray]:
    """``points`` as a float64 ``[N, 3]`` array and ``position`` as three finite floats; ValueError otherwise."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must be an [N, 3] array, got shape {pts.shape}")
    t = np.asarray(position, dtype=np.float64)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise ValueError(f"position must be three finite numbers, got {position!r}")
    return pts, t


def transform(translation, quaternion_wxyz) -> np.ndarray:
    """4x4 homogeneous transform; raises ValueError on non-finite input or a non-unit quaternion."""
    t = np.asarray(translation, dtype=float).reshape(-1)
    if t.shape != (3,) or not np.isfinite(t).all():
        raise ValueError(f"translation must be 3 finite numbers, got {np.asarray(translation).tolist()}")
    out = np.eye(4)
    out[:3, :3] = quaternion_wxyz_to_rotation(quaternion_wxyz)
    out[:3, 3] = t
    return out


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points ``(N, 3)`` moved by a 4x4 transform."""
    return np.asarray(points, float) @ matrix[:3, :3].T + matrix[:3, 3]


def planar_pose(matrix: np.ndarray, x: float, y: float, yaw: float) -> tuple[float, float, float]:
    """A planar pose ``(x, y, yaw)`` given in a frame, expressed in the frame ``matrix`` maps into."""
    p = matrix @ np.array([x, y, 0.0, 1.0])
    heading = matrix[:3, :3] @ np.array([math.cos(yaw), math.sin(yaw), 0.0])
    return float(p[0]), float(p[1]), math.atan2(heading[1], heading[0])


@dataclass
class _Edge:
    parent: str
    static: bool
    samples: deque  # (stamp, 4x4), oldest first


class FrameTree:
    """Frames and the transforms between them.

    Args:
        max_lag: a dynamic transform is used for a time at most this far (s) from one of its samples.
        history: seconds of samples kept per dynamic edge.
    """

    def __init__(self, max_lag: float = 0.2, history: float = 10.0) -> None:
        if not (math.isfinite(max_lag) and max_lag > 0 and math.isfinite(history) and history >= max_lag):
            raise ValueError(f"need 0 < max_lag <= history, got {max_lag}, {history}")
        self.max_lag = float(max_lag)
        self.history = float(history)
        self._edges: dict[str, _Edge] = {}

    @property
    def frames(self) -> list[str]:
        """Every frame the tree has heard of, sorted."""
        return sorted(set(self._edges) | {e.parent for e in self._edges.values()})

    def set(self, parent: str, child: str, matrix: np.ndarray, stamp: float, static: bool = False) -> None:
        """Add a transform ``T_parent_child`` (maps child-frame points into ``parent``) valid at ``stamp``.

        Raises:
            ValueError: empty or equal frame names, a non-finite or non-rigid matrix, a second parent
                for ``child``, or a cycle.
        """
        parent, child = str(parent).lstrip("/"), str(child).lstrip("/")
        if not parent or not child or parent == child:
            raise ValueError(f"a transform needs two different, non-empty frames, got {parent!r} -> {child!r}")
        m = np.asarray(matrix, dtype=float)
        if m.shape != (4, 4) or not np.isfinite(m).all():
            raise ValueError(f"transform {parent} -> {child} must be a finite 4x4 matrix")
        if not np.allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-6) or not np.allclose(m[3], [0, 0, 0, 1]):
            raise ValueError(f"transform {parent} -> {child} is not rigid")
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"transform {parent} -> {child}: stamp must be finite")
        edge = self._edges.get(child)
        if edge is not None and edge.parent != parent:
            raise ValueError(f"frame {child!r} already has parent {edge.parent!r}, not {parent!r} (a frame has one parent)")
        if edge is None:
            ancestor: Optional[str] = parent
            while ancestor is not None:  # the new edge must not close a loop
                if ancestor == child:
                    raise ValueError(f"transform {parent} -> {child} would make a cycle")
                ancestor = self._edges[ancestor].parent if ancestor in self._edges else None
            edge = self._edges[child] = _Edge(parent, static, deque())
        if static or edge.static:
            edge.static = True
            edge.samples = deque([(stamp, m.copy())])
            return
        samples = edge.samples
        if samples and stamp < samples[-1][0]:
            return  # out of order: ignored (the newest sample wins, as in tf2's buffer)
        samples.append((stamp, m.copy()))
        while samples and samples[0][0] < stamp - self.history:
            samples.popleft()

    def _to_root(self, frame: str, stamp: Optional[float]) -> tuple[list[str], list[np.ndarray]]:
        chain, mats = [frame], []
        while chain[-1] in self._edges:
            edge = self._edges[chain[-1]]
            mats.append(self._sample(chain[-1], edge, stamp))
            chain.append(edge.parent)
        return chain, mats

    def _sample(self, child: str, edge: _Edge, stamp: Optional[float]) -> np.ndarray:
        if edge.static or stamp is None:
            return edge.samples[-1][1]
        best = min(edge.samples, key=lambda s: abs(s[0] - stamp))
        if abs(best[0] - stamp) > self.max_lag:
            newest = edge.samples[-1][0]
            raise LookupError(f"no transform {edge.parent} -> {child} within {self.max_lag} s of t={stamp:.3f} "
                              f"(newest at t={newest:.3f})")
        return best[1]

    def lookup(self, target: str, source: str, stamp: Optional[float] = None) -> np.ndarray:
        """``T_target_source``: maps points in ``source`` into ``target`` at ``stamp`` (None: the latest).

        Raises:
            LookupError: a frame is unknown, the two are not connected, or a dynamic transform on the
                way has no sample within ``max_lag`` of ``stamp``.
        """
        target, source = str(target).lstrip("/"), str(source).lstrip("/")
        if target == source:
            return np.eye(4)
        known = set(self.frames)
        for frame in (source, target):
            if frame not in known:
                raise LookupError(f"unknown frame {frame!r}; known frames: {', '.join(self.frames) or 'none'}")
        up_s, mats_s = self._to_root(source, stamp)
        up_t, mats_t = self._to_root(target, stamp)
        common = next((f for f in up_s if f in set(up_t)), None)
        if common is None:
            raise LookupError(f"frames {source!r} and {target!r} are not connected (roots {up_s[-1]!r} and "
                              f"{up_t[-1]!r})")
        root_s = np.eye(4)  # T_common_source
        for m in mats_s[: up_s.index(common)]:
            root_s = m @ root_s
        root_t = np.eye(4)  # T_common_target
        for m in mats_t[: up_t.index(common)]:
            root_t = m @ root_t
        return np.linalg.inv(root_t) @ root_s
