"""Ray-cast depth cameras on a MuJoCo body (vectorised with ``mujoco.mj_multiRay``).

Each camera is a pinhole with a regular pixel grid; one ``mj_multiRay`` call per camera casts all
its rays from the camera centre. The body carrying the cameras is excluded; the other bodies of an
articulated robot (the walking ANYmal's legs) are seen, as a real robot's cameras see them (the
elevation mapper drops them: :mod:`morobot.mapping.body`). Hits beyond ``max_range`` (or closer than
``min_range``) are dropped, the range gets Gaussian noise growing with distance (``sigma = noise_std +
noise_quadratic * d^2``, like stereo depth), and a random fraction of the pixels drops out. Points are
returned in the base frame.

Camera frames follow the URDF camera links: x forward (optical axis), y left, z up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import mujoco
import numpy as np


@dataclass(frozen=True)
class DepthCamera:
    """One depth camera rigidly mounted on the base.

    Attributes:
        name: camera name.
        position: camera centre in the base frame (m).
        rpy: roll, pitch, yaw (rad) of the camera frame in the base frame (URDF convention,
            ``R = Rz(yaw) Ry(pitch) Rx(roll)``; positive pitch tilts the view down).
        hfov_deg: horizontal field of view (deg).
        vfov_deg: vertical field of view (deg).
        width: pixels per row.
        height: pixel rows.
    """

    name: str
    position: tuple[float, float, float]
    rpy: tuple[float, float, float]
    hfov_deg: float = 87.0
    vfov_deg: float = 58.0
    width: int = 48
    height: int = 30

    def __post_init__(self) -> None:
        for what in ("position", "rpy"):
            v = np.asarray(getattr(self, what), dtype=float).ravel()
            if v.shape != (3,) or not np.all(np.isfinite(v)):
                raise ValueError(f"DepthCamera {self.name!r}: {what} must be 3 finite numbers")
            object.__setattr__(self, what, tuple(float(t) for t in v))
        if not (0 < self.hfov_deg < 180 and 0 < self.vfov_deg < 180):
            raise ValueError(f"DepthCamera {self.name!r}: fields of view must be in (0, 180) deg")
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f"DepthCamera {self.name!r}: width and height must be >= 1")

    def rotation(self) -> np.ndarray:
        """Rotation camera -> base."""
        return rpy_matrix(*self.rpy)

    def directions(self) -> np.ndarray:
        """Unit ray directions ``[height * width, 3]`` in the camera frame, row-major from top-left."""
        tu = math.tan(math.radians(self.hfov_deg) / 2)
        tv = math.tan(math.radians(self.vfov_deg) / 2)
        u = np.linspace(tu, -tu, int(self.width)) if self.width > 1 else np.zeros(1)
        v = np.linspace(tv, -tv, int(self.height)) if self.height > 1 else np.zeros(1)
        vv, uu = np.meshgrid(v, u, indexing="ij")
        d = np.stack([np.ones_like(uu), uu, vv], axis=-1).reshape(-1, 3)
        return d / np.linalg.norm(d, axis=1, keepdims=True)


@dataclass(frozen=True)
class DepthSensorConfig:
    """Range limits and noise of the depth cameras.

    Attributes:
        max_range: hits farther than this are dropped (m).
        min_range: hits closer than this are dropped (m).
        noise_std: range noise at zero distance (m).
        noise_quadratic: range noise growth (1/m): ``sigma = noise_std + noise_quadratic d^2``.
        dropout: probability that a pixel returns nothing.
        seed: noise seed.
    """

    max_range: float = 5.0
    min_range: float = 0.1
    noise_std: float = 0.005
    noise_quadratic: float = 0.002
    dropout: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_range) and self.max_range > 0):
            raise ValueError(f"max_range must be positive, got {self.max_range}")
        if not (math.isfinite(self.min_range) and 0 <= self.min_range < self.max_range):
            raise ValueError(f"min_range must be in [0, max_range), got {self.min_range}")
        if not (self.noise_std >= 0 and self.noise_quadratic >= 0):
            raise ValueError("noise parameters must be non-negative")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """``Rz(yaw) Ry(pitch) Rx(roll)`` (URDF fixed-axis roll-pitch-yaw)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


class DepthSensor:
    """A set of depth cameras on one MuJoCo body.

    Args:
        model: the MuJoCo model.
        body_id: id of the body carrying the cameras; its geoms are never hit.
        cameras: the cameras (poses relative to the body frame).
        config: range and noise parameters.

    Raises:
        ValueError: bad body id or no cameras.
    """

    def __init__(self, model: mujoco.MjModel, body_id: int, cameras: Sequence[DepthCamera],
                 config: Optional[DepthSensorConfig] = None):
        if not 0 < int(body_id) < model.nbody:
            raise ValueError(f"body_id {body_id} is not a movable body of the model")
        if len(cameras) == 0:
            raise ValueError("DepthSensor needs at least one camera")
        self.model = model
        self.body_id = int(body_id)
        self.cameras = list(cameras)
        self.config = config or DepthSensorConfig()
        self._rng = np.random.default_rng(self.config.seed)
        self._origins_b = [np.array(c.position) for c in self.cameras]
        self._dirs_b = [c.directions() @ c.rotation().T for c in self.cameras]
        n_max = max(len(d) for d in self._dirs_b)
        self._geomid = np.zeros(n_max, dtype=np.int32)
        self._dist = np.zeros(n_max, dtype=np.float64)

    @property
    def n_rays(self) -> int:
        """Rays per scan over all cameras."""
        return sum(len(d) for d in self._dirs_b)

    def ranges(self, data: mujoco.MjData, position: Any, rotation: Any) -> list[np.ndarray]:
        """Noise-free ray lengths per camera (``-1`` = no hit within ``max_range``).

        Args:
            data: MuJoCo data (static geometry poses must be current, e.g. after ``mj_forward``).
            position: base origin in the world (3).
            rotation: rotation base -> world (3x3).
        """
        return [d for d, _ in self.hits(data, position, rotation)]

    def hits(self, data: mujoco.MjData, position: Any, rotation: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per camera, the noise-free ray lengths (``-1`` = no hit within range) and the geom each ray hit
        (``-1`` = none); :meth:`ranges` without the geoms. Arguments as there."""
        pos = np.asarray(position, dtype=float)
        rot = np.asarray(rotation, dtype=float)
        if pos.shape != (3,) or rot.shape != (3, 3) or not (np.all(np.isfinite(pos)) and np.all(np.isfinite(rot))):
            raise ValueError("position must be a finite 3-vector and rotation a finite 3x3 matrix")
        out = []
        for origin_b, dirs_b in zip(self._origins_b, self._dirs_b):
            n = len(dirs_b)
            pnt = pos + rot @ origin_b
            vec = np.ascontiguousarray((dirs_b @ rot.T).ravel())
            geomid, dist = self._geomid[:n], self._dist[:n]
            mujoco.mj_multiRay(self.model, data, pnt, vec, None, 1, self.body_id, geomid, dist, None, n,
                               self.config.max_range)
            d = dist.copy()
            miss = (d < self.config.min_range) | (d > self.config.max_range)
            d[miss] = -1.0
            out.append((d, np.where(miss, -1, geomid)))
        return out

    def points_on(self, data: mujoco.MjData, position: Any, rotation: Any, geoms: np.ndarray) -> np.ndarray:
        """Noise-free points ``[N, 3]`` (base frame) where rays hit the geoms marked in the ``[ngeom]`` bool
        mask ``geoms`` (e.g. a robot's own legs); other arguments as in :meth:`ranges`."""
        mask = np.asarray(geoms, dtype=bool)
        chunks = []
        for origin_b, dirs_b, (d, geom) in zip(self._origins_b, self._dirs_b, self.hits(data, position, rotation)):
            on = (geom >= 0) & mask[np.maximum(geom, 0)]
            chunks.append(origin_b + d[on, None] * dirs_b[on])
        return np.concatenate(chunks, axis=0)

    def scan(self, data: mujoco.MjData, position: Any, rotation: Any, noise: bool = True) -> np.ndarray:
        """Points ``[N, 3]`` (float32, base frame) seen by all cameras.

        Args:
            data: MuJoCo data.
            position: base origin in the world (3).
            rotation: rotation base -> world (3x3).
            noise: apply range noise and dropouts.
        """
        cfg = self.config
        chunks = []
        for origin_b, dirs_b, d in zip(self._origins_b, self._dirs_b, self.ranges(data, position, rotation)):
            keep = d > 0
            if noise and cfg.dropout > 0:
                keep &= self._rng.random(d.shape) >= cfg.dropout
            r = d[keep]
            if noise:
                r = r + self._rng.standard_normal(r.shape) * (cfg.noise_std + cfg.noise_quadratic * r * r)
            chunks.append(origin_b + r[:, None] * dirs_b[keep])
        return np.concatenate(chunks, axis=0).astype(np.float32)
