"""The legged ANYmal on a navigation world, walking under its learned locomotion policy (no ROS).

:class:`LeggedAnymalSim` has the interface of :class:`morobot.sim.anymal.AnymalSim` (``reset``,
``set_command``, ``advance``, ``state``, ``depth_points``, ``terrain_height``) so the simulator node
and the evaluation drive either. Every ``control_dt`` (20 ms) the policy reads the observation the
real robot's controller has (:mod:`morobot.locomotion.observation`: proprioception plus terrain
heights around the base, ground truth here as ANYmal's own elevation map gives them) and sets the
12 joint targets; the PD actuators do the rest. A command older than ``command_timeout`` becomes
zero: the policy stands, as the real controller does when ``/cmd_vel`` goes silent. The robot has
fallen (latched until reset) when it tips past ``fallen_tilt_deg`` or its base comes within
``min_base_height`` of the surface under it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import mujoco
import numpy as np

from morobot import paths
from morobot.locomotion.observation import build_observation, height_sample_points, joint_targets
from morobot.locomotion.policy import LocomotionPolicy
from morobot.sim.anymal import STANDING_POSE, anymal_depth_cameras, camera_links, load_robot_body
from morobot.sim.params import CAMERA_NAMES, camera_problem
from morobot.sim.controlled import ControlledSim
from morobot.sim.depth import DepthSensor, DepthSensorConfig
from morobot.sim.legged import DEFAULT_POSE, JOINTS, LeggedConfig, LeggedIndex, build_world_model, lift_feet_clear
from morobot.sim.locomotion import BaseState, StuckDetector
from morobot.sim.worlds import World


def default_policy() -> Path:
    """The shipped locomotion policy."""
    return paths.models_dir() / "locomotion" / "anymal_c_policy.pt"


#: The base is put down this high (m) over the surface under it in the nominal standing pose, or higher where a
#: foot would start inside the ground (:func:`~morobot.sim.legged.lift_feet_clear`).
SPAWN_HEIGHT = 0.55


@dataclass(frozen=True)
class LeggedSimConfig:
    """Parameters of :class:`LeggedAnymalSim`."""

    policy: str = ""  # empty: the shipped policy
    command_timeout: float = 0.5
    fallen_tilt_deg: float = 60.0
    min_base_height: float = 0.25
    stuck_window: float = 1.5  # the stuck flag (StuckDetector), as the rigid-body robot's
    stuck_ratio: float = 0.25
    legged: LeggedConfig = field(default_factory=LeggedConfig)
    depth: DepthSensorConfig = field(default_factory=DepthSensorConfig)
    cameras: tuple[str, ...] = CAMERA_NAMES  # ANYmal's depth cameras by name (a subset of CAMERA_NAMES)
    tile_cells: int = 64

    def __post_init__(self) -> None:
        for name in ("command_timeout", "fallen_tilt_deg", "min_base_height", "stuck_window", "stuck_ratio"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"LeggedSimConfig.{name} must be positive, got {v!r}")
        problem = camera_problem("LeggedSimConfig.cameras", self.cameras)
        if problem:
            raise ValueError(problem)
        object.__setattr__(self, "cameras", tuple(self.cameras))


@dataclass
class JointStateSample:
    """The 12 leg joints: names (:data:`~morobot.sim.legged.JOINTS`), positions, velocities, efforts."""

    names: tuple
    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray


class LeggedAnymalSim(ControlledSim):
    """The articulated ANYmal C walking on ``world`` under a learned policy.

    Raises:
        ValueError: not a World; :class:`~morobot.locomotion.policy.PolicyError` for a bad policy.
    """

    def __init__(self, world: World, config: Optional[LeggedSimConfig] = None,
                 policy: Optional[LocomotionPolicy] = None) -> None:
        if not isinstance(world, World):
            raise ValueError(f"world must be a morobot.sim.worlds.World, got {type(world).__name__}")
        self.world = world
        self.config = config or LeggedSimConfig()
        self.policy = policy or LocomotionPolicy(self.config.policy or default_policy())
        self.model, _ = build_world_model(world, self.config.legged, self.config.tile_cells)
        self.data = mujoco.MjData(self.model)
        self.idx = LeggedIndex(self.model)
        body = load_robot_body(paths.anymal_urdf(), STANDING_POSE)
        cameras = anymal_depth_cameras(body, camera_links(self.config.cameras))
        self.sensor = DepthSensor(self.model, self.idx.base_body, cameras, self.config.depth)
        self.control_dt = self.config.legged.control_dt
        self._substeps = self.config.legged.decimation
        self.reset()

    # ------------------------------------------------------------------ API
    def reset(self, pose: Optional[Sequence[float]] = None) -> BaseState:
        """Put the robot down at ``pose`` ``(x, y, yaw)`` (default the world's start), in its standing pose.

        The base starts :data:`SPAWN_HEIGHT` over the surface under it, raised where needed so that no foot starts
        inside the ground (:func:`~morobot.sim.legged.lift_feet_clear`); the robot then drops onto its feet.
        """
        p = np.asarray(self.world.start if pose is None else pose, dtype=float).ravel()
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise ValueError(f"pose must be (x, y, yaw) finite numbers, got {pose!r}")
        ground = float(self.world.elevation_at(p[0:1], p[1:2])[0])
        if not math.isfinite(ground):
            raise ValueError(f"pose {tuple(p)} is off the terrain")
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[0:3] = (p[0], p[1], ground + SPAWN_HEIGHT)
        self.data.qpos[3:7] = (math.cos(0.5 * p[2]), 0.0, 0.0, math.sin(0.5 * p[2]))
        self.data.qpos[self.idx.qpos] = DEFAULT_POSE
        self.data.ctrl[self.idx.act] = DEFAULT_POSE
        mujoco.mj_forward(self.model, self.data)
        lift_feet_clear(self.model, self.data, self.idx, self.terrain_height)
        self._command = np.zeros(3)
        self._stamp = -math.inf
        self._action = np.zeros(12)
        self._targets = (DEFAULT_POSE.copy(), DEFAULT_POSE.copy())  # (last, the one before)
        self._fallen = False
        self._stuck = StuckDetector(self.config.stuck_window, self.config.stuck_ratio)
        self._steps = 0
        self._control()
        return self.state()

    def snapshot(self) -> dict[str, Any]:
        """Everything the next steps depend on: the physics' integration state and the controller's own.

        :meth:`restore` returns to it exactly, so one moment can be driven on with several commands
        (the counterfactual branches of ``morobot collect --branches``)."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, physics, spec)
        return {"physics": physics, "command": self._command.copy(), "stamp": self._stamp,
                "action": self._action.copy(), "targets": (self._targets[0].copy(), self._targets[1].copy()),
                "fallen": self._fallen, "stuck": copy.deepcopy(self._stuck), "steps": self._steps}

    def restore(self, snap: dict[str, Any]) -> BaseState:
        """Returns to a :meth:`snapshot` of this simulator; returns :meth:`state`."""
        mujoco.mj_setState(self.model, self.data, snap["physics"], mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)  # positions, contacts and forces for state() and the contact checks
        self._command, self._stamp = snap["command"].copy(), snap["stamp"]
        self._action = snap["action"].copy()
        self._targets = (snap["targets"][0].copy(), snap["targets"][1].copy())
        self._fallen, self._stuck, self._steps = snap["fallen"], copy.deepcopy(snap["stuck"]), snap["steps"]
        return self.state()

    def _rotation(self) -> np.ndarray:
        flat = np.empty(9)
        mujoco.mju_quat2Mat(flat, self.data.qpos[3:7])
        return flat.reshape(3, 3)

    def state(self) -> BaseState:
        q = self.data.qpos[3:7].copy()
        rot = self._rotation()
        return BaseState(position=self.data.qpos[:3].copy(), quaternion=q, yaw=math.atan2(rot[1, 0], rot[0, 0]),
                         linear_velocity=rot.T @ self.data.qvel[:3], angular_velocity=self.data.qvel[3:6].copy(),
                         gravity=-rot[2, :], fallen=self._fallen, stuck=self._stuck.stuck, time=self.time)

    def joint_state(self) -> JointStateSample:
        return JointStateSample(JOINTS, self.data.qpos[self.idx.qpos].copy(), self.data.qvel[self.idx.qvel].copy(),
                                self.data.actuator_force[self.idx.act].copy())

    def joint_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """The policy's last two actions as joint position targets ``([12], [12])`` (rad), newest first."""
        return self._targets[0].copy(), self._targets[1].copy()

    def depth_points(self, noise: bool = True) -> np.ndarray:
        """Points ``[N, 3]`` (float32, base frame) from the depth cameras."""
        return self.sensor.scan(self.data, self.data.qpos[:3], self._rotation(), noise=noise)

    def own_points(self) -> np.ndarray:
        """``[N, 3]`` base-frame points (noise-free) where the depth cameras' rays hit the robot's own legs."""
        return self.sensor.points_on(self.data, self.data.qpos[:3], self._rotation(), self.idx.robot)

    def terrain_height(self, x: Any, y: Any) -> np.ndarray:
        return self.world.elevation_at(x, y, interp="triangle")

    @property
    def command(self) -> np.ndarray:
        """The command in effect now (zero once it timed out)."""
        fresh = self.time - self._stamp <= self.config.command_timeout + 1e-6
        return self._command.copy() if fresh else np.zeros(3)

    # ------------------------------------------------------------------ internals
    def _control(self) -> None:
        d = self.data
        pos = d.qpos[0:3]
        rot = self._rotation()
        yaw = math.atan2(rot[1, 0], rot[0, 0])
        pts = np.vstack([height_sample_points(pos[None], np.array([yaw]))[0], pos[None, :2]])
        heights = self.world.elevation_at(pts[:, 0], pts[:, 1])  # the samples, then the ground under the base
        ground = float(heights[-1])
        terrain = np.where(np.isfinite(heights[:-1]), heights[:-1], pos[2] - 1.5)
        obs = build_observation(rot[None], d.qvel[None, 0:3], d.qvel[None, 3:6], self.command[None],
                                d.qpos[None, self.idx.qpos], d.qvel[None, self.idx.qvel], self._action[None],
                                np.array([pos[2]]), terrain[None], DEFAULT_POSE)
        self._action = self.policy.act(obs)[0]
        target = joint_targets(self._action[None], DEFAULT_POSE)[0]
        self._targets = (target, self._targets[0])
        d.ctrl[self.idx.act] = target
        tilted = -rot[2, 2] > -math.cos(math.radians(self.config.fallen_tilt_deg))
        low = (pos[2] - ground < self.config.min_base_height) if math.isfinite(ground) \
            else pos[2] < float(self.world.heights.min()) - 0.5
        self._fallen = self._fallen or bool(tilted or low)
        v = rot.T @ d.qvel[0:3]
        self._stuck.update(self.command, (v[0], v[1], d.qvel[5]), self.control_dt)
