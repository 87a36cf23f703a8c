"""Locomotion abstraction: what stands in for ANYmal's learned locomotion policy in the simulator.

The simulated ANYmal is one rigid body (trunk plus legs frozen in the standing pose, see
:mod:`morobot.sim.anymal`) that collides with the terrain and boxes through MuJoCo contacts. This
module turns a commanded body twist ``(vx, vy, wz)`` into targets for the MuJoCo actuators that
carry and push that body. It is pure numpy (no MuJoCo); the simulator samples the terrain where
:meth:`LocomotionController.sample_points` asks and applies :class:`LocomotionOutput`.

What it models:
    * **Command shaping**: velocity limits (``|vx| <= 1.0``, ``|vy| <= 0.5`` m/s, ``|wz| <= 1.0``
      rad/s), acceleration limits (1.0 m/s^2 on the planar speed, 2.0 rad/s^2 in yaw) and a speed
      reduction on slopes (``1 - slope_speed_drop * slope / max_slope``).
    * **Stance**: four virtual legs. Each is a unilateral, force-limited, world-vertical
      spring-damper acting on the trunk above its foot (the hip) and holding that point
      ``(leg_length + foot_clearance) / cos(slope)`` above the support height under it. Body
      height, roll and pitch therefore follow the terrain (ANYmal keeps its base parallel to the
      ground), the support polygon stays under the trunk on slopes, and a leg above a drop
      carries no load, so the body pitches and can tip over edges. The frozen legs' geometry
      hovers ``foot_clearance`` above the ground (along its normal) and collides with whatever
      is not climbable.
    * **Foothold choice and climbing limit**: each leg looks at a small patch (behind, under and
      ahead of the foot along the foot's direction of travel). Heights more than ``max_step``
      above the ground the foot stands on (the lower of behind/under) are not climbable and are
      ignored; the leg keeps standing on its ground. The body is never lifted over such obstacles, so the frozen
      legs and trunk run into them and **MuJoCo contacts block the robot** (no rule stops it).
    * **Traction**: the planar drive force and the yaw torque come from the feet, so they are
      bounded by a friction cone on the estimated terrain plane: ``(mu cos(a) - sin(a)) * N``
      with ``N`` the measured total leg force and ``a`` the slope. Pushing against a wall
      saturates at that force; unloaded legs give no drive. On slopes steeper than ``atan(mu)``
      the feet slip and a downhill force ``N (sin(a) - mu cos(a))`` is applied.

    * **Stumbling** (off by default, ``stumble_rate > 0``): the learned controller's failures on
      uneven ground, which grow with how fast the feet travel over it. Per leg, the unevenness
      ``e`` is the peak-to-peak deviation of its sampled patch from a straight line along the
      direction of travel (a uniform slope adds nothing; bumps, holes and step edges do), and the
      foot's effective speed ``v`` weights sideways and backward travel up
      (``stumble_lateral``, ``stumble_backward``). Each leg adds a fall hazard
      ``stumble_rate * max(0, (v / stumble_speed) * (e / stumble_unevenness) - 1)`` per second;
      a fall drawn from the total hazard latches ``fallen`` and the legs give way. Standing
      still or walking slowly never trips; the same terrain at full speed, sideways or
      backwards may. The geometric traversability risk cannot see this (it ignores speed); a
      learned dynamics model can learn it from data.

What it does not model: gait, swing legs and foot placement timing, leg joint dynamics and torque
limits, foot slip on flat ground, the body motion of walking (bobbing, sway), perception errors of
the real controller (terrain heights come from the world's ground truth), self-collision, stairs
descent strategies, recovery from a fall (a fallen robot stays down until reset), energy use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

GRAVITY = 9.81
#: The stumble-model fields of :class:`LocomotionConfig` that the ``mujoco_sim`` node exposes as parameters.
STUMBLE_PARAMS = ("stumble_rate", "stumble_speed", "stumble_unevenness", "stumble_seed")
N_LEGS = 4
LEG_NAMES = ("LF", "RF", "LH", "RH")


@dataclass(frozen=True)
class LocomotionConfig:
    """Parameters of the locomotion abstraction (SI units).

    Attributes:
        max_velocity: limits ``(vx, vy, wz)`` (m/s, m/s, rad/s).
        max_linear_acceleration: planar acceleration limit (m/s^2).
        max_yaw_acceleration: yaw acceleration limit (rad/s^2).
        max_step: highest climbable step (m).
        max_slope_deg: slope (deg) at which the speed reduction reaches ``slope_speed_drop``.
        slope_speed_drop: fractional speed reduction at ``max_slope_deg``.
        friction: effective foot friction coefficient; feet slip on slopes above ``atan(0.65)`` = 33 deg.
        foot_clearance: gap (m) kept between the frozen foot soles and the support surface.
        leg_stiffness: virtual leg spring (N/m), per leg.
        leg_damping: virtual leg damper (N s/m), per leg.
        max_leg_force: force limit (N) per leg.
        velocity_gain: planar velocity tracking bandwidth (1/s).
        yaw_gain: yaw-rate tracking bandwidth (1/s).
        lookahead: foothold look-ahead distance (m) at standstill.
        lookahead_time: extra look-ahead per unit foot speed (s).
        lookbehind: patch extent behind the foot (m).
        yaw_lever: lever arm (m) turning traction into yaw torque.
        stumble_rate: fall hazard (1/s) per leg at twice the stumble threshold; 0 disables stumbling.
        stumble_speed: reference foot speed (m/s) of the stumble threshold.
        stumble_unevenness: reference patch unevenness (m) of the stumble threshold.
        stumble_lateral: weight of sideways foot speed in the effective speed.
        stumble_backward: weight of backward foot speed in the effective speed.
        stumble_seed: seed of the stumble draws.
    """

    max_velocity: tuple[float, float, float] = (1.0, 0.5, 1.0)
    max_linear_acceleration: float = 1.0
    max_yaw_acceleration: float = 2.0
    max_step: float = 0.22
    max_slope_deg: float = 30.0
    slope_speed_drop: float = 0.5
    friction: float = 0.65
    foot_clearance: float = 0.03
    leg_stiffness: float = 15000.0
    leg_damping: float = 1200.0
    max_leg_force: float = 700.0
    velocity_gain: float = 4.0
    yaw_gain: float = 5.0
    lookahead: float = 0.15
    lookahead_time: float = 0.3
    lookbehind: float = 0.1
    yaw_lever: float = 0.4
    stumble_rate: float = 0.0
    stumble_speed: float = 0.8
    stumble_unevenness: float = 0.05
    stumble_lateral: float = 2.0
    stumble_backward: float = 1.5
    stumble_seed: int = 0

    @property
    def stumbling(self) -> bool:
        """Whether the stumble hazard is on."""
        return self.stumble_rate > 0

    def __post_init__(self) -> None:
        mv = tuple(float(v) for v in self.max_velocity)
        if len(mv) != 3 or not all(math.isfinite(v) and v > 0 for v in mv):
            raise ValueError(f"max_velocity must be three positive numbers, got {self.max_velocity}")
        object.__setattr__(self, "max_velocity", mv)
        for name in ("max_linear_acceleration", "max_yaw_acceleration", "max_step", "max_slope_deg",
                     "friction", "leg_stiffness", "leg_damping", "max_leg_force", "velocity_gain",
                     "yaw_gain", "lookahead", "yaw_lever", "stumble_speed", "stumble_unevenness",
                     "stumble_lateral", "stumble_backward"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"LocomotionConfig.{name} must be positive and finite, got {v}")
        for name in ("foot_clearance", "lookahead_time", "lookbehind", "slope_speed_drop", "stumble_rate"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"LocomotionConfig.{name} must be non-negative and finite, got {v}")
        if self.slope_speed_drop >= 1.0 or self.max_slope_deg >= 90.0:
            raise ValueError("slope_speed_drop must be < 1 and max_slope_deg < 90")


@dataclass
class BaseState:
    """State of the robot base.

    Attributes:
        position: base origin ``(x, y, z)`` in the world (m).
        quaternion: orientation ``(w, x, y, z)``.
        yaw: heading (rad).
        linear_velocity: velocity of the base origin in the base frame (m/s).
        angular_velocity: angular velocity in the base frame (rad/s).
        gravity: unit gravity direction in the base frame (``(0, 0, -1)`` when level).
        fallen: the robot tipped over (latched until reset).
        stuck: commanded to move but barely moving for a while.
        time: simulation time (s).
    """

    position: np.ndarray
    quaternion: np.ndarray
    yaw: float
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray
    gravity: np.ndarray
    fallen: bool = False
    stuck: bool = False
    time: float = 0.0

    def rotation(self) -> np.ndarray:
        """Rotation matrix base -> world."""
        return quat_to_matrix(self.quaternion)

    @property
    def pose(self) -> np.ndarray:
        """Navigation pose ``(x, y, yaw)``."""
        return np.array([self.position[0], self.position[1], self.yaw])

    @property
    def twist(self) -> np.ndarray:
        """Body twist ``(vx, vy, wz)`` in the base frame."""
        return np.array([self.linear_velocity[0], self.linear_velocity[1], self.angular_velocity[2]])


class StuckDetector:
    """Commanded to move but barely moving: exponential averages (time constant ``window``) of the
    commanded and the achieved motion ``|v_xy| + lever |w_z|``; stuck while the commanded one exceeds
    ``min_command`` and the achieved one stays below ``ratio`` of it.

    Used by both simulated robots; the rosbag converter's heuristic is the same test on recorded odometry.
    """

    def __init__(self, window: float = 1.5, ratio: float = 0.25, lever: float = 0.4, min_command: float = 0.1) -> None:
        if not (window > 0 and 0 < ratio < 1 and lever >= 0 and min_command > 0):
            raise ValueError("StuckDetector needs window > 0, 0 < ratio < 1, lever >= 0, min_command > 0")
        self.window, self.ratio, self.lever, self.min_command = float(window), float(ratio), float(lever), \
            float(min_command)
        self.reset()

    def reset(self) -> None:
        self._cmd = 0.0
        self._act = 0.0

    def _motion(self, twist: Any) -> float:
        return math.hypot(float(twist[0]), float(twist[1])) + self.lever * abs(float(twist[2]))

    def update(self, wanted_twist: Any, achieved_twist: Any, dt: float) -> None:
        """Adds ``dt`` seconds of the commanded and the measured body twist ``(vx, vy, wz)``."""
        alpha = min(1.0, dt / self.window)
        self._cmd += alpha * (self._motion(wanted_twist) - self._cmd)
        self._act += alpha * (self._motion(achieved_twist) - self._act)

    @property
    def stuck(self) -> bool:
        return bool(self._cmd > self.min_command and self._act < self.ratio * self._cmd)


def quat_to_matrix(q: Any) -> np.ndarray:
    """Rotation matrix of a unit quaternion ``(w, x, y, z)``."""
    w, x, y, z = (float(v) for v in np.asarray(q, dtype=float).ravel()[:4])
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


@dataclass
class LocomotionOutput:
    """What the simulator applies until the next control update.

    Attributes:
        leg_targets: ``[4]`` world z targets of the leg attachment points (trunk level above each
            foot, see :attr:`LocomotionController.leg_length`); NaN for legs without support.
        drive: ``(vx, vy, wz)`` velocity targets of the base-frame drive actuators (including
            the acceleration feed-forward ``a / gain``).
        traction_limit: bound (N) on each planar drive force component.
        yaw_torque_limit: bound (N m) on the yaw torque.
        slip_force: world-frame force (N) from feet slipping down a too-steep slope.
        reference: the shaped twist ``(vx, vy, wz)`` the controller tracks.
        support: ``[4]`` support heights under the feet (m), NaN where unsupported.
        slope: terrain inclination under the robot (rad).
        speed_scale: slope speed reduction factor in ``(0, 1]``.
        stumble_hazard: total fall hazard (1/s) from stumbling at this update (0 when off).
        stumbled: a stumble fall was drawn at this update.
    """

    leg_targets: np.ndarray
    drive: np.ndarray
    traction_limit: float
    yaw_torque_limit: float
    slip_force: np.ndarray
    reference: np.ndarray
    support: np.ndarray
    slope: float
    speed_scale: float
    stumble_hazard: float = 0.0
    stumbled: bool = False


@dataclass
class LocomotionController:
    """Command shaping, foothold selection and traction of the locomotion abstraction.

    The virtual legs attach to the trunk at ``(x, y, 0)`` of each foot in the base frame and are
    ``leg_length`` long (the mean depth of the soles below the base origin).

    Args:
        feet: ``[4, 3]`` foot sole positions in the base frame (order :data:`LEG_NAMES`).
        mass: total robot mass (kg).
        config: parameters.
    """

    feet: np.ndarray
    mass: float
    config: LocomotionConfig = field(default_factory=LocomotionConfig)

    def __post_init__(self) -> None:
        feet = np.asarray(self.feet, dtype=float)
        if feet.shape != (N_LEGS, 3) or not np.all(np.isfinite(feet)):
            raise ValueError(f"feet must be a finite [4, 3] array, got shape {feet.shape}")
        if np.any(feet[:, 2] >= 0):
            raise ValueError("feet must lie below the base origin (negative z)")
        if not (math.isfinite(self.mass) and self.mass > 0):
            raise ValueError(f"mass must be positive, got {self.mass}")
        self.feet = feet
        self._feet_xy = feet[:, :2].copy()
        self._feet_perp = np.stack([-feet[:, 1], feet[:, 0]], axis=1)
        cfg = self.config
        self._offsets = np.array([-cfg.lookbehind, 0.0, 0.0, 0.0])
        self._ahead = np.array([0.0, 0.0, 0.5, 1.0])
        self._rng = np.random.default_rng(cfg.stumble_seed)
        self.reset()

    @property
    def sag(self) -> float:
        """Static compression (m) of the virtual legs under the robot's weight."""
        return self.mass * GRAVITY / (N_LEGS * self.config.leg_stiffness)

    @property
    def leg_length(self) -> float:
        """Vertical distance (m) from the leg attachment points (base height) to the soles."""
        return -float(self.feet[:, 2].mean())

    @property
    def attachments(self) -> np.ndarray:
        """``[4, 3]`` leg attachment points in the base frame (above the feet, at base height)."""
        out = self.feet.copy()
        out[:, 2] = 0.0
        return out

    @property
    def stance_height(self) -> float:
        """Base height (m) above flat ground in steady stance."""
        return self.leg_length + self.config.foot_clearance

    def reset(self, reference: Any = (0.0, 0.0, 0.0)) -> None:
        """Reset the shaped command to ``reference`` ``(vx, vy, wz)``."""
        ref = np.asarray(reference, dtype=float)
        if ref.shape != (3,) or not np.all(np.isfinite(ref)):
            raise ValueError(f"reference must be 3 finite numbers, got {reference!r}")
        self._ref = ref.copy()

    @property
    def reference(self) -> np.ndarray:
        """The current shaped twist ``(vx, vy, wz)``."""
        return self._ref.copy()

    def sample_points(self, state: BaseState) -> np.ndarray:
        """World ``(x, y)`` where the terrain must be sampled, ``[4, 4, 2]``.

        Per leg: behind the hip, under it, and half and full look-ahead ahead of it, along the
        foot's direction of travel under the current shaped command. The hip positions include
        the trunk's tilt, so on a slope the legs hold the trunk parallel to the terrain.
        """
        c, s = math.cos(state.yaw), math.sin(state.yaw)
        _, direction, dist = self._foot_travel()
        offset = dist[:, :, None] * direction[:, None, :]
        rot = state.rotation()
        hips = self._feet_xy @ rot[:2, :2].T + np.asarray(state.position[:2], dtype=float)  # trunk tilt included
        world = np.empty_like(offset)
        world[..., 0] = hips[:, None, 0] + c * offset[..., 0] - s * offset[..., 1]
        world[..., 1] = hips[:, None, 1] + s * offset[..., 0] + c * offset[..., 1]
        return world

    def _foot_travel(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per leg under the current shaped command: foot velocity ``[4, 2]`` (heading frame,
        ``v + w x r``), unit travel direction ``[4, 2]`` and patch sample distances ``[4, 4]``
        along it (behind, under, half and full look-ahead)."""
        cfg = self.config
        v = self._ref[:2] + self._ref[2] * self._feet_perp
        speed = np.sqrt((v * v).sum(axis=1))[:, None]
        direction = np.where(speed > 1e-3, v / np.maximum(speed, 1e-9), np.array([1.0, 0.0]))
        dist = self._offsets + self._ahead * (cfg.lookahead + cfg.lookahead_time * speed)
        return v, direction, dist

    def stumble_hazard(self, heights: np.ndarray) -> np.ndarray:
        """Per-leg fall hazard (1/s) for the patch heights ``[4, S]`` sampled at
        :meth:`sample_points` under the current shaped command (zeros when stumbling is off).

        Unclimbable samples (walls, boxes) and missing terrain are left out: running into those
        is a contact, not a stumble.
        """
        cfg = self.config
        h = np.asarray(heights, dtype=float)
        if not cfg.stumbling:
            return np.zeros(N_LEGS)
        v, _, dist = self._foot_travel()
        vx = np.where(v[:, 0] < 0, cfg.stumble_backward, 1.0) * v[:, 0]
        speed = np.hypot(vx, cfg.stumble_lateral * v[:, 1])
        valid = np.isfinite(h)
        ground = np.min(np.where(valid[:, :2], h[:, :2], np.inf), axis=1, keepdims=True)
        use = valid & (h <= ground + cfg.max_step)
        # masked least-squares line y = a + b d per leg; unevenness = peak-to-peak residual
        w = use.astype(float)
        y = np.where(use, h, 0.0)
        n = w.sum(axis=1)
        d_mean = (w * dist).sum(axis=1) / np.maximum(n, 1)
        y_mean = (w * y).sum(axis=1) / np.maximum(n, 1)
        dd, dy = dist - d_mean[:, None], y - y_mean[:, None]
        var = (w * dd * dd).sum(axis=1)
        b = np.where(var > 1e-12, (w * dd * dy).sum(axis=1) / np.maximum(var, 1e-12), 0.0)
        residual = dy - b[:, None] * dd
        unevenness = (np.max(np.where(use, residual, -np.inf), axis=1)
                      - np.min(np.where(use, residual, np.inf), axis=1))
        unevenness = np.where(n >= 3, unevenness, 0.0)
        load = (speed / cfg.stumble_speed) * (unevenness / cfg.stumble_unevenness)
        return cfg.stumble_rate * np.maximum(0.0, load - 1.0)

    def support_heights(self, heights: np.ndarray) -> np.ndarray:
        """Support height per leg from its sampled patch ``[4, S]`` (columns as in :meth:`sample_points`).

        The ground the foot stands on is the lower of the samples behind and under it. Samples more
        than ``max_step`` above that ground are not climbable; the support is the highest
        climbable sample, so a leg steps up onto climbable obstacles ahead, keeps standing on its
        ground in front of a drop until the foot is past the edge, and never climbs a wall.
        No terrain (NaN) under the foot means no support.
        """
        h = np.asarray(heights, dtype=float)
        if h.ndim != 2 or h.shape[0] != N_LEGS or h.shape[1] < 2:
            raise ValueError(f"heights must be [4, S>=2], got shape {h.shape}")
        valid = np.isfinite(h)
        ground = np.min(np.where(valid[:, :2], h[:, :2], np.inf), axis=1, keepdims=True)
        climbable = valid & (h <= ground + self.config.max_step)
        support = np.max(np.where(climbable, h, -np.inf), axis=1)
        return np.where(valid[:, 1] & np.isfinite(support), support, np.nan)

    def terrain_slope(self, state: BaseState, support: np.ndarray) -> tuple[float, np.ndarray]:
        """Inclination (rad) and world-frame uphill gradient of a plane through the supports.

        The supports lie under the hips' actual horizontal positions (trunk tilt included).
        """
        ok = np.isfinite(support)
        n_ok = int(ok.sum())
        if n_ok < 3:
            return 0.0, np.zeros(2)
        hips = self._feet_xy @ state.rotation()[:2, :2].T
        design = np.column_stack([np.ones(n_ok), hips[ok]])
        coef = np.linalg.solve(design.T @ design, design.T @ support[ok])
        grad = coef[1:]
        return math.atan(math.hypot(grad[0], grad[1])), grad

    def update(self, command: Any, state: BaseState, heights: np.ndarray, leg_forces: Any,
               dt: float, friction: Optional[float] = None) -> LocomotionOutput:
        """One control update.

        Args:
            command: commanded twist ``(vx, vy, wz)`` in the base frame.
            state: current base state.
            heights: ``[4, S]`` terrain heights at :meth:`sample_points` (NaN = no terrain).
            leg_forces: ``[4]`` measured virtual leg forces (N) at the last step.
            dt: time since the last update (s).
            friction: sliding friction of the ground under the robot (None: the configured ``friction``; a
                slippery patch, :mod:`morobot.sim.patches`, lowers it).

        Returns:
            The actuator targets and limits to apply.

        Raises:
            ValueError: non-finite command or forces, bad shapes, non-positive ``dt``.
        """
        cfg = self.config
        cmd = np.asarray(command, dtype=float)
        if cmd.shape != (3,) or not np.all(np.isfinite(cmd)):
            raise ValueError(f"command must be 3 finite numbers (vx, vy, wz), got {command!r}")
        forces = np.array(leg_forces, dtype=float)
        if forces.shape != (N_LEGS,) or not np.all(np.isfinite(forces)):
            raise ValueError(f"leg_forces must be 4 finite numbers, got {leg_forces!r}")
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be positive, got {dt}")
        if friction is not None and not (math.isfinite(friction) and friction > 0):
            raise ValueError(f"friction must be positive, got {friction}")

        support = self.support_heights(heights)
        hazard = 0.0 if state.fallen else float(self.stumble_hazard(heights).sum())
        stumbled = hazard > 0 and bool(self._rng.random() < 1.0 - math.exp(-hazard * dt))
        if state.fallen or stumbled:  # the legs give way
            support[:] = np.nan
        slope, grad = self.terrain_slope(state, support)
        scale = 1.0 - cfg.slope_speed_drop * min(slope / math.radians(cfg.max_slope_deg), 1.0)

        limits = np.array(cfg.max_velocity)
        target = np.minimum(np.maximum(cmd, -limits), limits)
        target[:2] *= scale
        if state.fallen or stumbled:
            target[:] = 0.0
        previous = self._ref.copy()
        dv = target[:2] - previous[:2]
        max_dv = cfg.max_linear_acceleration * dt
        norm = float(np.linalg.norm(dv))
        if norm > max_dv:
            dv *= max_dv / norm
        max_dw = cfg.max_yaw_acceleration * dt
        dw = min(max(float(target[2] - previous[2]), -max_dw), max_dw)
        self._ref = np.array([previous[0] + dv[0], previous[1] + dv[1], previous[2] + dw])
        accel = (self._ref - previous) / dt
        drive = self._ref + accel / np.array([cfg.velocity_gain, cfg.velocity_gain, cfg.yaw_gain])

        load = float(np.maximum(forces, 0.0).sum())
        mu = cfg.friction if friction is None else float(friction)
        grip = max(0.0, mu * math.cos(slope) - math.sin(slope))
        traction = grip * load
        slip = np.zeros(3)
        excess = math.sin(slope) - mu * math.cos(slope)
        steepness = math.hypot(grad[0], grad[1])
        if excess > 0 and steepness > 0:
            slip[:2] = -grad / steepness * excess * load
        # the frozen legs stand perpendicular to the trunk, which parallels the terrain: keep their
        # clearance along the terrain normal
        targets = support + (self.leg_length + cfg.foot_clearance) / math.cos(slope) + self.sag
        return LocomotionOutput(
            leg_targets=targets, drive=drive, traction_limit=traction,
            yaw_torque_limit=traction * cfg.yaw_lever, slip_force=slip, reference=self._ref.copy(),
            support=support, slope=slope, speed_scale=scale, stumble_hazard=hazard, stumbled=stumbled,
        )
