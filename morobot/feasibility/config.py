"""Settings of the feasibility checker; defaults follow the FeasibleCap reference figures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class IkConfig:
    """Damped-least-squares IK.

    Attributes:
        damping: lambda^2 in ``dq = J^T (J J^T + lambda^2 I)^-1 e``.
        max_iterations: iterations per attempt.
        max_step: largest joint change per iteration (rad); larger steps are scaled down.
        position_tolerance: accepted TCP position error (m).
        rotation_tolerance: accepted TCP orientation error (rad).
        restarts: extra attempts from the ready pose when the warm-started one fails.
        library_size: configurations in the seed library (drawn once within the limits, seeded).
        library_starts: attempts from the library configurations whose tool poses are nearest the
            target, after the restarts.
        random_restarts: further attempts, each from a configuration drawn uniformly within the
            joint limits (a seeded generator: the same calls give the same answers), until one
            succeeds.
        nullspace_step: largest joint change per iteration (rad) of the warm start's secondary task
            that moves the joints towards the middle of their ranges without moving the tool (0: off).
        patience: a restart (not the warm start) is abandoned when its error has not fallen by 1 %
            for this many iterations (0: never).
        seed: seed of those draws and of the library.
        analytic: solve in closed form where the arm has one (the Panda's or the UR's geometry, checked on
            the URDF: :mod:`morobot.feasibility.analytic_ik`, :mod:`morobot.feasibility.ur_ik`), the
            numerical solver only when it finds nothing.
        q7_step: spacing of the Panda closed form's sweep over the seventh joint (rad).
        alternatives: in demo mode, when the solution fails a static check (singularity, self or scene
            collision), up to this many other solutions are sought (the closed form's branches nearest the
            first solution where the arm has one, else DLS from the seed library's nearest configurations)
            and the first that passes is taken: the pose is feasible if any
            configuration reaching it is (0: report the first solution's verdict).
        warm_reach: where the closed form backs it up, the warm start runs first only for targets within
            this distance of its tool pose (m, plus 0.1 m per rad of rotation): a farther one (a new stream,
            a cold start) goes to the closed form at once.
        hold_limits: a joint at a limit that a step pushes further is held and the step solved again with
            the other joints (a redundant arm slides along the limit instead of stalling there).
        warm_iterations: where the closed form backs it up, the warm start's iterations (a warm start
            along a stream converges in a few; one that needs more is handed to the closed form, whose
            cost is bounded).
        warm_jump: where the closed form backs it up, a converged warm start that moved some joint
            farther than this (rad) is compared with the closed form's solution nearest the warm start and
            the one with the smaller largest joint change is taken (near a wrist singularity the warm
            start can slide onto the neighbouring branch while a nearer solution exists).

    The defaults were chosen by measurement (docs/feasibility.md, "IK"): FeasibleCap's DLS
    (lambda^2 0.01, 30 iterations, 0.15 rad steps, one restart) solved 65 % of reachable poses from a
    cold start; lambda^2 1e-4, 0.5 rad steps, 40 iterations and 8 random restarts solve 99.5 %.
    """

    damping: float = 1e-4
    max_iterations: int = 40
    max_step: float = 0.5
    position_tolerance: float = 0.005
    rotation_tolerance: float = 0.05
    restarts: int = 1
    library_size: int = 4096
    library_starts: int = 4
    random_restarts: int = 8
    patience: int = 5
    nullspace_step: float = 0.05
    seed: int = 0
    analytic: bool = True
    q7_step: float = 0.05
    warm_iterations: int = 12
    warm_reach: float = 0.15
    warm_jump: float = 0.3
    hold_limits: bool = True
    alternatives: int = 6


@dataclass(frozen=True)
class SceneConfig:
    """Point cloud -> obstacle octree, all in ``panda_link0``.

    Attributes:
        voxel_size: edge of the obstacle cubes (m); every kept point lies inside one cube.
        workspace_min: lower corner of the box where points are kept (m).
        workspace_max: upper corner of that box (m).
        table_min: lower corner of the table box, or None for no table (m).
        table_max: upper corner of the table box (m).
        table_clearance: points within this distance of the table box are table points; the
            table box stands for them (m).
        robot_padding: points closer than this to the robot surface (at the configuration given
            to ``update_scene``) are the robot's own points and dropped (m).
        ignored_links: links never checked against the scene (e.g. the fingers while grasping).
    """

    voxel_size: float = 0.02
    workspace_min: tuple[float, float, float] = (-1.0, -1.2, -0.3)
    workspace_max: tuple[float, float, float] = (1.3, 1.2, 1.5)
    table_min: tuple[float, float, float] | None = (-0.25, -0.7, -0.05)
    table_max: tuple[float, float, float] | None = (0.9, 0.7, 0.0)
    table_clearance: float = 0.015
    robot_padding: float = 0.03
    ignored_links: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeasibilityConfig:
    """All checker settings (SI units, radians).

    Attributes:
        robot: the arm, a name from ``morobot.robots.ARMS`` (``panda``, ``ur5``); its URDF/SRDF
            give joints, limits, links and collision pairs.
        urdf: the arm's URDF file instead of example-robot-data's ("" = the named arm's).
        srdf: the arm's SRDF file (set with ``urdf``).
        ee_frame: the frame whose pose ``check_ee_pose`` targets ("" = the arm's tool frame,
            ``panda_hand_tcp`` / ``tool0``).
        finger_opening: opening of each finger (m) used for the finger collision geometry.
        limit_margin: joint limits are tightened by this much on both sides (rad).
        velocity_scale: allowed joint rate as a fraction of the URDF velocity limits.
        rate_window: number of recent frames in the rate window.
        rate_min_violations: the rate check fails when this many frames of the window violate.
        rate_max_dt: frames further apart than this (s) are not rated; the window restarts.
        manipulability_infeasible: below this Yoshikawa manipulability the pose is infeasible.
        manipulability_warning: below this it is a warning.
        wrist_warning_angle: a warning when the joint-5 and joint-7 axes are closer than this to
            parallel (rad), i.e. joint 6 near 0 or pi.
        self_margin: minimum clearance between robot links (m).
        scene_margin: minimum clearance between robot and obstacles / table (m).
        debounce_frames: frames a new feedback level must persist before it is shown.
        early_exit: stop at the first failing check (cheap checks run first).
        ik: IK settings.
        scene: point cloud settings.
    """

    robot: str = "panda"
    urdf: str = ""
    srdf: str = ""
    ee_frame: str = ""
    finger_opening: float = 0.04
    limit_margin: float = 0.01
    velocity_scale: float = 0.5
    rate_window: int = 5
    rate_min_violations: int = 4
    rate_max_dt: float = 0.5
    manipulability_infeasible: float = 1e-5
    manipulability_warning: float = 5e-4
    wrist_warning_angle: float = 0.1
    self_margin: float = 0.01
    scene_margin: float = 0.01
    debounce_frames: int = 5
    early_exit: bool = True
    ik: IkConfig = field(default_factory=IkConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)

    def __post_init__(self) -> None:
        validate(self)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _finite_numbers(obj) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
            _check(math.isfinite(value), f"{f.name} must be finite, got {value}")


def validate(cfg: FeasibilityConfig) -> None:
    """Raise ValueError with a clear message when a setting is out of range."""
    for obj in (cfg, cfg.ik, cfg.scene):
        _finite_numbers(obj)
    _check(bool(cfg.urdf) == bool(cfg.srdf), "set both urdf and srdf, or neither")
    _check(0.0 <= cfg.finger_opening <= 0.04, "finger_opening must be in [0, 0.04] m")
    _check(cfg.limit_margin >= 0.0, "limit_margin must be >= 0")
    _check(0.0 < cfg.velocity_scale <= 1.0, "velocity_scale must be in (0, 1]")
    _check(1 <= cfg.rate_min_violations <= cfg.rate_window,
           "need 1 <= rate_min_violations <= rate_window")
    _check(cfg.rate_max_dt > 0.0, "rate_max_dt must be > 0")
    _check(0.0 <= cfg.manipulability_infeasible <= cfg.manipulability_warning,
           "need 0 <= manipulability_infeasible <= manipulability_warning")
    _check(0.0 <= cfg.wrist_warning_angle < math.pi / 2, "wrist_warning_angle must be in [0, pi/2)")
    _check(cfg.self_margin >= 0.0 and cfg.scene_margin >= 0.0, "margins must be >= 0")
    _check(cfg.debounce_frames >= 1, "debounce_frames must be >= 1")
    ik = cfg.ik
    _check(ik.damping > 0.0 and ik.max_iterations >= 1 and ik.max_step > 0.0 and ik.restarts >= 0,
           "IK needs damping > 0, max_iterations >= 1, max_step > 0, restarts >= 0")
    _check(ik.position_tolerance > 0.0 and ik.rotation_tolerance > 0.0, "IK tolerances must be > 0")
    _check(0.0 <= ik.nullspace_step <= 0.5, "IK nullspace_step must be in [0, 0.5] rad")
    _check(0.005 <= ik.q7_step <= 0.5, "IK q7_step must be in [0.005, 0.5] rad")
    _check(ik.warm_iterations >= 1 and ik.warm_reach >= 0.0, "IK warm_iterations must be >= 1, warm_reach >= 0")
    _check(ik.warm_jump > 0.0, "IK warm_jump must be > 0 rad")
    _check(0 <= ik.alternatives <= ik.library_size, "IK alternatives must be in [0, library_size]")
    _check(ik.random_restarts >= 0 and ik.patience >= 0, "IK random_restarts and patience must be >= 0")
    _check(0 <= ik.library_starts <= ik.library_size <= 100_000,
           "IK needs 0 <= library_starts <= library_size <= 100000")
    sc = cfg.scene
    _check(sc.voxel_size > 0.0, "voxel_size must be > 0")
    _check(all(lo < hi for lo, hi in zip(sc.workspace_min, sc.workspace_max)),
           "workspace_min must be below workspace_max on every axis")
    _check((sc.table_min is None) == (sc.table_max is None), "set both table_min and table_max, or neither")
    if sc.table_min is not None:
        _check(all(lo < hi for lo, hi in zip(sc.table_min, sc.table_max)),
               "table_min must be below table_max on every axis")
    _check(sc.table_clearance >= 0.0 and sc.robot_padding >= 0.0, "clearance and padding must be >= 0")


def config_from_dict(values: dict) -> FeasibilityConfig:
    """Build a config from a (possibly nested or dotted) mapping, e.g. ROS parameters.

    ``{"self_margin": 0.02, "ik": {"damping": 0.02}, "scene.voxel_size": 0.03}``; lists become
    tuples. Unknown keys raise ValueError naming them.
    """
    nested: dict[str, dict] = {"ik": {}, "scene": {}}
    top: dict = {}
    for key, value in values.items():
        value = tuple(value) if isinstance(value, list) else value
        head, _, rest = key.partition(".")
        if head in nested and isinstance(value, dict):
            nested[head].update({k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
        elif head in nested and rest:
            nested[head][rest] = value
        elif head in nested:
            raise ValueError(f"{head!r} must be a mapping of {head} settings, got {value!r}")
        else:
            top[key] = value
    known = {"ik": IkConfig, "scene": SceneConfig, "": FeasibilityConfig}
    for name, cls in known.items():
        given = top if name == "" else nested[name]
        unknown = set(given) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown feasibility settings{' in ' + name if name else ''}: {sorted(unknown)}")
    return FeasibilityConfig(**top, ik=IkConfig(**nested["ik"]), scene=SceneConfig(**nested["scene"]))
