"""The world generator's canvas and the terrain features it draws on it (:func:`morobot.sim.worlds.make_world`).

Each ``add_*`` draws one kind of feature into a :class:`Canvas` (heights, box footprints, slippery patches) from the
canvas's random stream, in the order ``make_world`` calls them, so a world is deterministic in its seed and
parameters; the World model, its reachability test and the loaders stay in :mod:`morobot.sim.worlds`.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

from morobot.sim.patches import Patch, flatten, footprint

HIGH = (0.35, 0.6)  # height range (m) of unclimbable platforms
LOW = (0.08, 0.15)  # height range (m) of climbable platforms


class Canvas:
    """Generation state: grid coordinates, heights, boxes and keep-out discs."""

    def __init__(self, world_size: tuple[float, float], res: float, rng: np.random.Generator,
                 start: np.ndarray, goal: np.ndarray, keepout: float, path_bias: float):
        nx = int(round(world_size[0] / res))
        ny = int(round(world_size[1] / res))
        self.res = res
        self.origin = (-0.5 * (nx - 1) * res, -0.5 * (ny - 1) * res)
        xs = self.origin[0] + res * np.arange(nx)
        ys = self.origin[1] + res * np.arange(ny)
        self.X, self.Y = np.meshgrid(xs, ys, indexing="ij")
        self.h = np.zeros((nx, ny))
        self.boxes_xy: list[tuple[float, ...]] = []  # (cx, cy, sx, sy, height, yaw)
        self.rng = rng
        self.start, self.goal = start, goal
        self.keepout = keepout
        self.path_bias = path_bias
        self.half = (0.5 * (nx - 1) * res, 0.5 * (ny - 1) * res)

    def place(self, radius: float) -> Optional[tuple[float, float]]:
        """A random feature centre whose disc of ``radius`` avoids start/goal keep-outs."""
        for _ in range(50):
            if self.rng.random() < self.path_bias:
                t = self.rng.uniform(0.15, 0.85)
                p = self.start[:2] + t * (self.goal[:2] - self.start[:2])
                p = p + self.rng.normal(0.0, 1.5, 2)
            else:
                p = self.rng.uniform(-1.0, 1.0, 2) * (np.array(self.half) - 0.5)
            if all(np.hypot(*(p - q[:2])) > radius + self.keepout for q in (self.start, self.goal)):
                if abs(p[0]) < self.half[0] and abs(p[1]) < self.half[1]:
                    return float(p[0]), float(p[1])
        return None

    def local(self, cx: float, cy: float, yaw: float) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = self.X - cx, self.Y - cy
        return c * dx + s * dy, -s * dx + c * dy


def value_noise(rng: np.random.Generator, cv: Canvas, wavelength: float) -> np.ndarray:
    """Smooth noise in [-1, 1]: random lattice values at ``wavelength`` spacing, cubic spline."""
    x0, y0 = cv.X[0, 0], cv.Y[0, 0]
    nlx = int(math.ceil((cv.X[-1, 0] - x0) / wavelength)) + 4
    nly = int(math.ceil((cv.Y[0, -1] - y0) / wavelength)) + 4
    lattice = rng.uniform(-1.0, 1.0, (nlx, nly))
    coords = np.stack([(cv.X - x0) / wavelength + 1.0, (cv.Y - y0) / wavelength + 1.0])
    return ndimage.map_coordinates(lattice, coords, order=3, mode="nearest")


def add_rough(cv: Canvas, amplitude: float, wavelength: float) -> None:
    if amplitude <= 0:
        return
    total = np.zeros_like(cv.h)
    for k in range(4):
        total += 0.5**k * value_noise(cv.rng, cv, wavelength / 2**k)
    peak = np.abs(total - total.mean()).max()
    cv.h += amplitude * (total - total.mean()) / max(peak, 1e-9)


def add_rubble(cv: Canvas, peak: float, size: float) -> None:
    """Foot-scale bumps and hollows (one noise octave at ``size`` spacing, peak ``peak``)."""
    if peak <= 0:
        return
    if not size >= 2 * cv.res:
        raise ValueError(f"rubble_size must be at least two cells ({2 * cv.res} m), got {size}")
    noise = value_noise(cv.rng, cv, size)
    noise -= noise.mean()
    cv.h += peak * noise / max(float(np.abs(noise).max()), 1e-9)


def add_hills(cv: Canvas, n: int, max_slope_deg: float) -> None:
    for _ in range(n):
        height = cv.rng.uniform(0.4, 1.2) * cv.rng.choice([1.0, 1.0, -0.6])
        slope = math.tan(math.radians(cv.rng.uniform(10.0, max_slope_deg)))
        sigma = abs(height) * math.exp(-0.5) / slope
        centre = cv.place(2.5 * sigma)
        if centre is None:
            continue
        r2 = (cv.X - centre[0]) ** 2 + (cv.Y - centre[1]) ** 2
        cv.h += height * np.exp(-0.5 * r2 / sigma**2)


def add_ramps(cv: Canvas, n: int, max_slope_deg: float, closed: bool = False) -> None:
    """Plateaus reached by ramps at both ends; ``closed``: ramps on the sides too (no cliff edge)."""
    for _ in range(n):
        height = cv.rng.uniform(0.3, 0.7)
        run = height / math.tan(math.radians(cv.rng.uniform(12.0, max_slope_deg)))
        top, width, yaw = cv.rng.uniform(1.0, 3.0), cv.rng.uniform(2.0, 3.5), cv.rng.uniform(0, math.pi)
        centre = cv.place(0.5 * max(top, width if closed else 0.0) + run)
        if centre is None:
            continue
        u, v = cv.local(centre[0], centre[1], yaw)
        along = np.clip((0.5 * top + run - np.abs(u)) / run, 0.0, 1.0)
        if closed:
            along = np.minimum(along, np.clip((0.5 * width + run - np.abs(v)) / run, 0.0, 1.0))
            cv.h = np.maximum(cv.h, height * along)
        else:
            cv.h = np.maximum(cv.h, np.where(np.abs(v) <= 0.5 * width, height * along, cv.h))


def add_stairs(cv: Canvas, n: int, rise_range: Sequence[float], closed: bool = False) -> None:
    """Staircases up to a landing and down again; ``closed``: steps on all four sides (a stepped pyramid)."""
    lo, hi = float(rise_range[0]), float(rise_range[1])
    if not 0 < lo <= hi:
        raise ValueError(f"step_rise must be (low, high) with 0 < low <= high, got {rise_range}")
    for _ in range(n):
        rise, tread = cv.rng.uniform(lo, hi), cv.rng.uniform(0.3, 0.4)
        steps, landing = int(cv.rng.integers(2, 5)), cv.rng.uniform(1.0, 2.0)
        width = cv.rng.uniform(2.0, 4.0)
        direction = cv.goal[:2] - cv.start[:2]
        yaw = math.atan2(direction[1], direction[0]) + cv.rng.normal(0.0, 0.3)
        centre = cv.place(0.5 * max(landing, width if closed else 0.0) + steps * tread)
        if centre is None:
            continue
        u, v = cv.local(centre[0], centre[1], yaw)
        outward = np.abs(u) - 0.5 * landing
        if closed:
            outward = np.maximum(outward, np.abs(v) - 0.5 * width)
        level = np.clip(steps - np.ceil(np.maximum(outward, 0.0) / tread), 0, steps)
        inside = (level > 0) if closed else (np.abs(v) <= 0.5 * width) & (level > 0)
        if closed and np.ptp(cv.h[inside]) > 0.1:
            continue  # on another feature: a pyramid on a pyramid would leave a cliff where they meet
        cv.h = np.where(inside, np.maximum(cv.h, base_height(cv, centre) + rise * level), cv.h)


def add_patches(cv: Canvas, n: int, size_range: Sequence[float], friction_range: Sequence[float]) -> list[Patch]:
    """``n`` slippery patches apart from each other, the terrain flattened under each (so the geometry shows
    none of them); fewer where no free place is found."""
    lo, hi = (float(v) for v in size_range)
    f_lo, f_hi = (float(v) for v in friction_range)
    if not (0 < lo <= hi and 0 < f_lo <= f_hi <= 2.0):
        raise ValueError(f"patch_size needs 0 < min <= max and patch_friction 0 < min <= max <= 2, got "
                         f"{tuple(size_range)}, {tuple(friction_range)}")
    out: list[Patch] = []
    taken = np.zeros(cv.h.shape, dtype=bool)
    for _ in range(n):
        for _attempt in range(20):
            sx, sy = cv.rng.uniform(lo, hi, 2)
            yaw, friction = float(cv.rng.uniform(0.0, math.pi)), float(cv.rng.uniform(f_lo, f_hi))
            centre = cv.place(0.5 * math.hypot(sx, sy))
            if centre is None:
                continue
            cells = footprint(Patch(centre, (sx, sy), yaw, friction, 0.0), cv.origin, cv.res, cv.h.shape)
            if cells.any() and not (cells & taken).any():
                taken |= cells
                out.append(Patch(centre, (sx, sy), yaw, friction, flatten(cv.h, cells)))
                break
    return out


def base_height(cv: Canvas, centre: tuple[float, float]) -> float:
    i = int(np.argmin(np.abs(cv.X[:, 0] - centre[0])))
    j = int(np.argmin(np.abs(cv.Y[0, :] - centre[1])))
    return float(cv.h[i, j])


def add_blocks(cv: Canvas, n: int, height_range: tuple[float, float]) -> None:
    for _ in range(n):
        sx, sy = cv.rng.uniform(0.8, 2.5, 2)
        height, yaw = cv.rng.uniform(*height_range), cv.rng.uniform(0, math.pi)
        centre = cv.place(0.5 * math.hypot(sx, sy))
        if centre is None:
            continue
        u, v = cv.local(centre[0], centre[1], yaw)
        inside = (np.abs(u) <= 0.5 * sx) & (np.abs(v) <= 0.5 * sy)
        cv.h = np.where(inside, base_height(cv, centre) + height, cv.h)


def add_boxes(cv: Canvas, n_boxes: int, n_walls: int) -> None:
    for k in range(n_boxes + n_walls):
        if k < n_boxes:
            sx, sy, sz = cv.rng.uniform(0.4, 1.3), cv.rng.uniform(0.4, 1.3), cv.rng.uniform(0.5, 1.4)
        else:
            sx, sy, sz = cv.rng.uniform(1.5, 3.0), cv.rng.uniform(0.15, 0.3), cv.rng.uniform(0.8, 1.2)
        yaw = cv.rng.uniform(0, math.pi)
        centre = cv.place(0.5 * math.hypot(sx, sy))
        if centre is not None:
            cv.boxes_xy.append((centre[0], centre[1], sx, sy, sz, yaw))
