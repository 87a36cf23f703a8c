"""Build the navigation stack's pure components from node parameters.

The ``mppi_planner`` and ``elevation_mapper`` nodes and the offline evaluation
(:mod:`morobot.evaluation.nav`) construct the planner, cost, dynamics model and mapper from the
same parameter names (the ``ros__parameters`` of ``config/navigate.yaml``), so building them in one
place guarantees that an offline run uses exactly what the nodes use.

Every function takes a plain mapping ``{parameter name: value}`` holding at least the parameters
it reads (a node passes its full, validated parameter dict) and raises ``KeyError`` naming the
missing ones otherwise. No rclpy here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional


from morobot.planning.blocked import BlockedMotionConfig, BlockedMotionMonitor
from morobot.planning.cost import NavigationCost, NavigationCostConfig
from morobot.planning.cost_to_go import CostToGo, CostToGoConfig
from morobot.planning.interface import DynamicsModel
from morobot.planning.kinematic import KinematicModel
from morobot.planning.map_risk import MapRiskOverlay
from morobot.planning.mppi import MPPI, MPPIConfig

#: Parameters read by :func:`make_kinematic_model`.
KINEMATIC_PARAMS = ("dt", "footprint_radius", "step_limit", "slope_limit_deg", "unknown_risk")
#: Parameters read by :func:`make_mppi_config`.
MPPI_PARAMS = ("num_samples", "horizon", "dt", "temperature", "sigma", "u_min", "u_max", "noise_beta",
               "iterations", "seed", "rollouts_shown", "control_rate")
#: Parameters read by :func:`make_navigation_cost`.
COST_PARAMS = ("goal_weight", "progress_weight", "heading_weight", "risk_weight", "risk_penalty_threshold",
               "collision_penalty", "uncertainty_weight", "smoothness_weight", "backward_weight",
               "alignment_weight", "alignment_radius", "risk_relative", "risk_margin", "goal_risk_radius",
               "goal_risk_cap", "failure_weight", "arrival_weight", "goal_tolerance")
#: Parameters read by :func:`make_cost_to_go`.
COST_TO_GO_PARAMS = ("cost_to_go", "ctg_risk_cost", "ctg_inflation_radius", "ctg_inflation_cost",
                     "ctg_exit_penalty", "ctg_downsample", "ctg_lethal_risk")
#: Parameters read by :func:`make_blocked_monitor` (``blocked_marking`` plus the
#: :class:`~morobot.planning.blocked.BlockedMotionConfig` fields with a ``blocked_`` prefix).
BLOCKED_PARAMS = ("blocked_marking", "blocked_min_command", "blocked_max_ratio", "blocked_duration",
                  "blocked_clearance", "blocked_radius", "blocked_height", "blocked_lifetime", "blocked_max_gap")


def _require(p: Mapping[str, Any], names: tuple[str, ...], what: str) -> None:
    missing = [n for n in names if n not in p]
    if missing:
        raise KeyError(f"{what} needs the parameters {missing}")


def make_kinematic_model(p: Mapping[str, Any]) -> KinematicModel:
    """The kinematic model with geometric risk, as the planner node builds it.

    Raises:
        KeyError: a parameter of :data:`KINEMATIC_PARAMS` is missing.
        ValueError: invalid values (see :class:`KinematicModel`).
    """
    _require(p, KINEMATIC_PARAMS, "the kinematic model")
    return KinematicModel(dt=float(p["dt"]), footprint_radius=float(p["footprint_radius"]),
                          step_limit=float(p["step_limit"]), slope_limit_deg=float(p["slope_limit_deg"]),
                          unknown_risk=float(p["unknown_risk"]))


def make_fdm_dynamics(p: Mapping[str, Any], checkpoint: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """The learned FDM and the proprioceptive history buffer it consumes.

    Args:
        p: planner parameters (``dt`` is checked against the checkpoint's step; ``fdm_compile``,
            ``fdm_members``).
        checkpoint: FDM checkpoint (``.pt``).
        device: torch device for the model.

    Returns:
        ``(FDMDynamics, ProprioHistory)``; push every odometry sample into the history and pass
        ``history.array()`` as ``NavState.history``.

    Raises:
        KeyError: ``dt``, ``fdm_compile`` or ``fdm_members`` is missing.
        ValueError: the checkpoint's step differs from ``dt`` (or the checkpoint is invalid).
    """
    _require(p, ("dt", "fdm_compile", "fdm_members"), "the FDM dynamics")
    from morobot.fdm.dynamics import FDMDynamics
    from morobot.fdm.history import ProprioHistory

    dyn = FDMDynamics.from_checkpoint(checkpoint, device=device, compile=bool(p["fdm_compile"]),
                                      members=int(p["fdm_members"]))
    if abs(dyn.dt - float(p["dt"])) > 1e-9:
        raise ValueError(f"dt ({p['dt']}) differs from the FDM checkpoint's step ({dyn.dt})")
    history = ProprioHistory(length=int(dyn.config.history_length), dt=float(dyn.config.history_dt),
                             features=dyn.config.history_features)
    return dyn, history


def make_fdm_planner_dynamics(
    p: Mapping[str, Any], checkpoint: str | Path, device: str = "cpu"
) -> tuple[Any, Any]:
    """The FDM as the planner node drives it: checked against the horizon, with the map risk.

    With ``fdm_map_risk`` true the model is wrapped in a :class:`MapRiskOverlay`, so a rollout's
    risk is the larger of the FDM's failure probability and the geometric terrain risk (the
    kinematic model's, built from the same parameters) along the FDM's predicted path.

    Returns:
        ``(dynamics, ProprioHistory)`` as :func:`make_fdm_dynamics`.

    Raises:
        KeyError: ``dt``, ``horizon``, ``fdm_map_risk``, ``fdm_map_risk_cumulative``, ``fdm_map_risk_commanded``,
            ``fdm_poses`` or (with the map risk) a parameter of :data:`KINEMATIC_PARAMS` is missing.
        ValueError: the checkpoint is invalid, its step differs from ``dt``, its trained horizon
            is shorter than ``horizon``, or ``fdm_poses`` is false without ``fdm_map_risk``.
    """
    _require(p, ("horizon", "fdm_map_risk", "fdm_map_risk_cumulative", "fdm_map_risk_commanded", "fdm_poses",
                 "num_samples"), "the FDM planner dynamics")
    if not bool(p["fdm_poses"]) and not bool(p["fdm_map_risk"]):
        raise ValueError("fdm_poses false plans on the kinematic poses with the map risk: it needs fdm_map_risk true")
    dyn, history = make_fdm_dynamics(p, checkpoint, device)
    if int(p["horizon"]) > dyn.config.horizon:
        raise ValueError(f"horizon ({p['horizon']}) exceeds the FDM's trained horizon ({dyn.config.horizon})")
    if dyn.compiled:  # compile now, not in the first control cycles: the samples and MPPI's final rollout
        for samples in (int(p["num_samples"]), 1):
            dyn.warm_up(samples, int(p["horizon"]))
    if bool(p["fdm_map_risk"]):
        return MapRiskOverlay(dyn, make_kinematic_model(p), bool(p["fdm_map_risk_cumulative"]),
                              bool(p["fdm_map_risk_commanded"]), bool(p["fdm_poses"])), history
    return dyn, history


def fdm_checkpoint(p: Mapping[str, Any]) -> str:
    """The checkpoint ``dynamics: fdm`` loads: ``fdm_checkpoint``, empty = the walking ANYmal's shipped one."""
    from morobot import paths

    return p["fdm_checkpoint"] or str(paths.default_fdm_checkpoint())


def make_dynamics(p: Mapping[str, Any], device: str = "cpu") -> tuple[Any, Any]:
    """The planner's dynamics model from ``dynamics`` (and :func:`fdm_checkpoint`).

    Returns:
        ``(model, history)``: the history is None for the kinematic model.
    """
    if p["dynamics"] == "kinematic":
        return make_kinematic_model(p), None
    return make_fdm_planner_dynamics(p, fdm_checkpoint(p), device)


def risk_stop_margin(p: Mapping[str, Any]) -> Optional[float]:
    """The ``margin`` argument of :func:`morobot.planning.cost.should_stop` for these parameters.

    ``risk_margin`` when ``risk_relative`` is true, else ``None`` (the absolute rule); a parameter
    set without ``risk_relative`` uses the absolute rule.
    """
    return float(p["risk_margin"]) if p.get("risk_relative", False) else None


def make_mppi_config(p: Mapping[str, Any], device: str = "cpu") -> MPPIConfig:
    """The MPPI configuration of the planner node.

    The warm start moves by one control period (``1 / control_rate``), not by one model step;
    ``seed < 0`` means nondeterministic.

    Raises:
        KeyError: a parameter of :data:`MPPI_PARAMS` is missing.
        ValueError: invalid values (see :class:`MPPIConfig`).
    """
    _require(p, MPPI_PARAMS, "the MPPI planner")
    seed = int(p["seed"])
    return MPPIConfig(
        num_samples=int(p["num_samples"]), horizon=int(p["horizon"]), dt=float(p["dt"]),
        temperature=float(p["temperature"]), sigma=tuple(float(v) for v in p["sigma"]),
        u_min=tuple(float(v) for v in p["u_min"]), u_max=tuple(float(v) for v in p["u_max"]),
        noise_beta=float(p["noise_beta"]), iterations=int(p["iterations"]),
        seed=None if seed < 0 else seed, keep_rollouts=int(p["rollouts_shown"]),
        shift_steps=min(1.0, 1.0 / (float(p["control_rate"]) * float(p["dt"]))), device=device)


def make_cost_to_go(p: Mapping[str, Any], risk_model: Any = None) -> Optional[CostToGo]:
    """The geodesic cost-to-go of the planner node (None when ``cost_to_go`` is false).

    Args:
        p: planner parameters.
        risk_model: a :class:`KinematicModel` whose cached risk map is shared (the planner's own
            when it plans with the kinematic model); otherwise one is built from ``p`` so that a
            learned model's planner sees obstacles exactly as the geometric risk defines them.

    Raises:
        KeyError: a parameter of :data:`COST_TO_GO_PARAMS` is missing.
    """
    _require(p, COST_TO_GO_PARAMS, "the cost-to-go")
    if not p["cost_to_go"]:
        return None
    if not isinstance(risk_model, KinematicModel):
        risk_model = make_kinematic_model(p)
    return CostToGo(risk_model, CostToGoConfig(
        lethal_risk=float(p["ctg_lethal_risk"]), risk_cost=float(p["ctg_risk_cost"]),
        inflation_radius=float(p["ctg_inflation_radius"]), inflation_cost=float(p["ctg_inflation_cost"]),
        exit_penalty=float(p["ctg_exit_penalty"]), downsample=int(p["ctg_downsample"])))


def make_navigation_cost(p: Mapping[str, Any], risk_model: Any = None) -> NavigationCost:
    """The navigation cost of the planner node (with the cost-to-go when enabled).

    Raises:
        KeyError: a parameter of :data:`COST_PARAMS` or :data:`COST_TO_GO_PARAMS` is missing.
        ValueError: invalid values (see :class:`NavigationCostConfig`).
    """
    _require(p, COST_PARAMS, "the navigation cost")
    values = {name: float(p[name]) for name in COST_PARAMS if name != "goal_tolerance"}
    values["risk_relative"] = bool(p["risk_relative"])
    values["arrival_radius"] = float(p["goal_tolerance"])  # the goal region the node's reached check uses
    return NavigationCost(NavigationCostConfig(**values),
                          cost_to_go=make_cost_to_go(p, risk_model))


def make_planner(p: Mapping[str, Any], dynamics: DynamicsModel, device: str = "cpu") -> MPPI:
    """MPPI over ``dynamics`` with the node's configuration and cost.

    Raises:
        KeyError: a parameter of :data:`MPPI_PARAMS` or :data:`COST_PARAMS` is missing.
        ValueError: invalid values, or ``dynamics.dt`` differs from ``dt``.
    """
    risk_model = dynamics.geometric if isinstance(dynamics, MapRiskOverlay) else dynamics
    return MPPI(dynamics, make_navigation_cost(p, risk_model=risk_model), make_mppi_config(p, device=device))


def make_blocked_monitor(p: Mapping[str, Any]) -> Optional[BlockedMotionMonitor]:
    """The planner node's blocked-motion monitor, or ``None`` when ``blocked_marking`` is false.

    A parameter set without ``blocked_marking`` (e.g. an older parameters file) gets no monitor.

    Raises:
        KeyError: ``blocked_marking`` is true and a parameter of :data:`BLOCKED_PARAMS` is missing.
        ValueError: invalid values (see :class:`~morobot.planning.blocked.BlockedMotionConfig`).
    """
    if not p.get("blocked_marking", False):
        return None
    _require(p, BLOCKED_PARAMS, "the blocked-motion monitor")
    return BlockedMotionMonitor(BlockedMotionConfig(
        **{name[len("blocked_"):]: float(p[name]) for name in BLOCKED_PARAMS[1:]}))
