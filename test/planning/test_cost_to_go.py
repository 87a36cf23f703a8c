"""Tests of the geodesic cost-to-go field and its use as MPPI's goal distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from morobot.planning.cost import NavigationCost, NavigationCostConfig
from morobot.planning.cost_to_go import CostToGo, CostToGoConfig, GeodesicField, _outside_distance, geodesic_field
from morobot.planning.interface import HeightMap, NavState, Rollout
from morobot.planning.kinematic import KinematicModel
from morobot.planning.mppi import MPPI, MPPIConfig

RES = 0.1
# Unit cost per metre, no inflation: the field is a pure shortest-path length.
PLAIN = CostToGoConfig(risk_cost=0.0, inflation_cost=0.0)


def _grid(n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Free risk grid ``[n, n]`` with origin (0, 0) and its cell-centre coordinates."""
    xs = RES * np.arange(n)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    return np.zeros((n, n)), gx, gy


def _descend(field: GeodesicField, start: tuple[int, int], steps: int = 500) -> tuple[int, int]:
    """Follow the steepest 8-neighbour descent of the cell values until it stops."""
    values = field.values
    i, j = start
    for _ in range(steps):
        best = (values[i, j], i, j)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                a, b = i + di, j + dj
                if 0 <= a < values.shape[0] and 0 <= b < values.shape[1] and values[a, b] < best[0]:
                    best = (values[a, b], a, b)
        if (best[1], best[2]) == (i, j):
            break
        i, j = best[1], best[2]
    return i, j


def _heights(rects, origin=(-2.0, -4.0), shape=(80, 80)) -> HeightMap:
    """Flat map with 1 m tall boxes ``(x0, x1, y0, y1)``."""
    xs = origin[0] + RES * np.arange(shape[0])
    ys = origin[1] + RES * np.arange(shape[1])
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    h = np.zeros(shape)
    for x0, x1, y0, y1 in rects:
        h[(gx >= x0) & (gx <= x1) & (gy >= y0) & (gy <= y1)] = 1.0
    return HeightMap(torch.tensor(h, dtype=torch.float32), origin, RES)


# A U-shaped pocket opening towards the robot at the origin, the goal behind it: with a Euclidean
# goal distance every rollout that enters the pocket looks better than the way round.
U_TRAP = [(2.0, 2.2, -1.4, 1.4), (0.6, 2.2, 1.2, 1.4), (0.6, 2.2, -1.4, -1.2)]
# A long wall with its gap 3 m off to the side of the straight line.
SIDE_GAP = [(2.0, 2.2, -4.0, 2.2), (2.0, 2.2, 3.8, 4.0)]


# ------------------------------------------------------------------------------- field values
def test_free_space_field_is_the_straight_line_distance():
    risk, gx, gy = _grid()
    goal = (2.5, 3.1)
    field = geodesic_field(risk, (0.0, 0.0), RES, goal, PLAIN)
    euclid = np.hypot(gx - goal[0], gy - goal[1])
    assert field.goal_inside and field.reachable.all()
    # Exact along the grid's axes and diagonals, within the 16-neighbour metrication bound elsewhere.
    axis = (np.abs(gx - goal[0]) < 1e-9) | (np.abs(gy - goal[1]) < 1e-9)
    diagonal = np.abs(np.abs(gx - goal[0]) - np.abs(gy - goal[1])) < 1e-9
    np.testing.assert_allclose(field.values[axis | diagonal], euclid[axis | diagonal], atol=1e-9)
    assert np.all(field.values >= euclid - 1e-9)
    assert np.all(field.values <= euclid * 1.0275 + 1e-9)
    # Sampled between cells: exact at and near the goal (no rounded cone tip), close elsewhere.
    xy = torch.tensor([[2.5, 3.1], [2.55, 3.1], [2.52, 3.13], [0.3, 0.4], [5.0, 1.7]], dtype=torch.float64)
    d = field.distance(xy).numpy()
    e = np.hypot(xy[:, 0].numpy() - goal[0], xy[:, 1].numpy() - goal[1])
    np.testing.assert_allclose(d[:3], e[:3], atol=1e-9)
    assert np.all(d >= e - 1e-9) and np.all(d <= e * 1.03)


def test_eight_connectivity_is_available_and_coarser():
    risk, gx, gy = _grid()
    field = geodesic_field(risk, (0.0, 0.0), RES, (0.0, 0.0), CostToGoConfig(connectivity=8, **_plain()))
    ratio = field.values[1:, 1:] / np.hypot(gx, gy)[1:, 1:]
    assert ratio.max() == pytest.approx(1.0824, abs=0.01)
    assert ratio.min() == pytest.approx(1.0, abs=1e-9)


def _plain() -> dict:
    return {"risk_cost": 0.0, "inflation_cost": 0.0}


def test_a_wall_forces_the_detour_length():
    risk, gx, gy = _grid()
    wall = (np.abs(gx - 3.0) < 1e-9) & (gy <= 4.0 + 1e-9)  # x = 3, from the border up to y = 4
    risk[wall] = 1.0
    goal, probe = (5.0, 2.0), (1.0, 2.0)
    field = geodesic_field(risk, (0.0, 0.0), RES, goal, PLAIN)
    # Round the wall's end: through the first free cell (3.0, 4.1).
    detour = 2.0 * math.hypot(2.0, 2.1)
    value = float(field.distance(torch.tensor([probe], dtype=torch.float64))[0])
    assert value == pytest.approx(detour, rel=0.03)
    assert value > math.dist(probe, goal) + 1.5
    assert not field.traversable[wall].any() and not field.reachable[wall].any()
    # On the goal's side of the wall the field is still the straight-line distance.
    near = float(field.distance(torch.tensor([[4.0, 1.0]], dtype=torch.float64))[0])
    assert near == pytest.approx(math.hypot(1.0, 1.0), rel=1e-6)


def test_untraversable_cells_are_large_and_lead_out():
    risk, gx, gy = _grid()
    block = (np.abs(gx - 3.0) <= 0.5) & (np.abs(gy - 3.0) <= 0.5)
    risk[block] = 0.9  # above the lethal risk 0.5
    risk[(np.abs(gx - 1.0) < 0.05) & (np.abs(gy - 1.0) < 0.05)] = 0.5  # at the threshold: traversable
    cfg = CostToGoConfig(risk_cost=0.0, inflation_cost=0.0, lethal_cost=10.0)
    field = geodesic_field(risk, (0.0, 0.0), RES, (5.5, 3.0), cfg)
    assert not field.traversable[block].any() and field.traversable[~block].all()
    assert np.all(np.isfinite(field.values))
    # Centre of the block: a nearest reachable cell (0.6 m away) plus 10 per metre to get there.
    nearest = [field.values[i, j] for i, j in ((24, 30), (36, 30), (30, 24), (30, 36))]
    assert min(nearest) + 6.0 - 1e-9 <= field.values[30, 30] <= max(nearest) + 6.0 + 1e-9
    # Descending from inside the obstacle leaves it and ends at the goal.
    i, j = _descend(field, (30, 30))
    assert (i, j) == (55, 30)


def test_enclosed_pocket_is_unreachable_but_finite():
    risk, gx, gy = _grid()
    ring = np.abs(np.hypot(gx - 2.0, gy - 2.0) - 1.0) < 0.12
    risk[ring] = 1.0
    field = geodesic_field(risk, (0.0, 0.0), RES, (5.0, 5.0), PLAIN)
    inside = np.hypot(gx - 2.0, gy - 2.0) < 0.8
    assert field.traversable[inside].all() and not field.reachable[inside].any()
    assert np.all(np.isfinite(field.values))
    outside = np.hypot(gx - 2.0, gy - 2.0) > 1.2
    assert field.values[inside].min() > field.values[outside & (np.hypot(gx - 2, gy - 2) < 1.4)].max()


def test_goal_on_an_obstacle_is_approached_from_the_nearest_free_cells():
    risk, gx, gy = _grid()
    block = (np.abs(gx - 3.0) <= 0.45) & (np.abs(gy - 3.0) <= 0.45)
    risk[block] = 1.0
    field = geodesic_field(risk, (0.0, 0.0), RES, (3.0, 3.0), PLAIN)
    assert field.goal_inside and field.reachable[~block].all()
    free_min = field.values[~block].min()
    assert free_min == pytest.approx(0.5, abs=1e-9)  # the cells right next to the block
    assert np.all(field.values[block] > free_min)


def test_goal_outside_the_map_leads_to_the_best_exit():
    risk, gx, gy = _grid()
    # A wall across the map at x = 3 with a gap at the top (y >= 4.5).
    wall = (np.abs(gx - 3.0) < 0.15) & (gy < 4.5)
    risk[wall] = 1.0
    start = (15, 10)  # (1.5, 1.0)
    # Goal beyond the top-right corner: through the gap.
    up = geodesic_field(risk, (0.0, 0.0), RES, (10.0, 5.0), PLAIN)
    assert not up.goal_inside
    i, j = _descend(up, start)
    assert gx[i, j] > 3.0 and gy[i, j] >= 4.5 and (i == 59 or j == 59)
    # Goal far below the map: out of the bottom edge, left of the wall.
    down = geodesic_field(risk, (0.0, 0.0), RES, (10.0, -3.0), PLAIN)
    i, j = _descend(down, start)
    assert j == 0 and gx[i, j] < 3.0
    # A border cell that sees the goal is seeded with its straight-line distance.
    assert down.values[45, 0] == pytest.approx(math.hypot(10.0 - 4.5, 3.0), rel=1e-9)


def test_outside_distance_goes_round_the_map():
    rect = (0.0, 5.9, 0.0, 5.9)
    points = np.array([[5.9, 3.0], [0.0, 5.9], [0.0, 3.0], [3.0, 0.0]])
    d = _outside_distance(points, rect, (10.0, 5.0))
    expected = [
        math.hypot(4.1, 2.0),  # on the right edge: straight
        5.9 + math.hypot(4.1, 0.9),  # top-left corner: along the top edge, then straight
        2.9 + 5.9 + math.hypot(4.1, 0.9),  # left edge: up, along the top, then straight
        2.9 + math.hypot(4.1, 5.0),  # bottom edge: to the bottom-right corner, then straight
    ]
    np.testing.assert_allclose(d, expected, rtol=1e-12)


def test_goal_cut_off_inside_the_map_is_reached_round_the_outside():
    risk, gx, gy = _grid()
    risk[np.abs(gx - 3.0) < 0.15] = 1.0  # a wall across the whole map
    cfg = CostToGoConfig(risk_cost=0.0, inflation_cost=0.0, exit_penalty=2.0)
    field = geodesic_field(risk, (0.0, 0.0), RES, (5.0, 3.0), cfg)
    left = gx < 2.8
    assert field.reachable[left].all() and np.all(np.isfinite(field.values))
    # Cheapest: to the top or bottom border, round the wall's end outside the map, back in.
    probe = field.values[10, 30]  # (1.0, 3.0)
    assert probe > 2.0 + 3.0 + 4.0  # penalty + to the border + at least back in and across
    i, j = _descend(field, (10, 30))
    assert j in (0, 59)


def test_downsampled_field_is_close_and_keeps_passages_open():
    risk, gx, gy = _grid()
    wall = (np.abs(gx - 3.0) < 0.15) & (np.abs(gy - 3.0) > 0.1)  # a gap one cell wide at y = 3
    risk[wall] = 1.0
    fine = geodesic_field(risk, (0.0, 0.0), RES, (5.0, 3.0), PLAIN)
    coarse = geodesic_field(risk, (0.0, 0.0), RES, (5.0, 3.0), CostToGoConfig(downsample=2, **_plain()))
    xy = torch.tensor([[1.0, 3.0], [1.0, 1.0], [4.0, 5.0]], dtype=torch.float64)
    a, b = fine.distance(xy).numpy(), coarse.distance(xy).numpy()
    np.testing.assert_allclose(b, a, rtol=0.05, atol=0.2)
    assert a[1] < 6.0 and b[1] < 6.0  # through the gap, not round the outside


def test_field_from_a_height_map_uses_the_kinematic_risk():
    model = KinematicModel()
    hmap = _heights(U_TRAP)
    ctg = CostToGo(model)
    field = ctg.build(hmap, (4.0, 0.0, 0.0))
    risk = model.risk_map(hmap).numpy()
    np.testing.assert_array_equal(field.traversable, risk <= 0.5)
    # Inside the pocket the cost-to-go is the way out and round, far above the straight line.
    inside = float(field.distance(torch.tensor([[1.2, 0.0]]))[0])
    assert inside > 2.8 + 2.5
    # Same map and goal: the cached field; a new goal or map: a new one.
    assert ctg.build(hmap, (4.0, 0.0, 1.0)) is field
    assert ctg.build(hmap, (4.0, 0.5, 0.0)) is not field
    assert ctg.build(_heights(U_TRAP), (4.0, 0.0, 0.0)) is not field
    # Solved on 2 x 2 blocks: the same detour, somewhat dearer (blocks on the obstacle boundary
    # carry the inflation cost of their free cells).
    coarse = CostToGo(model, CostToGoConfig(downsample=2)).build(hmap, (4.0, 0.0, 0.0))
    assert coarse.values.shape == (40, 40) and coarse.resolution == pytest.approx(0.2)
    assert float(coarse.distance(torch.tensor([[1.2, 0.0]]))[0]) == pytest.approx(inside, rel=0.1)


def test_bad_input_raises():
    with pytest.raises(ValueError):
        CostToGoConfig(lethal_risk=1.5)
    with pytest.raises(ValueError):
        CostToGoConfig(connectivity=4)
    with pytest.raises(ValueError):
        CostToGoConfig(downsample=0)
    with pytest.raises(ValueError):
        CostToGoConfig(lethal_cost=0.5)
    with pytest.raises(ValueError):
        CostToGoConfig(risk_cost=-1.0)
    with pytest.raises(ValueError):
        geodesic_field(np.zeros(5), (0.0, 0.0), RES, (1.0, 1.0))
    with pytest.raises(ValueError):
        geodesic_field(np.zeros((5, 5)), (0.0, 0.0), 0.0, (1.0, 1.0))
    with pytest.raises(ValueError):
        geodesic_field(np.zeros((5, 5)), (0.0, 0.0), RES, (np.nan, 1.0))
    with pytest.raises(ValueError):
        CostToGo(object())  # type: ignore[arg-type]
    field = geodesic_field(np.zeros((5, 5)), (0.0, 0.0), RES, (1.0, 1.0))
    with pytest.raises(ValueError):
        field.distance(torch.zeros(3, 3))


# ------------------------------------------------------------------------------ cost and MPPI
def _rollout(points) -> tuple[Rollout, torch.Tensor]:
    poses = torch.tensor([[[x, y, 0.0]] for x, y in points], dtype=torch.float32)
    return Rollout(poses=poses, risk=torch.zeros(len(points), 1)), torch.zeros(len(points), 1, 3)


def test_cost_uses_the_field_only_when_prepared_for_this_goal():
    hmap = _heights(U_TRAP)
    goal = (4.0, 0.0, 0.0)
    # Both end 2.8 m from the goal: inside the pocket, and outside it to the side.
    rollout, cmds = _rollout([(1.2, 0.0), (4.0, 2.8)])
    # Only the goal distance is under test: the alignment term would also see the field.
    cfg = NavigationCostConfig(alignment_weight=0.0)
    plain = NavigationCost(cfg)
    geo = NavigationCost(cfg, cost_to_go=CostToGo(KinematicModel()))
    c_plain = plain(rollout, cmds, goal)
    assert float(c_plain[0]) == pytest.approx(float(c_plain[1]), abs=1e-3)
    assert float(geo(rollout, cmds, goal)[0]) == pytest.approx(float(c_plain[0]), abs=1e-4)  # not prepared
    geo.prepare(hmap, goal)
    c_geo = geo(rollout, cmds, goal)
    assert float(c_geo[0] - c_geo[1]) > (cfg.goal_weight + cfg.progress_weight) * 2.0
    # Another goal than the prepared one, or no map: Euclidean again.
    assert float(geo(rollout, cmds, (4.0, 0.5, 0.0))[0]) == pytest.approx(
        float(plain(rollout, cmds, (4.0, 0.5, 0.0))[0]), abs=1e-4)
    geo.prepare(None, goal)
    assert geo.field is None
    np.testing.assert_allclose(geo(rollout, cmds, goal).numpy(), c_plain.numpy(), atol=1e-4)


class CountingCost(NavigationCost):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared = 0
        self.calls = 0

    def prepare(self, hmap, goal):
        self.prepared += 1
        super().prepare(hmap, goal)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return super().__call__(*args, **kwargs)


def test_mppi_prepares_the_cost_once_per_cycle():
    cost = CountingCost(cost_to_go=CostToGo(KinematicModel()))
    planner = MPPI(KinematicModel(), cost, MPPIConfig(num_samples=64, horizon=5, iterations=3, seed=0))
    hmap = _heights(U_TRAP)
    for n in (1, 2):
        planner.plan(NavState(pose=np.zeros(3)), hmap, (4.0, 0.0, 0.0))
        assert cost.prepared == n and cost.calls == 4 * n  # 3 iterations + the re-roll of the mean
    assert cost.field is not None and cost.field.matches((4.0, 0.0))


def _closed_loop(planner: MPPI, model: KinematicModel, hmap: HeightMap, goal, steps: int):
    pose = torch.zeros(1, 3, dtype=torch.float64)
    peak = 0.0
    for _ in range(steps):
        result = planner.plan(NavState(pose=pose[0].numpy()), hmap, goal)
        pose, risk = model.step_with_risk(pose, torch.tensor(result.commands[:1]), hmap)
        peak = max(peak, float(risk[0]))
        if math.hypot(float(pose[0, 0]) - goal[0], float(pose[0, 1]) - goal[1]) < 0.3:
            break
    return pose[0].numpy(), peak


@pytest.mark.parametrize("rects, goal", [(U_TRAP, (4.0, 0.0, 0.0)), (SIDE_GAP, (4.0, -1.5, 0.0))],
                         ids=["u_trap", "side_gap"])
def test_mppi_escapes_local_minima_with_the_cost_to_go(rects, goal):
    # Checked over seeds 0-7 (1024 samples): Euclidean never passes x = 0.9 in 40 steps; with the
    # cost-to-go every seed reaches the goal in 19-32 steps with a peak risk <= 0.32.
    hmap = _heights(rects)
    model = KinematicModel()
    euclid = MPPI(model, NavigationCost(), MPPIConfig(num_samples=1024, seed=0))
    pose, _ = _closed_loop(euclid, model, hmap, goal, steps=40)
    assert pose[0] < 1.0, "the Euclidean cost was expected to get stuck in front of the wall"
    geo = MPPI(model, NavigationCost(cost_to_go=CostToGo(model)), MPPIConfig(num_samples=1024, seed=0))
    pose, peak = _closed_loop(geo, model, hmap, goal, steps=40)
    assert math.hypot(pose[0] - goal[0], pose[1] - goal[1]) < 0.3
    assert peak < 0.5, "the footprint touched a wall"
