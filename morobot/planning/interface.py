"""The narrow seam between the MPPI planner and any dynamics model.

A dynamics model maps (robot state, a batch of command sequences, a height map) to predicted
poses and a per-step risk. The kinematic model with geometric risk and the learned FDM both
implement :class:`DynamicsModel`, so the planner never knows which one it is driving.

Conventions (SI units, radians):
    * poses are ``(x, y, yaw)`` in the world-fixed ``odom`` frame;
    * commands are body-frame twists ``(vx, vy, wz)``; step ``t`` holds for ``dt`` seconds;
    * ``poses[:, t]`` is the pose at the *end* of step ``t``;
    * risk is a failure/collision probability in ``[0, 1]`` for each step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol, runtime_checkable

import numpy as np
import torch


@dataclass
class HeightMap:
    """Robot-centric, odom-aligned height grid.

    Attributes:
        heights: ``[rows, cols]`` float tensor of terrain heights (m, odom z); NaN = unknown.
            Row index ``i`` runs along odom +x, column ``j`` along odom +y.
        origin: odom ``(x, y)`` of the centre of cell ``[0, 0]``.
        resolution: cell edge length (m).
        stamp: time (s) the map refers to.
    """

    heights: torch.Tensor
    origin: tuple[float, float]
    resolution: float
    stamp: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.heights.shape)  # type: ignore[return-value]

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Odom x coordinates of the rows and y coordinates of the columns."""
        rows, cols = self.shape
        xs = self.origin[0] + self.resolution * np.arange(rows)
        ys = self.origin[1] + self.resolution * np.arange(cols)
        return xs, ys


@dataclass
class NavState:
    """What the planner knows about the robot when it plans.

    Attributes:
        pose: ``(x, y, yaw)`` in odom.
        twist: measured body twist ``(vx, vy, wz)``.
        z: base height in odom (m).
        gravity_b: gravity direction expressed in the base frame (unit vector, 3).
        history: optional ``[H, D]`` proprioceptive history, oldest first (for learned models).
        stamp: time (s) of the state.
    """

    pose: np.ndarray
    twist: np.ndarray = field(default_factory=lambda: np.zeros(3))
    z: float = 0.0
    gravity_b: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, -1.0]))
    history: Optional[np.ndarray] = None
    stamp: float = 0.0


@dataclass
class Rollout:
    """Predicted outcome of ``K`` command sequences of ``T`` steps.

    Attributes:
        poses: ``[K, T, 3]`` predicted ``(x, y, yaw)`` at the end of each step.
        risk: ``[K, T]`` failure/collision probability per step, in ``[0, 1]``.
        uncertainty: optional ``[K, T]`` epistemic uncertainty (e.g. ensemble spread, metres).
        model_risk: optional ``[K, T]``: a learned model's own failure probability (``risk`` itself for a bare
            model; under :class:`~morobot.planning.map_risk.MapRiskOverlay` ``risk`` also holds the geometric
            risk); the stop uses ``risk``, the cost both (its ``failure_weight`` term reads this one); None for a
            model with no learned failure probability (the kinematic one).
    """

    poses: torch.Tensor
    risk: torch.Tensor
    uncertainty: Optional[torch.Tensor] = None
    model_risk: Optional[torch.Tensor] = None


@runtime_checkable
class DynamicsModel(Protocol):
    """Batched dynamics: the one interface the planner depends on."""

    dt: float

    def rollout(self, state: NavState, commands: torch.Tensor, hmap: Optional[HeightMap]) -> Rollout:
        """Predict poses and risk for ``commands`` of shape ``[K, T, 3]``."""
        ...


def finite_vector(name: str, value: object, size: int) -> np.ndarray:
    """``value`` as a float64 array of ``size`` finite numbers (a tensor is copied to the CPU).

    Raises:
        ValueError: naming ``name``, when ``value`` is not ``size`` finite numbers.
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be {size} finite numbers, got {value!r}") from exc
    if arr.shape != (size,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be {size} finite numbers, got {value!r}")
    return arr
