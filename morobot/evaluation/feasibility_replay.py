"""Demo-replay study: do demonstrations recorded with feasibility feedback replay better on the robot?

Synthetic "human" demonstrations are slow, smooth TCP paths in ``panda_link0`` (minimum-jerk
segments between random waypoints above the table, gripper down, with a little hand tremor). Three
in four contain a hazard waypoint: out of reach (``workspace``), the wrist singularity
(``singularity``: joint 6 at pi; the 7-joint arm keeps its manipulability, so the checker mostly
warns) or a dip into the table (``table``). Each demonstration is checked frame by frame
(``check_ee_pose``, debounced as the operator would see it) and replayed on the simulated Panda
(``PandaSim``: the IK solution of every frame, interpolated over the frame with a velocity
feed-forward, to the joint impedance controller) in three variants:

* ``raw``: the recording as is (no feedback); frames whose IK fails send the last IK iterate;
* ``hold``: with feedback, every frame the checker would call infeasible replaced by the last
  feasible one (the operator stops at the boundary);
* ``clamp``: with feedback, such a frame replaced by the farthest acceptable pose on the straight
  pose segment from the last feasible frame to the demonstrated one (bisection), so the correction
  follows the demonstration along the boundary.

In both corrected variants, until a demonstrated frame is accepted again, accepted frames must
also keep every joint within the rate limit from the previous frame (no jump back onto the path).

Replay success (as in FeasibleCap): the TCP stays within ``position_tolerance`` /
``rotation_tolerance`` of the recorded target at every frame (measured at the end of the frame),
no robot geometry touches the table, the objects or itself (MuJoCo contacts, checked every 5 ms;
``panda_link0`` stands on the table and is excluded) and no joint comes within ``limit_tolerance``
of its URDF limit. The study also reports the fraction of infeasible frames, raw and debounced.
No ROS is involved.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pinocchio as pin

from morobot.feasibility.checker import FeasibilityChecker
from morobot.feasibility.checks import RateWindow
from morobot.feasibility.config import FeasibilityConfig
from morobot.feasibility.feedback import Debouncer
from morobot.feasibility.verdict import Level

HAZARDS = ("nominal", "workspace", "singularity", "table")
VARIANTS = ("raw", "hold", "clamp")


@dataclass(frozen=True)
class StudyConfig:
    """Settings of the demo-replay study.

    Attributes:
        num_demos: demonstrations (hazards assigned round-robin: nominal, workspace, singularity, table).
        seed: base seed (demo ``i`` uses ``seed + i``).
        dt: demo frame period (s).
        waypoints: waypoints per demonstration (start included).
        speed: average TCP speed range of the segments (m/s; minimum-jerk peaks are 1.9x that).
        turn_rate: average gripper turn rate of the segments (rad/s).
        tremor: hand tremor (m, std of a smoothed random walk added to the path).
        box_min: lower corner of the comfortable waypoint box in ``panda_link0`` (m).
        box_max: upper corner of that box (m).
        max_yaw: gripper yaw range about the vertical (rad).
        position_tolerance: replay tracking tolerance on the TCP position (m).
        rotation_tolerance: replay tracking tolerance on the TCP orientation (rad).
        limit_tolerance: a joint closer than this to its URDF limit is a limit hit (rad).
        bisection_steps: bisection steps of the ``clamp`` correction.
        sim_timestep: physics step of the replay simulator (s).
    """

    num_demos: int = 40
    seed: int = 0
    dt: float = 0.05
    waypoints: int = 3
    speed: tuple[float, float] = (0.08, 0.18)
    turn_rate: float = 0.5
    tremor: float = 0.002
    box_min: tuple[float, float, float] = (0.3, -0.35, 0.15)
    box_max: tuple[float, float, float] = (0.62, 0.35, 0.45)
    max_yaw: float = 0.8
    position_tolerance: float = 0.03
    rotation_tolerance: float = 0.2
    limit_tolerance: float = 0.005
    bisection_steps: int = 8
    sim_timestep: float = 0.002

    def __post_init__(self) -> None:
        if self.num_demos < 1 or self.waypoints < 2 or self.bisection_steps < 1:
            raise ValueError("need num_demos >= 1, waypoints >= 2 and bisection_steps >= 1")
        if not (self.dt > 0 and 0 < self.speed[0] <= self.speed[1]):
            raise ValueError("need dt > 0 and 0 < speed[0] <= speed[1]")
        if min(self.position_tolerance, self.rotation_tolerance) <= 0 or self.limit_tolerance < 0:
            raise ValueError("tolerances must be > 0")


@dataclass
class Demo:
    """A synthetic demonstration: TCP targets at ``dt`` spacing.

    Attributes:
        index: demo number.
        hazard: one of ``HAZARDS``.
        positions: (T, 3) targets (m).
        quaternions: (T, 4) orientations (w, x, y, z).
        stamps: (T,) times (s).
    """

    index: int
    hazard: str
    positions: np.ndarray
    quaternions: np.ndarray
    stamps: np.ndarray


@dataclass
class ReplayResult:
    """One replay of one demonstration variant.

    Attributes:
        demo: demo index.
        hazard: the demo's hazard.
        variant: ``raw``, ``hold`` or ``clamp``.
        frames: frames replayed.
        infeasible: frames whose (raw) verdict is infeasible.
        warning: frames whose (raw) verdict is a warning.
        debounced_infeasible: frames whose debounced level is infeasible.
        corrected: frames the feedback replaced (0 for ``raw``).
        deviation: mean TCP distance of the recorded targets from the demonstrated ones (m).
        max_position_error: largest TCP position error over the replay (m).
        max_rotation_error: largest TCP orientation error (rad).
        collision: a robot contact with the scene or itself occurred.
        limit_hit: a joint came within ``limit_tolerance`` of its limit.
        success: tracking within tolerance, no collision, no limit hit.
    """

    demo: int
    hazard: str
    variant: str
    frames: int
    infeasible: int
    warning: int
    debounced_infeasible: int
    corrected: int
    deviation: float
    max_position_error: float
    max_rotation_error: float
    collision: bool
    limit_hit: bool
    success: bool


# ----------------------------------------------------------------------------- demonstrations
def _rotation(yaw: float, tilt_x: float, tilt_y: float) -> np.ndarray:
    """Gripper pointing down (TCP z along -z), turned by ``yaw`` about the vertical and tilted."""
    down = np.diag([1.0, -1.0, -1.0])
    return (pin.utils.rpyToMatrix(tilt_x, tilt_y, yaw) @ down)


def _min_jerk(s: np.ndarray) -> np.ndarray:
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def _quat_wxyz(rotation: np.ndarray) -> np.ndarray:
    q = pin.Quaternion(rotation)
    q.normalize()
    return np.array([q.w, q.x, q.y, q.z])


def hazard_waypoint(rng: np.random.Generator, hazard: str, checker: FeasibilityChecker):
    """A waypoint ``(position, rotation)`` that makes the demonstration infeasible for a while."""
    if hazard == "workspace":  # beyond the arm's reach, ahead or to the side
        heading = rng.uniform(-1.0, 1.0)
        radius = rng.uniform(1.0, 1.25)
        return np.array([radius * math.cos(heading), radius * math.sin(heading), rng.uniform(0.2, 0.5)]), \
            _rotation(rng.uniform(-0.5, 0.5), 0.0, 0.0)
    if hazard == "table":  # the fingers dip into the table top
        position = np.append(rng.uniform([0.35, -0.3], [0.6, 0.3]), rng.uniform(-0.06, -0.02))
        if abs(position[1]) < 0.08 and position[0] > 0.42:  # stay clear of the block: hit the table itself
            position[1] += 0.15 * np.sign(position[1] or 1.0)
        return position, _rotation(rng.uniform(-0.5, 0.5), 0.0, 0.0)
    if hazard == "singularity":  # wrist singularity: joint 6 near pi (joint 5 and 7 axes parallel)
        q = checker.robot.ready_pose.copy()
        q[0] = rng.uniform(-0.6, 0.6)
        q[1] = rng.uniform(-0.2, 0.5)
        q[3] = rng.uniform(-2.6, -1.6)
        q[5] = math.pi + rng.uniform(-0.04, 0.04)
        q[6] = rng.uniform(-1.0, 1.0)
        pose = checker.robot.ee_placement(q)
        return pose.translation.copy(), pose.rotation.copy()
    raise ValueError(f"unknown hazard {hazard!r}")


def make_demo(index: int, hazard: str, config: StudyConfig, checker: FeasibilityChecker) -> Demo:
    """A smooth demonstration through random waypoints; ``hazard`` replaces one inner waypoint."""
    rng = np.random.default_rng(config.seed + index)
    lo, hi = np.asarray(config.box_min), np.asarray(config.box_max)
    waypoints = []
    for _ in range(config.waypoints):
        waypoints.append((rng.uniform(lo, hi), _rotation(rng.uniform(-config.max_yaw, config.max_yaw),
                                                          rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15))))
    if hazard != "nominal":
        k = int(rng.integers(1, config.waypoints - 1)) if config.waypoints > 2 else config.waypoints - 1
        waypoints[k] = hazard_waypoint(rng, hazard, checker)
    positions, rotations = [waypoints[0][0]], [waypoints[0][1]]
    for (p0, r0), (p1, r1) in zip(waypoints[:-1], waypoints[1:]):
        distance = float(np.linalg.norm(p1 - p0))
        angle = float(np.linalg.norm(pin.log3(r0.T @ r1)))
        duration = max(distance / rng.uniform(*config.speed), angle / config.turn_rate, 0.5)
        n = max(2, int(math.ceil(duration / config.dt)))
        delta = pin.log3(r0.T @ r1)
        for s in _min_jerk(np.arange(1, n + 1) / n):
            positions.append(p0 + s * (p1 - p0))
            rotations.append(r0 @ pin.exp3(s * delta))
        for _ in range(int(rng.integers(2, 8))):  # dwell a moment at the waypoint
            positions.append(p1.copy())
            rotations.append(r1.copy())
    positions = np.array(positions)
    if config.tremor > 0:  # smoothed random walk: slow hand tremor
        noise = np.cumsum(rng.normal(0, config.tremor * 0.3, positions.shape), axis=0)
        kernel = np.ones(5) / 5
        noise = np.stack([np.convolve(noise[:, i], kernel, mode="same") for i in range(3)], axis=1)
        noise -= np.linspace(0, 1, len(noise))[:, None] * noise[-1]
        positions = positions + np.clip(noise, -3 * config.tremor, 3 * config.tremor)
    quats = np.array([_quat_wxyz(r) for r in rotations])
    stamps = np.arange(len(positions)) * config.dt
    return Demo(index, hazard, positions, quats, stamps)


def make_demos(config: StudyConfig, checker: FeasibilityChecker | None = None) -> list[Demo]:
    """``config.num_demos`` demonstrations, hazards round-robin."""
    checker = checker or FeasibilityChecker()
    return [make_demo(i, HAZARDS[i % len(HAZARDS)], config, checker) for i in range(config.num_demos)]


# ------------------------------------------------------------------------------- checking
@dataclass
class CheckedDemo:
    """A (possibly corrected) demonstration with its verdicts.

    Attributes:
        positions: (T, 3) targets actually recorded (after correction).
        quaternions: (T, 4).
        q: (T, 7) joint configurations to replay (IK solutions; the last iterate when IK failed).
        levels: raw verdict level per frame.
        shown: debounced level per frame.
        corrected: per frame, whether the feedback replaced it.
    """

    positions: np.ndarray
    quaternions: np.ndarray
    q: np.ndarray
    levels: list = field(default_factory=list)
    shown: list = field(default_factory=list)
    corrected: np.ndarray | None = None


def _target(position, quat) -> pin.SE3:
    w, x, y, z = quat
    return pin.SE3(pin.Quaternion(w, x, y, z).toRotationMatrix(), np.asarray(position, float))


def _interpolate(p0, q0, p1, q1, s: float):
    r0, r1 = _target(p0, q0).rotation, _target(p1, q1).rotation
    rot = r0 @ pin.exp3(s * pin.log3(r0.T @ r1))
    return p0 + s * (p1 - p0), _quat_wxyz(rot)


def check_demo(demo: Demo, checker: FeasibilityChecker, variant: str, debounce_frames: int = 5,
               bisection_steps: int = 8) -> CheckedDemo:
    """Check every frame and apply the variant's correction; ``checker`` must hold the scene.

    A frame is corrected exactly when the checker would call it infeasible (its verdict is
    predicted with the same IK warm start, static checks and rate window). While correcting, and
    until a demonstrated frame is accepted again, the operator also moves no joint faster than the
    rate limit from one frame to the next, so the recording never jumps back onto the path.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    checker.reset()
    cfg = checker.config
    debouncer = Debouncer(debounce_frames)
    seeds = (np.clip(checker.robot.ready_pose, checker.lower, checker.upper),)
    positions, quats, qs, levels, shown, corrected = [], [], [], [], [], []
    history: list[tuple[np.ndarray, float]] = []  # (IK solution, stamp): what the rate window sees
    last = None  # (position, quat) of the last feasible recorded frame
    recovering = False
    q_prev = seeds[0]

    def feasible(position, quat, stamp: float, strict: bool) -> bool:
        """Would the checker accept this frame next (and, if ``strict``, without a rate burst)?"""
        q_from = history[-1][0] if history else seeds[0]
        sol = checker.ik.solve(_target(position, quat), q_from, seeds)
        if not sol.success:
            return False
        if strict and history:
            dt = stamp - history[-1][1]
            if not dt > 0 or np.any(np.abs(sol.q - history[-1][0]) > checker.rate.limit * dt):
                return False
        if not checker.evaluate(sol.q).feasible:
            return False
        window = RateWindow(checker.robot.velocity_limit, cfg.velocity_scale, cfg.rate_window,
                            cfg.rate_min_violations, cfg.rate_max_dt)
        for q, t in history[-(cfg.rate_window + 1):]:
            window.update(q, t)
        return window.update(sol.q, stamp).passed

    for position, quat, stamp in zip(demo.positions, demo.quaternions, demo.stamps):
        p, qt, fixed = position, quat, False
        if variant != "raw" and last is not None and not feasible(position, quat, stamp, recovering):
            fixed = True
            p, qt = last
            if variant == "clamp":  # farthest acceptable pose towards the demonstrated one
                lo, hi = 0.0, 1.0
                for _ in range(bisection_steps):
                    mid = (lo + hi) / 2
                    cand = _interpolate(last[0], last[1], position, quat, mid)
                    lo, hi = (mid, hi) if feasible(cand[0], cand[1], stamp, True) else (lo, mid)
                if lo > 0:
                    p, qt = _interpolate(last[0], last[1], position, quat, lo)
        recovering = fixed
        verdict = checker.check_ee_pose(p, qt, stamp)
        if "ik" in verdict.checks and verdict.checks["ik"].passed:
            history.append((verdict.q, stamp))
        q = verdict.q if verdict.q is not None else q_prev
        positions.append(np.asarray(p, float))
        quats.append(np.asarray(qt, float))
        qs.append(q)
        levels.append(verdict.level)
        shown.append(debouncer.update(verdict.level))
        corrected.append(fixed)
        q_prev = q
        if verdict.feasible:
            last = (np.asarray(p, float), np.asarray(qt, float))
    return CheckedDemo(np.array(positions), np.array(quats), np.array(qs), levels, shown, np.array(corrected))


# -------------------------------------------------------------------------------- replaying
class Replayer:
    """Replays joint trajectories on one ``PandaSim`` and measures tracking, contacts and limits."""

    def __init__(self, config: StudyConfig) -> None:
        from morobot.sim.panda import PandaSim, PandaSimConfig
        from morobot.sim.panda_scene import ARM_JOINTS, ROBOT_GEOM_GROUP, urdf_limits

        self.config = config
        self.sim = PandaSim(PandaSimConfig(timestep=config.sim_timestep))
        model = self.sim.model
        base = model.body("panda_link0").id  # stands on the table: its contact is not a collision
        self._robot = np.array([model.geom_group[g] == ROBOT_GEOM_GROUP and model.geom_bodyid[g] != base
                                for g in range(model.ngeom)])
        limits = urdf_limits()
        self._lower = np.array([limits[j][0] for j in ARM_JOINTS])
        self._upper = np.array([limits[j][1] for j in ARM_JOINTS])

    def scene_points(self) -> np.ndarray:
        """The simulator's cloud without the robot (for the checker's scene)."""
        self.sim.reset()
        return self.sim.scene_points(include_robot=False)

    def _contact(self) -> bool:
        data = self.sim.data
        for i in range(data.ncon):
            c = data.contact[i]
            g1, g2 = c.geom1, c.geom2
            if (self._robot[g1] or self._robot[g2]) and c.dist < 0.0:
                return True
        return False

    def replay(self, checked: CheckedDemo, dt: float) -> tuple[float, float, bool, bool]:
        """``(max position error, max rotation error, collision, limit hit)``."""
        sim = self.sim
        sim.reset(q=np.clip(checked.q[0], self._lower, self._upper))
        max_pos = max_rot = 0.0
        collision = limit = False
        sub = max(1, int(round(dt / 0.005)))
        q_prev = checked.q[0]
        for q, position, quat in zip(checked.q, checked.positions, checked.quaternions):
            # the robot interpolates between demo frames (as a trajectory controller would)
            velocity = (q - q_prev) / dt
            for k in range(1, sub + 1):
                sim.set_joint_command(q_prev + (q - q_prev) * k / sub, velocities=velocity)
                sim.advance(dt / sub)
                collision = collision or self._contact()
            q_prev = q
            arm = sim.joint_state().positions[:7]
            if np.any(arm < self._lower + self.config.limit_tolerance) or \
                    np.any(arm > self._upper - self.config.limit_tolerance):
                limit = True
            ee = sim.ee_pose()
            max_pos = max(max_pos, float(np.linalg.norm(ee.position - position)))
            rel = _target(ee.position, ee.quaternion).rotation.T @ _target(position, quat).rotation
            max_rot = max(max_rot, float(np.linalg.norm(pin.log3(rel))))
        return max_pos, max_rot, collision, limit

    def close(self) -> None:
        self.sim.close()


def run_study(config: StudyConfig = StudyConfig(), checker_config: FeasibilityConfig = FeasibilityConfig(),
              variants=VARIANTS, progress=None) -> list[ReplayResult]:
    """Generate the demonstrations, check/correct them and replay every variant."""
    checker = FeasibilityChecker(checker_config)
    replayer = Replayer(config)
    try:
        checker.update_scene(replayer.scene_points())
        demos = make_demos(config, checker)
        results = []
        for demo in demos:
            for variant in variants:
                checked = check_demo(demo, checker, variant, checker_config.debounce_frames, config.bisection_steps)
                pos, rot, collision, limit = replayer.replay(checked, config.dt)
                ok = (pos <= config.position_tolerance and rot <= config.rotation_tolerance
                      and not collision and not limit)
                results.append(ReplayResult(
                    demo.index, demo.hazard, variant, len(checked.q),
                    sum(level is Level.INFEASIBLE for level in checked.levels),
                    sum(level is Level.WARNING for level in checked.levels),
                    sum(level is Level.INFEASIBLE for level in checked.shown),
                    int(checked.corrected.sum()),
                    float(np.mean(np.linalg.norm(checked.positions - demo.positions, axis=1))),
                    pos, rot, collision, limit, ok))
            if progress is not None:
                progress(demo)
        return results
    finally:
        replayer.close()


# --------------------------------------------------------------------------------- reporting
def aggregate(results: list[ReplayResult], config: StudyConfig = StudyConfig()) -> dict:
    """Per variant (and per variant and hazard): counts and rates."""
    out: dict = {}
    for r in results:
        for key in (r.variant, f"{r.variant}/{r.hazard}"):
            a = out.setdefault(key, {"demos": 0, "success": 0, "frames": 0, "infeasible": 0, "warning": 0,
                                     "deviation": 0.0,
                                     "debounced_infeasible": 0, "corrected": 0, "collision": 0,
                                     "tracking_failure": 0, "limit_hit": 0, "demos_with_infeasible": 0})
            a["demos"] += 1
            a["success"] += r.success
            a["frames"] += r.frames
            a["infeasible"] += r.infeasible
            a["warning"] += r.warning
            a["debounced_infeasible"] += r.debounced_infeasible
            a["corrected"] += r.corrected
            a["deviation"] += r.deviation * r.frames
            a["collision"] += r.collision
            a["limit_hit"] += r.limit_hit
            a["demos_with_infeasible"] += r.infeasible > 0
            a["tracking_failure"] += not (r.max_position_error <= config.position_tolerance
                                          and r.max_rotation_error <= config.rotation_tolerance)
    for a in out.values():
        a["success_rate"] = a["success"] / a["demos"]
        a["infeasible_fraction"] = a["infeasible"] / a["frames"]
        a["debounced_infeasible_fraction"] = a["debounced_infeasible"] / a["frames"]
        a["mean_deviation"] = a["deviation"] / a["frames"]
        a["warning_fraction"] = a["warning"] / a["frames"]
    return out


LABELS = {"raw": "without feedback (raw recording)", "hold": "with feedback: hold",
          "clamp": "with feedback: clamp"}


def markdown_table(results: list[ReplayResult], config: StudyConfig) -> str:
    """The study's result tables in Markdown."""
    agg = aggregate(results, config)
    variants = [v for v in VARIANTS if v in agg]
    lines = ["| demonstrations | replay success | infeasible frames (raw) | infeasible frames (debounced) | "
             "warning frames | "
             "frames corrected | mean deviation from the demo | collisions | tracking failures | limit hits |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for v in variants:
        a = agg[v]
        lines.append(f"| {LABELS[v]} | **{a['success']}/{a['demos']} ({a['success_rate']:.0%})** | "
                     f"{a['infeasible_fraction']:.1%} | {a['debounced_infeasible_fraction']:.1%} | "
                     f"{a['warning_fraction']:.1%} | "
                     f"{a['corrected'] / a['frames']:.1%} | {a['mean_deviation'] * 1000:.0f} mm | "
                     f"{a['collision']} | {a['tracking_failure']} | "
                     f"{a['limit_hit']} |")
    lines += ["", "| hazard | demos | " + " | ".join(f"success {v}" for v in variants)
              + " | infeasible frames raw (debounced) |", "|---|---|" + "---|" * len(variants) + "---|"]
    for hazard in HAZARDS:
        if f"raw/{hazard}" not in agg and f"{variants[0]}/{hazard}" not in agg:
            continue
        first = agg[f"{variants[0]}/{hazard}"]
        cells = [f"{agg[f'{v}/{hazard}']['success']}/{agg[f'{v}/{hazard}']['demos']}" for v in variants]
        raw = agg.get(f"raw/{hazard}", first)
        lines.append(f"| {hazard} | {first['demos']} | " + " | ".join(cells)
                     + f" | {raw['infeasible_fraction']:.1%} ({raw['debounced_infeasible_fraction']:.1%}) |")
    return "\n".join(lines)


def results_to_dicts(results: list[ReplayResult]) -> list[dict]:
    return [asdict(r) for r in results]
