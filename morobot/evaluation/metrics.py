"""Per-scenario navigation metrics and their aggregation.

The same functions score lock-step and ROS-graph runs, from a base trajectory ``(t, x, y)``
that starts when the goal is sent.

Outcome of a scenario (first event wins):

* ``reached``: the planner declared the goal reached (within its ``goal_tolerance``) and the robot
  is within ``success_radius`` of the goal, within the sim-time budget, without having fallen;
* ``fallen``: the robot tipped over, dropped onto its belly or walked off the map;
* ``stuck``: the best distance to the goal improved by less than ``progress_eps`` over the last
  ``stuck_window`` seconds (the same rule ends lock-step runs early);
* ``timeout``: the budget was spent while still making progress;
* ``error``: the run itself failed (graph mode: a node died or the graph did not come up).

A fall is also described by the terrain under the robot in the ``FALL_WINDOW_S`` before it
(:func:`terrain_change_before`, :func:`fall_terrain`): ``rising`` or ``dropping`` by more than
``FALL_RISE_M``, else ``level`` (on the legged robot: falls climbing and descending stairs apart).

``success`` is ``outcome == "reached"``. ``collision`` is reported separately: a robot may touch a
box and still arrive. It is true when the robot fell or its body touched an obstacle; how touching
is detected depends on what the mode can observe (MuJoCo contacts in lock-step, the footprint of
the recorded poses in graph mode, see :func:`footprint_contacts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from morobot.sim.worlds import World

OUTCOMES = ("reached", "fallen", "stuck", "timeout", "error")
FALL_TERRAIN = ("rising", "dropping", "level")
FALL_WINDOW_S = 2.0  # s before a fall over which the terrain under the robot is compared
FALL_RISE_M = 0.05  # net change (m) that makes the terrain rising or dropping


def terrain_change_before(t: Sequence[float], heights: Sequence[float], at: float,
                          window: float = FALL_WINDOW_S) -> float:
    """Net change (m) of the terrain height under the robot over the ``window`` seconds up to ``at``
    (``heights`` sampled at times ``t``); NaN when fewer than two known heights fall in it."""
    t, h = np.asarray(t, dtype=float), np.asarray(heights, dtype=float)
    inside = np.flatnonzero((t >= at - window - 1e-9) & (t <= at + 1e-9) & np.isfinite(h))
    return float(h[inside[-1]] - h[inside[0]]) if len(inside) >= 2 else math.nan


def fall_terrain(change: float, rise: float = FALL_RISE_M) -> Optional[str]:
    """``rising``, ``dropping`` or ``level`` (:data:`FALL_TERRAIN`) for a net change; ``None`` if unknown."""
    if not math.isfinite(change):
        return None
    return "rising" if change > rise else "dropping" if change < -rise else "level"


@dataclass(frozen=True)
class OutcomeRules:
    """Thresholds of the outcome classification (SI units).

    Attributes:
        success_radius: the robot must end within this distance of the goal (m).
        stuck_window: window (s) over which progress is measured.
        progress_eps: less improvement of the best goal distance than this over the window is
            "stuck" (m).
    """

    success_radius: float = 0.5
    stuck_window: float = 20.0
    progress_eps: float = 0.25

    def __post_init__(self) -> None:
        for name in ("success_radius", "stuck_window", "progress_eps"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"OutcomeRules.{name} must be positive, got {v!r}")


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % for the default ``z``).

    Args:
        successes: number of successes, ``0 <= successes <= n``.
        n: number of trials (``n = 0`` gives ``(0, 1)``).
        z: standard-normal quantile.

    Returns:
        ``(low, high)`` within ``[0, 1]``.

    Raises:
        ValueError: on counts outside ``0 <= successes <= n``.
    """
    successes, n = int(successes), int(n)
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}, {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference_interval(both: int, first_only: int, second_only: int, neither: int,
                               z: float = 1.959963984540054) -> tuple[float, float, float]:
    """Difference of two success rates measured on the same scenarios, with its 95 % interval.

    Newcombe's score interval for paired proportions (method 10, Stat. Med. 1998): the two Wilson
    intervals combined with the correlation of the pairs (continuity-corrected phi).

    Args:
        both: scenarios both planners succeeded on; ``first_only``, ``second_only``: only one did;
            ``neither``: both failed.

    Returns:
        ``(difference, low, high)``: first's rate minus second's, within ``[-1, 1]``.

    Raises:
        ValueError: negative counts.
    """
    a, b, c, d = (int(v) for v in (both, first_only, second_only, neither))
    if min(a, b, c, d) < 0:
        raise ValueError(f"counts must be >= 0, got {(a, b, c, d)}")
    n = a + b + c + d
    if n == 0:
        return 0.0, -1.0, 1.0
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    denom = math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    if denom == 0:
        phi = 0.0
    else:
        num = a * d - b * c
        phi = (max(num - n / 2, 0.0) if num > 0 else num) / denom
    diff = p1 - p2
    low = diff - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    high = diff + math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return diff, max(-1.0, low), min(1.0, high)


def stuck_time(t: np.ndarray, dist: np.ndarray, window: float, eps: float) -> float:
    """First time at which the best distance improved by less than ``eps`` over ``window``.

    Args:
        t: ``[N]`` increasing times (s), relative to the goal being sent.
        dist: ``[N]`` distances to the goal (m).
        window: progress window (s).
        eps: required improvement (m).

    Returns:
        The time (s), or ``inf`` when the robot never stalled that long.
    """
    t = np.asarray(t, dtype=float)
    if t.size == 0:
        return math.inf
    best = np.minimum.accumulate(np.asarray(dist, dtype=float))
    past = np.searchsorted(t, t - window, side="right") - 1  # last sample at or before t - window
    ok = (t - t[0] >= window) & (past >= 0)
    stalled = ok & (best[np.clip(past, 0, None)] - best < eps)
    idx = np.flatnonzero(stalled)
    return float(t[idx[0]]) if idx.size else math.inf


def classify(t: np.ndarray, xy: np.ndarray, goal: Sequence[float], budget: float, reached_at: Optional[float],
             fallen_at: Optional[float], rules: OutcomeRules = OutcomeRules()) -> tuple[str, float]:
    """Outcome of a run and the time it was decided.

    Args:
        t: ``[N]`` times (s) since the goal was sent.
        xy: ``[N, 2]`` base positions.
        goal: goal ``(x, y[, yaw])``.
        budget: sim-time budget (s).
        reached_at: time the planner declared the goal reached, or ``None``.
        fallen_at: time the robot fell, or ``None``.
        rules: thresholds.

    Returns:
        ``(outcome, time)`` with ``outcome`` in :data:`OUTCOMES`.
    """
    t = np.asarray(t, dtype=float)
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    dist = np.hypot(xy[:, 0] - goal[0], xy[:, 1] - goal[1])
    events = []
    if reached_at is not None and reached_at <= budget:
        i = min(int(np.searchsorted(t, reached_at, side="right")) - 1, len(t) - 1)
        if i >= 0 and dist[i] <= rules.success_radius:
            events.append((float(reached_at), 1, "reached"))
    if fallen_at is not None and fallen_at <= budget:
        events.append((float(fallen_at), 0, "fallen"))
    st = stuck_time(t, dist, rules.stuck_window, rules.progress_eps)
    if st <= budget:
        events.append((st, 2, "stuck"))
    if not events:
        return "timeout", float(budget)
    when, _prio, outcome = min(events)
    return outcome, when


def path_length(xy: np.ndarray) -> float:
    """Length (m) of a polyline ``[N, 2]``."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return float(np.sum(np.hypot(*np.diff(xy, axis=0).T))) if len(xy) > 1 else 0.0


def footprint_points(half_length: float, half_width: float, spacing: float = 0.05) -> np.ndarray:
    """Points ``[M, 2]`` on a grid covering the rectangle ``[-hl, hl] x [-hw, hw]`` (base frame)."""
    nx = max(2, int(math.ceil(2 * half_length / spacing)) + 1)
    ny = max(2, int(math.ceil(2 * half_width / spacing)) + 1)
    u, v = np.meshgrid(np.linspace(-half_length, half_length, nx), np.linspace(-half_width, half_width, ny))
    return np.stack([u.ravel(), v.ravel()], axis=1)


def footprint_contacts(world: World, poses: np.ndarray, half_length: float, half_width: float,
                       tolerance: float = 0.02) -> np.ndarray:
    """Which poses bring the robot's footprint rectangle within ``tolerance`` of a tall box.

    The rectangle ``[-half_length, half_length] x [-half_width, half_width]`` (base frame) should
    bound every collision geom of the robot, so any real contact of the body with a box also
    brings the rectangle into contact: the check has no misses on boxes, but it flags near-misses
    where only the rectangle's empty corners reach the box. Boxes are those
    :meth:`World.obstacle_boxes` counts as obstacles; terrain edges are not checked. This is what
    graph mode can judge from odometry alone.

    Args:
        world: the world.
        poses: ``[N, 3]`` base poses ``(x, y, yaw)``.
        half_length: half extent of the footprint along base x (m).
        half_width: half extent along base y (m).
        tolerance: contact distance (m); also covers the 5 cm sampling of the rectangle.

    Returns:
        ``[N]`` bool.
    """
    poses = np.asarray(poses, dtype=float).reshape(-1, 3)
    out = np.zeros(len(poses), dtype=bool)
    boxes = world.obstacle_boxes()
    if not boxes or not len(poses):
        return out
    pts = footprint_points(half_length, half_width)
    c, s = np.cos(poses[:, 2])[:, None], np.sin(poses[:, 2])[:, None]
    reach = math.hypot(half_length, half_width) + tolerance
    for box in boxes:
        box_reach = reach + 0.5 * math.hypot(*box.size[:2])
        near = np.hypot(poses[:, 0] - box.center[0], poses[:, 1] - box.center[1]) <= box_reach
        if not near.any():
            continue
        p = poses[near]
        cn, sn = c[near], s[near]
        wx = p[:, 0:1] + cn * pts[:, 0] - sn * pts[:, 1]
        wy = p[:, 1:2] + sn * pts[:, 0] + cn * pts[:, 1]
        out[near] |= (box.distance_xy(wx, wy) <= tolerance).any(axis=1)
    return out


def nanmedian(values: Iterable[float]) -> float:
    """Median of the finite values (NaN if there are none)."""
    arr = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return float(np.median(arr)) if arr.size else math.nan


def _nanmean(values: Iterable[Optional[float]]) -> float:
    arr = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return float(arr.mean()) if arr.size else math.nan


def aggregate(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregates per ``(mode, planner, mix)``.

    Args:
        records: per-scenario records (keys ``mode``, ``planner``, ``mix``, ``success``,
            ``collision``, ``outcome``, ``time_to_goal``, ``path_length``, ``distance``,
            ``min_clearance``, ``mean_cycle_ms``).

    Returns:
        One dict per group, sorted by mode, planner, mix: ``n``, ``successes``, ``success_rate``,
        ``success_ci`` (Wilson 95 %), ``collisions``, ``collision_rate``, ``collision_ci``,
        ``outcomes`` (counts), ``falls_by_terrain`` (falls per :data:`FALL_TERRAIN`),
        ``median_time_to_goal`` (successful runs), ``median_path_ratio`` (path length / straight
        distance, successful runs), ``median_min_clearance``, ``mean_cycle_ms``.
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["mode"], r["planner"], r["mix"]), []).append(r)
    out = []
    for (mode, planner, mix), rs in sorted(groups.items()):
        n = len(rs)
        k = sum(bool(r["success"]) for r in rs)
        c = sum(bool(r["collision"]) for r in rs)
        ok = [r for r in rs if r["success"]]
        out.append({
            "mode": mode, "planner": planner, "mix": mix, "n": n,
            "successes": k, "success_rate": k / n, "success_ci": list(wilson_interval(k, n)),
            "collisions": c, "collision_rate": c / n, "collision_ci": list(wilson_interval(c, n)),
            "outcomes": {o: sum(r["outcome"] == o for r in rs) for o in OUTCOMES},
            "falls_by_terrain": {d: sum(r.get("fall_terrain") == d for r in rs) for d in FALL_TERRAIN},
            "median_time_to_goal": nanmedian(r["time_to_goal"] for r in ok),
            "median_path_ratio": nanmedian(r["path_length"] / r["distance"] for r in ok if r["distance"] > 0),
            "median_min_clearance": nanmedian(r["min_clearance"] for r in rs),
            "mean_cycle_ms": _nanmean(r.get("mean_cycle_ms") for r in rs),
        })
    return out
