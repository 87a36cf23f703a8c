"""Batched SE(2) geometry for planar poses ``(x, y, yaw)`` and body twists ``(vx, vy, wz)``.

All functions take torch tensors with arbitrary leading batch dimensions and a trailing
dimension of 3. Integration of a constant body twist is exact (the SE(2) exponential map), not
Euler: a robot commanded ``(v, 0, w)`` for ``dt`` ends on the circle of radius ``v / w``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch


def _check_last3(name: str, value: torch.Tensor) -> None:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() < 1 or value.shape[-1] != 3:
        raise ValueError(f"{name} must have a trailing dimension of 3, got shape {tuple(value.shape)}")


def wrap_angle(angle: torch.Tensor) -> torch.Tensor:
    """Wraps angles to ``[-pi, pi)``.

    Args:
        angle: angles (rad), any shape.

    Returns:
        The wrapped angles, same shape.
    """
    return torch.remainder(angle + math.pi, 2.0 * math.pi) - math.pi


def _exp_coefficients(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``sin(theta)/theta`` and ``(1 - cos(theta))/theta`` without cancellation near zero."""
    a = torch.sinc(theta / math.pi)
    b = torch.sin(0.5 * theta) * torch.sinc(theta / (2.0 * math.pi))
    return a, b


def exp_twist(twist: torch.Tensor, dt: float | torch.Tensor) -> torch.Tensor:
    """Relative pose reached by holding a constant body twist for ``dt`` seconds.

    Args:
        twist: ``[..., 3]`` body twist ``(vx, vy, wz)`` (m/s, m/s, rad/s).
        dt: duration (s), a float or a tensor broadcastable to ``twist[..., 0]``.

    Returns:
        ``[..., 3]`` end pose ``(x, y, yaw)`` expressed in the start frame.

    Raises:
        ValueError: if ``twist`` does not end in a dimension of 3.
    """
    _check_last3("twist", twist)
    vx, vy, wz = twist.unbind(-1)
    theta = wz * dt
    a, b = _exp_coefficients(theta)
    ux = vx * dt
    uy = vy * dt
    return torch.stack((a * ux - b * uy, b * ux + a * uy, theta), dim=-1)


def compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pose composition ``a ⊕ b``: the pose ``b`` (given in frame ``a``) expressed in ``a``'s parent.

    Args:
        a: ``[..., 3]`` poses.
        b: ``[..., 3]`` poses relative to ``a``; broadcast against ``a``.

    Returns:
        ``[..., 3]`` composed poses, yaw wrapped to ``[-pi, pi)``.
    """
    _check_last3("a", a)
    _check_last3("b", b)
    c, s = torch.cos(a[..., 2]), torch.sin(a[..., 2])
    x = a[..., 0] + c * b[..., 0] - s * b[..., 1]
    y = a[..., 1] + s * b[..., 0] + c * b[..., 1]
    return torch.stack((x, y, wrap_angle(a[..., 2] + b[..., 2])), dim=-1)


def inverse(a: torch.Tensor) -> torch.Tensor:
    """Inverse pose ``a⁻¹`` such that ``compose(a, inverse(a))`` is the identity.

    Args:
        a: ``[..., 3]`` poses.

    Returns:
        ``[..., 3]`` inverse poses.
    """
    _check_last3("a", a)
    c, s = torch.cos(a[..., 2]), torch.sin(a[..., 2])
    x = -(c * a[..., 0] + s * a[..., 1])
    y = s * a[..., 0] - c * a[..., 1]
    return torch.stack((x, y, wrap_angle(-a[..., 2])), dim=-1)


def relative(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pose ``b`` expressed in the frame of pose ``a`` (``a⁻¹ ⊕ b``).

    Args:
        a: ``[..., 3]`` reference poses.
        b: ``[..., 3]`` poses in the same parent frame as ``a``; broadcast against ``a``.

    Returns:
        ``[..., 3]`` relative poses.
    """
    _check_last3("a", a)
    _check_last3("b", b)
    c, s = torch.cos(a[..., 2]), torch.sin(a[..., 2])
    dx = b[..., 0] - a[..., 0]
    dy = b[..., 1] - a[..., 1]
    return torch.stack((c * dx + s * dy, -s * dx + c * dy, wrap_angle(b[..., 2] - a[..., 2])), dim=-1)


def integrate(
    twists: torch.Tensor, dt: float, start: Optional[torch.Tensor] = None, wrap: bool = True
) -> torch.Tensor:
    """Integrates a sequence of piecewise-constant body twists exactly.

    Step ``t`` holds ``twists[..., t, :]`` for ``dt`` seconds; the result at ``t`` is the pose at
    the end of that step. The computation is vectorised over time (cumulative sums), so it is a
    handful of tensor operations regardless of the horizon.

    Args:
        twists: ``[..., T, 3]`` body twists.
        dt: step duration (s), positive.
        start: optional ``[..., 3]`` start pose, broadcast against ``twists[..., 0, :]``; the
            identity when omitted (poses are then relative to the start frame).
        wrap: wrap the output yaw to ``[-pi, pi)``; when False the yaw is the continuous sum.

    Returns:
        ``[..., T, 3]`` poses at the end of each step.

    Raises:
        ValueError: on a bad shape or a non-positive ``dt``.
    """
    _check_last3("twists", twists)
    if twists.dim() < 2:
        raise ValueError(f"twists must be [..., T, 3], got shape {tuple(twists.shape)}")
    if not dt > 0.0:
        raise ValueError(f"dt must be positive, got {dt}")
    local = exp_twist(twists, dt)  # [..., T, 3] displacement of each step in its start frame
    yaw_end = torch.cumsum(local[..., 2], dim=-1)
    if start is not None:
        _check_last3("start", start)
        yaw_end = yaw_end + start[..., 2:3]
    yaw0 = start[..., 2:3] if start is not None else torch.zeros_like(yaw_end[..., :1])
    yaw_begin = torch.cat((yaw0.expand_as(yaw_end[..., :1]), yaw_end[..., :-1]), dim=-1)
    c, s = torch.cos(yaw_begin), torch.sin(yaw_begin)
    x = torch.cumsum(c * local[..., 0] - s * local[..., 1], dim=-1)
    y = torch.cumsum(s * local[..., 0] + c * local[..., 1], dim=-1)
    if start is not None:
        x = x + start[..., 0:1]
        y = y + start[..., 1:2]
    yaw = wrap_angle(yaw_end) if wrap else yaw_end
    return torch.stack((x, y, yaw), dim=-1)


def twist_between(a: torch.Tensor, b: torch.Tensor, dt: float) -> torch.Tensor:
    """Constant body twist that moves pose ``a`` to pose ``b`` in ``dt`` seconds (SE(2) log map).

    Args:
        a: ``[..., 3]`` start poses.
        b: ``[..., 3]`` end poses in the same frame.
        dt: duration (s), positive.

    Returns:
        ``[..., 3]`` body twists; ``exp_twist(twist_between(a, b, dt), dt) == relative(a, b)``
        for relative rotations in ``(-pi, pi)``.

    Raises:
        ValueError: on a bad shape or a non-positive ``dt``.
    """
    if not dt > 0.0:
        raise ValueError(f"dt must be positive, got {dt}")
    rel = relative(a, b)
    theta = rel[..., 2]
    a_c, b_c = _exp_coefficients(theta)
    det = a_c * a_c + b_c * b_c  # > 0 for |theta| < 2 pi
    ux = (a_c * rel[..., 0] + b_c * rel[..., 1]) / det
    uy = (-b_c * rel[..., 0] + a_c * rel[..., 1]) / det
    return torch.stack((ux / dt, uy / dt, theta / dt), dim=-1)


def to_sincos(poses: torch.Tensor) -> torch.Tensor:
    """``(x, y, yaw)`` → ``(x, y, sin yaw, cos yaw)``.

    Args:
        poses: ``[..., 3]`` poses.

    Returns:
        ``[..., 4]`` poses with the heading as a unit vector.
    """
    _check_last3("poses", poses)
    return torch.cat((poses[..., :2], torch.sin(poses[..., 2:3]), torch.cos(poses[..., 2:3])), dim=-1)
