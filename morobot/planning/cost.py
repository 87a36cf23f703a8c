"""Batched navigation cost for MPPI rollouts.

Every term is computed for all ``K`` rollouts at once and summed with the weights of
:class:`NavigationCostConfig`. Running terms are averaged over the ``T`` steps so that the weights
do not need retuning when the horizon changes. Terms (per rollout):

* ``goal_weight * d(p_T)``: terminal distance to the goal position;
* ``progress_weight * mean_t d(p_t)``: running distance, rewards getting close early;
* ``w_h * |yaw_T - yaw_g|`` with ``w_h = heading_weight`` once the terminal position is within
  ``heading_radius`` of the goal, and ``heading_weight * heading_far_scale`` otherwise (turn to the
  goal heading only when arriving; far away the weak term only breaks ties);
* ``risk_weight * mean_t risk_t``: expected risk, plus ``collision_penalty`` if any step's risk
  exceeds ``risk_penalty_threshold``; with ``risk_relative`` and a stand-still reference (see
  :meth:`NavigationCost.set_standstill`), only if it also exceeds the risk of standing still at that
  step by more than ``risk_margin`` (a robot that is already in a risky spot, e.g. pressed against
  an obstacle, is then steered out of it instead of every plan paying the same penalty); within
  ``goal_risk_radius`` of the goal a step may also be as risky as the goal's own spot (plus
  ``risk_margin``, at most ``goal_risk_cap``; see :meth:`NavigationCost.allowed_risk`);
* ``arrival_weight * mean_t [|p_t - g| > arrival_radius]``: the share of the horizon spent outside the goal
  region (``arrival_radius`` is the planner's ``goal_tolerance``). Far from the goal every plan pays it in full;
  within a horizon's reach a plan that arrives sooner wins. Without it, a plan that arrives by the horizon's end
  costs about the same as a fast one, so near the goal MPPI sends slow commands (0.1 m/s for a 0.4 m approach
  over 5 s), and a walking robot barely moves under them (the shipped gait makes 0.04 m/s of a 0.1 m/s command
  from standstill): it hovers short of the goal (docs/planner.md, "Arriving");
* ``uncertainty_weight * mean_t uncertainty_t`` when the rollout carries an uncertainty;
* ``failure_weight * f_T`` when the rollout carries a learned model's own failure probability ``f``
  (:attr:`~morobot.planning.interface.Rollout.model_risk`): the expected loss of a run that ends by
  the horizon. The ``risk`` above is the larger of that probability and the map's geometric risk
  (:class:`~morobot.planning.map_risk.MapRiskOverlay`), which on passable rough ground sits at
  0.4-0.6 for every plan and hides how the failure probability differs between commands; this term
  keeps that difference (docs/planner.md, "The learned failure probability");
* ``smoothness_weight * sum_t |u_t - u_{t-1}|^2 / T`` (the ``t = 0`` term only when the
  previous command is given);
* ``effort_weight * mean_t |u_t|^2``;
* ``backward_weight * mean_t max(0, -vx_t)``: discourages walking backwards;
* ``alignment_weight * mean_t s_t * |yaw_t - psi(p_t)|``: the heading against the direction of
  travel ``psi`` at each predicted position (down the cost-to-go field, or towards the goal without
  one), with ``s_t`` ramping from 0 at ``alignment_radius / 2`` to 1 at ``alignment_radius`` from
  the goal (arriving, and the goal heading, are left to the goal and heading terms). Walking
  backwards or sideways is slower than walking forwards and leaves a turn for later; a terminal
  version of this term is gamed by plans that turn in their last steps, which the next cycle
  postpones again, so every step counts.

The goal distance ``d`` is the Euclidean ``|p - g|`` unless the cost was built with a
:class:`~morobot.planning.cost_to_go.CostToGo` and :meth:`NavigationCost.prepare` was called with a
height map for this goal: then it is the obstacle-aware geodesic cost-to-go over the map (built once
per planning cycle; :class:`~morobot.planning.mppi.MPPI` calls ``prepare`` before sampling). The
heading radius test keeps the Euclidean distance (it is about arriving, not about the way there).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from morobot.planning.cost_to_go import CostToGo, GeodesicField
from morobot.planning.interface import HeightMap, Rollout


@dataclass
class NavigationCostConfig:
    """Weights and thresholds of :class:`NavigationCost` (SI units, radians).

    Raises:
        ValueError: (at construction) if a weight is negative or non-finite, or a threshold is
            outside its range.
    """

    goal_weight: float = 20.0
    progress_weight: float = 10.0
    heading_weight: float = 10.0
    heading_radius: float = 0.3
    heading_far_scale: float = 0.1
    risk_weight: float = 10.0
    risk_penalty_threshold: float = 0.5
    collision_penalty: float = 1000.0
    uncertainty_weight: float = 5.0
    failure_weight: float = 0.0
    smoothness_weight: float = 2.0
    effort_weight: float = 0.1
    backward_weight: float = 2.0
    alignment_weight: float = 20.0
    alignment_radius: float = 2.0
    risk_relative: bool = True
    risk_margin: float = 0.05
    goal_risk_radius: float = 0.6
    goal_risk_cap: float = 0.95
    arrival_weight: float = 10.0
    arrival_radius: float = 0.3

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(float(value)) or float(value) < 0.0:
                raise ValueError(f"NavigationCostConfig.{name} must be finite and >= 0, got {value!r}")
        if not 0.0 <= self.risk_penalty_threshold <= 1.0:
            raise ValueError(f"risk_penalty_threshold must lie in [0, 1], got {self.risk_penalty_threshold!r}")
        if not 0.0 <= self.goal_risk_cap <= 1.0:
            raise ValueError(f"goal_risk_cap must lie in [0, 1], got {self.goal_risk_cap!r}")
        if self.alignment_radius <= 0.0:
            raise ValueError(f"alignment_radius must be positive, got {self.alignment_radius!r}")
        if self.arrival_radius <= 0.0:
            raise ValueError(f"arrival_radius must be positive, got {self.arrival_radius!r}")


class NavigationCost:
    """Goal-reaching, risk-averse cost over a :class:`Rollout` and its commands.

    **The goal's own risk.** A goal the user chose on rough ground can lie where the geometric risk is
    above ``risk_penalty_threshold`` (10 cm rubble reaches 0.6-0.9 around a pit). Neither the relative
    rule (the robot's own spot may be calmer) nor the cost-to-go (which then leads to the nearest
    traversable cell, not the goal) would let the robot finish there: it would hover short of the goal.
    So :meth:`prepare` reads the footprint risk at the goal from the cost-to-go's risk map (:func:`risk_at`),
    and a step within ``goal_risk_radius`` of the goal may be as risky as that plus ``risk_margin``, never
    above ``goal_risk_cap``: the plans' penalty, the cost-to-go's traversable cells and the safety stop
    (:func:`should_stop`, through ``PlanResult.allowed_risk``) all accept it there, and nowhere else. A
    goal riskier than the cap (e.g. on a box) gets no allowance and stays out of reach.

    Args:
        config: weights and thresholds; defaults if ``None``.
        cost_to_go: builds the geodesic goal-distance field in :meth:`prepare`; ``None`` keeps the
            Euclidean goal distance (and reads no goal risk).
    """

    def __init__(self, config: Optional[NavigationCostConfig] = None, cost_to_go: Optional[CostToGo] = None) -> None:
        self.config = config if config is not None else NavigationCostConfig()
        self.cost_to_go = cost_to_go
        self.field: Optional[GeodesicField] = None
        self.standstill: Optional[torch.Tensor] = None
        self.goal_level: Optional[float] = None
        self._goal_xy: Optional[tuple[float, float]] = None

    def set_standstill(self, risk: Optional[torch.Tensor]) -> None:
        """The risk of standing still ``[T]`` this cycle, the reference of the relative penalty.

        :class:`~morobot.planning.mppi.MPPI` calls it with the zero-command sample's risk before
        every cost evaluation; ``None`` (or a reference of another length) uses the absolute rule.
        """
        self.standstill = None if risk is None else risk.detach().reshape(-1)

    def penalty_threshold(self, risk: torch.Tensor) -> torch.Tensor | float:
        """Per-step risk above which ``collision_penalty`` applies to ``risk [K, T]``."""
        cfg = self.config
        ref = self.standstill
        if not cfg.risk_relative or ref is None or ref.shape[0] != risk.shape[1]:
            return cfg.risk_penalty_threshold
        return torch.clamp(ref.to(risk) + cfg.risk_margin, min=cfg.risk_penalty_threshold)

    def prepare(self, hmap: Optional[HeightMap], goal: Sequence[float]) -> None:
        """Build the goal-distance field for this planning cycle (once, not per sample).

        Without a ``cost_to_go`` or without a map the goal distance is Euclidean. The field is used
        by later calls only for the same goal position (otherwise they fall back to Euclidean).

        Args:
            hmap: the cycle's height map, or ``None``.
            goal: ``(x, y, yaw)`` in odom.

        Raises:
            ValueError: on a malformed height map or goal.
        """
        self.goal_level, self._goal_xy = None, None
        if self.cost_to_go is None or hmap is None:
            self.field = None
            return
        cfg = self.config
        if cfg.goal_risk_radius > 0.0:
            at_goal = risk_at(self.cost_to_go.risk_source.risk_map(hmap), hmap, goal)
            if at_goal is not None and at_goal <= cfg.goal_risk_cap:
                level = min(at_goal + cfg.risk_margin, cfg.goal_risk_cap)
                if level > cfg.risk_penalty_threshold:
                    self.goal_level, self._goal_xy = level, (float(goal[0]), float(goal[1]))
        allowance = None if self.goal_level is None else (cfg.goal_risk_radius, self.goal_level)
        self.field = self.cost_to_go.build(hmap, goal, allowance)

    def allowed_risk(self, poses: torch.Tensor, goal: Sequence[float]) -> Optional[torch.Tensor]:
        """Per-step risk accepted near the goal for ``poses [..., T, 3]``: ``goal_level`` within
        ``goal_risk_radius`` of the goal, 0 elsewhere; ``None`` without a goal allowance this cycle (or
        for another goal than :meth:`prepare`'s)."""
        xy = self._goal_xy
        if self.goal_level is None or xy is None:
            return None
        if max(abs(float(goal[0]) - xy[0]), abs(float(goal[1]) - xy[1])) > 1e-4:  # (absorbs a float32 goal)
            return None
        near = torch.hypot(poses[..., 0] - xy[0], poses[..., 1] - xy[1]) <= self.config.goal_risk_radius
        return near.to(poses.dtype) * self.goal_level

    def goal_distance(self, xy: torch.Tensor, goal: Sequence[float]) -> torch.Tensor:
        """Goal distance used by the goal and progress terms at positions ``xy [..., 2]``."""
        gx, gy = float(goal[0]), float(goal[1])
        field = self.field
        if field is not None and field.matches((gx, gy)):
            return field.distance(xy)
        return torch.hypot(xy[..., 0] - gx, xy[..., 1] - gy)

    def __call__(
        self,
        rollout: Rollout,
        commands: torch.Tensor,
        goal: Sequence[float],
        prev_command: Optional[Sequence[float]] = None,
    ) -> torch.Tensor:
        """Cost of each rollout.

        Args:
            rollout: ``poses [K, T, 3]``, ``risk [K, T]``, optional ``uncertainty [K, T]``.
            commands: ``[K, T, 3]`` body twists that produced the rollout.
            goal: ``(x, y, yaw)`` in odom.
            prev_command: the command executed last, ``(vx, vy, wz)``, for the smoothness term.

        Returns:
            ``[K]`` costs (dtype/device of ``rollout.poses``). Non-finite predictions give
            non-finite costs; the planner discards those samples.

        Raises:
            ValueError: on mismatched shapes, or a goal / previous command that is not three
                finite numbers.
        """
        poses, risk = rollout.poses, rollout.risk
        self._check_shapes(rollout, commands)
        g = _vector3("goal", goal, poses)
        cfg = self.config

        gx, gy, gyaw = (float(v) for v in g)
        dist = self.goal_distance(poses[..., :2], (gx, gy))  # [K, T]
        total = cfg.goal_weight * dist[:, -1] + cfg.progress_weight * dist.mean(dim=1)
        euclid = torch.hypot(poses[..., 0] - gx, poses[..., 1] - gy)  # [K, T]: heading, arrival and alignment
        d_final = euclid[:, -1]

        yaw_err = torch.remainder(poses[:, -1, 2] - gyaw + math.pi, 2.0 * math.pi) - math.pi
        w_heading = torch.where(
            d_final < cfg.heading_radius,
            torch.full_like(d_final, cfg.heading_weight),
            torch.full_like(d_final, cfg.heading_weight * cfg.heading_far_scale),
        )
        total = total + w_heading * yaw_err.abs()

        if cfg.arrival_weight > 0.0:
            total = total + cfg.arrival_weight * (euclid > cfg.arrival_radius).to(total.dtype).mean(dim=1)

        total = total + cfg.risk_weight * risk.mean(dim=1)
        threshold = self.penalty_threshold(risk)
        allowed = self.allowed_risk(poses, (gx, gy))
        if allowed is not None:
            threshold = torch.maximum(torch.as_tensor(threshold, dtype=risk.dtype, device=risk.device), allowed)
        over = (risk > threshold).any(dim=1)
        total = total + cfg.collision_penalty * over.to(total.dtype)
        if rollout.uncertainty is not None:
            total = total + cfg.uncertainty_weight * rollout.uncertainty.mean(dim=1)
        if cfg.failure_weight > 0.0 and rollout.model_risk is not None:
            total = total + cfg.failure_weight * rollout.model_risk[:, -1].to(total.dtype)

        # Command terms on the flattened [K, T*3] layout (contiguous reductions), averaged over T.
        k, horizon = commands.shape[:2]
        u = commands.to(dtype=poses.dtype).reshape(k, horizon * 3)
        change = u[:, 3:] - u[:, :-3]
        smooth = (change * change).sum(dim=1)
        if prev_command is not None:
            first = u[:, :3] - _vector3("prev_command", prev_command, poses)
            smooth = smooth + (first * first).sum(dim=1)
        total = total + (cfg.smoothness_weight / horizon) * smooth
        total = total + (cfg.effort_weight / horizon) * (u * u).sum(dim=1)
        total = total + cfg.backward_weight * torch.relu(-u[:, 0::3]).mean(dim=1)
        if cfg.alignment_weight > 0.0:
            psi = self.travel_direction(poses[..., :2], (gx, gy))  # [K, T]
            misalign = (torch.remainder(poses[..., 2] - psi + math.pi, 2.0 * math.pi) - math.pi).abs()
            ramp = (2.0 * euclid / cfg.alignment_radius - 1.0).clamp(0.0, 1.0)
            total = total + cfg.alignment_weight * (ramp * misalign).mean(dim=1)
        return total

    def travel_direction(self, xy: torch.Tensor, goal: Sequence[float]) -> torch.Tensor:
        """Direction of travel (odom yaw) at positions ``xy [..., 2]``: down the goal distance.

        With a cost-to-go field for this goal it is the direction of steepest descent of the field
        (central differences one cell apart); where the field is flat (e.g. at the goal) and
        without a field it is the bearing to the goal.
        """
        gx, gy = float(goal[0]), float(goal[1])
        bearing = torch.atan2(gy - xy[..., 1], gx - xy[..., 0])
        field = self.field
        if field is None or not field.matches((gx, gy)):
            return bearing
        eps = float(field.resolution)
        offsets = torch.tensor([[eps, 0.0], [-eps, 0.0], [0.0, eps], [0.0, -eps]], dtype=xy.dtype, device=xy.device)
        d = field.distance(xy.unsqueeze(-2) + offsets)  # [..., 4]
        dx, dy = d[..., 0] - d[..., 1], d[..., 2] - d[..., 3]
        flat = torch.hypot(dx, dy) < 1e-6 * eps
        return torch.where(flat, bearing, torch.atan2(-dy, -dx))

    @staticmethod
    def _check_shapes(rollout: Rollout, commands: torch.Tensor) -> None:
        poses, risk = rollout.poses, rollout.risk
        if not isinstance(poses, torch.Tensor) or poses.dim() != 3 or poses.shape[-1] != 3:
            raise ValueError(f"rollout.poses must be [K, T, 3], got {_shape(poses)}")
        k, t = poses.shape[:2]
        if k < 1 or t < 1:
            raise ValueError(f"rollout must have K >= 1 and T >= 1, got {tuple(poses.shape)}")
        if not isinstance(risk, torch.Tensor) or tuple(risk.shape) != (k, t):
            raise ValueError(f"rollout.risk must be [{k}, {t}], got {_shape(risk)}")
        unc = rollout.uncertainty
        if unc is not None and (not isinstance(unc, torch.Tensor) or tuple(unc.shape) != (k, t)):
            raise ValueError(f"rollout.uncertainty must be [{k}, {t}], got {_shape(unc)}")
        if not isinstance(commands, torch.Tensor) or tuple(commands.shape) != (k, t, 3):
            raise ValueError(f"commands must be [{k}, {t}, 3], got {_shape(commands)}")


def stop_risk(risk: Sequence[float], dt: float, window: float = 0.0) -> float:
    """The risk a safety stop looks at: the peak over the plan's first ``window`` seconds.

    The planner replans every cycle, so only the near part of a plan is ever executed; a risk
    that a learned model spreads over a 5 s horizon in clutter (where almost every 5 s sample
    passes near something) need not freeze the robot now. ``window`` = 0 looks at the whole plan.

    Args:
        risk: ``[T]`` per-step risk of the best plan (cumulative or per step).
        dt: step duration (s).
        window: seconds from now to check (0 = all steps).

    Returns:
        The peak risk in the window (0 for an empty plan).

    Raises:
        ValueError: ``dt`` not positive or ``window`` negative.
    """
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive, got {dt}")
    if not (math.isfinite(window) and window >= 0):
        raise ValueError(f"window must be >= 0, got {window}")
    r = np.asarray(risk, dtype=np.float64).reshape(-1)
    if window > 0:
        r = r[: max(1, math.ceil(window / dt - 1e-9))]
    return float(r.max()) if r.size else 0.0


def risk_at(risk: torch.Tensor, hmap: HeightMap, xy: Sequence[float]) -> Optional[float]:
    """The value of the risk map ``risk`` (on ``hmap``'s grid) in the cell that holds ``xy``; ``None`` off the
    map or where it is not finite.

    Raises:
        ValueError: if ``xy`` is not two finite numbers.
    """
    x, y = float(xy[0]), float(xy[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"xy must be two finite numbers, got {xy!r}")
    res = float(hmap.resolution)
    i, j = round((x - float(hmap.origin[0])) / res), round((y - float(hmap.origin[1])) / res)
    if not (0 <= i < risk.shape[0] and 0 <= j < risk.shape[1]):
        return None
    value = float(risk[i, j])
    return value if math.isfinite(value) else None


def should_stop(
    risk: Sequence[float],
    standstill: Optional[Sequence[float]],
    dt: float,
    window: float,
    threshold: float,
    margin: Optional[float],
    allowed: Optional[Sequence[float]] = None,
) -> tuple[bool, float]:
    """The safety-stop rule of the planner node (and of the lock-step evaluation).

    Stop when the peak risk of the plan's first ``window`` seconds exceeds ``threshold``, unless a
    ``margin`` is given and the plan is no riskier than standing still plus ``margin`` over the
    same window: then stopping would not lower the risk (the robot is already in trouble, e.g.
    touching an obstacle, or the model flags the spot itself) and the lowest-cost plan, the way
    out, is executed instead of freezing the robot there.

    Args:
        risk: ``[T]`` risk of the best plan.
        standstill: ``[T]`` risk of standing still, or ``None``.
        dt: step duration (s).
        window: seconds checked (0 = the whole plan).
        threshold: absolute risk threshold.
        margin: allowed excess over the stand-still risk; ``None`` = absolute rule only.
        allowed: ``[T]`` per-step risk accepted near the goal (:meth:`NavigationCost.allowed_risk`):
            a step whose risk does not exceed it does not count; ``None``: every step counts.

    Returns:
        ``(stop, peak)`` with the plan's peak risk over the window.

    Raises:
        ValueError: ``dt`` not positive or ``window`` negative.
    """
    if allowed is not None:
        r, a = np.asarray(risk, dtype=float).reshape(-1), np.asarray(allowed, dtype=float).reshape(-1)
        if a.shape != r.shape:
            raise ValueError(f"allowed must have the plan's {r.size} steps, got {a.size}")
        risk = np.where(r > a, r, 0.0)
    peak = stop_risk(risk, dt, window)
    if not peak > threshold:
        return False, peak
    if margin is None or standstill is None or len(standstill) == 0:
        return True, peak
    return peak > stop_risk(standstill, dt, window) + float(margin), peak


def _shape(value: object) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def _vector3(name: str, value: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be three finite numbers, got {value!r}")
    return torch.as_tensor(arr, dtype=like.dtype, device=like.device)
