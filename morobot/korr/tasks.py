"""Contact-rich Panda tasks for KORR: push-block-to-target and block insertion (peg-in-hole).

Both tasks use the default ``morobot.sim`` scene (block, flat target marker, square-hole fixture)
and the same interfaces:

* observation: :func:`features` of one measurement (joint positions/velocities, block pose) —
  ``OBS_DIM`` numbers (layout in ``OBS_NAMES``); the runtime policy computes it the same way.
* action: normalised end-effector action in ``[-1, 1]^5`` (see ``morobot.korr.kinematics``),
  applied at 10 Hz through a stateless differential-IK step from the measured joints.
* reward: sparse, 1 on the step the task succeeds (the episode then terminates), else 0; with
  ``shaping > 0`` plus the potential-based term ``shaping * (gamma * Phi(s') - Phi(s))`` (see
  :func:`potential`), with ``Phi = 0`` after the last step of an episode so that the shaped
  return is the sparse return minus ``shaping * Phi(s_0)`` and the optimal policy is unchanged.

``push``: move the block's centre within ``PUSH_TOLERANCE`` of the target marker centre by
pushing it with the closed fingers (30 cm from the nominal start).
``insert``: grasp the block, carry it to the fixture and lower it into the square hole (4 mm
clearance per side, so it must be yaw-aligned within ~9 deg): success when its centre is within
``INSERT_TOLERANCE`` of the hole axis and below ``INSERT_HEIGHT``.

Randomness levels spread the initial block pose (and the arm start); perturbation levels add
random pushes with yaw torque on the block (force = mass x acceleration, like the KORR paper's
"1 % chance per step" perturbation but per 10 Hz control step) and measurement noise on the
block pose and the joints.

Length: the two tasks share the scene, the vectorised environment and the scripted expert that labels both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from morobot.korr.kinematics import (MAX_STEP, MAX_YAW_STEP, ArmKinematics, CommandGenerator, wrap_angle,
                                     wrap_quarter,
                                     yaw_from_quat)
from morobot.korr.sim import FastPanda, PandaSimBackend, SimSettings, build_fast_model, random_push

TASKS = ("push", "insert")
ACT_DIM = 5
OBS_NAMES = (
    [f"q{i}" for i in range(1, 8)] + [f"qd{i}" for i in range(1, 8)]
    + ["tool_x", "tool_y", "tool_z", "tool_sin_yaw", "tool_cos_yaw", "width",
       "obj_x", "obj_y", "obj_z", "obj_sin4yaw", "obj_cos4yaw", "rel_sin4yaw", "rel_cos4yaw",
       "obj_tool_x", "obj_tool_y", "obj_tool_z", "goal_obj_x", "goal_obj_y", "goal_obj_z",
       "ref_tool_x", "ref_tool_y", "ref_tool_z"]
)
OBS_DIM = len(OBS_NAMES)

PUSH_TOLERANCE = 0.02      # m, block centre to target centre (xy)
INSERT_TOLERANCE = 0.008   # m, block centre to hole axis (xy)
INSERT_HEIGHT = 0.03       # m, block centre height (resting on the table: 0.025)
START_TOOL = np.array([0.42, -0.05, 0.14])


@dataclass(frozen=True)
class Randomness:
    """Initial-state spread: block xy uniform in +-``xy`` (m), yaw +-``yaw`` (rad), tool start +-``tool``."""

    name: str
    xy: float
    yaw: float
    tool: float


@dataclass(frozen=True)
class Perturbation:
    """Execution perturbations.

    Attributes:
        push_probability: chance per control step (10 Hz) that the block gets a push.
        push_acceleration: push force / block mass (m/s^2); the table friction decelerates ~9.8.
        push_duration: s.
        object_noise: std of the measured block position (m).
        object_yaw_noise: std of the measured block yaw (rad).
        joint_noise: std of the measured arm joint positions (rad).
    """

    name: str
    push_probability: float = 0.0
    push_acceleration: float = 0.0
    push_duration: float = 0.05
    object_noise: float = 0.0
    object_yaw_noise: float = 0.0
    joint_noise: float = 0.0


RANDOMNESS = {
    "low": Randomness("low", 0.015, math.radians(10), 0.01),
    "med": Randomness("med", 0.04, math.radians(30), 0.03),
    "high": Randomness("high", 0.06, math.radians(45), 0.05),
}
PERTURBATIONS = {
    "none": Perturbation("none"),
    "low": Perturbation("low", 0.03, 16.0, 0.05, 0.0005, math.radians(1), 0.0005),
    "high": Perturbation("high", 0.06, 20.0, 0.05, 0.0015, math.radians(2), 0.001),
}


@dataclass(frozen=True)
class TaskSpec:
    """One task: where things are, how long an episode may last, how success is judged."""

    name: str
    max_steps: int
    goal: tuple[float, float, float]


def task_spec(name: str, settings: SimSettings = SimSettings()) -> TaskSpec:
    """The task ``name`` on the scene ``settings.layout``."""
    layout = settings.layout
    half = layout.block_size / 2
    if name == "push":
        return TaskSpec("push", 70, (*layout.target_position, half))
    if name == "insert":
        return TaskSpec("insert", 100, (*layout.fixture_position, half))
    raise ValueError(f"unknown task {name!r}; expected one of {TASKS}")


class State(NamedTuple):
    """Geometric quantities behind one observation (all in panda_link0)."""

    tool: np.ndarray
    tool_yaw: float
    width: float
    obj: np.ndarray
    obj_yaw: float
    goal: np.ndarray
    ref: np.ndarray


def features(kin: ArmKinematics, q9, qd9, obj_pos, obj_quat, goal, tool_ref=None) -> tuple[np.ndarray, State]:
    """Observation vector (``OBS_DIM``) and its geometric :class:`State` from one measurement.

    Args:
        kin: kinematics helper.
        q9: 7 arm + 2 finger joint positions (7 values: fingers taken as open).
        qd9: the matching velocities (7 or 9 values).
        obj_pos: block position (3,) in panda_link0.
        obj_quat: block quaternion (w, x, y, z).
        goal: goal position of the block centre (3,).
        tool_ref: the command generator's tool reference (3,); the measured tool if None.
    """
    q9 = np.asarray(q9, float)
    q = q9[:7]
    width = float(q9[7] + q9[8]) if q9.shape[0] >= 9 else 0.08
    tool, rot = kin.tool_pose(q)
    tool_yaw = kin.tool_yaw(rot)
    obj = np.asarray(obj_pos, float)
    obj_yaw = yaw_from_quat(obj_quat)
    goal = np.asarray(goal, float)
    rel = obj_yaw - tool_yaw
    ref = tool.copy() if tool_ref is None else np.asarray(tool_ref, float).copy()
    obs = np.concatenate([
        q, np.asarray(qd9, float)[:7], tool, [math.sin(tool_yaw), math.cos(tool_yaw), width],
        obj, [math.sin(4 * obj_yaw), math.cos(4 * obj_yaw), math.sin(4 * rel), math.cos(4 * rel)],
        obj - tool, goal - obj, ref - tool,
    ])
    return obs, State(tool, tool_yaw, width, obj, obj_yaw, goal, ref)


#: Length unit of :func:`potential`: 10 cm of distance = 1 unit of potential.
POTENTIAL_LENGTH = 0.1

_LAYOUT = SimSettings().layout
#: Block-centre height at which the block's bottom clears the fixture walls (+5 mm margin).
INSERT_CLEAR_HEIGHT = _LAYOUT.fixture_height + _LAYOUT.block_size / 2 + 0.005
#: Height the ``via`` insert potential assumes for carrying (the expert carries at ~0.10 m).
INSERT_CARRY_HEIGHT = 0.11
#: Block-to-hole-axis xy distance within which the block fits into the hole (hole half - block
#: half, axis-aligned) and counts as over the hole; beyond ``INSERT_OVER_RADIUS +
#: INSERT_BLEND`` it counts as not over the hole (linear blend in between).
INSERT_OVER_RADIUS = (_LAYOUT.hole_size - _LAYOUT.block_size) / 2
INSERT_BLEND = 0.008
#: Insert potentials: ``via`` (default, goes over the walls and only down when over the hole),
#: ``via_wide`` (round-3 pilot A: 5 mm over-the-hole radius, blend out to where the block
#: clears the walls, which rewards lowering a misaligned block onto the wall edges),
#: ``height`` (round 2: straight line, charges the lift over the walls), ``xy`` (no credit for
#: lowering at all: xy distance plus the lift still needed away from the hole).
INSERT_POTENTIALS = ("via", "via_wide", "height", "xy")
_INSERT_RADII = {"via": (INSERT_OVER_RADIUS, INSERT_OVER_RADIUS + INSERT_BLEND),
                 "xy": (INSERT_OVER_RADIUS, INSERT_OVER_RADIUS + INSERT_BLEND),
                 "via_wide": (0.005, _LAYOUT.hole_size / 2 + _LAYOUT.fixture_wall + _LAYOUT.block_size / 2)}


def insert_not_over_hole(obj, goal, kind: str = "via") -> float:
    """Blend weight ``b`` of :func:`insert_distance`: 0 over the hole, 1 not over it (``height``: 1)."""
    if kind == "height":
        return 1.0
    if kind not in _INSERT_RADII:
        raise ValueError(f"unknown insert potential {kind!r}; expected one of {INSERT_POTENTIALS}")
    r_in, r_out = _INSERT_RADII[kind]
    d = float(np.hypot(obj[0] - goal[0], obj[1] - goal[1]))
    return float(np.clip((d - r_in) / (r_out - r_in), 0.0, 1.0))


def insert_distance(obj, goal, kind: str = "via") -> float:
    """Remaining block path (m) to the hole bottom, the task-progress distance of the insert potential.

    ``via``: the path a block must take: up to ``INSERT_CLEAR_HEIGHT`` (if lower), across to
    the hole, down from ``INSERT_CARRY_HEIGHT``. With ``d`` the xy distance to the hole axis and
    ``b`` = 0 over the hole (``d <= INSERT_OVER_RADIUS``, where the block fits), 1 not over it
    (``d >= INSERT_OVER_RADIUS + INSERT_BLEND``), linear in between::

        d + (1 - b) |z - z_goal| + b (max(0, z_clear - z) + z_carry - z_goal)

    Away from the hole, lifting the block up to the clearance height shortens the distance and
    any carrying height up to ``z_carry`` costs nothing; only over the hole does lowering
    shorten it, so a misaligned block lowered onto the wall edges is worse off than one held
    aligned above the hole. ``via_wide``: the same with the radii of the first round-3 pilot.
    ``height`` (round 2): ``d + |z - z_goal|``, which charges the lift over the walls.
    ``xy``: ``d + b max(0, z_clear - z)``: lifting away from the hole and moving towards it is
    progress, lowering never is (the success reward alone credits the descent and release), and
    lowering a block that is not over the hole below the wall tops costs.
    """
    obj = np.asarray(obj, float)
    goal = np.asarray(goal, float)
    d = float(np.hypot(obj[0] - goal[0], obj[1] - goal[1]))
    height = abs(float(obj[2] - goal[2]))
    if kind == "height":
        return d + height
    b = insert_not_over_hole(obj, goal, kind)
    if kind == "xy":
        return d + b * max(0.0, INSERT_CLEAR_HEIGHT - float(obj[2]))
    detour = max(0.0, INSERT_CLEAR_HEIGHT - float(obj[2])) + INSERT_CARRY_HEIGHT - float(goal[2])
    return d + (1.0 - b) * height + b * detour


def potential(task: str, obj_pos, tool, goal, insert_kind: str = "via") -> float:
    """Shaping potential ``Phi <= 0`` of one (true) state: minus a task-progress distance / 10 cm.

    ``push``: block-to-target distance (xy) + 0.3 x how far the tool is from the block beyond
    contact distance (4 cm, xy). ``insert``: the block's remaining path to the hole bottom
    (:func:`insert_distance` of kind ``insert_kind``; the default ``via`` goes over the fixture
    walls) + 0.5 x tool-to-block distance beyond 1 cm (for ``xy`` only while the block is not
    over the hole, so that letting go over the hole costs nothing). Only the potential *differences*
    are rewarded (``gamma Phi(s') - Phi(s)``), so this changes how fast progress is credited, not
    which policy is optimal (Ng et al. 1999).
    """
    obj = np.asarray(obj_pos, float)
    tool = np.asarray(tool, float)
    goal = np.asarray(goal, float)
    if task == "push":
        d_goal = float(np.hypot(obj[0] - goal[0], obj[1] - goal[1]))
        d_tool = float(np.hypot(tool[0] - obj[0], tool[1] - obj[1]))
        dist = d_goal + 0.3 * max(0.0, d_tool - 0.04)
    elif task == "insert":
        d_tool = float(np.linalg.norm(tool - obj))
        w_tool = 0.5 * (insert_not_over_hole(obj, goal, insert_kind) if insert_kind == "xy" else 1.0)
        dist = insert_distance(obj, goal, insert_kind) + w_tool * max(0.0, d_tool - 0.01)
    else:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return -dist / POTENTIAL_LENGTH


def shaping_term(phi: float, phi_next: float, done: bool, gamma: float) -> float:
    """``gamma * Phi(s') - Phi(s)``, with ``Phi(s') = 0`` when the episode ended at ``s'``."""
    return (0.0 if done else gamma * phi_next) - phi


def scale_perturbation(p: Perturbation, factor: float) -> Perturbation:
    """``p`` with push probability and every noise std multiplied by ``factor`` (in [0, 1]).

    The push strength (acceleration, duration) stays; only how often pushes come scales.
    """
    f = float(np.clip(factor, 0.0, 1.0))
    return Perturbation(f"{p.name}x{f:.2f}", p.push_probability * f, p.push_acceleration, p.push_duration,
                        p.object_noise * f, p.object_yaw_noise * f, p.joint_noise * f)


def curriculum_factor(step: int, ramp_steps: int, start: float) -> float:
    """Perturbation factor at env step ``step``: linear from ``start`` to 1 over ``ramp_steps`` (0: always 1)."""
    if ramp_steps <= 0:
        return 1.0
    return float(start + (1.0 - start) * min(1.0, max(0, step) / ramp_steps))


def success(task: str, obj_pos, goal) -> bool:
    """Whether the (true) block position solves ``task``."""
    err = float(np.hypot(obj_pos[0] - goal[0], obj_pos[1] - goal[1]))
    if task == "push":
        return err < PUSH_TOLERANCE and obj_pos[2] < 0.04
    return err < INSERT_TOLERANCE and obj_pos[2] < INSERT_HEIGHT


# ------------------------------------------------------------------------- scripted experts
def _goto(st: State, target, yaw: float, gripper: float, speed: float = MAX_STEP) -> np.ndarray:
    """Action moving the tool reference towards ``target`` (at most ``speed`` m) and yaw."""
    delta = np.asarray(target, float) - st.ref
    norm = float(np.linalg.norm(delta))
    if norm > speed:
        delta = delta * speed / norm
    yaw_step = float(wrap_angle(yaw - st.tool_yaw))
    return np.array([*(delta / MAX_STEP), np.clip(yaw_step / MAX_YAW_STEP, -1.0, 1.0), gripper])


def push_expert(st: State) -> np.ndarray:
    """Closed-loop pusher: get behind the block (w.r.t. the target), lower, push through its centre."""
    b, g = st.obj[:2], st.goal[:2]
    d = g - b
    dist = float(np.linalg.norm(d))
    tool = st.tool
    if dist < 0.006:
        return _goto(st, tool, 0.0, -1.0)
    u = d / dist
    n = np.array([-u[1], u[0]])
    e = tool[:2] - b
    along, lat = float(e @ u), float(e @ n)
    contact = 0.025 + 0.011
    z_push, z_safe = 0.022, 0.08
    if -0.075 < along < -0.015 and abs(lat) < 0.015 and tool[2] < 0.045:
        lead = min(0.012, dist)
        xy = b - u * (contact - lead)
        return _goto(st, [xy[0], xy[1], z_push], 0.0, -1.0, speed=0.015)
    pre = b - u * (contact + 0.025)
    off = float(np.linalg.norm(pre - tool[:2]))
    if off > 0.012:
        if tool[2] < 0.05 and np.linalg.norm(e) < 0.09:
            return _goto(st, [tool[0], tool[1], z_safe], 0.0, -1.0)
        return _goto(st, [pre[0], pre[1], z_safe], 0.0, -1.0)
    return _goto(st, [pre[0], pre[1], z_push], 0.0, -1.0)


def insert_expert(st: State) -> np.ndarray:
    """Grasp yaw-aligned, lift over the walls, align the block with the hole, lower it, let go.

    Descents are scaled smoothly by the remaining alignment error (rather than gated by a
    threshold) so that behaviour cloning sees consistent labels near the decision boundary.
    """
    tool, obj = st.tool, st.obj
    near = np.linalg.norm(obj[:2] - tool[:2]) < 0.02 and abs(obj[2] - tool[2]) < 0.03
    grasped = near and 0.035 < st.width < 0.057
    z_carry = 0.105
    if grasped:
        yaw_err = float(wrap_quarter(st.obj_yaw))  # the fixture is axis-aligned
        hand_yaw = st.tool_yaw - yaw_err
        e = st.goal[:2] - obj[:2]
        d = float(np.linalg.norm(e))
        above = tool[:2] + e  # where the tool must be for the block to be over the hole
        if d > 0.012:
            if obj[2] < 0.068:  # clear the walls before moving sideways
                return _goto(st, [tool[0], tool[1], z_carry], hand_yaw, -1.0)
            return _goto(st, [above[0], above[1], z_carry], hand_yaw, -1.0)
        if obj[2] < 0.056 and d < 0.004 and abs(yaw_err) < 0.06:
            return _goto(st, tool, hand_yaw, 1.0)  # fingers about to touch the walls: let go
        # +1: well aligned, descend; 0 at 6 mm; -1: misaligned, back up
        descend = float(np.clip((0.006 - d) / 0.003, -1.0, 1.0)) * float(np.clip((0.1 - abs(yaw_err)) / 0.05, 0, 1))
        z = float(np.clip(tool[2] - 0.015 * descend, 0.03, z_carry))
        return _goto(st, [above[0], above[1], z], hand_yaw, -1.0)
    grasp_yaw = st.tool_yaw + float(wrap_quarter(st.obj_yaw - st.tool_yaw))
    off = float(np.linalg.norm(obj[:2] - tool[:2]))
    z_grasp = obj[2] + 0.004
    if off > 0.015:
        if tool[2] < 0.06:
            return _goto(st, [tool[0], tool[1], z_carry], grasp_yaw, 1.0)
        return _goto(st, [obj[0], obj[1], max(tool[2], 0.07)], grasp_yaw, 1.0)
    if tool[2] < z_grasp + 0.006 and off < 0.006:
        return _goto(st, [obj[0], obj[1], z_grasp], grasp_yaw, -1.0)
    descend = float(np.clip((0.012 - off) / 0.006, 0.0, 1.0)) * float(np.clip((0.12 - abs(grasp_yaw - st.tool_yaw)) / 0.06, 0, 1))
    z = max(tool[2] - 0.02 * descend, z_grasp)
    return _goto(st, [obj[0], obj[1], z], grasp_yaw, 1.0 if st.width > 0.06 or tool[2] > z_grasp + 0.01 else -1.0)


EXPERTS = {"push": push_expert, "insert": insert_expert}


# ------------------------------------------------------------------------- vectorised env
class StepResult(NamedTuple):
    """Batch step output; ``obs`` already holds the reset observation of finished envs."""

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    success: np.ndarray
    final_obs: np.ndarray


class KorrVecEnv:
    """A batch of independent Panda scenes stepped in one process.

    Args:
        task: ``push`` or ``insert``.
        n_envs: batch size.
        randomness: key of ``RANDOMNESS`` or a :class:`Randomness`.
        perturbation: key of ``PERTURBATIONS`` or a :class:`Perturbation`.
        seed: seeds the episode generator (episode ``k`` of env ``i`` is reproducible).
        settings: physics/control timing.
        backend: ``fast`` (:class:`FastPanda`) or ``pandasim`` (:class:`PandaSimBackend`, 1 kHz).
        auto_reset: reset finished envs inside :meth:`step`.
        shaping: weight of the potential-based shaping term in the reward (0: sparse only).
        shaping_gamma: the learner's discount, used in the shaping term.
        insert_potential: kind of insert potential (``INSERT_POTENTIALS``, see :func:`insert_distance`).
    """

    def __init__(self, task: str, n_envs: int = 8, randomness: str | Randomness = "low",
                 perturbation: str | Perturbation = "none", seed: int = 0,
                 settings: SimSettings = SimSettings(), backend: str = "fast", auto_reset: bool = True,
                 shaping: float = 0.0, shaping_gamma: float = 1.0, insert_potential: str = "via") -> None:
        if n_envs < 1:
            raise ValueError("n_envs must be >= 1")
        self.task = task
        self.spec = task_spec(task, settings)
        self.randomness = RANDOMNESS[randomness] if isinstance(randomness, str) else randomness
        self.perturbation = PERTURBATIONS[perturbation] if isinstance(perturbation, str) else perturbation
        self.settings = settings
        self.n_envs = n_envs
        self.auto_reset = auto_reset
        self.goal = np.array(self.spec.goal)
        if backend == "fast":
            model = build_fast_model(settings)
            self.sims = [FastPanda(settings, model) for _ in range(n_envs)]
            self.kin = ArmKinematics(settings.layout, model=model)
        elif backend == "pandasim":
            self.sims = [PandaSimBackend(settings) for _ in range(n_envs)]
            self.kin = ArmKinematics(settings.layout)
        else:
            raise ValueError(f"backend must be fast or pandasim, got {backend!r}")
        self.commanders = [CommandGenerator(self.kin, settings.control_dt) for _ in range(n_envs)]
        self._seed_seq = np.random.SeedSequence(seed)
        self._episode = 0
        self._start_q = self.kin.solve(START_TOOL, 0.0)
        self.rngs = [np.random.default_rng(0)] * n_envs
        self.steps = np.zeros(n_envs, int)
        self.obs = np.zeros((n_envs, OBS_DIM))
        self.states: list[State] = [None] * n_envs  # type: ignore[list-item]
        self.q_meas = np.zeros((n_envs, 9))
        self.done = np.zeros(n_envs, bool)
        self.shaping = float(shaping)
        self.shaping_gamma = float(shaping_gamma)
        if insert_potential not in INSERT_POTENTIALS:
            raise ValueError(f"insert_potential must be one of {INSERT_POTENTIALS}, got {insert_potential!r}")
        self.insert_potential = insert_potential
        self.phi = np.zeros(n_envs)

    def potential(self, i: int) -> float:
        """Shaping potential of env ``i``'s current true block position and (measured) tool."""
        return potential(self.task, self.true_object_position(i), self.states[i].tool, self.goal,
                         self.insert_potential)

    # ------------------------------------------------------------------ episodes
    def _initial(self, rng: np.random.Generator):
        r, layout = self.randomness, self.settings.layout
        xy = np.array(layout.block_position) + rng.uniform(-r.xy, r.xy, 2)
        yaw = rng.uniform(-r.yaw, r.yaw)
        quat = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
        tool = START_TOOL + rng.uniform(-r.tool, r.tool, 3) * np.array([1.0, 1.0, 0.5])
        q = self.kin.solve(tool, rng.uniform(-0.2, 0.2) * r.tool / 0.05, q0=self._start_q, iterations=30)
        return q, (np.array([xy[0], xy[1], layout.block_size / 2]), quat)

    def reset_env(self, i: int, seed: int | None = None) -> np.ndarray:
        """Starts a new episode in env ``i`` (``seed``: a fixed episode, else the next one)."""
        if seed is None:
            seed = int(self._seed_seq.generate_state(1, np.uint32)[0]) + self._episode
            self._episode += 1
        rng = np.random.default_rng(seed)
        self.rngs[i] = rng
        q, pose = self._initial(rng)
        self.sims[i].reset(q, pose)
        self.steps[i] = 0
        self.done[i] = False
        self.commanders[i].reset(q)
        self._measure(i)
        self.phi[i] = self.potential(i) if self.shaping else 0.0
        return self.obs[i]

    def reset(self, seeds: Sequence[int] | None = None) -> np.ndarray:
        """Resets every env (optionally with one episode seed each); returns the observations."""
        for i in range(self.n_envs):
            self.reset_env(i, None if seeds is None else int(seeds[i]))
        return self.obs.copy()

    def _measure(self, i: int) -> None:
        sim, p, rng = self.sims[i], self.perturbation, self.rngs[i]
        q9 = sim.joint_positions()
        qd9 = sim.joint_velocities()
        pos, quat = sim.object_pose()
        if p.joint_noise > 0:
            q9[:7] += rng.normal(0.0, p.joint_noise, 7)
        if p.object_noise > 0:
            pos = pos + rng.normal(0.0, p.object_noise, 3)
        if p.object_yaw_noise > 0:
            dyaw = rng.normal(0.0, p.object_yaw_noise)
            c, s = math.cos(dyaw / 2), math.sin(dyaw / 2)
            w, x, y, z = quat
            quat = np.array([c * w - s * z, c * x - s * y, c * y + s * x, c * z + s * w])
        self.q_meas[i] = q9
        self.obs[i], self.states[i] = features(self.kin, q9, qd9, pos, quat, self.goal,
                                               self.commanders[i].tool_ref)

    def true_object_position(self, i: int) -> np.ndarray:
        return self.sims[i].object_pose()[0]

    # --------------------------------------------------------------------- steps
    def expert_actions(self) -> np.ndarray:
        """The scripted expert's action for every env's current (measured) state."""
        expert = EXPERTS[self.task]
        return np.stack([expert(s) for s in self.states])

    def step(self, actions) -> StepResult:
        """Applies one normalised action per env for one control period."""
        actions = np.asarray(actions, float).reshape(self.n_envs, ACT_DIM)
        n = self.n_envs
        reward = np.zeros(n)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        succ = np.zeros(n, bool)
        final_obs = self.obs.copy()
        p = self.perturbation
        mass, size = self.settings.layout.block_mass, self.settings.layout.block_size
        for i in range(n):
            if self.done[i]:
                continue
            sim, rng = self.sims[i], self.rngs[i]
            cmd = self.commanders[i](self.q_meas[i], actions[i], self.states[i].tool)
            sim.command(cmd.positions, cmd.velocities, cmd.gripper)
            push = None
            if p.push_probability > 0 and rng.random() < p.push_probability:
                push = random_push(rng, mass, p.push_acceleration, size, p.push_duration)
            sim.advance(push)
            self.steps[i] += 1
            if success(self.task, sim.object_pose()[0], self.goal):
                reward[i], terminated[i], succ[i] = 1.0, True, True
            elif self.steps[i] >= self.spec.max_steps:
                truncated[i] = True
            self._measure(i)
            final_obs[i] = self.obs[i]
            if self.shaping:
                phi_next = self.potential(i)
                reward[i] += self.shaping * shaping_term(self.phi[i], phi_next, terminated[i] or truncated[i],
                                                         self.shaping_gamma)
                self.phi[i] = phi_next
            if terminated[i] or truncated[i]:
                if self.auto_reset:
                    self.reset_env(i)
                else:
                    self.done[i] = True
        return StepResult(self.obs.copy(), reward, terminated, truncated, succ, final_obs)

    def close(self) -> None:
        for sim in self.sims:
            close = getattr(sim, "close", None)
            if close is not None:
                close()


def run_expert_episode(env: KorrVecEnv, seed: int, max_steps: int | None = None) -> tuple[bool, int]:
    """Runs the scripted expert in env 0 of ``env`` for one episode; (success, steps)."""
    env.reset_env(0, seed)
    steps = max_steps or env.spec.max_steps
    for k in range(steps):
        obs_actions = np.zeros((env.n_envs, ACT_DIM))
        obs_actions[0] = EXPERTS[env.task](env.states[0])
        auto, env.auto_reset = env.auto_reset, False
        res = env.step(obs_actions)
        env.auto_reset = auto
        if res.success[0]:
            return True, k + 1
        if res.truncated[0]:
            break
    return False, steps
