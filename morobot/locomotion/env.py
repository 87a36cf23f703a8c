"""Locomotion training environment: a batch of articulated ANYmals on curriculum terrain patches.

Pure numpy + MuJoCo (no torch, no ROS); :mod:`morobot.locomotion.vec_env` spreads batches over
worker processes for rsl-rl. Each environment is its own MuJoCo model (domain randomisation per
environment) on a 12 m x 12 m heightfield patch that is regenerated in place at every reset by
the project's world generators (:func:`morobot.sim.worlds.make_world`):

* **terrain kinds** (``TERRAINS``): flat, rough, rubble, slopes (hills and ramps) and stairs, each
  with a difficulty ``level`` in ``0 … levels-1`` (:func:`terrain_params`); a fraction of the stairs
  episodes starts on the landing of a stepped pyramid (every way off it goes down) or at the bottom of
  a stepped pit (every way out goes up), :func:`centre_stairs`: scattered pyramids are mostly met
  from below, so without these the policy descends stairs only after it has climbed them;
* **curriculum**: every environment keeps one difficulty level per curriculum track (:data:`TRACKS`:
  the terrain kinds, stairs split into scattered pyramids, down from a landing and up out of a pit),
  and an episode plays the level of its track (one level shared by all kinds let flat ground and
  descents promote an environment to risers it could not climb: training sat near level 8.5 on
  stairs while the policy fell on most 10 cm pit climbs). An environment that did not fall and
  either walked farther than ``promote_distance`` in its episode (or reached the patch edge) or
  tracked at least ``promote_tracking`` of the distance its commands asked (at least
  ``promote_min_commanded`` m) moves that track one level up; one that fell, or tracked less than
  half of it, one level down (a fall after a long walk used to promote, which kept stairs at the
  top level the policy could not walk). Tracked distance is the
  body velocity along the commanded direction, integrated: unlike the straight-line distance of
  legged_gym's rule it does not punish turning commands, which kept every terrain, flat included,
  near level 2;
* **commands** (vx, vy, wz) uniform in ``command_ranges``, resampled every ``command_period``;
  ``standing_fraction`` of them are zero (the robot must stand still). With ``command_period_min``
  set, each episode draws its own period log-uniformly from ``[command_period_min, command_period]``:
  a planner changes its command every cycle, and a policy trained only on 10 s commands falls an
  order of magnitude more often when they change every 0.5 s (docs/locomotion.md, "Session 31");
* **domain randomisation**: friction, added base mass, motor strength (PD gains), pushes;
* **observations** as on the robot (:mod:`morobot.locomotion.observation`): ``policy`` with sensor
  noise, ``critic`` without;
* **rewards** after legged_gym's ANYmal C recipe (:data:`REWARD_SCALES`), summed × dt, negative
  totals clipped to zero;
* **termination**: the base touches the terrain, the body tips past ``max_tilt``, or it sinks
  below ``min_height`` over the terrain; a time-out (``episode_s``) or reaching the patch edge
  ends an episode without a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import mujoco
import numpy as np

from morobot.locomotion.observation import (HEIGHT_POINTS, NUM_ACTIONS, build_observation, height_sample_points,
                                            joint_targets, quat_to_rot)
from morobot.sim.legged import (DEFAULT_POSE, PATCH_SPAN, LeggedConfig, LeggedIndex, build_patch_model,
                                lift_feet_clear, set_patch_heights)
from morobot.sim.worlds import make_world

TERRAINS = ("flat", "rough", "rubble", "slopes", "stairs")
TRACKS = TERRAINS + ("stairs_down", "stairs_up")
"""Curriculum tracks: the terrain kinds ("stairs": scattered pyramids), then stairs episodes that start on
a pyramid's landing and in a stepped pit."""
MIN_PLANAR_COMMAND = 0.2
"""Planar commands slower than this (m/s) become zero (:func:`zero_slow_planar`): the robot stands, not creeps."""
FALL_CAUSES = ("", "base contact", "tipped over", "base too low")
"""``info["fall_cause"]`` codes (0: no fall); the first that applies when several do."""

REWARD_SCALES = {
    "tracking_lin_vel": 1.0, "tracking_ang_vel": 0.5, "lin_vel_z": -2.0, "ang_vel_xy": -0.05,
    "orientation": -1.0, "torques": -1e-5, "dof_acc": -2.5e-7, "action_rate": -0.01, "collision": -1.0,
    "feet_air_time": 1.0, "stand_still": -0.5, "dof_pos_limits": -10.0,
}
"""Reward terms and their weights (per second; legged_gym's ANYmal C values where it has them)."""

# observation noise (in observation units, i.e. after scaling), legged_gym's noise_scales x obs_scales
_NOISE = np.concatenate([np.full(3, 0.1 * 2.0), np.full(3, 0.2 * 0.25), np.full(3, 0.05), np.zeros(3),
                         np.full(12, 0.01), np.full(12, 1.5 * 0.05), np.zeros(12),
                         np.full(HEIGHT_POINTS, 0.1 * 5.0)])


@dataclass(frozen=True)
class EnvConfig:
    """Settings of :class:`LocomotionEnv` (SI units)."""

    patch_size: float = 12.0
    resolution: float = 0.1
    levels: int = 10
    terrain_weights: tuple = (0.1, 0.3, 0.2, 0.2, 0.2)  # flat, rough, rubble, slopes, stairs
    episode_s: float = 20.0
    command_period: float = 10.0
    command_period_min: Optional[float] = None  # None: every episode resamples every command_period
    command_ranges: tuple = ((-1.0, 1.0), (-0.6, 0.6), (-1.0, 1.0))
    standing_fraction: float = 0.1
    edge_margin: float = 1.0
    promote_distance: float = 4.0
    promote_tracking: float = 0.8
    promote_min_commanded: float = 2.0
    max_tilt: float = 1.0  # rad
    min_height: float = 0.25  # m above the terrain under the base
    friction_range: tuple = (0.5, 1.25)
    added_mass_range: tuple = (-5.0, 5.0)
    motor_strength_range: tuple = (0.9, 1.1)
    push_period: float = 15.0
    push_speed: float = 1.0
    noise: bool = True
    curriculum: bool = True
    start_level: int = 0
    random_yaw: bool = True  # false: every episode starts heading +x (evaluation)
    goal_distance: float = 3.0  # terrain features are oriented along the start -> (goal_distance, 0) line
    path_bias: float = 0.0  # fraction of terrain features placed near that line
    stairs_start_top: float = 0.4  # fraction of stairs episodes starting on a pyramid's landing (descents)
    stairs_start_pit: float = 0.2  # fraction of stairs episodes starting at the bottom of a stepped pit
    rubble_ground: float = 0.0  # rubble: amplitude (m) of rough ground under it at the top level, scaled down below
    legged: LeggedConfig = field(default_factory=LeggedConfig)

    def __post_init__(self) -> None:
        if len(self.terrain_weights) != len(TERRAINS) or min(self.terrain_weights) < 0 or sum(self.terrain_weights) <= 0:
            raise ValueError(f"terrain_weights must be {len(TERRAINS)} non-negative weights for {TERRAINS}")
        if not 1 <= int(self.levels) <= 100 or not 0 <= int(self.start_level) < int(self.levels):
            raise ValueError("levels must be in 1..100 and start_level in 0..levels-1")
        if not self.patch_size >= 6.0:
            raise ValueError("patch_size must be at least 6 m")
        top, pit = float(self.stairs_start_top), float(self.stairs_start_pit)
        if not (0.0 <= top <= 1.0 and 0.0 <= pit <= 1.0 and top + pit <= 1.0):
            raise ValueError("stairs_start_top and stairs_start_pit must be in [0, 1] with a sum of at most 1")
        if self.command_period_min is not None and not 0.0 < float(self.command_period_min) <= self.command_period:
            raise ValueError("command_period_min must be in (0, command_period] (or None)")
        if not 0.0 <= float(self.rubble_ground) <= 0.3:
            raise ValueError("rubble_ground must be in [0, 0.3] m")


def zero_slow_planar(commands: np.ndarray) -> np.ndarray:
    """Commands ``[..., 3]`` with the planar part of those slower than :data:`MIN_PLANAR_COMMAND` set to zero
    (in place; returned)."""
    commands[np.linalg.norm(commands[..., :2], axis=-1) < MIN_PLANAR_COMMAND, :2] = 0.0
    return commands


def terrain_params(kind: str, difficulty: float, rubble_ground: float = 0.0) -> dict[str, Any]:
    """World-generator parameters of a terrain kind at ``difficulty`` in [0, 1]; ``rubble_ground`` (m) is the
    amplitude of rough ground under rubble at difficulty 1 (0: nearly flat, as before session 33; the
    navigation benchmark's ``rubble_high`` lays its 10 cm rubble on 0.10-0.20 m)."""
    d = float(np.clip(difficulty, 0.0, 1.0))
    if kind == "flat":
        return {}
    if kind == "rough":
        return {"amplitude": 0.02 + 0.10 * d, "wavelength": 1.5}
    if kind == "rubble":
        return {"rubble": 0.02 + 0.08 * d, "rubble_size": 0.4, "amplitude": 0.02 + float(rubble_ground) * d}
    if kind == "slopes":
        return {"n_hills": 3, "n_ramps": 3, "max_slope_deg": 12.0 + 18.0 * d, "amplitude": 0.01 + 0.03 * d,
                "closed_sides": True}
    if kind == "stairs":
        rise = 0.04 + 0.14 * d
        return {"n_stairs": 6, "step_rise": (rise, rise + 0.02), "amplitude": 0.01, "closed_sides": True}
    raise ValueError(f"unknown terrain kind {kind!r}; expected one of {TERRAINS}")


def centre_stairs(cells: int, resolution: float, rise: float, steps: int, tread: float, landing: float,
                  down: bool) -> np.ndarray:
    """Heights ``[cells, cells]`` of a square stepped pyramid centred on the patch's centre.

    ``down``: the robot stands on its ``landing`` (side, m), ``steps`` steps of ``rise`` and
    ``tread`` lead down on all four sides to the ground (height 0 around the pyramid); otherwise it
    is a pit, the same steps leading up from a floor of side ``landing`` to the ground.
    """
    if not (rise > 0 and tread > 0 and landing > 0 and int(steps) >= 1):
        raise ValueError("rise, tread and landing must be positive and steps >= 1")
    c = (np.arange(int(cells)) - 0.5 * (int(cells) - 1)) * float(resolution)
    x, y = np.meshgrid(c, c, indexing="ij")
    outward = np.maximum(np.abs(x), np.abs(y)) - 0.5 * landing
    level = np.clip(steps - np.ceil(np.maximum(outward, 0.0) / tread - 1e-9), 0, steps)
    return rise * level if down else -rise * level


class LocomotionEnv:
    """``num_envs`` environments stepped together in this process.

    Args:
        num_envs: environments in the batch.
        config: settings.
        seed: random seed (terrain, commands, randomisation, noise).
    """

    def __init__(self, num_envs: int, config: EnvConfig = EnvConfig(), seed: int = 0) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.n = int(num_envs)
        self.cfg = config
        self.rng = np.random.default_rng(seed)
        self.cells = int(round(config.patch_size / config.resolution))
        self.models = [build_patch_model(self.cells, config.resolution, config.legged) for _ in range(self.n)]
        self.datas = [mujoco.MjData(m) for m in self.models]
        self.idx = LeggedIndex(self.models[0])
        self.dt = config.legged.control_dt
        self.max_steps = int(round(config.episode_s / self.dt))
        self._nominal = [(m.body_mass[self.idx.base_body], m.actuator_gainprm[:, 0].copy(),
                          m.actuator_biasprm[:, :3].copy()) for m in self.models[:1]][0]
        self.heights = np.zeros((self.n, self.cells, self.cells))
        self.origin = -0.5 * (self.cells - 1) * config.resolution
        self.track_level = np.full((self.n, len(TRACKS)), int(config.start_level))  # per environment and track
        self.level = np.full(self.n, int(config.start_level))  # of the episode being played
        self.kind = np.zeros(self.n, dtype=int)
        self.track = np.zeros(self.n, dtype=int)
        self.commands = np.zeros((self.n, 3))
        self.command_steps = np.full(self.n, self._period_steps(config.command_period))  # per episode
        self.actions = np.zeros((self.n, NUM_ACTIONS))
        self.last_actions = np.zeros((self.n, NUM_ACTIONS))
        self.last_qvel = np.zeros((self.n, 12))
        self.air_time = np.zeros((self.n, 4))
        self.last_contact = np.zeros((self.n, 4), dtype=bool)
        self.step_count = np.zeros(self.n, dtype=int)
        self.start_xy = np.zeros((self.n, 2))
        self.commanded_distance = np.zeros(self.n)
        self.tracked_distance = np.zeros(self.n)  # body velocity along the commanded direction, integrated
        self._fell = np.zeros(self.n, dtype=bool)
        self.episode_sums = {k: np.zeros(self.n) for k in REWARD_SCALES}
        self.lower, self.upper = self.idx.lower, self.idx.upper
        self._state = {}
        for i in range(self.n):
            self._reset_one(i, first=True)
        self._read_state()

    # ------------------------------------------------------------------ resets
    def _new_terrain(self, i: int) -> None:
        weights = np.asarray(self.cfg.terrain_weights, dtype=float)
        self.kind[i] = int(self.rng.choice(len(TERRAINS), p=weights / weights.sum()))
        kind = TERRAINS[self.kind[i]]
        track = kind
        if kind == "stairs":
            u = self.rng.random()
            if u < self.cfg.stairs_start_top:
                track = "stairs_down"
            elif u < self.cfg.stairs_start_top + self.cfg.stairs_start_pit:
                track = "stairs_up"
        self.track[i] = TRACKS.index(track)
        self.level[i] = self.track_level[i, self.track[i]]
        difficulty = self.level[i] / max(1, self.cfg.levels - 1)
        params, centre = terrain_params(kind, difficulty, self.cfg.rubble_ground), None
        if track != kind:  # on a pyramid's landing or in a pit round the start
            steps, tread = int(self.rng.integers(2, 5)), self.rng.uniform(0.3, 0.4)
            landing = self.rng.uniform(1.2, 2.0)
            centre = centre_stairs(self.cells, self.cfg.resolution, self.rng.uniform(*params["step_rise"]),
                                   steps, tread, landing, down=track == "stairs_down")
            params = {**params, "n_stairs": 0}  # the episode is about the one pyramid (or pit)
        world = make_world("flat", int(self.rng.integers(2**31)), size=(self.cfg.patch_size,) * 2,
                           resolution=self.cfg.resolution, start=(0.0, 0.0, 0.0),
                           goal=(self.cfg.goal_distance, 0.0, 0.0), keepout=0.6, path_bias=self.cfg.path_bias,
                           **params)
        h = world.heights - world.height_at(0.0, 0.0)
        if centre is not None:
            h = h + centre - centre[self.cells // 2, self.cells // 2]
        h = np.clip(h, -0.5 * PATCH_SPAN, 0.5 * PATCH_SPAN)  # the heightfield's span: what the physics has
        self.heights[i] = h
        set_patch_heights(self.models[i], h)

    def set_track_levels(self, levels: np.ndarray) -> None:
        """Set the curriculum levels ``[N, len(TRACKS)]`` (a resumed run); the episodes being played
        count as played at their track's new level (the next curriculum step starts from it)."""
        self.track_level[:] = np.clip(np.asarray(levels, dtype=int), 0, self.cfg.levels - 1)
        self.level[:] = self.track_level[np.arange(self.n), self.track]

    def _randomise(self, i: int) -> None:
        m, c = self.models[i], self.cfg
        mass, gain, bias = self._nominal
        m.geom_friction[self.idx.robot, 0] = self.rng.uniform(*c.friction_range)
        m.body_mass[self.idx.base_body] = mass + self.rng.uniform(*c.added_mass_range)
        s = self.rng.uniform(*c.motor_strength_range)
        m.actuator_gainprm[:, 0] = gain * s
        m.actuator_biasprm[:, :3] = bias * s

    def _resample_commands(self, ids: np.ndarray) -> None:
        if not len(ids):
            return
        lo = np.array([r[0] for r in self.cfg.command_ranges])
        hi = np.array([r[1] for r in self.cfg.command_ranges])
        cmd = zero_slow_planar(self.rng.uniform(lo, hi, (len(ids), 3)))
        cmd[self.rng.random(len(ids)) < self.cfg.standing_fraction] = 0.0
        self.commands[ids] = cmd

    def _reset_one(self, i: int, first: bool = False) -> None:
        if not first and self.cfg.curriculum:
            walked = float(np.linalg.norm(self._state["pos"][i, :2] - self.start_xy[i]))
            asked, tracked = self.commanded_distance[i], self.tracked_distance[i]
            tracked_well = (not self._fell[i] and asked >= self.cfg.promote_min_commanded
                            and tracked >= self.cfg.promote_tracking * asked)
            went_far = not self._fell[i] and (walked > self.cfg.promote_distance or self._at_edge(i))
            level = self.level[i]
            if went_far or tracked_well:
                level = min(level + 1, self.cfg.levels - 1)
            elif self._fell[i] or tracked < 0.5 * asked:
                level = max(level - 1, 0)
            self.track_level[i, self.track[i]] = level
        self._new_terrain(i)
        self._randomise(i)
        m, d = self.models[i], self.datas[i]
        mujoco.mj_resetData(m, d)
        yaw = self.rng.uniform(-math.pi, math.pi) if self.cfg.random_yaw else 0.0
        d.qpos[0:3] = (0.0, 0.0, 0.6)
        d.qpos[3:7] = (math.cos(0.5 * yaw), 0.0, 0.0, math.sin(0.5 * yaw))
        q = DEFAULT_POSE * self.rng.uniform(0.8, 1.2, 12)
        d.qpos[self.idx.qpos] = np.clip(q, self.lower, self.upper)
        d.qvel[0:2] = self.rng.uniform(-0.3, 0.3, 2)
        d.ctrl[self.idx.act] = d.qpos[self.idx.qpos]
        mujoco.mj_forward(m, d)
        patch = self.heights[i:i + 1]
        lift_feet_clear(m, d, self.idx, lambda x, y: self._terrain_at(np.stack([x, y], -1)[None], patch)[0])
        self.actions[i] = self.last_actions[i] = 0.0
        self.last_qvel[i] = 0.0
        self.air_time[i] = 0.0
        self.last_contact[i] = False
        self.step_count[i] = 0
        self.start_xy[i] = d.qpos[0:2]
        self.commanded_distance[i] = 0.0
        self.tracked_distance[i] = 0.0
        for v in self.episode_sums.values():
            v[i] = 0.0
        if self.cfg.command_period_min is not None:  # drawn only when asked: the default stream stays as it was
            lo, hi = math.log(self.cfg.command_period_min), math.log(self.cfg.command_period)
            self.command_steps[i] = self._period_steps(math.exp(self.rng.uniform(lo, hi)))
        self._resample_commands(np.array([i]))

    def _period_steps(self, seconds: float) -> int:
        return max(1, int(round(seconds / self.dt)))

    def _at_edge(self, i: int) -> bool:
        pos = self._state["pos"][i]
        return bool(np.max(np.abs(pos[:2])) > 0.5 * self.cfg.patch_size - self.cfg.edge_margin)

    # ------------------------------------------------------------------ state and observations
    def _read_state(self) -> None:
        q = np.stack([d.qpos for d in self.datas])
        v = np.stack([d.qvel for d in self.datas])
        rot = quat_to_rot(q[:, 3:7])
        pos = q[:, 0:3]
        points = np.concatenate([height_sample_points(pos, self._yaw(rot)), pos[:, None, :2]], axis=1)
        h = self._terrain_at(points)
        self._state = {
            "pos": pos, "rot": rot, "lin_vel_w": v[:, 0:3], "ang_vel_b": v[:, 3:6],
            "qj": q[:, self.idx.qpos], "qdj": v[:, self.idx.qvel],
            "terrain": h[:, :-1], "ground": h[:, -1],
            "tau": np.stack([d.actuator_force[self.idx.act] for d in self.datas]),
        }

    def _terrain_at(self, xy: np.ndarray, heights: Optional[np.ndarray] = None) -> np.ndarray:
        """Bilinear terrain heights of every environment's patch at ``xy [N, P, 2]`` (outside: -1 m);
        ``heights [N, cells, cells]`` (default: all the patches) picks the patches."""
        hh = self.heights if heights is None else heights
        f = (xy - self.origin) / self.cfg.resolution
        top = self.cells - 1
        inside = np.all((f >= 0.0) & (f <= top), axis=-1)
        ij = np.clip(np.floor(f), 0, top - 1).astype(np.intp)
        t = np.clip(f - ij, 0.0, 1.0)
        e = np.arange(len(hh))[:, None]
        i, j = ij[..., 0], ij[..., 1]
        h = ((hh[e, i, j] * (1 - t[..., 0]) + hh[e, i + 1, j] * t[..., 0]) * (1 - t[..., 1])
             + (hh[e, i, j + 1] * (1 - t[..., 0]) + hh[e, i + 1, j + 1] * t[..., 0]) * t[..., 1])
        return np.where(inside, h, -1.0)

    @staticmethod
    def _yaw(rot: np.ndarray) -> np.ndarray:
        return np.arctan2(rot[:, 1, 0], rot[:, 0, 0])

    def observations(self) -> dict[str, np.ndarray]:
        """``{"policy": noisy, "critic": clean}`` observations, ``[N, OBS_DIM]`` float32."""
        s = self._state
        clean = build_observation(s["rot"], s["lin_vel_w"], s["ang_vel_b"], self.commands, s["qj"], s["qdj"],
                                  self.actions, s["pos"][:, 2], s["terrain"], DEFAULT_POSE)
        noisy = clean
        if self.cfg.noise:
            noisy = clean + (self.rng.uniform(-1.0, 1.0, clean.shape) * _NOISE).astype(np.float32)
        return {"policy": noisy, "critic": clean}

    # ------------------------------------------------------------------ stepping
    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, Any]]:
        """Apply ``actions [N, 12]``; returns ``(observations, rewards [N], dones [N], info)``.

        ``info``: ``time_outs [N]`` (episode ended without failure), ``episode`` (per-term sums of
        the environments that ended), ``levels``, ``kinds`` and ``tracks`` of the episodes just
        played, ``fell`` and its ``fall_cause`` (:data:`FALL_CAUSES`), and
        ``track_levels [N, len(TRACKS)]`` after this step's resets.
        """
        actions = np.asarray(actions, dtype=float).reshape(self.n, NUM_ACTIONS)
        self.last_actions = self.actions.copy()
        self.actions = np.clip(actions, -100.0, 100.0)
        targets = joint_targets(self.actions, DEFAULT_POSE)
        prev = self._state
        for i, (m, d) in enumerate(zip(self.models, self.datas)):
            d.ctrl[self.idx.act] = targets[i]
            for _ in range(self.cfg.legged.decimation):
                mujoco.mj_step(m, d)
        self.step_count += 1
        contacts = [self.idx.contacts(d) for d in self.datas]
        feet = np.stack([c[0] for c in contacts])
        base_hit = np.array([c[1] for c in contacts])
        limb_hit = np.array([c[2] for c in contacts], dtype=float)
        self._read_state()
        s = self._state
        rewards = self._rewards(s, prev, feet, limb_hit)
        asked = np.linalg.norm(self.commands[:, :2], axis=1)
        self.commanded_distance += asked * self.dt
        lin_b = np.einsum("nji,nj->ni", s["rot"], s["lin_vel_w"])[:, :2]  # R^T v: body frame
        direction = self.commands[:, :2] / np.maximum(asked, 1e-9)[:, None]
        self.tracked_distance += np.where(asked > 1e-6, np.sum(lin_b * direction, axis=1), 0.0) * self.dt
        tilt = np.arccos(np.clip(s["rot"][:, 2, 2], -1.0, 1.0))
        tipped, low = tilt > self.cfg.max_tilt, s["pos"][:, 2] - s["ground"] < self.cfg.min_height
        fell = base_hit | tipped | low
        edge = np.array([self._at_edge(i) for i in range(self.n)])
        time_out = (self.step_count >= self.max_steps) | edge
        dones = fell | time_out
        info: dict[str, Any] = {"time_outs": time_out & ~fell, "levels": self.level.copy(),
                                "kinds": self.kind.copy(), "tracks": self.track.copy(), "fell": fell.copy(),
                                "fall_cause": np.select([base_hit, tipped, low], [1, 2, 3], 0)}
        ended = np.flatnonzero(dones)
        if len(ended):
            info["episode"] = {k: float(np.mean(v[ended]) / self.cfg.episode_s) for k, v in self.episode_sums.items()}
        # commands, pushes
        self._resample_commands(np.flatnonzero((self.step_count % self.command_steps == 0) & ~dones))
        push = int(round(self.cfg.push_period / self.dt))
        for i in np.flatnonzero((self.step_count % push == 0) & ~dones):
            self.datas[i].qvel[0:2] += self.rng.uniform(-self.cfg.push_speed, self.cfg.push_speed, 2)
        self._fell = fell
        for i in ended:
            self._reset_one(int(i))
        info["track_levels"] = self.track_level.copy()
        if len(ended):
            self._read_state()
        return self.observations(), rewards.astype(np.float32), dones, info

    def _rewards(self, s: dict, prev: dict, feet: np.ndarray, limb_hit: np.ndarray) -> np.ndarray:
        rt = np.swapaxes(s["rot"], -1, -2)
        lin_b = np.einsum("nij,nj->ni", rt, s["lin_vel_w"])
        ang_b = s["ang_vel_b"]
        gravity_b = -rt[:, :, 2]
        cmd = self.commands
        moving = np.linalg.norm(cmd[:, :2], axis=1) > 0.1
        first_contact = (self.air_time > 0.0) & feet
        self.air_time += self.dt
        air = np.sum((self.air_time - 0.5) * first_contact, axis=1) * moving
        self.air_time *= ~(feet | self.last_contact)
        self.last_contact = feet
        standing = np.linalg.norm(cmd, axis=1) < 0.1
        out_of_limits = (np.clip(self.lower + 0.05 - s["qj"], 0, None) + np.clip(s["qj"] - self.upper + 0.05, 0, None))
        terms = {
            "tracking_lin_vel": np.exp(-np.sum((cmd[:, :2] - lin_b[:, :2]) ** 2, axis=1) / 0.25),
            "tracking_ang_vel": np.exp(-(cmd[:, 2] - ang_b[:, 2]) ** 2 / 0.25),
            "lin_vel_z": lin_b[:, 2] ** 2,
            "ang_vel_xy": np.sum(ang_b[:, :2] ** 2, axis=1),
            "orientation": np.sum(gravity_b[:, :2] ** 2, axis=1),
            "torques": np.sum(s["tau"] ** 2, axis=1),
            "dof_acc": np.sum(((s["qdj"] - prev["qdj"]) / self.dt) ** 2, axis=1),
            "action_rate": np.sum((self.actions - self.last_actions) ** 2, axis=1),
            "collision": limb_hit,
            "feet_air_time": air,
            "stand_still": np.sum(np.abs(s["qj"] - DEFAULT_POSE), axis=1) * standing,
            "dof_pos_limits": np.sum(out_of_limits, axis=1),
        }
        total = np.zeros(self.n)
        for k, v in terms.items():
            r = REWARD_SCALES[k] * self.dt * v
            self.episode_sums[k] += r
            total += r
        return np.clip(total, 0.0, None)  # legged_gym's only_positive_rewards

    def close(self) -> None:
        self.models.clear()
        self.datas.clear()


def make_env(num_envs: int, seed: int = 0, overrides: Optional[dict] = None) -> LocomotionEnv:
    """A :class:`LocomotionEnv` with :class:`EnvConfig` fields overridden by ``overrides``."""
    return LocomotionEnv(num_envs, EnvConfig(**(overrides or {})), seed)
