"""The navigation nodes' parameters, each defined once (default, range, description).

:class:`PlannerParams` is the ``mppi_planner`` node's table (the ``elevation_mapper``'s is
:class:`morobot.mapping.params.MapperParams`). The nodes declare them (:func:`morobot.params.specs`), the offline
evaluation reads the same names from a parameters YAML (:func:`load`), and ``config/*.yaml`` only
overrides: a key that is not a field here is an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from morobot.params import load as params_load
from morobot.params import param


@dataclass(frozen=True)
class PlannerParams:
    """``mppi_planner``: MPPI over a dynamics model, its cost and the safety rules around it."""

    # loop and safety
    control_rate: float = param(10.0, "planning/command rate (Hz, node clock)", 0.5, 100.0)
    goal_tolerance: float = param(0.3, "goal reached within this distance (m)", 0.05, 5.0)
    max_odom_age: float = param(0.4, "odometry older than this (s, by arrival on the node clock) stops the robot; "
                                "with one control period on top (0.1 s at 10 Hz) the robot is stopped within 0.5 s "
                                "of the last fresh odometry", 0.05, 10.0, tighten="down")
    max_map_age: float = param(2.0, "an elevation map older than this (s, by arrival on the node clock, plus how "
                               "old its stamp was on arrival) stops the robot", 0.1, 30.0, tighten="down")
    max_stamp_lead: float = param(0.25, "an input stamped further than this (s) ahead of the node clock on arrival "
                                  "is rejected (a clock from the future would defeat the age checks)",
                                  0.0, 5.0, tighten="down")
    speed_limit: tuple = param((1.0, 0.5, 1.0), "hard ceiling on |vx|, |vy|, |wz| of every command (m/s, rad/s); "
                               "u_min/u_max must lie within it", read_only=True)
    accel_limit: tuple = param((0.0, 0.0, 0.0), "largest change per second of a moving command's vx, vy, wz "
                               "(m/s², rad/s²; 0: that axis unlimited), as a velocity smoother; a stop is never "
                               "delayed", read_only=True)
    known_radius: float = param(1.5, "radius (m) around the robot in which the map must be known", 0.3, 10.0)
    min_known_fraction: float = param(0.25, "stop when less than this fraction of the map within known_radius is "
                                      "known (sensor lost, all-unknown map)", 0.0, 1.0, tighten="up")
    risk_threshold: float = param(0.5, "stop when the best plan's peak risk exceeds this", 0.0, 1.0, tighten="down")
    risk_stop_window: float = param(1.0, "seconds of the best plan the safety stop checks (0 = all of it)",
                                    0.0, 60.0)
    risk_relative: bool = param(True, "stop and penalise only plans riskier than standing still by risk_margin "
                                "(false: any plan above risk_threshold)")
    risk_margin: float = param(0.05, "allowed risk above standing still's (risk_relative)", 0.0, 1.0, tighten="down")
    goal_risk_radius: float = param(0.6, "within this distance (m) of the goal a plan may be as risky as the goal's "
                                    "own spot plus risk_margin (the cost, the cost-to-go and the stop accept it): a "
                                    "goal on rough ground is reached, not hovered short of; 0 = off", 0.0, 5.0,
                                    tighten="down")
    goal_risk_cap: float = param(0.95, "the goal's risk is accepted up to this, never above (a goal on an obstacle "
                                 "stays out of reach)", 0.0, 1.0, tighten="down")
    odom_frame: str = param("odom", "frame of odometry, map and goals")
    base_frame: str = param("base", "robot body frame (the header of stamped commands)")
    cmd_vel_stamped: bool = param(True, "publish geometry_msgs/TwistStamped on cmd_vel (Nav2's default on Kilted); "
                                  "false: Twist", read_only=True)
    # MPPI
    num_samples: int = param(1024, "sampled command sequences per iteration", 16, 16384, read_only=True)
    horizon: int = param(10, "steps per sequence", 2, 100, read_only=True)
    dt: float = param(0.5, "seconds per step", 0.05, 2.0, read_only=True)
    iterations: int = param(1, "MPPI iterations per cycle", 1, 10)
    temperature: float = param(3.0, "MPPI temperature λ", 1e-4, 1e4)
    sigma: tuple = param((0.4, 0.2, 0.6), "sampling std of (vx, vy, wz)")
    u_min: tuple = param((-0.5, -0.5, -1.0), "lower command bounds (vx, vy, wz); each <= 0 and >= -speed_limit")
    u_max: tuple = param((1.0, 0.5, 1.0), "upper command bounds (vx, vy, wz); each >= 0 and <= speed_limit")
    noise_beta: float = param(0.6, "temporal correlation of sampling noise (0 = white)", 0.0, 0.99)
    seed: int = param(0, "random seed (-1: nondeterministic)", -1, 2**31 - 1, read_only=True)
    rollouts_shown: int = param(32, "rollouts published on /mppi/rollouts", 0, 512)
    # dynamics
    dynamics: str = param("kinematic", "dynamics model", choices=("kinematic", "fdm"), read_only=True)
    fdm_checkpoint: str = param("", "FDM checkpoint (dynamics fdm; empty = the walking ANYmal's, "
                                "models/fdm/fdm_legged.pt)", read_only=True)
    device: str = param("cpu", "torch device of the planner: cpu, cuda or cuda:N (a GPU; refused at start-up where "
                        "there is none)", read_only=True)
    fdm_compile: bool = param(False, "dynamics fdm: run the model's batched rollout through torch.compile, compiled "
                              "at start-up (about a third less time per cycle on CPU; needs a C++ compiler and "
                              "10-60 s to start, less from TorchInductor's cache; runs eagerly where it fails)",
                              read_only=True)
    fdm_members: int = param(2, "dynamics fdm: predictor ensemble members used, at most the checkpoint's first N "
                             "(0 = all): a rollout costs about N / ensemble of the predictor's time; the spread "
                             "(uncertainty) is taken over fewer members, none with one", 0, 64, read_only=True)
    fdm_map_risk: bool = param(True, "dynamics fdm: also count the geometric terrain risk at the FDM's predicted "
                               "poses (covers the depth cameras' blind spots)", read_only=True)
    fdm_map_risk_cumulative: bool = param(True, "dynamics fdm: the map risk of a step is its running maximum along "
                                          "the predicted path (false: each step's own, as the kinematic model "
                                          "scores its steps, so plans that leave a risky spot are preferred)",
                                          read_only=True)
    fdm_map_risk_commanded: bool = param(False, "dynamics fdm: the map risk also counts the commanded path (the "
                                         "kinematic planner's risk), so the FDM planner is at least as cautious "
                                         "about mapped terrain as the kinematic one", read_only=True)
    fdm_poses: bool = param(True, "dynamics fdm: plan on the FDM's predicted poses (false: on the commanded "
                            "motion, the kinematic model's poses and risk, with the FDM only adding its failure "
                            "probability; needs fdm_map_risk)", read_only=True)
    footprint_radius: float = param(0.45, "robot footprint radius for geometric risk (m)", 0.05, 3.0)
    step_limit: float = param(0.13, "highest step the robot climbs (m): its geometric risk is 0.5 there. The default "
                              "is the simulated ANYmal's learned gait (session 31), which climbs 10 cm risers with 6 % "
                              "falls and 13 cm with 56 % (docs/locomotion.md; risk 0.09 at 10 cm, 0.32 at 12 cm, 0.82 "
                              "at 15 cm; tuned in session 36, docs/navigation_eval.md); the rigid-body robot "
                              "(locomotion abstract) climbs 0.22 m and was planned with 0.25, KinematicModel's "
                              "library default; a real robot: what its own controller climbs", 0.01, 2.0)
    slope_limit_deg: float = param(30.0, "steepest slope the robot climbs (deg)", 1.0, 89.0)
    unknown_risk: float = param(0.3, "risk of unknown map cells", 0.0, 1.0)
    # cost
    goal_weight: float = param(20.0, "terminal goal-distance weight", 0.0, 1e4)
    progress_weight: float = param(10.0, "running goal-distance weight", 0.0, 1e4)
    heading_weight: float = param(10.0, "goal-heading weight (near the goal)", 0.0, 1e4)
    risk_weight: float = param(10.0, "expected-risk weight", 0.0, 1e4)
    collision_penalty: float = param(1000.0, "penalty when a step's risk exceeds risk_penalty_threshold", 0.0, 1e6)
    risk_penalty_threshold: float = param(0.5, "a plan pays collision_penalty where a step's risk exceeds this (the "
                                          "cost's threshold; the safety stop's is risk_threshold)", 0.0, 1.0)
    uncertainty_weight: float = param(5.0, "model-uncertainty weight (FDM ensemble)", 0.0, 1e4)
    failure_weight: float = param(0.0, "dynamics fdm: weight of the learned model's own probability of having "
                                  "failed by the horizon's end (the expected loss of a failure; risk_weight counts "
                                  "the larger of it and the map's geometric risk)", 0.0, 1e4)
    arrival_weight: float = param(10.0, "cost of the share of the horizon a plan spends farther than goal_tolerance "
                                  "from the goal: near it, plans that arrive sooner win (docs/planner.md, "
                                  "\"Arriving\")", 0.0, 1e4)
    smoothness_weight: float = param(2.0, "command-change weight", 0.0, 1e4)
    backward_weight: float = param(2.0, "backward-motion weight", 0.0, 1e4)
    alignment_weight: float = param(20.0, "weight of the heading error against the direction of travel (per rad, "
                                    "averaged over the predicted steps)", 0.0, 1e4)
    alignment_radius: float = param(2.0, "goal distance (m) from which a step's heading error has full weight "
                                    "(none within half of it)", 0.01, 100.0)
    # geodesic cost-to-go (goal distance around obstacles instead of straight-line)
    cost_to_go: bool = param(True, "goal distance = geodesic cost-to-go over the map (false: Euclidean)")
    ctg_risk_cost: float = param(2.0, "cost-to-go: extra cost per metre per unit of risk", 0.0, 100.0)
    ctg_lethal_risk: float = param(0.5, "cost-to-go: cells whose footprint risk exceeds this are untraversable to "
                                   "the goal-distance field (a guide for the cost only; the safety stop keeps "
                                   "risk_threshold); must be above unknown_risk", 0.0, 1.0)
    ctg_inflation_radius: float = param(0.3, "cost-to-go: inflation distance around untraversable cells (m)",
                                        0.0, 3.0)
    ctg_inflation_cost: float = param(1.0, "cost-to-go: extra cost per metre next to untraversable cells",
                                      0.0, 100.0)
    ctg_exit_penalty: float = param(2.0, "cost-to-go: penalty (m) for a way round outside the map", 0.0, 100.0)
    ctg_downsample: int = param(2, "cost-to-go: solve on n x n blocks of map cells (the planner's deployed value; "
                                "CostToGoConfig's library default is 1, full resolution)", 1, 4)
    # obstacles marked where commanded motion made no progress (morobot.planning.blocked)
    blocked_marking: bool = param(True, "mark an obstacle in the map where commanded motion is blocked")
    blocked_min_command: float = param(0.15, "blocked marking: planar command speed judged (m/s)", 0.01, 5.0)
    blocked_max_ratio: float = param(0.25, "blocked marking: progress below this fraction of the command is "
                                     "blocked", 0.01, 0.99)
    blocked_duration: float = param(1.5, "blocked marking: seconds of blocking before marking", 0.1, 60.0)
    blocked_clearance: float = param(0.9, "blocked marking: distance (m) from the robot centre to the obstacle's "
                                     "edge (keep it above footprint_radius + 0.4 so the robot's own spot stays "
                                     "below the risk threshold)", 0.05, 5.0)
    blocked_radius: float = param(0.2, "blocked marking: obstacle radius (m)", 0.01, 2.0)
    blocked_height: float = param(0.5, "blocked marking: obstacle top above the base height (m)", 0.01, 5.0)
    blocked_lifetime: float = param(60.0, "blocked marking: seconds an obstacle is kept", 1.0, 3600.0)
    blocked_max_gap: float = param(0.4, "blocked marking: a longer gap (s) between control cycles restarts the "
                                   "detection (a late planner lets the robot stop by itself)", 0.05, 10.0)

    @staticmethod
    def cross_check(p: dict) -> Optional[str]:
        """Checks across parameters (reason or None)."""
        for name in ("sigma", "u_min", "u_max", "speed_limit", "accel_limit"):
            v = p[name]
            if len(v) != 3 or not all(isinstance(x, (int, float)) and math.isfinite(float(x)) for x in v):
                return f"{name} must be 3 finite numbers"
        if p["ctg_lethal_risk"] <= p["unknown_risk"]:
            return "ctg_lethal_risk must be above unknown_risk (unknown cells would be walls to the cost-to-go)"
        if any(s < 0 for s in p["sigma"]):
            return "sigma must be non-negative"
        if not re.fullmatch(r"cpu|cuda(:\d+)?", str(p.get("device", "cpu"))):
            return f"device must be cpu, cuda or cuda:N, got {p.get('device')!r}"
        if any(s < 0 for s in p["speed_limit"]):
            return "speed_limit must be non-negative"
        if any(a < 0 for a in p["accel_limit"]):
            return "accel_limit must be non-negative (0: that axis unlimited)"
        if any(lo > hi for lo, hi in zip(p["u_min"], p["u_max"])):
            return "u_min must not exceed u_max"
        if any(lo > 0.0 for lo in p["u_min"]) or any(hi < 0.0 for hi in p["u_max"]):
            return "u_min must be <= 0 and u_max >= 0 on every axis (the robot must be able to stand still)"
        over = [i for i, (lo, hi, lim) in enumerate(zip(p["u_min"], p["u_max"], p["speed_limit"]))
                if hi > lim + 1e-9 or lo < -lim - 1e-9]
        if over:
            axes = ", ".join(("vx", "vy", "wz")[i] for i in over)
            return (f"u_min/u_max exceed speed_limit {list(p['speed_limit'])} on {axes} (the ceiling is read-only; "
                    "raise it in the parameters file at start-up)")
        return None


def load(cls: type, node: str, params_file: Optional[str | Path] = None) -> dict[str, Any]:
    """:func:`morobot.params.load` with ``config/navigate.yaml`` as the default file."""
    from morobot.paths import config_path

    return params_load(cls, node, params_file if params_file is not None else config_path("navigate.yaml"))
