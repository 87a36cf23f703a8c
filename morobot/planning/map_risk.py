"""Geometric terrain risk applied at the poses a learned dynamics model predicts.

The learned FDM predicts *where* the robot goes and how likely it is to fail, from the height
scan its cameras and mapper produced. Those maps have blind spots the model cannot learn around:
forward-looking depth cameras see a box's face only up to their own height and never its top,
and cells behind an obstacle stay unknown. The geometric risk of
:class:`~morobot.planning.kinematic.KinematicModel` (footprint-reduced step height, slope and
unknown fraction of the map) is blunt about terrain the robot *can* cross, but it is never blind to
a wall that is in the map.

:class:`MapRiskOverlay` wraps any :class:`~morobot.planning.interface.DynamicsModel` and combines
both: the poses and uncertainty are the wrapped model's; the risk of step ``t`` is the larger of
the wrapped model's risk and the running maximum of the geometric risk along the predicted path
(sampled at every step's end and at the midpoint of the chord from the previous pose). The running
maximum keeps the FDM's convention that ``risk[t]`` is the probability of having failed by the
end of step ``t`` (a path that crosses an obstacle stays failed).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from morobot.planning.interface import DynamicsModel, HeightMap, NavState, Rollout
from morobot.planning.kinematic import KinematicModel


class MapRiskOverlay:
    """A dynamics model whose risk also counts the geometric terrain risk of its predicted poses.

    Args:
        inner: the model that predicts poses (e.g. :class:`~morobot.fdm.dynamics.FDMDynamics`).
        geometric: the kinematic model whose cached risk map is sampled; its ``unknown_risk``
            applies outside the map.

    Raises:
        ValueError: ``inner`` has no ``rollout``/``dt`` or ``geometric`` is not a KinematicModel.
    """

    def __init__(self, inner: DynamicsModel, geometric: KinematicModel) -> None:
        if not callable(getattr(inner, "rollout", None)) or not hasattr(inner, "dt"):
            raise ValueError(f"inner must be a dynamics model with rollout() and dt, got {type(inner).__name__}")
        if not isinstance(geometric, KinematicModel):
            raise ValueError(f"geometric must be a KinematicModel, got {type(geometric).__name__}")
        self.inner = inner
        self.geometric = geometric

    @property
    def dt(self) -> float:
        """Step duration of the wrapped model (s)."""
        return float(self.inner.dt)

    def path_risk(self, start_xy: torch.Tensor, xy: torch.Tensor, hmap: HeightMap) -> torch.Tensor:
        """Running maximum of the geometric risk along predicted positions.

        Args:
            start_xy: ``[2]`` current position (odom).
            xy: ``[K, T, 2]`` predicted positions at the end of each step.
            hmap: height map.

        Returns:
            ``[K, T]`` non-decreasing in ``t``, dtype and device of ``xy``.
        """
        prev = torch.cat((start_xy.to(xy).expand(xy.shape[0], 1, 2), xy[:, :-1]), dim=1)
        points = torch.stack((0.5 * (prev + xy), xy))  # [2, K, T, 2]
        risk = self.geometric.sample_risk(points.contiguous(), hmap).amax(dim=0)
        return torch.cummax(risk, dim=1).values.to(xy.dtype)

    def rollout(self, state: NavState, commands: torch.Tensor, hmap: Optional[HeightMap]) -> Rollout:
        """The wrapped model's rollout with the geometric path risk folded into ``risk``.

        Without a map the wrapped model's risk is returned unchanged (the geometric model would
        only add its ``unknown_risk`` everywhere).

        Raises:
            ValueError: whatever the wrapped model raises; a malformed height map.
        """
        out = self.inner.rollout(state, commands, hmap)
        if hmap is None:
            return out
        pose = np.asarray(state.pose, dtype=np.float64).reshape(-1)
        start = torch.as_tensor(pose[:2], dtype=out.poses.dtype, device=out.poses.device)
        geo = self.path_risk(start, out.poses[..., :2], hmap)
        return Rollout(poses=out.poses, risk=torch.maximum(out.risk, geo), uncertainty=out.uncertainty)
