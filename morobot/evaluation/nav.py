"""Navigation benchmark: seeded scenarios driven by the MPPI planner, in lock-step or through ROS.

Two execution modes share the scenario list (:mod:`morobot.evaluation.scenarios`) and the metrics
(:mod:`morobot.evaluation.metrics`):

``lockstep``
    One process steps the pure components the nodes wrap, at the graph's rates: ``AnymalSim``
    (``step`` = 0.02 s, odometry every step), its depth sensor (``points_rate``, 10 Hz) →
    :func:`~morobot.mapping.elevation.transform_points` → :class:`ElevationMapper` (published at
    ``publish_rate``, 5 Hz) → MPPI (``control_rate``, 10 Hz) → ``set_command``. Parameters are
    read from the ``ros__parameters`` of ``mujoco_sim``, ``elevation_mapper`` and ``mppi_planner``
    in ``config/navigate.yaml`` and the components are built with
    :mod:`morobot.navigation.factory`, exactly as the nodes build them. The planner cycle mirrors
    the node's: stop once within ``goal_tolerance``, mark obstacles where the commanded motion is
    blocked (``blocked_marking``, :func:`morobot.navigation.factory.make_blocked_monitor`) and plan
    on the marked map, stop by the node's rule (:func:`morobot.planning.cost.should_stop`) when the
    best plan is too risky, otherwise execute the first command. There is no message latency, no map/odometry staleness and no PointCloud2 round trip of the map. Deterministic; much faster
    than real time. The legged robot is dropped onto the terrain at the start; the goal waits until it
    has stood still (:mod:`morobot.navigation.settle`, at most 2 s), and a fall before the goal is an
    ``error`` of the start, not an outcome of the planner.

    Collisions are read from MuJoCo contacts after every control step: a robot geom touching a
    box, a non-foot robot geom touching the terrain, or a foot pressed against the terrain for
    at least ``foot_contact_time`` (the feet hover 3 cm above the ground, so only unclimbable
    edges keep them in contact).

``graph``
    The real ``navigate`` graph (``mujoco_sim``, ``elevation_mapper``, ``mppi_planner`` as
    separate processes on DDS, :class:`morobot.launcher.GraphProcesses`) with the supervisor of
    :mod:`morobot.demo`; each scenario's world is written as a world YAML the sim node loads.
    Real time (``rate``); collisions are judged from the recorded odometry with
    :func:`~morobot.evaluation.metrics.footprint_contacts` (also reported in lock-step, for
    comparison).

Results are appended to ``<out>/results.jsonl`` (one JSON object per scenario, planner and mode;
the file is rewritten atomically after every scenario, and existing entries are skipped when
resuming).

Length: both execution modes (lock-step and graph) share the scenario record, the outcome rules and the results file, which keeps their figures comparable.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from morobot.fileio import atomic_write_text
from morobot.parallel import run_tasks
from morobot.procutil import die_with_parent
from morobot.evaluation.metrics import (OutcomeRules, classify, fall_terrain, footprint_contacts, path_length,
                                        terrain_change_before)
from morobot.evaluation.scenarios import Scenario
from morobot.navigation.settle import SettleGate, SettleRule

MODES = ("lockstep", "graph")
ROBOTS = ("abstract", "legged")
PLANNERS = ("kinematic", "fdm")


@dataclass(frozen=True)
class PlannerSpec:
    """Which dynamics model the MPPI planner drives.

    Attributes:
        name: ``"kinematic"`` or ``"fdm"``.
        checkpoint: FDM checkpoint (required for ``"fdm"``).
    """

    name: str
    checkpoint: Optional[str] = None

    def __post_init__(self) -> None:
        if self.name not in PLANNERS:
            raise ValueError(f"planner must be one of {PLANNERS}, got {self.name!r}")
        if self.name == "fdm" and not self.checkpoint:
            raise ValueError("the fdm planner needs a checkpoint")


@dataclass(frozen=True)
class NavParams:
    """The ``ros__parameters`` of the three navigation nodes.

    Attributes:
        sim: ``mujoco_sim`` parameters (``step``, ``points_rate``, ``cmd_timeout`` and, for the legged
            robot, ``locomotion_policy`` are used, as the simulator node uses them).
        mapper: ``elevation_mapper`` parameters.
        planner: ``mppi_planner`` parameters.
        source: the parameters file they came from.
    """

    sim: dict
    mapper: dict
    planner: dict
    source: str = ""

    @classmethod
    def load(cls, params_file: Optional[str | Path] = None) -> "NavParams":
        """Read the three node sections of a parameters YAML (default ``config/navigate.yaml``).

        Raises:
            FileNotFoundError: no such file.
            KeyError: a node section or a parameter the lock-step loop needs is missing.
        """
        from morobot.mapping.params import MapperParams
        from morobot.navigation.params import PlannerParams, load
        from morobot.params import load_section
        from morobot.paths import config_path

        path = Path(params_file) if params_file else config_path("navigate.yaml")
        sim = load_section("mujoco_sim", path)
        mapper = load(MapperParams, "elevation_mapper", path)
        planner = load(PlannerParams, "mppi_planner", path)
        for section, names in ((sim, ("step", "points_rate", "cmd_timeout")), (mapper, ("publish_rate",)),
                               (planner, ("control_rate", "goal_tolerance", "risk_threshold"))):
            missing = [n for n in names if n not in section]
            if missing:
                raise KeyError(f"{path}: missing parameters {missing}")
        return cls(sim=sim, mapper=mapper, planner=planner, source=str(path))


@lru_cache(maxsize=1)
def robot_footprint() -> tuple[float, float]:
    """Half length and half width (m) of the rectangle bounding ANYmal's collision geoms (base frame).

    Computed from the frozen standing body that :class:`~morobot.sim.anymal.AnymalSim` simulates,
    as the axis-aligned bound of every box, cylinder and sphere; symmetric about the base origin.
    """
    from morobot import paths
    from morobot.sim.anymal import STANDING_POSE, load_robot_body

    body = load_robot_body(paths.anymal_urdf(), STANDING_POSE)
    return _footprint_of(body.geoms)


def _footprint_of(geoms: Sequence[tuple]) -> tuple[float, float]:
    hx = hy = 0.0
    for _link, kind, size, pos, rot in geoms:
        rot = np.asarray(rot, dtype=float)
        if kind == "box":
            half = np.abs(rot[:2, :]) @ np.asarray(size, dtype=float)
        elif kind == "cylinder":
            radius, half_len = size
            axis = rot[:2, 2]
            half = half_len * np.abs(axis) + radius * np.sqrt(np.clip(1.0 - axis**2, 0.0, 1.0))
        else:
            half = np.full(2, size[0])
        hx = max(hx, abs(pos[0]) + half[0])
        hy = max(hy, abs(pos[1]) + half[1])
    return float(hx), float(hy)


class ContactMonitor:
    """Classifies the MuJoCo contacts of the simulated robot after every control step.

    Args:
        sim: the :class:`~morobot.sim.anymal.AnymalSim`, or the legged
            :class:`~morobot.locomotion.sim.LeggedAnymalSim`: then its legs play the feet's part (they
            touch the terrain when walking; the base touching it is a collision) and the foot-run rule
            is off (a walking robot's feet are on the ground all the time).
        foot_contact_time: a foot in continuous contact with the terrain for this long (s) counts
            as pressing against an edge (the rigid-body robot).
    """

    def __init__(self, sim: Any, foot_contact_time: float = 0.2) -> None:
        import mujoco

        model = sim.model
        n = model.ngeom
        idx = getattr(sim, "idx", None)
        if idx is not None and hasattr(idx, "foot"):  # the articulated robot
            self.robot, self.foot, self.box = idx.robot, idx.legs, idx.box
            self.terrain = ~self.robot & ~self.box
            self.foot_contact_time = math.inf
        else:
            names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, i) or "" for i in range(n)]
            self.robot = np.zeros(n, dtype=bool)
            self.foot = np.zeros(n, dtype=bool)
            self.box = np.array([nm.startswith("box") for nm in names])
            self.terrain = np.array([nm.startswith(("terrain", "patch")) or nm == "floor" for nm in names])
            for i, nm in enumerate(names):
                if nm.startswith("robot") and nm[5:].isdigit():
                    self.robot[i] = True
                    self.foot[i] = sim.body.geoms[int(nm[5:])][0].endswith("_FOOT")
            self.foot_contact_time = float(foot_contact_time)
        self.box_time = 0.0
        self.body_terrain_time = 0.0
        self.foot_run = 0.0
        self.max_foot_run = 0.0
        self.first_collision: Optional[float] = None

    def update(self, data: Any, now: float, dt: float) -> None:
        """Account for the contacts present in ``data`` over the last ``dt`` seconds."""
        box = body_terrain = foot_terrain = False
        if data.ncon:
            g = np.asarray(data.contact.geom[: data.ncon])
            for a, b in ((g[:, 0], g[:, 1]), (g[:, 1], g[:, 0])):
                rob = self.robot[a]
                box |= bool(np.any(rob & self.box[b]))
                terr = rob & self.terrain[b]
                body_terrain |= bool(np.any(terr & ~self.foot[a]))
                foot_terrain |= bool(np.any(terr & self.foot[a]))
        self.box_time += dt * box
        self.body_terrain_time += dt * body_terrain
        self.foot_run = self.foot_run + dt if foot_terrain else 0.0
        self.max_foot_run = max(self.max_foot_run, self.foot_run)
        if self.first_collision is None and (box or body_terrain or self.foot_run >= self.foot_contact_time - 1e-9):
            self.first_collision = now

    @property
    def collided(self) -> bool:
        """True once any collision was seen."""
        return self.first_collision is not None


def _finite_or_none(value: float) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None


def _decimate(t: np.ndarray, xy: np.ndarray, every: float) -> list[list[float]]:
    if not len(t):
        return []
    keep = np.flatnonzero(np.diff(np.floor(t / every), prepend=-1.0) > 0)
    if keep[-1] != len(t) - 1:
        keep = np.append(keep, len(t) - 1)
    return [[round(float(t[i]), 3), round(float(xy[i, 0]), 3), round(float(xy[i, 1]), 3)] for i in keep]


def _record(scenario: Scenario, planner: PlannerSpec, mode: str, world: Any, t: np.ndarray, poses: np.ndarray,
            reached_at: Optional[float], fallen_at: Optional[float], rules: OutcomeRules, wall: float,
            extra: dict[str, Any], contact_collision: Optional[bool], error: Optional[str] = None,
            record_dt: float = 0.2) -> dict[str, Any]:
    """The per-scenario record (shared by both modes)."""
    poses = np.asarray(poses, dtype=float).reshape(-1, 3)
    t = np.asarray(t, dtype=float)
    if error is not None:
        outcome, decided = "error", float(t[-1]) if len(t) else 0.0
    else:
        outcome, decided = classify(t, poses[:, :2], scenario.goal, scenario.budget, reached_at, fallen_at, rules)
    upto = t <= decided + 1e-9
    tt, pp = t[upto], poses[upto]
    hl, hw = robot_footprint()
    fp = bool(footprint_contacts(world, pp, hl, hw).any()) if len(pp) else False
    fallen = outcome == "fallen"
    collision = fallen or (contact_collision if contact_collision is not None else fp)
    xy = pp[:, :2]
    clearance = float(np.min(world.clearance(xy[:, 0], xy[:, 1]))) if len(xy) else math.nan
    final = float(math.hypot(xy[-1, 0] - scenario.goal[0], xy[-1, 1] - scenario.goal[1])) if len(xy) else math.nan
    change = math.nan
    if fallen and len(xy):
        change = terrain_change_before(tt, world.height_at(xy[:, 0], xy[:, 1]), decided)
    rec = {
        "id": scenario.id, "mix": scenario.mix, "index": scenario.index, "planner": planner.name, "mode": mode,
        "outcome": outcome, "success": outcome == "reached", "collision": bool(collision), "fallen": fallen,
        "contact_collision": contact_collision, "footprint_contact": fp,
        "time_to_goal": round(float(decided), 3) if outcome == "reached" else None,
        "sim_time": round(float(tt[-1]), 3) if len(tt) else 0.0,
        "distance": scenario.distance, "path_length": path_length(xy),
        "min_clearance": _finite_or_none(clearance), "final_distance": _finite_or_none(final),
        "wall_time": float(wall), "error": error,
        "fall_terrain": fall_terrain(change), "fall_terrain_change": _finite_or_none(round(change, 3)),
        **extra,
        "checkpoint": planner.checkpoint, "scenario": scenario.to_dict(),
        "trajectory": _decimate(tt, xy, record_dt),
    }
    return rec


# ---------------------------------------------------------------------------------------- lockstep
def _risk_row(elapsed: float, plan: Any, stopped: bool) -> list:
    """A ``risk_trace`` row: ``[t, peak risk of the chosen plan, of standing still, stop, the learned model's own peak
    risk of the chosen plan, of standing still]`` (None where a risk is missing)."""
    def peak(risk: Any) -> Optional[float]:
        return None if risk is None or not len(risk) else _finite_or_none(round(float(np.max(risk)), 4))

    return [round(float(elapsed), 3), peak(plan.risk), peak(plan.standstill_risk), int(stopped),
            peak(plan.model_risk), peak(plan.standstill_model_risk)]


class LockstepProbe:
    """What :meth:`LockstepRunner.run` tells an observer of a run (the base class observes nothing).

    ``step`` follows every physics step from the first one (before the goal is sent); ``cycle`` comes at
    every planning cycle once the goal is sent, before the planner runs; ``command`` receives the command
    the planner releases and returns the one sent to the robot; ``map`` receives every height map the mapper
    publishes and returns the one the planner gets.
    """

    def step(self, sim: Any, state: Any, mapper: Any) -> bool:
        """After a physics step; True ends the run."""
        return False

    def cycle(self, sim: Any, state: Any, mapper: Any) -> None:
        """At a planning cycle, before the plan."""

    def command(self, command: np.ndarray) -> np.ndarray:
        """The command to send instead of the planner's ``command``."""
        return command

    def map(self, hmap: Any) -> Any:
        """The height map the planner receives instead of the mapper's ``hmap``."""
        return hmap


@dataclass
class LockstepRunner:
    """Runs scenarios in lock-step with one planner (see the module docstring).

    Args:
        planner: which dynamics the planner drives.
        params: node parameters (default ``config/navigate.yaml``).
        rules: outcome thresholds; the stuck rule also ends runs early.
        foot_contact_time: see :class:`ContactMonitor`.
        startup_limit: sim seconds allowed for the first map before the run is an error.
        device: torch device of the planner.
        robot: ``abstract`` (the rigid-body ANYmal, the FDM benchmarks so far) or ``legged`` (the
            articulated one under its locomotion policy; joint states feed a legged-history FDM).
        settle: when the goal may be sent after the robot is put down (:mod:`morobot.navigation.settle`);
            None: :class:`SettleRule`'s defaults for the legged robot, which is dropped onto the terrain, and
            no wait for the rigid one, which starts at rest.
    """

    planner: PlannerSpec
    params: Optional[NavParams] = None
    rules: OutcomeRules = field(default_factory=OutcomeRules)
    foot_contact_time: float = 0.2
    startup_limit: float = 5.0
    device: str = "cpu"
    robot: str = "abstract"
    settle: Optional[SettleRule] = None

    def __post_init__(self) -> None:
        from morobot.navigation.factory import make_dynamics

        if self.robot not in ROBOTS:
            raise ValueError(f"robot must be one of {ROBOTS}, got {self.robot!r}")
        if self.settle is None and self.robot == "legged":
            self.settle = SettleRule()
        if self.settle is not None and self.settle.validate().limit >= self.startup_limit:
            raise ValueError(f"the settle limit ({self.settle.limit} s) must be below the start-up limit "
                             f"({self.startup_limit} s)")
        if self.params is None:
            self.params = NavParams.load()
        p = self.params
        step = float(p.sim["step"])
        self.step = step
        self.points_every = max(1, round(1.0 / (float(p.sim["points_rate"]) * step)))
        self.map_every = max(1, round(1.0 / (float(p.mapper["publish_rate"]) * step)))
        self.plan_every = max(1, round(1.0 / (float(p.planner["control_rate"]) * step)))
        self.dynamics, self._fdm_history = make_dynamics(
            {**p.planner, "dynamics": self.planner.name, "fdm_checkpoint": self.planner.checkpoint or ""},
            self.device)

    def run(self, scenario: Scenario, probe: Optional["LockstepProbe"] = None) -> dict[str, Any]:
        """Drive one scenario to its outcome.

        Args:
            scenario: the scenario.
            probe: watches the run (:class:`LockstepProbe`): every physics step, every planning cycle and
                the command sent; it may end the run (e.g. an FDM recorder at a failure).

        Returns:
            The scenario record (see :mod:`morobot.evaluation.metrics` for the outcome rules);
            lock-step adds ``loop_sim_s`` / ``loop_wall_s`` (sim and wall seconds of the stepping
            loop, world and model building excluded), ``phase_s`` (wall seconds in physics with
            locomotion, depth rendering, mapping and planning), ``mean_cycle_ms``, ``max_cycle_ms``,
            ``planner_cycles``,
            ``risk_stops`` (cycles stopped because the best plan was too risky),
            ``blocked_marks`` (obstacles marked by the blocked-motion monitor),
            ``box_contact_s``, ``terrain_contact_s``, ``max_foot_contact_s`` and ``risk_trace`` (one row per
            cycle with a plan: seconds since the goal, the peak predicted risk of the plan the planner chose,
            the peak risk of standing still, 1 where the cycle was a risk stop, then the learned model's own
            part of the two risks; None where there is none; :mod:`morobot.evaluation.foresight` reads it).
        """
        from morobot.fdm.history import ProprioHistory
        from morobot.mapping.elevation import ElevationMapper, transform_points
        from morobot.navigation.controller import Joints, NavigationController, Odometry
        from morobot.mapping.params import elevation_config
        from morobot.sim.anymal import AnymalSim, AnymalSimConfig

        wall0 = time.perf_counter()
        p = self.params
        world = scenario.world()
        legged = self.robot == "legged"
        if legged:
            from morobot.locomotion.sim import LeggedAnymalSim, LeggedSimConfig

            cams = {} if "depth_cameras" not in p.sim else {"cameras": tuple(p.sim["depth_cameras"])}
            sim = LeggedAnymalSim(world, LeggedSimConfig(policy=str(p.sim.get("locomotion_policy", "")),
                                                         command_timeout=float(p.sim["cmd_timeout"]), **cams))
        else:
            sim = AnymalSim(world, AnymalSimConfig(command_timeout=float(p.sim["cmd_timeout"]),
                                                   locomotion=scenario.locomotion_config()))
        sim.reset()
        mapper = ElevationMapper(elevation_config(p.mapper))
        history = None
        if self._fdm_history is not None:
            if self._fdm_history.features != "base" and not legged:
                raise ValueError("the rigid-body robot has no joints: a "
                                 f"{self._fdm_history.features!r}-history FDM needs robot legged")
            history = ProprioHistory(self._fdm_history.length, self._fdm_history.dt, self._fdm_history.features)
        ctl = NavigationController(p.planner, (self.dynamics, history), device=self.device)
        contacts = ContactMonitor(sim, self.foot_contact_time)
        goal = np.asarray(scenario.goal, dtype=float)
        rules = self.rules

        hmap = None
        gate = None if self.settle is None else SettleGate(self.settle)
        goal_t: Optional[float] = None
        reached_at = fallen_at = None
        error = None
        ts: list[float] = []
        poses: list[tuple[float, float, float]] = []
        cycle_ms: list[float] = []
        risk_stops = 0
        risk_trace: list[list] = []
        blocked_marks = 0
        best_t: list[float] = []
        best_d: list[float] = []
        phase = {"physics": 0.0, "depth": 0.0, "mapping": 0.0, "planning": 0.0}
        clock = time.perf_counter
        loop0 = clock()
        k = 0
        while True:
            c0 = clock()
            st = sim.advance(self.step)
            phase["physics"] += clock() - c0
            now = sim.time
            twist = np.array([st.linear_velocity[0], st.linear_velocity[1], st.angular_velocity[2]])
            if legged:  # what /joint_states and /joint_targets carry, before the odometry as on the wire
                js = sim.joint_state()
                ctl.joint_state(Joints(js.positions, js.velocities, js.efforts, now), now)
                ctl.joint_targets(sim.joint_targets()[0], now)
            ctl.odometry(Odometry(np.array([st.position[0], st.position[1], st.yaw]), twist,
                                  float(st.position[2]), st.gravity, now, linear=np.asarray(st.linear_velocity),
                                  angular=np.asarray(st.angular_velocity)), now)
            contacts.update(sim.data, now, self.step)
            if probe is not None and probe.step(sim, st, mapper):
                break
            if goal_t is not None:
                ts.append(now - goal_t)
                poses.append((float(st.position[0]), float(st.position[1]), float(st.yaw)))
                if st.fallen:
                    fallen_at = now - goal_t
                    break
            elif st.fallen:  # put down and fell before any command: the start, not a planner, failed
                error = "the robot fell at the start, before the goal was sent"
                break
            elif gate is not None:
                gate.update(now, st.linear_velocity, st.angular_velocity)
            if k % self.points_every == 0:
                c0 = clock()
                points = sim.depth_points()
                c1 = clock()
                mapper.integrate(transform_points(points, st.position, st.quaternion), st.position[:2], now,
                                 base_pose=(st.position, st.quaternion))
                phase["depth"] += c1 - c0
                phase["mapping"] += clock() - c1
            if k % self.map_every == 0:
                c0 = clock()
                hmap = mapper.height_map(st.position[:2], now)
                if probe is not None:
                    hmap = probe.map(hmap)
                ctl.map(hmap, now)
                phase["mapping"] += clock() - c0
                if goal_t is None and (gate is None or gate.opened_at is not None) \
                        and np.isfinite(hmap.heights.numpy()).any():
                    goal_t = now  # the goal is sent once odometry and a map exist and the start has settled
                    ctl.set_goal(goal)
                    ts.append(0.0)
                    poses.append((float(st.position[0]), float(st.position[1]), float(st.yaw)))
            if goal_t is None:
                if now > self.startup_limit:
                    error = "no elevation map (or no settled start) within the start-up limit"
                    break
                k += 1
                continue
            elapsed = now - goal_t
            if k % self.plan_every == 0:
                dist = math.hypot(goal[0] - st.position[0], goal[1] - st.position[1])
                if probe is not None:
                    probe.cycle(sim, st, mapper)
                t0 = time.perf_counter()
                d = ctl.cycle(now)
                if d.code == "goal_reached":
                    reached_at = elapsed
                    sim.set_command(np.zeros(3), stamp=now)
                    break
                if d.code == "planning_failed":
                    error = d.message
                    break
                if d.plan is not None:
                    cycle_ms.append(1e3 * (time.perf_counter() - t0))
                    phase["planning"] += cycle_ms[-1] * 1e-3
                    risk_trace.append(_risk_row(elapsed, d.plan, d.code == "risk_stop"))
                blocked_marks += d.marked is not None
                risk_stops += d.code == "risk_stop"
                command = ctl.release(d, now).command
                sim.set_command(command if probe is None else probe.command(command), stamp=now)
                # the stuck rule of metrics.classify, evaluated online to end hopeless runs early
                best = min(dist, best_d[-1]) if best_d else dist
                best_t.append(elapsed)
                best_d.append(best)
                i = int(np.searchsorted(best_t, elapsed - rules.stuck_window, side="right")) - 1
                if elapsed >= rules.stuck_window and i >= 0 and best_d[i] - best < rules.progress_eps:
                    break
            if elapsed >= scenario.budget:
                break
            k += 1

        loop_wall = clock() - loop0
        extra = {
            "loop_sim_s": round(sim.time, 3), "loop_wall_s": round(loop_wall, 3),
            "phase_s": {name: round(v, 3) for name, v in phase.items()},
            "mean_cycle_ms": float(np.mean(cycle_ms)) if cycle_ms else None,
            "max_cycle_ms": float(np.max(cycle_ms)) if cycle_ms else None,
            "planner_cycles": len(cycle_ms), "risk_stops": risk_stops, "risk_trace": risk_trace,
            "blocked_marks": blocked_marks,
            "box_contact_s": round(contacts.box_time, 3), "terrain_contact_s": round(contacts.body_terrain_time, 3),
            "max_foot_contact_s": round(contacts.max_foot_run, 3),
            "first_collision_s": None if contacts.first_collision is None or goal_t is None
            else round(contacts.first_collision - goal_t, 3),
        }
        extra["robot"] = self.robot
        if gate is not None:  # whether the robot stood still before the goal, and how long it took
            extra["settled"], extra["settle_s"] = gate.settled, None if gate.waited is None else round(gate.waited, 3)
        return _record(scenario, self.planner, "lockstep", world, np.array(ts), np.array(poses).reshape(-1, 3),
                       reached_at, fallen_at, rules, time.perf_counter() - wall0, extra, contacts.collided, error)


# ---------------------------------------------------------------------------------------- graph
def _params_with_locomotion(params_file: Optional[str], locomotion: dict, out: Path) -> Path:
    """A copy of the graph's parameter file with the scenario's robot overrides on ``mujoco_sim``.

    Raises:
        ValueError: an override the sim node has no parameter for.
    """
    import yaml

    from morobot.paths import config_path
    from morobot.sim.locomotion import STUMBLE_PARAMS

    unknown = sorted(set(locomotion) - set(STUMBLE_PARAMS))
    if unknown:
        raise ValueError(f"the sim node cannot set {unknown} (it takes {STUMBLE_PARAMS})")
    source = Path(params_file) if params_file else config_path("navigate.yaml")
    data = yaml.safe_load(source.read_text())
    sim = data.setdefault("mujoco_sim", {}).setdefault("ros__parameters", {})
    for key, value in locomotion.items():
        sim[key] = int(value) if key == "stumble_seed" else float(value)  # typed as declared
    return atomic_write_text(out, yaml.safe_dump(data, sort_keys=False))


def run_graph(scenario: Scenario, planner: PlannerSpec, out_dir: str | Path, params_file: Optional[str] = None,
              rules: OutcomeRules = OutcomeRules(), rate: float = 1.0, startup_limit: float = 90.0,
              min_base_height: float = 0.25, threads: Optional[int] = None, robot: str = "abstract") -> dict[str, Any]:
    """Drive one scenario through the real ``navigate`` graph (real DDS, separate processes).

    The scenario's world is written to ``<out_dir>/graph/<id>/world.yaml`` and passed to the sim
    node; node logs go to ``<out_dir>/graph/<id>/<planner>/logs``. The supervisor of
    :mod:`morobot.demo` sends the goal once odometry and a map exist and stops at the goal, a fall,
    the sim-time budget or a node failure. A fall is also detected from odometry when the base
    drops below ``min_base_height`` above the terrain (as the simulator's own rule). ``threads``
    sets ``OMP_NUM_THREADS`` (torch's intra-op threads) of the node processes; on a machine that
    is busy with other work, 1 keeps the planner from waiting on a descheduled second thread.
    ``robot``: the sim node's ``locomotion`` (``abstract``, or ``legged`` = ``learned``).

    Returns:
        The scenario record (timing and contact fields are ``None``: they are not observable from
        outside the nodes), plus ``graph_reason`` (why the supervisor stopped) and
        ``diagnostics`` (the planner's status changes on /diagnostics).
    """
    from morobot.ros.supervisor import supervise
    from morobot.sim.falls import base_too_low
    from morobot.launcher import GraphProcesses
    from morobot.sim.worlds import load_world

    wall0 = time.perf_counter()
    world = scenario.world()
    base = Path(out_dir) / "graph" / scenario.id
    world_yaml = scenario.write_world_yaml(base / "world.yaml")
    loaded = load_world(world_yaml)
    if not (np.array_equal(loaded.heights, world.heights) and loaded.boxes == world.boxes
            and loaded.patches == world.patches):
        raise RuntimeError(f"{world_yaml} does not reproduce scenario {scenario.id}")
    # the same robot as in lock-step: the rigid body unless the run asks for the legged one
    args = {"world": str(world_yaml.resolve()), "rate": str(float(rate)), "dynamics": planner.name,
            "locomotion": "learned" if robot == "legged" else "abstract"}
    if planner.checkpoint:
        args["fdm_checkpoint"] = str(Path(planner.checkpoint).resolve())
    if scenario.locomotion:
        params_file = _params_with_locomotion(params_file, scenario.locomotion, base / "params.yaml")
    if params_file:
        args["params_file"] = str(Path(params_file).resolve())
    wall_limit = scenario.budget / max(rate, 1e-3) * 3.0 + 60.0
    env = None if threads is None else {"OMP_NUM_THREADS": str(int(threads))}
    with GraphProcesses("navigate", args, log_dir=str(base / planner.name / "logs"), env=env) as procs:
        rec, reason = supervise(world, rules.success_radius, scenario.budget, procs, wall_limit, startup_limit,
                                min_base_height, settle=SettleRule() if robot == "legged" else None)
    path = np.asarray(rec.path, dtype=float).reshape(-1, 5)
    error = None
    if not math.isfinite(rec.goal_sent_at):
        error, path = reason, path[:0]
    else:
        path = path[path[:, 0] >= rec.goal_sent_at]
    t = path[:, 0] - rec.goal_sent_at if len(path) else np.zeros(0)
    poses = path[:, [1, 2, 4]]
    reached_at = float(t[-1]) if reason == "goal reached" and len(t) else None
    fallen_at = None
    if len(path):
        low = base_too_low(world, path[:, 1], path[:, 2], path[:, 3], min_base_height)
        if low.any():
            fallen_at = float(t[np.argmax(low)])
        if reason == "robot tipped over" or reason.startswith("robot fell"):
            fallen_at = min(fallen_at if fallen_at is not None else math.inf, float(t[-1]))
    if error is None and reason.startswith(("node(s) exited", "wall-clock")):
        error = reason
    extra = {"loop_sim_s": None, "loop_wall_s": None, "phase_s": None,
             "mean_cycle_ms": None, "max_cycle_ms": None, "planner_cycles": None, "risk_stops": None,
             "box_contact_s": None, "terrain_contact_s": None, "max_foot_contact_s": None,
             "first_collision_s": None, "graph_reason": reason, "robot": robot,
             **({"settled": rec.settled, "settle_s": None if rec.settle_s is None else round(rec.settle_s, 3)}
                if robot == "legged" else {}),
             # planner status changes seen on /diagnostics: [t since the goal, level, message]
             "diagnostics": [[round(float(dt) - (rec.goal_sent_at if math.isfinite(rec.goal_sent_at) else 0.0), 2),
                              int(level), str(msg)] for dt, level, msg in rec.diagnostics[:200]]}
    return _record(scenario, planner, "graph", world, t, poses, reached_at, fallen_at, rules,
                   time.perf_counter() - wall0, extra, None, error)


# ---------------------------------------------------------------------------------------- results
def result_key(rec: dict[str, Any]) -> tuple[str, str, str]:
    """``(mode, planner, scenario id)``: what identifies a result."""
    return rec["mode"], rec["planner"], rec["id"]


def _holds(rec: Optional[dict[str, Any]], scenario: Scenario) -> bool:
    """Whether ``rec`` is a result of ``scenario`` itself (a record without its scenario is taken as one)."""
    spec = scenario.to_dict()
    return rec is not None and rec.get("scenario", spec) == spec


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Records of a results JSONL file (empty if it does not exist).

    Raises:
        ValueError: a line is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: {exc}") from exc
    return out


def write_results(path: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    """Write records as JSONL, sorted by mode, planner, mix and index (temp file + rename)."""
    rows = sorted(records, key=lambda r: (r["mode"], r["planner"], r["mix"], r["index"], r["id"]))
    return atomic_write_text(path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in rows))


_WORKER: dict[str, Any] = {}


def _worker_task(task: tuple) -> dict[str, Any]:
    """One lock-step scenario in a worker; the worker keeps its runners between tasks of the same run."""
    scenario, planner, params_file, rules, threads, robot = task
    key = (params_file, rules, threads, robot)
    if _WORKER.get("key") != key:
        import torch

        torch.set_num_threads(threads)
        _WORKER.clear()
        _WORKER.update(key=key, params=NavParams.load(params_file), rules=rules, robot=robot, runners={})
    runners = _WORKER["runners"]
    if planner not in runners:
        runners[planner] = LockstepRunner(planner, _WORKER["params"], _WORKER["rules"], robot=_WORKER["robot"])
    return runners[planner].run(scenario)


def evaluate(scenarios: Sequence[Scenario], planners: Sequence[PlannerSpec], out_dir: str | Path,
             mode: str = "lockstep", params_file: Optional[str] = None, rules: OutcomeRules = OutcomeRules(),
             workers: int = 1, threads: int = 1, resume: bool = True, rate: float = 1.0, progress: bool = True,
             on_result: Optional[Callable[[dict[str, Any]], None]] = None, backend: str = "ray",
             ray_address: str = "", robot: str = "abstract") -> list[dict[str, Any]]:
    """Run every scenario with every planner and keep ``<out_dir>/results.jsonl`` up to date.

    Args:
        scenarios: the scenarios.
        planners: planner variants.
        out_dir: output directory.
        mode: ``"lockstep"`` or ``"graph"``.
        params_file: node parameters (default ``config/navigate.yaml``).
        rules: outcome thresholds.
        workers: lock-step workers (graph mode always runs one scenario at a time): Ray tasks by default.
        backend: ``ray`` (a local instance, or the cluster at ``ray_address``) or ``processes``.
        ray_address: join this Ray cluster (``auto``, ``host:port``).
        robot: ``abstract`` (the rigid-body ANYmal) or ``legged`` (the articulated one walking under its
            policy); keep one robot per ``out_dir``.
        threads: torch threads per lock-step worker; in graph mode, per node process.
        resume: skip (mode, planner, scenario) triples already in the results file (a record of another
            scenario under the same id, e.g. one generated before a generator change, is re-run); otherwise
            they are re-run and replaced.
        rate: graph mode sim speed (x real time).
        progress: show a tqdm progress bar.
        on_result: called with every new record.

    Returns:
        The records of this evaluation (including resumed ones), in results-file order.

    Raises:
        ValueError: unknown mode, no scenarios or planners, or ``workers < 1``.
    """
    from tqdm import tqdm

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not scenarios or not planners:
        raise ValueError("need at least one scenario and one planner")
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out_dir = Path(out_dir)
    results_path = out_dir / "results.jsonl"
    records = {result_key(r): r for r in read_results(results_path)}
    wanted = [(s, p) for p in planners for s in scenarios]
    todo = [(s, p) for s, p in wanted if not (resume and _holds(records.get((mode, p.name, s.id)), s))]
    bar = tqdm(total=len(todo), desc=f"eval-nav {mode}", unit="scenario", disable=not progress)

    def done(rec: dict[str, Any]) -> None:
        records[result_key(rec)] = rec
        write_results(results_path, records.values())
        ok = [r for r in records.values() if r["mode"] == mode and r["success"]]
        bar.set_postfix_str(f"{rec['id']} {rec['planner']}: {rec['outcome']}; successes {len(ok)}")
        bar.update(1)
        if on_result is not None:
            on_result(rec)

    try:
        if mode == "graph":
            for s, p in todo:
                done(run_graph(s, p, out_dir, params_file, rules, rate, threads=threads, robot=robot))
        elif int(workers) == 1:
            import torch

            torch.set_num_threads(int(threads))
            params = NavParams.load(params_file)
            runners = {p: LockstepRunner(p, params, rules, robot=robot) for p in planners}
            for s, p in todo:
                done(runners[p].run(s))
        else:  # Ray tasks (a local instance, or the cluster at ray_address) or a local pool
            tasks = [(s, p, params_file, rules, int(threads), robot) for s, p in todo]
            for rec in run_tasks(_worker_task, tasks, int(workers), backend, ray_address, initializer=die_with_parent):
                done(rec)
    finally:
        bar.close()
    keys = {(mode, p.name, s.id) for s, p in wanted}
    return [r for r in sorted(records.values(), key=lambda r: (r["mode"], r["planner"], r["mix"], r["index"]))
            if result_key(r) in keys]
