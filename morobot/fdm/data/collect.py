"""FDM training-data collection on the MuJoCo ANYmal simulator.

``morobot collect --out data/fdm --worlds-per-kind 20``

Per world (``make_world(kind, seed)``, all kinds of :data:`morobot.sim.worlds.KINDS`) a worker
runs episodes: the robot is reset to a random free pose and driven by a continuous stream of
time-correlated random commands (:mod:`morobot.fdm.data.commands`), one command per ``dt``, re-sent
every ``history_dt`` while the :class:`~morobot.fdm.history.ProprioHistory` is filled exactly as
the run-time node fills it. Every ``stride`` steps a sample starts: its history, the height scan
at the start pose, the next ``horizon`` commands, the poses reached at the end of each step
(relative to the start) and the failure flags.

A step fails when, during it, the robot touches the world with a contact force above
``contact_force`` (MuJoCo contacts: walls, boxes, unclimbable steps), falls, or is flagged stuck
by the simulator. The episode ends after a failure (later steps of a sample are frozen at the
failure pose), after ``episode_steps`` steps, or when the robot comes within ``edge_margin`` of
the world's border.

The height scan is sampled from the world's ground truth (terrain and box tops) and corrupted
like an elevation map: noise, single-cell dropout, unknown patches and, sometimes, the finite
map window (see :func:`morobot.fdm.heightscan.corrupt`).

Output: one shard per world written atomically when the world is done, and the manifest
rewritten after every world; ``--resume`` skips worlds already in the manifest (re-indexing
shards finished just before a crash).

Length: one collection pipeline: the episode loop, the robot's perception in it, and the worker pool with its resumable manifest.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from morobot.fdm.data.branches import branch_commands, drive_branches, drive_step
from morobot.fdm.data.commands import CommandLimits, sample_command_sequences
from morobot.cliutil import key_values
from morobot.parallel import BACKENDS, run_tasks
from morobot.procutil import die_with_parent
from morobot.fdm.data.dataset import DataSpec, read_manifest, rebuild_manifest, write_manifest, write_shard
from morobot.fdm.heightscan import ScanConfig, corrupt, sample_heights, scan_from_world
from morobot.fdm.history import FEATURE_SETS, JOINT_FEATURES, ProprioHistory, extra_columns, feature_names


#: Where the height scans of the samples come from (see ``CollectConfig.scan_source``).
SCAN_SOURCES = ("world", "sensor")


ROBOTS = ("abstract", "legged")
"""The simulated robots data can be collected on."""

@dataclass
class CollectConfig:
    """Parameters of a collection run.

    Attributes:
        out_dir: data directory to write.
        kinds: world kinds (default: all simulator kinds).
        worlds_per_kind: worlds generated per kind.
        samples_per_world: samples collected per world (branch samples included).
        robot: ``abstract``: the rigid-body ANYmal (:mod:`morobot.sim.anymal`); ``legged``: the articulated
            ANYmal walking under its locomotion policy (:mod:`morobot.locomotion.sim`; falls and collisions
            of any body, legs included, are failures).
        policy: ``legged``: the locomotion policy file ("" = the shipped one).
        history_features: ``base`` (commands, body twist, gravity) or, on the legged robot, ``legged``
            (also the joints: :mod:`morobot.fdm.history`).
        workers: parallel workers (Ray tasks by default; see :mod:`morobot.parallel`).
        backend: ``ray`` (a local Ray instance, or the cluster at ``ray_address``) or ``processes``.
        ray_address: join this Ray cluster (``auto``, ``host:port``) instead of a local instance.
        seed: base seed (world seeds and all randomness derive from it).
        world_size: world edge lengths (m).
        horizon: steps per sample.
        dt: step duration (s).
        history_length: history rows.
        history_dt: history spacing (s), also the command re-send period.
        stride: steps between sample starts.
        episode_steps: maximum steps per episode before a reset.
        contact_force: contact normal force (N) that counts as a collision.
        edge_margin: episodes end this close to the world's border (m).
        start_clearance: minimum obstacle clearance of a reset pose (m).
        scan_noise: height noise of the scan (m).
        scan_dropout: per-cell dropout probability of the scan.
        scan_patch_prob: probability of an unknown patch per scan.
        scan_window_prob: probability of cutting the scan to a finite map window.
        scan: scan geometry.
        scan_source: ``"world"``: ground-truth heights of the world at each sample start,
            corrupted with the ``scan_*`` noise model; ``"sensor"``: what the robot would see at
            run time: the simulated depth cameras feed the elevation mapper (configured as in
            ``config/navigate.yaml``) through the episode, and the scan is sampled from its map.
            Depth cameras see a box's face only up to about their own height and never its top,
            so ``"sensor"`` data matches run time where ``"world"`` data does not; it costs
            depth rendering and mapping (see docs/fdm.md).
        points_period: ``"sensor"``: seconds between depth frames fed to the mapper.
        limits: command limits.
        world_params: generator parameters applied to every world on top of its kind's defaults
            (e.g. ``{"rubble": 0.06}``; see :func:`morobot.sim.worlds.make_world`).
        locomotion: :class:`morobot.sim.locomotion.LocomotionConfig` overrides of the simulated
            robot (e.g. ``{"stumble_rate": 0.3}``); the stumble draws are seeded per world.
        branches: the legged robot: at every sample start, this many other command sequences are each
            driven for one horizon from the same state, and the episode goes on unchanged
            (:mod:`morobot.fdm.data.branches`); their samples share the start (ranking pairs).
        branch_stop: the first branch of every start holds a stop.
        resume: continue an interrupted run in ``out_dir``.
        progress: show a progress bar.
    """

    out_dir: str
    kinds: Sequence[str] = ()
    worlds_per_kind: int = 10
    samples_per_world: int = 2000
    robot: str = "abstract"
    policy: str = ""
    history_features: str = "base"
    workers: int = 2
    backend: str = "ray"
    ray_address: str = ""
    seed: int = 0
    world_size: tuple[float, float] = (20.0, 20.0)
    horizon: int = 10
    dt: float = 0.5
    history_length: int = 10
    history_dt: float = 0.05
    stride: int = 2
    episode_steps: int = 60
    contact_force: float = 50.0
    edge_margin: float = 1.0
    start_clearance: float = 0.6
    scan_noise: float = 0.02
    scan_dropout: float = 0.05
    scan_patch_prob: float = 0.3
    scan_window_prob: float = 0.3
    scan: ScanConfig = field(default_factory=ScanConfig)
    scan_source: str = "world"
    points_period: float = 0.1
    limits: CommandLimits = field(default_factory=CommandLimits)
    world_params: dict = field(default_factory=dict)
    locomotion: dict = field(default_factory=dict)
    branches: int = 0
    branch_stop: bool = True
    resume: bool = False
    progress: bool = True

    def validate(self) -> None:
        """Raises ValueError on bad parameters (including unknown world kinds)."""
        from morobot.sim.worlds import KINDS

        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown world kinds {unknown}; expected some of {KINDS}")
        if self.robot not in ROBOTS:
            raise ValueError(f"robot must be one of {ROBOTS}, got {self.robot!r}")
        if self.robot != "legged" and self.policy:
            raise ValueError("policy is for robot legged")
        feature_names(self.history_features)
        if self.history_features in JOINT_FEATURES and self.robot != "legged":
            raise ValueError(f"history_features {self.history_features} needs robot legged "
                             "(the rigid body has no joints)")
        if self.robot == "legged" and self.locomotion:
            raise ValueError("locomotion overrides (stumbles) are for the abstract robot; the legged one really falls")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        counts = ("worlds_per_kind", "samples_per_world", "workers", "horizon", "history_length", "stride")
        for name in counts + ("episode_steps",):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.episode_steps < self.horizon:
            raise ValueError("episode_steps must be at least the horizon")
        ratio = self.dt / self.history_dt
        if not (self.dt > 0 and self.history_dt > 0 and abs(ratio - round(ratio)) < 1e-9):
            raise ValueError("dt must be a positive multiple of history_dt")
        if not (self.contact_force > 0 and self.edge_margin >= 0 and self.start_clearance >= 0):
            raise ValueError("contact_force must be positive, edge_margin and start_clearance >= 0")
        from morobot.sim.locomotion import LocomotionConfig
        from morobot.sim.worlds import _BASE_PARAMS

        bad = sorted(set(self.world_params) - set(_BASE_PARAMS))
        if bad:
            raise ValueError(f"unknown world parameters {bad}; allowed: {sorted(_BASE_PARAMS)}")
        try:
            LocomotionConfig(**self.locomotion)
        except TypeError as exc:
            raise ValueError(f"bad locomotion overrides {self.locomotion}: {exc}") from exc
        if int(self.branches) < 0:
            raise ValueError(f"branches must be >= 0, got {self.branches}")
        if self.branches and self.robot != "legged":
            raise ValueError("branches need robot legged (its simulator keeps and restores its state)")
        if self.scan_source not in SCAN_SOURCES:
            raise ValueError(f"scan_source must be one of {SCAN_SOURCES}, got {self.scan_source!r}")
        if not (math.isfinite(self.points_period) and self.points_period > 0):
            raise ValueError(f"points_period must be positive, got {self.points_period}")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists for tuples): the manifest's record of the run and what workers receive."""
        out = asdict(self)
        out["kinds"] = list(self.kinds)
        out["world_size"] = list(self.world_size)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CollectConfig":
        """The configuration from its ``asdict`` form (as workers receive it)."""
        nested = {"scan": ScanConfig(**data["scan"]), "limits": CommandLimits(**data["limits"])}
        return cls(**{**data, **nested})

    @property
    def spec(self) -> DataSpec:
        """The data spec of the samples this run writes."""
        return DataSpec(
            scan=self.scan,
            horizon=self.horizon,
            dt=self.dt,
            history_length=self.history_length,
            history_dt=self.history_dt,
            history_dim=len(feature_names(self.history_features)),
            history_features=self.history_features,
        )


def _relative(start: np.ndarray, pose: np.ndarray) -> np.ndarray:
    c, s = math.cos(start[2]), math.sin(start[2])
    dx, dy = pose[0] - start[0], pose[1] - start[1]
    dyaw = math.atan2(math.sin(pose[2] - start[2]), math.cos(pose[2] - start[2]))
    return np.array([c * dx + s * dy, -s * dx + c * dy, dyaw])


class FailureContacts:
    """Largest normal force of a contact that counts as a collision.

    The rigid-body robot: any contact between its body and the world. The legged robot: any part, feet
    included, touching an obstacle (a box: a knee or a foot against its face, the base on its edge) and
    the base touching the terrain; legs brushing the terrain (a shank on a stair edge) are walking, and a
    misstep that matters ends in a fall, which is a failure of its own.
    """

    def __init__(self, sim: Any) -> None:
        import mujoco

        self._mujoco = mujoco
        self.model, self.data = sim.model, sim.data
        idx = getattr(sim, "idx", None)
        if idx is not None and hasattr(idx, "foot"):  # the articulated robot (morobot.locomotion.sim)
            self.robot = set(np.flatnonzero(idx.robot).tolist())
            self.legs = set(np.flatnonzero(idx.legs).tolist())
            self.boxes = set(np.flatnonzero(idx.box).tolist())
        else:
            self.robot = set(np.flatnonzero(sim.model.geom_bodyid == sim.body_id).tolist())
            self.legs, self.boxes = set(), set()
        self._force = np.zeros(6)

    def _counts(self, a: int, b: int) -> bool:
        if (a in self.robot) == (b in self.robot):
            return False
        part, other = (a, b) if a in self.robot else (b, a)
        return part not in self.legs or other in self.boxes

    def max_force(self) -> float:
        worst = 0.0
        for j in range(self.data.ncon):
            con = self.data.contact[j]
            if self._counts(con.geom1, con.geom2):
                self._mujoco.mj_contactForce(self.model, self.data, j, self._force)
                worst = max(worst, abs(float(self._force[0])))
        return worst


class _SensorScans:
    """The run-time perception inside an episode: depth cameras → elevation mapper → scan.

    The mapper is configured from the ``elevation_mapper`` section of ``config/navigate.yaml``,
    as the node is, and starts empty with every episode (as the node does at launch).
    """

    def __init__(self, sim: Any, cfg: CollectConfig) -> None:
        from morobot.mapping.elevation import ElevationMapper
        from morobot.mapping.params import MapperParams, elevation_config
        from morobot.params import load
        from morobot.paths import config_path

        params = load(MapperParams, "elevation_mapper", config_path("navigate.yaml"))
        self.sim, self.cfg = sim, cfg
        self.mapper = ElevationMapper(elevation_config(params))
        self._next = -math.inf

    def observe(self, state: Any) -> None:
        """Feeds a depth frame to the mapper when one is due."""
        from morobot.mapping.elevation import transform_points

        if state.time + 1e-9 < self._next:
            return
        self._next = state.time + self.cfg.points_period
        points = self.sim.depth_points()
        self.mapper.integrate(transform_points(points, state.position, state.quaternion), state.position[:2],
                              state.time, base_pose=(state.position, state.quaternion))

    def scan(self, state: Any) -> np.ndarray:
        """Relative heights (NaN unknown) of the current map around ``state``."""
        return map_scan(self.mapper, state, self.cfg.scan)


def map_scan(mapper: Any, state: Any, scan: ScanConfig) -> np.ndarray:
    """The scan (relative heights, NaN unknown) of an elevation mapper's current map around the robot's ``state``."""
    hmap = mapper.height_map(state.position[:2], state.time)
    return sample_heights(hmap.heights.numpy(), hmap.origin, float(hmap.resolution), state.pose,
                          float(state.position[2]), scan).astype(np.float32)


def joint_columns(sim: Any, state: Any, features: str) -> Optional[np.ndarray]:
    """The history columns past the base ones (:func:`~morobot.fdm.history.extra_columns`) of the simulated
    robot now, or None for a ``base`` history."""
    if features not in JOINT_FEATURES:
        return None
    js = sim.joint_state()
    targets = sim.joint_targets() if features == "legged_actions" else None
    return extra_columns(features, state.linear_velocity, state.angular_velocity, js.positions, js.velocities,
                         js.efforts, targets)


def free_starts(world: Any, cfg: CollectConfig) -> np.ndarray:
    """``[N, 2]`` cell centres far enough from obstacles and the border to start an episode."""
    xs, ys = world.cell_centres()
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    x0, x1, y0, y1 = world.extent
    margin = cfg.edge_margin + 1.5
    ok = (gx > x0 + margin) & (gx < x1 - margin) & (gy > y0 + margin) & (gy < y1 - margin)
    ok &= world.clearance_grid() > cfg.start_clearance
    ok &= ~world.terrain_obstacle_mask()
    return np.stack((gx[ok], gy[ok]), axis=-1)


def cut_samples(starts: dict[int, dict[str, Any]], poses: Sequence[np.ndarray], commands: np.ndarray,
                failed_at: Optional[int], horizon: int) -> list[dict[str, Any]]:
    """Cuts one episode into samples.

    Args:
        starts: step index -> the sample's start (``history``, ``pose``, ``z`` and, optionally, ``scan``).
        poses: the pose at the end of each step of the episode.
        commands: ``[steps, 3]`` the command of each step (or more: the stream beyond the episode's end).
        failed_at: the step in which the episode failed (its last step), or None.
        horizon: steps per sample.

    Returns:
        Per sample, the shard arrays' rows: a sample whose horizon runs past the end of an episode that did
        not fail is dropped; after a failure the poses stay frozen at the failure pose.
    """
    samples = []
    n_steps = len(poses)
    for k, snap in starts.items():
        if k >= n_steps or (failed_at is None and k + horizon > n_steps):
            continue  # the episode ended (border, length, goal) before this sample's horizon
        idx = np.minimum(np.arange(k, k + horizon), n_steps - 1)  # frozen after a failure
        rel = np.stack([_relative(snap["pose"], poses[i]) for i in idx])
        failed = np.zeros(horizon, dtype=np.uint8)
        if failed_at is not None and failed_at < k + horizon:
            failed[failed_at - k :] = 1
        samples.append(
            {
                "history": snap["history"],
                # a recorded episode has no commands past its failure: the last one is held
                "commands": np.asarray(commands, dtype=np.float32)[np.minimum(np.arange(k, k + horizon),
                                                                              len(commands) - 1)],
                "poses": rel.astype(np.float32),
                "failed": failed,
                "start_pose": np.asarray(snap["pose"], dtype=np.float32),
                "start_z": np.float32(snap["z"]),
                **({"scan": snap["scan"]} if "scan" in snap else {}),
            }
        )
    return samples


def shard_arrays(samples: Sequence[dict[str, Any]], world: Any, world_id: str, kind: str,
                 scans: Optional[np.ndarray] = None) -> dict[str, Any]:
    """The arrays of one world's shard (:func:`~morobot.fdm.data.dataset.write_shard`) from its samples.

    ``scans`` replaces the samples' own ``scan`` rows (scans sampled from the world after the episodes).
    """
    xs, ys = world.cell_centres()
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    if scans is None:
        scans = np.stack([s["scan"] for s in samples]).astype(np.float32)
    return {
        "history": np.stack([s["history"] for s in samples]),
        "scan": scans,
        "commands": np.stack([s["commands"] for s in samples]),
        "poses": np.stack([s["poses"] for s in samples]),
        "failed": np.stack([s["failed"] for s in samples]),
        "start_pose": np.stack([s["start_pose"] for s in samples]),
        "start_z": np.array([s["start_z"] for s in samples], dtype=np.float32),
        "world_heights": world.elevation_at(gx, gy),
        "world_origin": world.origin,
        "world_resolution": world.resolution,
        "world_id": world_id,
        "kind": kind,
    }


def run_episode(
    sim: Any, world: Any, cfg: CollectConfig, rng: np.random.Generator, start: np.ndarray,
    branch_rng: Optional[np.random.Generator] = None, branch_budget: Optional[int] = None,
) -> tuple[list[dict], dict]:
    """Drives one episode from ``start`` and cuts it into samples.

    With ``cfg.branches``, every sample start is also driven on with that many other command sequences
    (drawn from ``branch_rng``, so the episode's own draws do not change) and their samples follow it;
    once ``branch_budget`` samples' worth of starts have been branched, later starts are not (the world's
    sample count cuts them off anyway: branching is most of the cost).

    Returns:
        ``(samples, stats)``: per-sample dicts of the shard arrays and counters of the episode's
        end (``collision``, ``fall``, ``stuck``, ``edge``, ``steps``) and of the branches
        (``branches``, ``branch_failures``).
    """
    substeps = int(round(cfg.dt / cfg.history_dt))
    contacts = FailureContacts(sim)
    state = sim.reset(start)
    hist = ProprioHistory(cfg.history_length, cfg.history_dt, cfg.history_features)

    hist.push(state.time, np.zeros(3), state.twist, state.gravity, joint_columns(sim, state, cfg.history_features))
    sensing = _SensorScans(sim, cfg) if cfg.scan_source == "sensor" else None
    if sensing is not None:
        sensing.observe(state)
    x0, x1, y0, y1 = world.extent
    n_chunks = math.ceil((cfg.episode_steps + cfg.horizon) / cfg.horizon)
    stream = sample_command_sequences(rng, n_chunks, cfg.horizon, cfg.dt, cfg.limits).reshape(-1, 3)
    starts: dict[int, dict[str, Any]] = {}
    poses: list[np.ndarray] = []  # pose at the end of each step
    failed_at: Optional[int] = None
    stats = {"collision": 0, "fall": 0, "stuck": 0, "edge": 0, "steps": 0, "branches": 0, "branch_failures": 0}
    branched: dict[int, list[dict]] = {}

    def inside(st: Any) -> bool:
        x, y = st.position[:2]
        return min(x - x0, x1 - x, y - y0, y1 - y) >= cfg.edge_margin

    def step(s: Any, command: np.ndarray, on_tick: Optional[Callable[[Any], None]] = None) -> tuple[Any, Any]:
        return drive_step(s, command, substeps, cfg.history_dt, contacts, cfg.contact_force, on_tick)

    for k in range(cfg.episode_steps):
        if k >= 1 and k % cfg.stride == 0 and hist.ready:
            starts[k] = {
                "history": hist.array(),
                "pose": state.pose.copy(),
                "z": float(state.position[2]),
            }
            if sensing is not None:
                starts[k]["scan"] = sensing.scan(state)
            budget = math.inf if branch_budget is None else branch_budget
            if cfg.branches and branch_rng is not None and len(branched) * (1 + cfg.branches) < budget:
                alternatives = branch_commands(branch_rng, cfg.branches, cfg.horizon, cfg.dt, cfg.limits,
                                               cfg.branch_stop)
                branched[k] = drive_branches(sim, alternatives, step, inside)
        cmd = stream[k].astype(np.float64)

        def record(st: Any, cmd: np.ndarray = cmd) -> None:
            hist.push(st.time, cmd, st.twist, st.gravity, joint_columns(sim, st, cfg.history_features))
            if sensing is not None:
                sensing.observe(st)

        state, failure = step(sim, cmd, record)
        poses.append(state.pose.copy())
        stats["steps"] += 1
        if failure is not None:
            stats[failure] += 1
            failed_at = k
            break
        if not inside(state):
            stats["edge"] += 1
            poses.pop()  # the step that reached the border is not a valid outcome
            break
    samples = []
    for k, snap in starts.items():  # start by start, so that a cut at the world's sample count keeps whole groups
        samples += cut_samples({k: snap}, poses, stream, failed_at, cfg.horizon)
        for run in branched.get(k, ()):
            stats["branches"] += 1
            stats["branch_failures"] += run["failed_at"] is not None
            samples += cut_samples({0: snap}, run["poses"], run["commands"], run["failed_at"], cfg.horizon)
    return samples, stats


def collect_world(task: tuple[str, int, int, dict]) -> Optional[dict[str, Any]]:
    """Collects all samples of one world and writes its shard (runs in a worker process).

    Args:
        task: ``(kind, world_seed, run_seed, config as dict)``.

    Returns:
        The manifest entry with collection statistics under ``stats``, or None if the world
        yielded no samples.
    """
    from morobot.sim.anymal import AnymalSim, AnymalSimConfig
    from morobot.sim.locomotion import LocomotionConfig
    from morobot.sim.worlds import make_world

    kind, world_seed, run_seed, cfg_dict = task
    cfg = CollectConfig.from_dict(cfg_dict)
    rng = np.random.default_rng([run_seed, world_seed])
    world = make_world(kind, world_seed, size=cfg.world_size, **cfg.world_params)
    world_id = f"{kind}-{world_seed:05d}"
    if cfg.robot == "legged":
        from morobot.locomotion.sim import LeggedAnymalSim, LeggedSimConfig

        sim = LeggedAnymalSim(world, LeggedSimConfig(policy=cfg.policy))
    else:
        locomotion = LocomotionConfig(**{"stumble_seed": int(world_seed), **cfg.locomotion})
        sim = AnymalSim(world, AnymalSimConfig(locomotion=locomotion))
    candidates = free_starts(world, cfg)
    if len(candidates) == 0:
        raise RuntimeError(f"world {world_id} has no free start cell")
    samples: list[dict] = []
    branch_rng = np.random.default_rng([run_seed, world_seed, 1])  # apart: branches leave the episodes' draws alone
    totals = {"collision": 0, "fall": 0, "stuck": 0, "edge": 0, "steps": 0, "episodes": 0, "branches": 0,
              "branch_failures": 0}
    max_episodes = 20 * math.ceil(cfg.samples_per_world / max(1, cfg.episode_steps // cfg.stride))
    while len(samples) < cfg.samples_per_world and totals["episodes"] < max_episodes:
        xy = candidates[rng.integers(len(candidates))]
        start = np.array([xy[0], xy[1], rng.uniform(-math.pi, math.pi)])
        new, stats = run_episode(sim, world, cfg, rng, start, branch_rng, cfg.samples_per_world - len(samples))
        samples += new
        totals["episodes"] += 1
        for key, value in stats.items():
            totals[key] += value
    samples = samples[: cfg.samples_per_world]
    if not samples:
        return None
    scans = None
    if cfg.scan_source != "sensor":
        start_pose = np.stack([s["start_pose"] for s in samples])
        start_z = np.array([s["start_z"] for s in samples], dtype=np.float32)
        scans = scan_from_world(world, start_pose, start_z, cfg.scan)
        scans = corrupt(
            scans,
            rng,
            noise_std=cfg.scan_noise,
            dropout=cfg.scan_dropout,
            patch_prob=cfg.scan_patch_prob,
            config=cfg.scan,
            yaw=start_pose[:, 2],
            window_prob=cfg.scan_window_prob,
        )
    arrays = shard_arrays(samples, world, world_id, kind, scans)
    entry = write_shard(cfg.out_dir, world_id, arrays, cfg.spec)
    entry["stats"] = totals
    return entry


def _tasks(cfg: CollectConfig) -> list[tuple[str, int]]:
    from morobot.sim.worlds import KINDS

    kinds = list(cfg.kinds) or list(KINDS)
    return [
        (kind, cfg.seed * 100_000 + k * 1000 + i) for k, kind in enumerate(kinds) for i in range(cfg.worlds_per_kind)
    ]


def collect(cfg: CollectConfig) -> dict[str, Any]:
    """Runs the collection (in ``cfg.workers`` processes); returns the final manifest.

    Raises:
        ValueError: on bad parameters, or an existing manifest without ``resume``.
    """
    cfg.validate()
    cfg_dict = cfg.to_dict()
    meta = {"source": "morobot.locomotion.sim" if cfg.robot == "legged" else "morobot.sim.anymal", "config": cfg_dict}
    tasks = [(f"{kind}-{seed:05d}", (kind, seed, cfg.seed, cfg_dict)) for kind, seed in _tasks(cfg)]
    return collect_shards(cfg.out_dir, cfg.spec, meta, tasks, collect_world, workers=cfg.workers,
                          backend=cfg.backend, ray_address=cfg.ray_address, resume=cfg.resume, progress=cfg.progress)


def collect_shards(out_dir: str | Path, spec: DataSpec, meta: dict[str, Any], tasks: Sequence[tuple[str, Any]],
                   worker: Callable[[Any], Optional[dict[str, Any]]], workers: int = 2, backend: str = "ray",
                   ray_address: str = "", resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Runs one worker task per world and keeps the data directory's manifest up to date.

    Args:
        out_dir: data directory.
        spec: the data spec every shard follows.
        meta: the manifest's ``meta`` (``seconds`` is added: collection time, over resumed runs too).
        tasks: ``(world_id, task)``; ``worker(task)`` writes that world's shard and returns its manifest
            entry (None: no samples). Worlds already in the directory are skipped.
        worker: a picklable function (it runs in worker processes or Ray tasks).
        workers, backend, ray_address: see :func:`morobot.parallel.run_tasks`.
        resume: continue in a directory that holds data (otherwise that is an error).
        progress: show a progress bar.

    Returns:
        The final manifest; ``complete`` only when every task finished.

    Raises:
        ValueError: an existing data directory without ``resume``, or one with another data spec.
    """
    from tqdm import tqdm

    root = Path(out_dir)
    entries: list[dict] = []
    spent = 0.0  # collection seconds of earlier (resumed) runs, as their last manifest recorded them
    if (root / "manifest.json").exists() or (root / "shards").exists():
        if not resume:
            raise ValueError(f"{root} already holds data; pass --resume to continue or choose another --out")
        old = read_manifest(root) if (root / "manifest.json").exists() else None
        if old is not None and old["spec"] != spec.to_dict():
            raise ValueError(f"{root} was collected with another data spec; cannot resume")
        stats = {e["world_id"]: e.get("stats") for e in (old or {"shards": []})["shards"]}
        spent = float((old or {}).get("meta", {}).get("seconds", 0.0) or 0.0)
        entries = rebuild_manifest(root, spec, meta)["shards"]  # picks up shards written before a crash
        for e in entries:
            if stats.get(e["world_id"]):
                e["stats"] = stats[e["world_id"]]
    done = {e["world_id"] for e in entries}
    todo = [task for world_id, task in tasks if world_id not in done]
    t0 = time.time()
    meta = {**meta, "seconds": round(spent, 1)}  # the sum over this run and the resumed ones, kept up to date
    manifest = write_manifest(root, spec, entries, meta, complete=False)
    bar = tqdm(total=len(todo), desc="worlds", disable=not progress)
    finished = 0
    # no orphans writing shards: local workers die with this process
    results = run_tasks(worker, todo, workers, backend, ray_address, initializer=die_with_parent)
    try:
        for entry in results:
            bar.update(1)
            finished += 1
            if entry is None:
                continue
            entries.append(entry)
            meta["seconds"] = round(spent + time.time() - t0, 1)
            manifest = write_manifest(root, spec, entries, meta, complete=False)
            bar.set_postfix(samples=manifest["total_samples"])
    finally:
        bar.close()
        results.close()  # stops the workers (Ray tasks cancelled, the pool terminated)
    meta["seconds"] = round(spent + time.time() - t0, 1)
    return write_manifest(root, spec, entries, meta, complete=finished == len(todo))


def parse_args(argv: Optional[Sequence[str]] = None) -> CollectConfig:
    """Parses command-line arguments into :class:`CollectConfig`."""
    d = CollectConfig(out_dir="")
    p = argparse.ArgumentParser(prog="morobot collect", description="Collect FDM training data in simulation.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="data directory to write")
    p.add_argument("--kinds", nargs="*", default=[], help="world kinds (default: all)")
    p.add_argument("--worlds-per-kind", type=int, default=d.worlds_per_kind)
    p.add_argument("--samples-per-world", type=int, default=d.samples_per_world)
    p.add_argument("--robot", choices=ROBOTS, default=d.robot,
                   help="abstract: the rigid-body ANYmal; legged: the articulated one under its locomotion policy")
    p.add_argument("--policy", default=d.policy, help="--robot legged: locomotion policy file (default: the shipped one)")
    p.add_argument("--history-features", choices=tuple(FEATURE_SETS), default=d.history_features,
                   help="proprioceptive history: base (commands, body twist, gravity), legged (also the 12 joints; "
                        "--robot legged) or legged_actions (also the controller's last two joint targets)")
    p.add_argument("--workers", type=int, default=d.workers, help="parallel workers")
    p.add_argument("--backend", choices=BACKENDS, default=d.backend,
                   help="ray: Ray tasks (a local instance, or the cluster at --ray-address); processes: local pool")
    p.add_argument("--ray-address", default=d.ray_address,
                   help="join this Ray cluster (auto, host:port) instead of starting a local instance")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--world-size", type=float, nargs=2, default=list(d.world_size))
    p.add_argument("--stride", type=int, default=d.stride, help="steps between sample starts")
    p.add_argument("--episode-steps", type=int, default=d.episode_steps)
    p.add_argument("--contact-force", type=float, default=d.contact_force, help="collision threshold (N)")
    p.add_argument("--scan-source", choices=SCAN_SOURCES, default=d.scan_source,
                   help="world: ground-truth heights + noise model; sensor: depth cameras + elevation mapper, "
                        "as at run time (slower)")
    p.add_argument("--world-param", action="append", default=[], metavar="KEY=VALUE",
                   help="world generator parameter for every world, e.g. rubble=0.06 (repeatable)")
    p.add_argument("--locomotion", action="append", default=[], metavar="KEY=VALUE",
                   help="simulated robot (LocomotionConfig) override, e.g. stumble_rate=0.3 (repeatable)")
    p.add_argument("--branches", type=int, default=d.branches,
                   help="--robot legged: at every sample start, drive this many other command sequences for one "
                        "horizon from the same state (samples sharing a start: ranking pairs)")
    p.add_argument("--no-branch-stop", action="store_true",
                   help="draw every branch at random (default: the first branch of each start holds a stop)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    ns = p.parse_args(argv)
    try:
        world_params = key_values(ns.world_param)
        locomotion = key_values(ns.locomotion)
    except ValueError as exc:
        p.error(str(exc))
    return CollectConfig(
        out_dir=ns.out,
        kinds=tuple(ns.kinds),
        worlds_per_kind=ns.worlds_per_kind,
        samples_per_world=ns.samples_per_world,
        robot=ns.robot,
        policy=ns.policy,
        history_features=ns.history_features,
        workers=ns.workers,
        backend=ns.backend,
        ray_address=ns.ray_address,
        seed=ns.seed,
        world_size=tuple(ns.world_size),
        stride=ns.stride,
        episode_steps=ns.episode_steps,
        contact_force=ns.contact_force,
        scan_source=ns.scan_source,
        world_params=world_params,
        locomotion=locomotion,
        branches=ns.branches,
        branch_stop=not ns.no_branch_stop,
        resume=ns.resume,
        progress=not ns.no_progress,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; prints a summary, returns the exit code."""
    cfg = parse_args(argv)
    try:
        manifest = collect(cfg)
    except ValueError as exc:
        print(f"morobot collect: error: {exc}", file=sys.stderr)
        return 2
    failures = sum(s.get("failures", 0) for s in manifest["shards"])
    print(
        f"{manifest['total_samples']} samples from {len(manifest['shards'])} worlds "
        f"({failures} with a failure) in {cfg.out_dir}; data hash {manifest['data_hash'][:12]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
