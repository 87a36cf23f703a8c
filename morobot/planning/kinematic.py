"""Kinematic dynamics model with geometric terrain risk.

The model assumes commanded body twists are tracked perfectly: each step holds the twist
``(vx, vy, wz)`` for ``dt`` seconds and the pose is integrated exactly on SE(2) (a circular arc,
or a straight line when ``wz`` is zero). Risk comes from the height map only:

1. once per height map, a per-cell *risk map* is computed: the local height range in a small
   window (step height) and the regression gradient over a larger window (slope) are mapped
   through smooth sigmoids of ``step / step_limit`` and ``slope / slope_limit``; both are then
   reduced over the circular footprint (maximum), and the fraction of the footprint that is
   unknown (NaN or outside the map) adds ``unknown_risk``;
2. for every rollout step, the risk map is sampled bilinearly at a few points along the arc and
   the step takes the maximum.

Everything is batched in torch over the whole horizon (positions are complex numbers
``x + iy``, so a rotation is one complex product); one rollout of 2048 samples x 50 steps is a
handful of elementwise ops, two cumulative sums and one ``grid_sample`` call.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from morobot.planning.interface import HeightMap, NavState, Rollout


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def validate_height_map(hmap: HeightMap) -> None:
    """Check the structure of a height map (NaN heights are allowed: they mean unknown).

    Raises:
        ValueError: if ``heights`` is not a non-empty 2-D tensor, or ``origin``/``resolution``
            are not finite (resolution must also be positive).
    """
    if not isinstance(hmap.heights, torch.Tensor) or hmap.heights.dim() != 2:
        raise ValueError("HeightMap.heights must be a 2-D torch tensor [rows, cols]")
    if hmap.heights.shape[0] < 1 or hmap.heights.shape[1] < 1:
        raise ValueError(f"HeightMap.heights must be non-empty, got shape {tuple(hmap.heights.shape)}")
    if len(hmap.origin) != 2 or not all(math.isfinite(float(v)) for v in hmap.origin):
        raise ValueError(f"HeightMap.origin must be two finite numbers, got {hmap.origin!r}")
    _check_positive("HeightMap.resolution", hmap.resolution)


def soft_ratio(ratio: torch.Tensor, sharpness: float) -> torch.Tensor:
    """Smooth step from 0 to 1 of a normalised quantity (0 at 0, 0.5 at 1, -> 1 beyond).

    Args:
        ratio: non-negative tensor, e.g. ``step / step_limit``.
        sharpness: slope of the underlying logistic at ``ratio == 1``.

    Returns:
        Tensor of the same shape in ``[0, 1]``; exactly 0 where ``ratio == 0``.
    """
    floor = 1.0 / (1.0 + math.exp(sharpness))
    raw = torch.sigmoid(sharpness * (ratio - 1.0))
    return ((raw - floor) / (1.0 - floor)).clamp(0.0, 1.0)


def se2_displacement(
    velocity: torch.Tensor, wz: torch.Tensor, yaw: torch.Tensor, duration: float
) -> torch.Tensor:
    """Odom displacement of holding a body twist for ``duration`` seconds, exact on SE(2).

    Positions are complex numbers ``x + iy``. Holding body velocity ``v = vx + i vy`` and yaw rate
    ``wz`` from heading ``yaw`` moves the robot by
    ``integral_0^tau exp(i (yaw + wz t)) v dt = tau sinc(phi / 2) exp(i (yaw + phi / 2)) v`` with
    ``phi = wz tau`` (unnormalised sinc): the chord of the arc, which is smooth at ``wz = 0``.

    Args:
        velocity: complex body velocity ``vx + i vy`` (m/s), any shape.
        wz: yaw rate (rad/s), same shape (real).
        yaw: heading at the start of the motion (rad), same shape.
        duration: time (s) the twist is held.

    Returns:
        Complex displacement ``dx + i dy`` in odom, same shape.
    """
    phi = wz * duration
    chord = torch.sinc(phi * (0.5 / math.pi)).mul_(duration)
    return torch.polar(chord, yaw + 0.5 * phi) * velocity


def wrap_angle(angle: torch.Tensor) -> torch.Tensor:
    """Wrap angles to ``[-pi, pi)``."""
    return torch.remainder(angle + math.pi, 2.0 * math.pi) - math.pi


class KinematicModel:
    """Perfect-tracking SE(2) kinematics plus geometric risk; implements ``DynamicsModel``.

    Args:
        dt: step duration (s).
        footprint_radius: radius (m) of the circular footprint the risk is reduced over.
        step_limit: step height (m) at which the step risk is 0.5.
        slope_limit_deg: slope (degrees) at which the slope risk is 0.5.
        unknown_risk: risk of a footprint that is entirely unknown (NaN or outside the map).
        risk_sharpness: logistic slope of the step/slope risk at the limit (unitless).
        step_window: edge length (m) of the window whose height range is the step height.
        slope_window: edge length (m) of the window the gradient is regressed over.
        path_samples: risk samples along each step's arc (keep ``v_max * dt / path_samples``
            below ``footprint_radius`` so no obstacle can be jumped over).

    Raises:
        ValueError: on non-positive or non-finite parameters, or ``unknown_risk`` outside
            ``[0, 1]``.
    """

    def __init__(
        self,
        dt: float = 0.5,
        footprint_radius: float = 0.45,
        step_limit: float = 0.25,
        slope_limit_deg: float = 30.0,
        unknown_risk: float = 0.3,
        risk_sharpness: float = 10.0,
        step_window: float = 0.2,
        slope_window: float = 0.8,
        path_samples: int = 2,
    ) -> None:
        self.dt = _check_positive("dt", dt)
        self.footprint_radius = _check_positive("footprint_radius", footprint_radius)
        self.step_limit = _check_positive("step_limit", step_limit)
        self.slope_limit = math.radians(_check_positive("slope_limit_deg", slope_limit_deg))
        if not 0.0 <= float(unknown_risk) <= 1.0:
            raise ValueError(f"unknown_risk must lie in [0, 1], got {unknown_risk!r}")
        self.unknown_risk = float(unknown_risk)
        self.risk_sharpness = _check_positive("risk_sharpness", risk_sharpness)
        self.step_window = _check_positive("step_window", step_window)
        self.slope_window = _check_positive("slope_window", slope_window)
        if int(path_samples) < 1:
            raise ValueError(f"path_samples must be >= 1, got {path_samples!r}")
        self.path_samples = int(path_samples)
        self._cache_key: Optional[tuple] = None
        self._cache_heights: Optional[torch.Tensor] = None
        self._cache_map: Optional[torch.Tensor] = None
        self._cache_padded: Optional[torch.Tensor] = None

    # ------------------------------------------------------------------ kinematics
    def step(self, poses: torch.Tensor, commands: torch.Tensor) -> torch.Tensor:
        """Pose after one step of ``dt`` for each ``(pose, command)`` pair.

        Args:
            poses: ``[N, 3]`` start poses ``(x, y, yaw)`` in odom.
            commands: ``[N, 3]`` body twists.

        Returns:
            ``[N, 3]`` end poses (yaw wrapped to ``[-pi, pi)``).

        Raises:
            ValueError: on wrong shapes or non-finite values.
        """
        return self.step_with_risk(poses, commands, None)[0]

    def rollout(self, state: NavState, commands: torch.Tensor, hmap: Optional[HeightMap]) -> Rollout:
        """Integrate ``K`` command sequences from ``state.pose`` and score their terrain risk.

        Args:
            state: current state; only ``pose`` is used.
            commands: ``[K, T, 3]`` float32/float64 body twists; the output uses their dtype
                and device.
            hmap: height map, or ``None`` (then every step has risk ``unknown_risk``).

        Returns:
            Rollout with ``poses [K, T, 3]`` (end of each step) and ``risk [K, T]``.

        Raises:
            ValueError: on wrong shapes, non-finite pose or commands, or a malformed height map.
        """
        if not isinstance(commands, torch.Tensor) or commands.dim() != 3 or commands.shape[-1] != 3:
            raise ValueError(f"commands must be a [K, T, 3] tensor, got {_shape_of(commands)}")
        if commands.shape[0] < 1 or commands.shape[1] < 1:
            raise ValueError(f"commands must have K >= 1 and T >= 1, got {tuple(commands.shape)}")
        _check_finite("commands", commands)
        pose0 = np.asarray(state.pose, dtype=np.float64)
        if pose0.shape != (3,) or not np.all(np.isfinite(pose0)):
            raise ValueError(f"state.pose must be 3 finite numbers (x, y, yaw), got {state.pose!r}")
        velocity = torch.view_as_complex(commands[..., :2].contiguous())
        wz = commands[..., 2]
        dyaw = wz * self.dt
        yaw_end = torch.cumsum(dyaw, dim=1).add_(float(pose0[2]))
        yaw_start = yaw_end - dyaw
        steps = se2_displacement(velocity, wz, yaw_start, self.dt)
        ends = torch.cumsum(steps, dim=1).add_(complex(pose0[0], pose0[1]))
        poses = torch.cat((torch.view_as_real(ends), wrap_angle(yaw_end).unsqueeze(-1)), dim=-1)
        if hmap is None:
            risk = torch.full(wz.shape, self.unknown_risk, dtype=commands.dtype, device=commands.device)
        else:
            risk = self._path_risk(ends - steps, yaw_start, velocity, wz, ends, hmap)
        return Rollout(poses=poses, risk=risk)

    # ------------------------------------------------------------------ risk
    def step_risk(self, poses: torch.Tensor, commands: torch.Tensor, hmap: Optional[HeightMap]) -> torch.Tensor:
        """Risk of one step of ``dt`` from each start pose (the values ``rollout`` produces).

        Args:
            poses: ``[N, 3]`` start poses.
            commands: ``[N, 3]`` body twists.
            hmap: height map or ``None`` (risk ``unknown_risk``).

        Returns:
            ``[N]`` risk in ``[0, 1]``.

        Raises:
            ValueError: on wrong shapes, non-finite values or a malformed height map.
        """
        return self.step_with_risk(poses, commands, hmap)[1]

    def step_with_risk(
        self, poses: torch.Tensor, commands: torch.Tensor, hmap: Optional[HeightMap]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`step` and :meth:`step_risk` together, sharing the integration.

        Args:
            poses: ``[N, 3]`` start poses.
            commands: ``[N, 3]`` body twists.
            hmap: height map or ``None``.

        Returns:
            ``([N, 3] end poses, [N] risk)``.

        Raises:
            ValueError: on wrong shapes, non-finite values or a malformed height map.
        """
        _check_pairs(poses, commands)
        start = torch.view_as_complex(poses[:, :2].contiguous())
        velocity = torch.view_as_complex(commands[:, :2].contiguous())
        yaw, wz = poses[:, 2], commands[:, 2]
        end = start + se2_displacement(velocity, wz, yaw, self.dt)
        ends = torch.cat((torch.view_as_real(end), wrap_angle(yaw + wz * self.dt).unsqueeze(-1)), dim=-1)
        if hmap is None:
            return ends, torch.full(wz.shape, self.unknown_risk, dtype=poses.dtype, device=poses.device)
        return ends, self._path_risk(start, yaw, velocity, wz, end, hmap)

    def _path_risk(
        self,
        start: torch.Tensor,
        yaw: torch.Tensor,
        velocity: torch.Tensor,
        wz: torch.Tensor,
        end: torch.Tensor,
        hmap: HeightMap,
    ) -> torch.Tensor:
        """Max of the risk map over ``path_samples`` points of each step's arc.

        Args:
            start: complex start positions of the steps, ``[...]``.
            yaw: start headings, ``[...]``.
            velocity: complex body velocities, ``[...]``.
            wz: yaw rates, ``[...]``.
            end: complex end positions, ``[...]``.
            hmap: height map.

        Returns:
            ``[...]`` step risk.
        """
        points = [
            start + se2_displacement(velocity, wz, yaw, self.dt * i / self.path_samples)
            for i in range(1, self.path_samples)
        ]
        points.append(end)
        return self._sample(torch.stack(points), hmap).amax(dim=0)

    def sample_risk(self, xy: torch.Tensor, hmap: HeightMap) -> torch.Tensor:
        """Bilinearly sample the footprint risk map at odom positions.

        Args:
            xy: ``[..., 2]`` odom positions (m).
            hmap: height map.

        Returns:
            ``[...]`` risk; positions outside the map get ``unknown_risk``.

        Raises:
            ValueError: on a malformed height map or ``xy`` without a last dimension of 2.
        """
        if not isinstance(xy, torch.Tensor) or xy.dim() < 1 or xy.shape[-1] != 2:
            raise ValueError(f"xy must be a [..., 2] tensor, got {_shape_of(xy)}")
        if xy.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"xy must be float32 or float64, got {xy.dtype}")
        return self._sample(torch.view_as_complex(xy.contiguous()), hmap)

    def _sample(self, xy: torch.Tensor, hmap: HeightMap) -> torch.Tensor:
        """Risk at complex odom positions ``xy`` (``x + iy``), same shape as ``xy``."""
        real = torch.float64 if xy.dtype == torch.complex128 else torch.float32
        padded = self._padded_risk_map(hmap).to(dtype=real, device=xy.device)
        # The padded map is square with side n; its cell index is (p - origin) / res + 1 and
        # align_corners maps 0 .. n-1 to -1 .. 1. Equal scales on both axes keep this one flat
        # complex affine map; the transposed layout makes grid_sample's (width, height) = (x, y).
        res = float(hmap.resolution)
        scale = 2.0 / (res * (padded.shape[-1] - 1))
        offset = complex(scale * (res - float(hmap.origin[0])) - 1.0, scale * (res - float(hmap.origin[1])) - 1.0)
        grid = torch.view_as_real(xy * scale + offset).reshape(1, -1, 1, 2)
        out = F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return out.reshape(xy.shape)

    def _padded_risk_map(self, hmap: HeightMap) -> torch.Tensor:
        """``[1, 1, n, n]`` transposed risk map, padded with ``unknown_risk`` to a square."""
        rmap = self.risk_map(hmap)
        if self._cache_padded is None:
            rows, cols = rmap.shape
            side = max(rows, cols) + 2
            padded = torch.full((side, side), self.unknown_risk, dtype=rmap.dtype)
            padded[1 : cols + 1, 1 : rows + 1] = rmap.t()
            self._cache_padded = padded[None, None]
        return self._cache_padded

    def risk_map(self, hmap: HeightMap) -> torch.Tensor:
        """Per-cell risk of placing the footprint centre on each cell, ``[rows, cols]`` float32.

        The result is cached for the last height map (keyed on the tensor object, its in-place
        version counter, origin and resolution), so repeated rollouts on one map are cheap.

        Raises:
            ValueError: on a malformed height map.
        """
        validate_height_map(hmap)
        key = (id(hmap.heights), hmap.heights._version, tuple(map(float, hmap.origin)), float(hmap.resolution))
        if self._cache_key == key and self._cache_heights is hmap.heights:
            return self._cache_map  # type: ignore[return-value]
        rmap = self._compute_risk_map(hmap.heights.detach().to("cpu", torch.float32), float(hmap.resolution))
        self._cache_key, self._cache_heights, self._cache_map = key, hmap.heights, rmap
        self._cache_padded = None
        return rmap

    def _compute_risk_map(self, heights: torch.Tensor, res: float) -> torch.Tensor:
        known = torch.isfinite(heights)
        step = _local_range(heights, known, max(1, round(self.step_window / (2.0 * res))))
        slope = torch.atan(_regression_gradient(heights, known, max(1, round(self.slope_window / (2.0 * res))), res))
        r_step = soft_ratio(step / self.step_limit, self.risk_sharpness)
        r_slope = soft_ratio(slope / self.slope_limit, self.risk_sharpness)
        geometric = torch.where(known, 1.0 - (1.0 - r_step) * (1.0 - r_slope), torch.zeros_like(heights))
        radius_cells = self.footprint_radius / res
        geometric = _disk_max(geometric, radius_cells)
        unknown = _disk_mean((~known).to(torch.float32), radius_cells, pad_value=1.0)
        return 1.0 - (1.0 - geometric) * (1.0 - self.unknown_risk * unknown)


def _local_range(heights: torch.Tensor, known: torch.Tensor, half: int) -> torch.Tensor:
    """Max minus min of the known heights in a ``(2 half + 1)^2`` window; 0 without data."""
    inf = torch.tensor(float("inf"))
    hi = torch.where(known, heights, -inf)[None, None]
    lo = torch.where(known, -heights, -inf)[None, None]
    size = 2 * half + 1
    hi = F.max_pool2d(F.pad(hi, (half,) * 4, value=-math.inf), size, stride=1)[0, 0]
    lo = -F.max_pool2d(F.pad(lo, (half,) * 4, value=-math.inf), size, stride=1)[0, 0]
    rng = hi - lo
    return torch.where(torch.isfinite(rng), rng, torch.zeros_like(rng))


def _regression_gradient(heights: torch.Tensor, known: torch.Tensor, half: int, res: float) -> torch.Tensor:
    """Magnitude of the local height gradient from per-axis least squares over known cells.

    Each axis slope is the weighted regression of height on the offset along that axis over a
    ``(2 half + 1)^2`` window; where a window holds too few cells to fit, the slope is 0.
    """
    offs = torch.arange(-half, half + 1, dtype=torch.float32) * res
    di, dj = torch.meshgrid(offs, offs, indexing="ij")
    kernels = torch.stack((torch.ones_like(di), di, dj, di * di, dj * dj))[:, None]  # [5, 1, k, k]
    mask = known.to(torch.float32)
    filled = torch.where(known, heights, torch.zeros_like(heights))
    inputs = torch.stack((mask, mask * filled))[:, None]  # [2, 1, R, C]
    sums = F.conv2d(F.pad(inputs, (half,) * 4), kernels)  # [2, 5, R, C]
    n, si, sj, sii, sjj = sums[0]
    sh, shi, shj = sums[1, 0], sums[1, 1], sums[1, 2]
    gradients = []
    for s_o, s_oo, s_ho in ((si, sii, shi), (sj, sjj, shj)):
        denom = n * s_oo - s_o * s_o
        ok = denom > 1e-9 * res * res
        g = torch.where(ok, (n * s_ho - s_o * sh) / torch.where(ok, denom, torch.ones_like(denom)), 0.0)
        gradients.append(g)
    return torch.hypot(gradients[0], gradients[1])


def _disk_offsets(radius_cells: float) -> list[tuple[int, int]]:
    """Half-widths of each row of a disk: ``[(row_offset, half_width), ...]``."""
    reach = int(math.floor(radius_cells))
    return [(d, int(math.floor(math.sqrt(max(radius_cells**2 - d * d, 0.0))))) for d in range(-reach, reach + 1)]


def _disk_max(values: torch.Tensor, radius_cells: float) -> torch.Tensor:
    """Maximum over a disk around every cell (cells outside the map count as 0)."""
    reach = int(math.floor(radius_cells))
    rows, cols = values.shape
    padded = F.pad(values[None, None], (reach,) * 4, value=0.0)
    out = values.clone()
    for d, half in _disk_offsets(radius_cells):
        pooled = F.max_pool2d(padded, (1, 2 * half + 1), stride=1)[0, 0]
        out = torch.maximum(out, pooled[reach + d : reach + d + rows, reach - half : reach - half + cols])
    return out


def _disk_mean(values: torch.Tensor, radius_cells: float, pad_value: float) -> torch.Tensor:
    """Mean over a disk around every cell, with ``pad_value`` outside the map."""
    reach = int(math.floor(radius_cells))
    kernel = torch.zeros(2 * reach + 1, 2 * reach + 1)
    for d, half in _disk_offsets(radius_cells):
        kernel[reach + d, reach - half : reach + half + 1] = 1.0
    kernel /= kernel.sum()
    padded = F.pad(values[None, None], (reach,) * 4, value=pad_value)
    return F.conv2d(padded, kernel[None, None])[0, 0]


def _shape_of(value: object) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def _check_finite(name: str, value: torch.Tensor) -> None:
    # One reduction instead of an elementwise mask: NaN/Inf anywhere make the sum non-finite
    # (so do values large enough to overflow it, which are just as invalid here).
    if not bool(torch.isfinite(value.sum())):
        raise ValueError(f"{name} contain NaN or Inf (or values too large to be meaningful)")


def _check_pairs(poses: torch.Tensor, commands: torch.Tensor) -> None:
    for name, value in (("poses", poses), ("commands", commands)):
        if not isinstance(value, torch.Tensor) or value.dim() != 2 or value.shape[-1] != 3:
            raise ValueError(f"{name} must be an [N, 3] tensor, got {_shape_of(value)}")
        _check_finite(name, value)
    if poses.shape[0] != commands.shape[0]:
        raise ValueError(f"poses and commands differ in length: {poses.shape[0]} vs {commands.shape[0]}")
