"""Synthetic FDM data for tests and smoke runs (no physics simulator involved).

A point robot tracks its commanded twist with a first-order lag, slows down on steep ground
and fails when the ground a short distance ahead rises by more than a step height (a box edge).
This is not a model of ANYmal; it exists so the training, evaluation and checkpoint pipeline can
be exercised end to end, and it has the one property the tests need: collisions depend on the
terrain, so a model with the height scan can beat one without.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from morobot.fdm.data.commands import CommandLimits, sample_command_sequences
from morobot.fdm.data.dataset import DataSpec, write_manifest, write_shard
from morobot.fdm.heightscan import corrupt, sample_heights
from morobot.fdm.history import HISTORY_DIM

KINDS = ("flat", "boxes", "slope")
BASE_HEIGHT = 0.5  # m above ground
TAU = 0.25  # s, twist tracking lag
STEP_HEIGHT = 0.2  # m, rise that stops the robot
PROBE = 0.4  # m, how far ahead the robot "feels" for steps


@dataclass
class SyntheticWorld:
    """A heightfield with the same attributes as the simulator's world.

    Attributes:
        heights: ``[nx, ny]`` terrain heights (m).
        origin: world ``(x, y)`` of the centre of cell ``[0, 0]``.
        resolution: cell size (m).
        kind: terrain kind.
        world_id: identifier.
    """

    heights: np.ndarray
    origin: tuple[float, float]
    resolution: float
    kind: str
    world_id: str

    def height_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Nearest-cell terrain height at world points (edge cells repeat outside)."""
        i = np.clip(np.rint((np.asarray(x) - self.origin[0]) / self.resolution), 0, self.heights.shape[0] - 1)
        j = np.clip(np.rint((np.asarray(y) - self.origin[1]) / self.resolution), 0, self.heights.shape[1] - 1)
        return self.heights[i.astype(np.int64), j.astype(np.int64)]


def make_world(kind: str, seed: int, size: float = 14.0, resolution: float = 0.1) -> SyntheticWorld:
    """Builds a square synthetic world centred on the origin.

    Args:
        kind: ``flat``, ``boxes`` or ``slope``.
        seed: random seed.
        size: edge length (m).
        resolution: cell size (m).

    Returns:
        The world.

    Raises:
        ValueError: on an unknown kind or bad sizes.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not (size > 0 and resolution > 0):
        raise ValueError("size and resolution must be positive")
    rng = np.random.default_rng(seed)
    n = int(round(size / resolution))
    xs = -size / 2 + resolution * (np.arange(n) + 0.5)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    heights = 0.02 * rng.standard_normal((n, n))
    if kind == "boxes":
        for _ in range(int(rng.integers(12, 20))):
            cx, cy = rng.uniform(-size / 2 + 1, size / 2 - 1, 2)
            hx, hy = rng.uniform(0.3, 1.0, 2)
            heights[(np.abs(gx - cx) < hx) & (np.abs(gy - cy) < hy)] += rng.uniform(0.3, 0.8)
    elif kind == "slope":
        angle = rng.uniform(0, 2 * np.pi)
        grade = rng.uniform(0.2, 0.5)
        heights += grade * (np.cos(angle) * gx + np.sin(angle) * gy)
    origin = (float(xs[0]), float(xs[0]))
    return SyntheticWorld(heights.astype(np.float32), origin, resolution, kind, f"{kind}-{seed:04d}")


def _gravity(world: SyntheticWorld, x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    d = world.resolution
    gx = (world.height_at(x + d, y) - world.height_at(x - d, y)) / (2 * d)
    gy = (world.height_at(x, y + d) - world.height_at(x, y - d)) / (2 * d)
    normal = np.stack((-gx, -gy, np.ones_like(gx)), -1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    c, s = np.cos(yaw), np.sin(yaw)
    # gravity = -normal (robot aligned with the ground), expressed in the yaw frame
    along = c * normal[:, 0] + s * normal[:, 1]
    across = -s * normal[:, 0] + c * normal[:, 1]
    return np.stack((-along, -across, -normal[:, 2]), -1)


def simulate(world: SyntheticWorld, rng: np.random.Generator, count: int, spec: DataSpec) -> dict[str, Any]:
    """Generates ``count`` samples in ``world`` following ``spec``.

    Returns:
        Shard arrays (see :mod:`morobot.fdm.data.dataset`).
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    half = 0.5 * world.heights.shape[0] * world.resolution - 2.0
    x = rng.uniform(-half, half, count) + world.origin[0] + 0.5 * world.heights.shape[0] * world.resolution
    y = rng.uniform(-half, half, count) + world.origin[1] + 0.5 * world.heights.shape[1] * world.resolution
    yaw = rng.uniform(-np.pi, np.pi, count)
    start = np.stack((x, y, yaw), -1)
    z0 = world.height_at(x, y) + BASE_HEIGHT
    limits = CommandLimits()
    prev_cmd = sample_command_sequences(rng, count, 1, spec.dt, limits)[:, 0].astype(np.float64)
    commands = sample_command_sequences(rng, count, spec.horizon, spec.dt, limits).astype(np.float64)

    sub = spec.history_dt
    alpha = 1.0 - np.exp(-sub / TAU)
    # History: the previous command held while the twist converges to it from rest.
    twist = np.zeros((count, 3))
    hist = np.zeros((count, spec.history_length, HISTORY_DIM))
    grav = _gravity(world, x, y, yaw)
    for t in range(spec.history_length):
        twist = twist + alpha * (prev_cmd - twist)
        hist[:, t] = np.concatenate((prev_cmd, twist, grav), -1)

    pose = start.copy()
    failed_now = np.zeros(count, bool)
    poses = np.zeros((count, spec.horizon, 3))
    failed = np.zeros((count, spec.horizon), np.uint8)
    substeps = max(1, int(round(spec.dt / sub)))
    h = spec.dt / substeps
    for t in range(spec.horizon):
        for _ in range(substeps):
            c, s = np.cos(pose[:, 2]), np.sin(pose[:, 2])
            here = world.height_at(pose[:, 0], pose[:, 1])
            ahead = world.height_at(pose[:, 0] + PROBE * c, pose[:, 1] + PROBE * s)
            grade = (ahead - here) / PROBE
            target = commands[:, t] * (1.0 / (1.0 + 2.0 * np.abs(grade)))[:, None]
            twist = twist + (1.0 - np.exp(-h / TAU)) * (target - twist)
            moving = ~failed_now
            vx, vy, wz = twist[:, 0], twist[:, 1], twist[:, 2]
            pose[moving, 0] += h * (c * vx - s * vy)[moving]
            pose[moving, 1] += h * (s * vx + c * vy)[moving]
            pose[moving, 2] += h * wz[moving]
            direction = np.arctan2(s * vx + c * vy, c * vx - s * vy)
            probe_h = world.height_at(pose[:, 0] + PROBE * np.cos(direction), pose[:, 1] + PROBE * np.sin(direction))
            speed = np.hypot(vx, vy)
            failed_now |= (probe_h - world.height_at(pose[:, 0], pose[:, 1]) > STEP_HEIGHT) & (speed > 0.05)
        dx, dy = pose[:, 0] - start[:, 0], pose[:, 1] - start[:, 1]
        c0, s0 = np.cos(yaw), np.sin(yaw)
        rel_yaw = np.arctan2(np.sin(pose[:, 2] - yaw), np.cos(pose[:, 2] - yaw))
        poses[:, t] = np.stack((c0 * dx + s0 * dy, -s0 * dx + c0 * dy, rel_yaw), -1)
        failed[:, t] = failed_now

    scan = sample_heights(world.heights, world.origin, world.resolution, start, z0, spec.scan)
    scan = corrupt(scan, rng, noise_std=0.02, dropout=0.05, patch_prob=0.3, config=spec.scan)
    return {
        "history": hist,
        "scan": scan,
        "commands": commands,
        "poses": poses,
        "failed": failed,
        "start_pose": start,
        "start_z": z0,
        "world_heights": world.heights,
        "world_origin": world.origin,
        "world_resolution": world.resolution,
        "world_id": world.world_id,
        "kind": world.kind,
    }


def write_synthetic_dataset(
    root: str | Path, worlds_per_kind: int = 3, samples_per_world: int = 256, seed: int = 0, spec: DataSpec = DataSpec()
) -> dict[str, Any]:
    """Writes a complete synthetic data directory (shards and manifest).

    Returns:
        The manifest.
    """
    root = Path(root)
    entries = []
    for k, kind in enumerate(KINDS):
        for w in range(worlds_per_kind):
            world_seed = seed * 1000 + k * 100 + w
            world = make_world(kind, world_seed)
            arrays = simulate(world, np.random.default_rng(world_seed), samples_per_world, spec)
            entries.append(write_shard(root, world.world_id, arrays, spec))
    return write_manifest(root, spec, entries, {"source": "synthetic", "seed": seed})
