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
the wrapped model's risk and the geometric risk of the step (sampled at its end and at the midpoint
of the chord from the previous pose). With ``cumulative`` the geometric part is its running maximum
along the path, the FDM's convention that ``risk[t]`` is the probability of having failed by the end
of step ``t`` (a path that crosses an obstacle stays failed). Without it each step keeps its own
geometric risk, as :class:`~morobot.planning.kinematic.KinematicModel` scores its steps: a robot
whose footprint already touches an obstacle then sees which plans take it away (with the running
maximum every plan from such a spot is as risky as standing still, and the cost has nothing to choose
by). Whether a path crosses an obstacle at all, the cost's penalty and the safety stop's peak, is the
same either way. With ``commanded`` the geometric risk along the commanded path (the kinematic model's
own rollout risk, perfect tracking) counts as well: the planner is then at least as cautious about
mapped terrain as the kinematic planner, whatever motion the wrapped model predicts (a learned model
that predicts the robot stopping short of a box does not license commanding into it). With
``learned_poses=False`` the rollout's poses are the commanded motion's (the kinematic model's) and the
wrapped model only adds its failure probability to the kinematic model's risk: the ablation that tells
whether a learned model helps a planner through its poses or through its risk.
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
        cumulative: the geometric risk of step ``t`` is its running maximum along the path (see
            the module docstring); otherwise each step's own.
        commanded: also count the geometric risk along the commanded path (see the module docstring).
        learned_poses: the poses (and uncertainty) are the wrapped model's; otherwise the kinematic
            model's, with the wrapped model's risk folded into the kinematic risk (no uncertainty).

    Raises:
        ValueError: ``inner`` has no ``rollout``/``dt`` or ``geometric`` is not a KinematicModel.
    """

    def __init__(self, inner: DynamicsModel, geometric: KinematicModel, cumulative: bool = True,
                 commanded: bool = False, learned_poses: bool = True) -> None:
        if not callable(getattr(inner, "rollout", None)) or not hasattr(inner, "dt"):
            raise ValueError(f"inner must be a dynamics model with rollout() and dt, got {type(inner).__name__}")
        if not isinstance(geometric, KinematicModel):
            raise ValueError(f"geometric must be a KinematicModel, got {type(geometric).__name__}")
        self.inner = inner
        self.geometric = geometric
        self.cumulative = bool(cumulative)
        self.commanded = bool(commanded)
        self.learned_poses = bool(learned_poses)

    @property
    def dt(self) -> float:
        """Step duration of the wrapped model (s)."""
        return float(self.inner.dt)

    def path_risk(self, start_xy: torch.Tensor, xy: torch.Tensor, hmap: HeightMap) -> torch.Tensor:
        """Geometric risk of each step along predicted positions (each step's own; :meth:`rollout` takes the
        running maximum with ``cumulative``).

        Args:
            start_xy: ``[2]`` current position (odom).
            xy: ``[K, T, 2]`` predicted positions at the end of each step.
            hmap: height map.

        Returns:
            ``[K, T]``, dtype and device of ``xy``.
        """
        prev = torch.cat((start_xy.to(xy).expand(xy.shape[0], 1, 2), xy[:, :-1]), dim=1)
        points = torch.stack((0.5 * (prev + xy), xy))  # [2, K, T, 2]
        return self.geometric.sample_risk(points.contiguous(), hmap).amax(dim=0).to(xy.dtype)

    def rollout(self, state: NavState, commands: torch.Tensor, hmap: Optional[HeightMap]) -> Rollout:
        """The wrapped model's rollout with the geometric path risk folded into ``risk``.

        Without a map the wrapped model's risk is returned unchanged (the geometric model would
        only add its ``unknown_risk`` everywhere), on the kinematic poses without ``learned_poses``.

        Raises:
            ValueError: whatever the wrapped model raises; a malformed height map.
        """
        out = self.inner.rollout(state, commands, hmap)
        planned = None  # the commanded motion: its poses without learned_poses, its map risk with commanded
        if not self.learned_poses or (self.commanded and hmap is not None):
            planned = self.geometric.rollout(state, commands, hmap)
        poses, uncertainty = (out.poses, out.uncertainty) if self.learned_poses else (planned.poses.to(out.poses), None)
        if hmap is None:
            return Rollout(poses=poses, risk=out.risk, uncertainty=uncertainty, model_risk=out.risk)
        geo = None
        if self.learned_poses:
            pose = np.asarray(state.pose, dtype=np.float64).reshape(-1)
            start = torch.as_tensor(pose[:2], dtype=out.poses.dtype, device=out.poses.device)
            geo = self.path_risk(start, out.poses[..., :2], hmap)
        if planned is not None:
            along = planned.risk.to(out.risk)
            geo = along if geo is None else torch.maximum(geo, along)
        if self.cumulative:  # the running maximum of the larger risk is the larger of the running maxima
            geo = torch.cummax(geo, dim=1).values
        return Rollout(poses=poses, risk=torch.maximum(out.risk, geo), uncertainty=uncertainty, model_risk=out.risk)
