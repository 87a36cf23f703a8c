"""Seeded navigation scenarios per terrain mix.

A :class:`Scenario` is everything needed to rebuild one navigation problem exactly: the world
generator's kind, seed, size and parameters, the start and goal poses and the sim-time budget.
Scenario ``i`` of a terrain mix depends only on ``(base seed, mix name, i)``, so the first three
scenarios of a 30-scenario run are the same as those of a 3-scenario run, and the lock-step and
ROS-graph modes evaluate identical problems. The world generator
(:func:`morobot.sim.worlds.make_world`) guarantees that the goal is reachable from the start.

Terrain mixes (worlds of ``size`` x ``size`` metres, default 16 m):

* ``rough``: multi-octave rough terrain (peak 0.10-0.20 m, wavelength 1.5-2.5 m), two climbable
  0.08-0.15 m platforms and two boxes;
* ``slopes``: hills and ramped plateaus (slopes up to 20-28 deg, plateau sides are cliffs);
* ``steps``: staircases (0.10-0.15 m risers) plus climbable and unclimbable platforms;
* ``cluttered``: 14 boxes and 3 thin walls on mildly rough ground;
* ``stairs`` (not in the default set): three staircases (0.10-0.15 m risers, up, landing, down)
  near the straight path and nothing else: the legged robot's gait falls at the higher risers (56 % of climbs at
  13 cm, docs/locomotion.md), so a planner has to walk around them;
* ``rubble`` (not in the default set): the ``rough`` terrain with foot-scale bumps and hollows
  (peak 6 cm, 0.4 m spacing) and three boxes, **and a robot that stumbles**: the simulator's
  speed-dependent stumble model (:mod:`morobot.sim.locomotion`) is on, so walking fast,
  sideways or backwards over the rubble risks a fall that walking slowly does not.
* ``slippery`` (not in the default set): mildly rough ground with five flat 2.5-4.5 m patches of ground whose
  friction is 0.04-0.08, as on wet ice (:mod:`morobot.sim.patches`), mostly near the straight path. The terrain under a
  patch is flat, so the planners' geometric risk cannot see it; the walking robot slips there, and falls at speed.
* ``rubble_high`` (not in the default set): the same with 10 cm rubble, made where the walking robot failed, as high
  as the planners' ``step_limit`` was then (docs/navigation_eval.md, "Session 28"; since session 36 the limit is
  0.13 m and both planners reach 98-100 % there).

Start and goal are ``distance`` apart (uniform in 8-10 m by default) along a random direction,
centred within 1 m of the world centre; the goal heading is the travel direction and the start
heading deviates from it by up to 45 deg.

**A goal the planners can finish at.** The planners accept a goal's own footprint risk up to ``goal_risk_cap``
(plus ``risk_margin`` on the way in, :class:`~morobot.planning.cost.NavigationCost`); a goal riskier than that is an
obstacle to them by design, and a run there rarely succeeds (on ``rubble_high``, where 10 cm rubble rates some goal
cells 0.95-1.0, both planners failed 14 of 16 such runs in session 34). So a drawn goal whose risk on the world's
true surface (terrain and boxes, the ``mppi_planner`` geometry of session 35, :data:`GOAL_RULE_PARAMS`) is above
``goal_risk_cap - risk_margin`` moves to the nearest cell, at most :data:`GOAL_SEARCH_RADIUS` away, whose risk is not
(:func:`standable_goal`); the world is generated again with the moved goal and checked once more. The other mixes'
goals lie in the generator's feature-free keep-out and never move; this changed 15 of the first 150 ``rubble_high``
goals and 1 of ``rubble``'s (docs/navigation_eval.md, "Session 35").
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import yaml

from morobot.fileio import atomic_write_text
from morobot.sim.worlds import World, make_world


@dataclass(frozen=True)
class TerrainMix:
    """How the worlds of one terrain mix are generated.

    Attributes:
        name: mix name.
        kind: :func:`make_world` kind.
        params: fixed generator parameters.
        ranges: generator parameters drawn per scenario, ``name -> (low, high)``; floats are
            drawn uniformly, pairs of ints as integers in ``[low, high]``.
        description: one line for reports.
        locomotion: overrides of the simulated robot's
            :class:`~morobot.sim.locomotion.LocomotionConfig` (e.g. the stumble model).
    """

    name: str
    kind: str
    params: dict = field(default_factory=dict)
    ranges: dict = field(default_factory=dict)
    description: str = ""
    locomotion: dict = field(default_factory=dict)


#: The stumble model of the ``rubble`` mix (also the ``--locomotion`` of its training data, docs/fdm.md).
STUMBLING = {"stumble_rate": 0.15, "stumble_unevenness": 0.02}

TERRAIN_MIXES: dict[str, TerrainMix] = {
    "rough": TerrainMix("rough", "rough", {"n_boxes": 2, "n_blocks_low": 2},
                        {"amplitude": (0.10, 0.20), "wavelength": (1.5, 2.5)},
                        "rough terrain (peak 10-20 cm), two climbable platforms, two boxes"),
    "slopes": TerrainMix("slopes", "slopes", {"n_hills": 3, "n_ramps": 2, "path_bias": 0.7},
                         {"max_slope_deg": (20.0, 28.0)},
                         "hills and ramped plateaus (slopes up to 20-28 deg)"),
    "steps": TerrainMix("steps", "steps",
                        {"n_stairs": 2, "n_blocks_low": 3, "n_blocks_high": 3, "path_bias": 0.7},
                        {}, "stairs (10-15 cm risers), climbable and unclimbable platforms"),
    "cluttered": TerrainMix("cluttered", "cluttered", {"n_boxes": 14, "n_walls": 3}, {},
                            "14 boxes and 3 walls on mildly rough ground"),
    "stairs": TerrainMix("stairs", "steps", {"n_stairs": 3, "n_blocks_low": 0, "n_blocks_high": 0, "path_bias": 0.8},
                         {}, "three staircases (10-15 cm risers, up, landing, down) near the straight path"),
    "rubble": TerrainMix("rubble", "rough", {"n_boxes": 3, "rubble": 0.06, "rubble_size": 0.4},
                         {"amplitude": (0.10, 0.20), "wavelength": (1.5, 2.5)},
                         "rough terrain with 6 cm rubble and three boxes; the robot stumbles at speed",
                         STUMBLING),
}
"""The terrain mixes of the navigation benchmark."""

TERRAIN_MIXES["slippery"] = TerrainMix(
    "slippery", "rough", {"n_boxes": 2, "n_patches": 5, "path_bias": 0.9, "patch_size": (2.5, 4.5),
                         "patch_friction": (0.04, 0.08)},
    {"amplitude": (0.05, 0.10), "wavelength": (1.5, 2.5)},
    "mildly rough ground with five flat 2.5-4.5 m patches of icy ground (friction 0.04-0.08) near the straight path")

TERRAIN_MIXES["rubble_high"] = replace(
    TERRAIN_MIXES["rubble"], name="rubble_high", params={**TERRAIN_MIXES["rubble"].params, "rubble": 0.10},
    description="rough terrain with 10 cm rubble and three boxes, at the walking robot's step limit")

#: The mixes ``morobot eval nav`` runs by default (the issue's four; ``rubble`` on request).
BENCHMARK_MIXES = ("rough", "slopes", "steps", "cluttered")


@dataclass(frozen=True)
class Scenario:
    """One navigation problem, rebuildable bit for bit.

    Attributes:
        id: unique name, ``<mix>-<index:03d>``.
        mix: terrain mix name.
        index: index within the mix.
        kind: world generator kind.
        seed: world generator seed.
        size: world size ``(sx, sy)`` (m).
        resolution: heightfield resolution (m).
        params: world generator parameters.
        start: start pose ``(x, y, yaw)``.
        goal: goal pose ``(x, y, yaw)``.
        budget: sim-time budget (s) from the moment the goal is sent.
        locomotion: overrides of the simulated robot's ``LocomotionConfig`` (the mix's, with
            ``stumble_seed`` set to the world seed when the stumble model is on).
    """

    id: str
    mix: str
    index: int
    kind: str
    seed: int
    size: tuple[float, float]
    resolution: float
    params: dict
    start: tuple[float, float, float]
    goal: tuple[float, float, float]
    budget: float
    locomotion: dict = field(default_factory=dict)

    def locomotion_config(self):
        """The simulated robot's :class:`~morobot.sim.locomotion.LocomotionConfig` in this scenario."""
        from morobot.sim.locomotion import LocomotionConfig

        return LocomotionConfig(**self.locomotion)

    @property
    def distance(self) -> float:
        """Straight-line start-goal distance (m)."""
        return math.hypot(self.goal[0] - self.start[0], self.goal[1] - self.start[1])

    def world(self) -> World:
        """Generate the world (deterministic; a few tens of milliseconds)."""
        return make_world(self.kind, self.seed, size=self.size, resolution=self.resolution, name=self.id,
                          start=self.start, goal=self.goal, **self.params)

    def world_spec(self) -> dict[str, Any]:
        """The world as a ``config/worlds``-style mapping (see :func:`morobot.sim.worlds.load_world`)."""
        return {"name": self.id, "kind": self.kind, "seed": int(self.seed), "size": [float(v) for v in self.size],
                "resolution": float(self.resolution), "params": _plain(self.params),
                "start": [float(v) for v in self.start], "goal": [float(v) for v in self.goal]}

    def write_world_yaml(self, path: str | Path) -> Path:
        """Write :meth:`world_spec` as YAML (atomically), loadable by ``load_world`` and the sim node."""
        text = yaml.safe_dump(self.world_spec(), sort_keys=False)
        return atomic_write_text(path, f"# navigation benchmark scenario {self.id}\n{text}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (tuples become lists; :meth:`from_dict` inverts it)."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scenario":
        """Rebuild a scenario from :meth:`to_dict` output (e.g. read back from JSON)."""
        d = dict(data)
        for name in ("size", "start", "goal"):
            d[name] = tuple(float(v) for v in d[name])
        d["params"] = {k: tuple(v) if isinstance(v, list) else v for k, v in d["params"].items()}
        return cls(**d)


def _plain(value: Any) -> Any:
    """Tuples to lists and numpy scalars to Python numbers, recursively (for YAML/JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _mix_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def make_scenario(mix: str | TerrainMix, index: int, seed: int = 0, budget: float = 60.0,
                  distance: Sequence[float] = (8.0, 10.0), size: float = 16.0,
                  resolution: float = 0.1, standable: bool = True) -> Scenario:
    """Scenario ``index`` of a terrain mix.

    Args:
        mix: a name in :data:`TERRAIN_MIXES` or a :class:`TerrainMix`.
        index: scenario index (>= 0).
        seed: base seed of the benchmark.
        budget: sim-time budget (s).
        distance: ``(low, high)`` start-goal distance range (m).
        size: world edge length (m).
        resolution: heightfield resolution (m).
        standable: move a goal the planners would rate as an obstacle (:func:`standable_goal`); false gives
            the goal as drawn (the scenarios before session 35).

    Returns:
        The scenario; it depends only on ``(seed, mix name, index)`` and the other arguments.

    Raises:
        KeyError: unknown mix name.
        ValueError: negative index, non-positive budget, or a distance range that does not fit
            in the world.
    """
    spec = TERRAIN_MIXES[mix] if isinstance(mix, str) else mix
    if int(index) < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget must be positive, got {budget}")
    lo, hi = (float(v) for v in distance)
    if not 0 < lo <= hi or hi / 2 + 1.0 > size / 2 - 1.0:
        raise ValueError(f"distance range {distance} must be positive and fit in a {size} m world "
                         "(half of it plus 1 m centring plus 1 m margin)")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _mix_key(spec.name), int(index)]))
    world_seed = int(rng.integers(0, 2**31 - 1))
    params = dict(spec.params)
    for name, (a, b) in sorted(spec.ranges.items()):
        if isinstance(a, int) and isinstance(b, int):
            params[name] = int(rng.integers(a, b + 1))
        else:
            params[name] = round(float(rng.uniform(a, b)), 4)
    d = float(rng.uniform(lo, hi))
    heading = float(rng.uniform(-math.pi, math.pi))
    mid = rng.uniform(-1.0, 1.0, 2)
    u = np.array([math.cos(heading), math.sin(heading)])
    start_xy, goal_xy = mid - 0.5 * d * u, mid + 0.5 * d * u
    start_yaw = _wrap(heading + float(rng.uniform(-math.pi / 4, math.pi / 4)))
    scenario = Scenario(
        id=f"{spec.name}-{int(index):03d}", mix=spec.name, index=int(index), kind=spec.kind, seed=world_seed,
        size=(float(size), float(size)), resolution=float(resolution), params=params,
        start=(round(float(start_xy[0]), 4), round(float(start_xy[1]), 4), round(start_yaw, 4)),
        goal=(round(float(goal_xy[0]), 4), round(float(goal_xy[1]), 4), round(heading, 4)),
        budget=float(budget),
        locomotion={**spec.locomotion, "stumble_seed": world_seed} if spec.locomotion else {})
    return standable_goal(scenario) if standable else scenario


#: How far (m) :func:`standable_goal` may move a drawn goal.
GOAL_SEARCH_RADIUS = 1.0

#: The ``mppi_planner`` values the goal rule is defined with: the defaults when the rule was made (session 35), kept
#: here so that tuning a planner default never changes the benchmark's scenarios (and the results stored for them).
GOAL_RULE_PARAMS = {"footprint_radius": 0.45, "step_limit": 0.10, "slope_limit_deg": 30.0, "unknown_risk": 0.3,
                    "goal_risk_cap": 0.95, "risk_margin": 0.05}


def goal_risk_limit() -> float:
    """The highest goal risk the planners take in full under the goal rule's parameters: ``goal_risk_cap -
    risk_margin`` of :data:`GOAL_RULE_PARAMS`."""
    return GOAL_RULE_PARAMS["goal_risk_cap"] - GOAL_RULE_PARAMS["risk_margin"]


def footprint_risk(world: World, points: np.ndarray, margin: float = 2.0) -> np.ndarray:
    """The planners' geometric footprint risk at ``points [n, 2]`` on the world's true surface.

    The risk is the kinematic model's (:meth:`~morobot.planning.kinematic.KinematicModel.risk_map`, the
    ``mppi_planner`` defaults with :data:`GOAL_RULE_PARAMS`) on the world's cells around the points, terrain and box
    tops (what a perfect elevation map would hold); a point off the world gets 1.
    """
    import torch

    from morobot.navigation.factory import make_kinematic_model
    from morobot.navigation.params import PlannerParams
    from morobot.params import defaults
    from morobot.planning.interface import HeightMap

    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros(0)
    res, (ox, oy) = world.resolution, world.origin
    nx, ny = world.shape
    ij = np.rint((pts - (ox, oy)) / res).astype(int)
    inside = np.all((ij >= 0) & (ij < (nx, ny)), axis=1)
    out = np.ones(len(pts))
    if not inside.any():
        return out
    pad = int(math.ceil(margin / res))
    lo = np.clip(ij[inside].min(axis=0) - pad, 0, None)
    hi = np.minimum(ij[inside].max(axis=0) + pad + 1, (nx, ny))
    xs, ys = world.cell_centres()
    gx, gy = np.meshgrid(xs[lo[0]:hi[0]], ys[lo[1]:hi[1]], indexing="ij")
    hmap = HeightMap(torch.as_tensor(world.elevation_at(gx, gy), dtype=torch.float32),
                     (float(xs[lo[0]]), float(ys[lo[1]])), float(res))
    risk = make_kinematic_model({**defaults(PlannerParams), **GOAL_RULE_PARAMS}).risk_map(hmap).numpy()
    local = ij[inside] - lo
    out[inside] = risk[local[:, 0], local[:, 1]]
    return out


def standable_goal(scenario: Scenario, radius: float = GOAL_SEARCH_RADIUS) -> Scenario:
    """``scenario`` with its goal where the planners can finish (see the module docstring).

    A goal at most :func:`goal_risk_limit` stays. Otherwise the cells within ``radius`` whose risk on the
    current world is within the limit are tried nearest first (ties in angle order): the world is generated
    again with the moved goal (its features keep out of the goal's surroundings, so they may move) and the
    first cell whose risk stays within the limit there, in a reachable world, is the goal. If none is, the
    scenario stays as drawn (no generated mix has needed that).
    """
    limit = goal_risk_limit()
    world = scenario.world()
    gx, gy, yaw = scenario.goal
    if float(footprint_risk(world, np.array([[gx, gy]]))[0]) <= limit:
        return scenario
    res = float(scenario.resolution)
    n = int(radius / res)
    di, dj = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    offsets = res * np.stack([di.ravel(), dj.ravel()], axis=1)
    dist = np.hypot(offsets[:, 0], offsets[:, 1])
    order = np.lexsort((np.arctan2(offsets[:, 1], offsets[:, 0]), dist))
    offsets = offsets[order][(dist[order] > 0) & (dist[order] <= radius + 1e-9)]
    cells = np.array([gx, gy]) + offsets
    half = 0.5 * np.asarray(scenario.size) - 1.0
    keep = np.all(np.abs(cells) <= half, axis=1) & (footprint_risk(world, cells) <= limit)
    for x, y in cells[keep]:
        moved = replace(scenario, goal=(round(float(x), 4), round(float(y), 4), yaw))
        try:
            moved_world = moved.world()
        except ValueError:  # the goal's region blocks every path in the regenerated world
            continue
        if float(footprint_risk(moved_world, np.array([[x, y]]))[0]) <= limit:
            return moved
    return scenario


def make_scenarios(mixes: Sequence[str], n: int, seed: int = 0, budget: float = 60.0,
                   first: int = 0, **kwargs: Any) -> list[Scenario]:
    """Scenarios ``first .. first + n - 1`` of every mix, grouped by mix.

    Args:
        mixes: terrain mix names (see :data:`TERRAIN_MIXES`).
        n: scenarios per mix (>= 1).
        seed: base seed.
        budget: sim-time budget per scenario (s).
        first: index of the first scenario.
        **kwargs: passed to :func:`make_scenario` (``distance``, ``size``, ``resolution``, ``standable``).

    Raises:
        KeyError: unknown mix.
        ValueError: ``n < 1`` or invalid scenario arguments.
    """
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    unknown = [m for m in mixes if m not in TERRAIN_MIXES]
    if unknown:
        raise KeyError(f"unknown terrain mixes {unknown}; known: {sorted(TERRAIN_MIXES)}")
    return [make_scenario(m, i, seed=seed, budget=budget, **kwargs)
            for m in mixes for i in range(int(first), int(first) + int(n))]


def custom_scenario(world_kind: str, start: Sequence[float], goal: Sequence[float], seed: int = 0,
                    size: float = 10.0, budget: float = 30.0, name: Optional[str] = None,
                    **params: Any) -> Scenario:
    """A hand-made scenario (e.g. a flat world with a short goal, for smoke tests).

    Raises:
        ValueError: invalid poses or budget.
    """
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget must be positive, got {budget}")
    s = tuple(float(v) for v in start)
    g = tuple(float(v) for v in goal)
    if len(s) != 3 or len(g) != 3:
        raise ValueError("start and goal must be (x, y, yaw)")
    return Scenario(id=name or f"{world_kind}-custom", mix=world_kind, index=0, kind=world_kind, seed=int(seed),
                    size=(float(size), float(size)), resolution=0.1, params=dict(params), start=s, goal=g,
                    budget=float(budget))


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi
