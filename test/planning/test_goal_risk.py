"""Tests of the goal's own risk: a goal on rough ground is reached, not hovered short of.

The cost (its penalty), the cost-to-go (its traversable cells) and the safety stop accept, within
``goal_risk_radius`` of the goal, steps as risky as the goal's own spot plus ``risk_margin``, never above
``goal_risk_cap``; everywhere else the rules are unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from morobot.planning.cost import NavigationCost, NavigationCostConfig, risk_at, should_stop
from morobot.planning.cost_to_go import CostToGo, CostToGoConfig, geodesic_field
from morobot.planning.interface import HeightMap, NavState, Rollout
from morobot.planning.kinematic import KinematicModel
from morobot.planning.mppi import MPPI, MPPIConfig

RES = 0.1
GOAL = (3.0, 3.0, 0.0)


class FixedRisk:
    """A risk source that returns one fixed risk map, whatever the heights."""

    def __init__(self, risk: np.ndarray) -> None:
        self.risk = torch.tensor(risk, dtype=torch.float32)

    def risk_map(self, hmap: HeightMap) -> torch.Tensor:
        return self.risk


def _risk_grid(goal_risk: float, patch: float = 0.4, n: int = 60) -> tuple[np.ndarray, HeightMap]:
    """Risk 0.1 everywhere and ``goal_risk`` within ``patch`` of GOAL; a flat map of the same grid."""
    xs = RES * np.arange(n)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    risk = np.full((n, n), 0.1)
    risk[np.hypot(gx - GOAL[0], gy - GOAL[1]) <= patch] = goal_risk
    return risk, HeightMap(torch.zeros(n, n), (0.0, 0.0), RES)


def _cost(goal_risk: float, **overrides) -> NavigationCost:
    risk, hmap = _risk_grid(goal_risk)
    cost = NavigationCost(NavigationCostConfig(alignment_weight=0.0, **overrides),
                          cost_to_go=CostToGo(FixedRisk(risk), CostToGoConfig(lethal_risk=0.5)))
    cost.prepare(hmap, GOAL)
    return cost


def _rollout(points, risk) -> tuple[Rollout, torch.Tensor]:
    """One rollout through ``points`` with per-step ``risk``."""
    poses = torch.tensor([[[x, y, 0.0] for x, y in points]], dtype=torch.float32)
    return Rollout(poses=poses, risk=torch.tensor([risk], dtype=torch.float32)), torch.zeros(1, len(points), 3)


def test_goal_level_is_the_goal_spots_risk_plus_margin_within_the_cap():
    cfg = NavigationCostConfig()
    assert _cost(0.7).goal_level == pytest.approx(0.7 + cfg.risk_margin)
    assert _cost(0.93).goal_level == pytest.approx(cfg.goal_risk_cap)  # capped
    assert _cost(0.2).goal_level is None  # below the penalty threshold: nothing to allow
    assert _cost(0.99).goal_level is None  # above the cap (e.g. a box): no allowance, the goal stays out of reach
    assert _cost(0.7, goal_risk_radius=0.0).goal_level is None  # off
    no_map = _cost(0.7)
    no_map.prepare(None, GOAL)
    assert no_map.goal_level is None and no_map.allowed_risk(torch.zeros(1, 3), GOAL) is None
    off_map = NavigationCost(cost_to_go=CostToGo(FixedRisk(_risk_grid(0.7)[0])))
    off_map.prepare(_risk_grid(0.7)[1], (30.0, 30.0, 0.0))  # a goal off the map: its risk is unknown
    assert off_map.goal_level is None


def test_penalty_is_lifted_only_near_the_goal_and_only_up_to_its_level():
    cost = _cost(0.7)
    cfg = cost.config
    towards = [(2.0, 3.0), (2.5, 3.0), (2.8, 3.0), (3.0, 3.0)]
    near = cost(*_rollout(towards, [0.1, 0.1, 0.7, 0.7]), GOAL)
    assert float(near[0]) < cfg.collision_penalty
    allowed = cost.allowed_risk(_rollout(towards, [0.0] * 4)[0].poses, GOAL)
    np.testing.assert_allclose(allowed.numpy(), [[0.0, 0.75, 0.75, 0.75]])
    # The same risk 1.5 m from the goal pays the penalty, and so does a step riskier than the goal's level.
    assert float(cost(*_rollout([(1.5, 3.0)] * 4, [0.1, 0.1, 0.7, 0.7]), GOAL)[0]) > cfg.collision_penalty
    assert float(cost(*_rollout(towards, [0.1, 0.1, 0.8, 0.7]), GOAL)[0]) > cfg.collision_penalty
    # Without the allowance (radius 0), or for another goal than the prepared one, the penalty is paid.
    assert float(_cost(0.7, goal_risk_radius=0.0)(*_rollout(towards, [0.1, 0.1, 0.7, 0.7]), GOAL)[0]) \
        > cfg.collision_penalty
    other = (3.0, 2.0, 0.0)
    assert cost.allowed_risk(torch.zeros(1, 3), other) is None
    # A goal passed in float32 is the same goal.
    assert cost.allowed_risk(torch.tensor([[3.0, 3.0, 0.0]]), torch.tensor(GOAL, dtype=torch.float32)) is not None


def test_cost_to_go_leads_onto_the_goal_with_the_allowance():
    risk, _ = _risk_grid(0.7)
    cfg = CostToGoConfig(lethal_risk=0.5, risk_cost=0.0, inflation_cost=0.0)
    before = geodesic_field(risk, (0.0, 0.0), RES, GOAL, cfg)
    after = geodesic_field(risk, (0.0, 0.0), RES, GOAL, cfg, allowance=(0.6, 0.75))
    gi = gj = 30
    assert not before.traversable[gi, gj] and after.traversable[gi, gj]
    # Before: the field is lowest on the patch's rim and climbs towards the goal; after: lowest at the goal.
    assert before.values[gi, gj] > before.values[gi - 5, gj]
    assert after.values[gi, gj] == pytest.approx(0.0, abs=1e-6)
    assert after.values[gi, gj] < after.values[gi - 5, gj]
    # A level below the patch's risk changes nothing.
    np.testing.assert_array_equal(geodesic_field(risk, (0.0, 0.0), RES, GOAL, cfg, allowance=(0.6, 0.6)).traversable,
                                  before.traversable)
    with pytest.raises(ValueError):
        geodesic_field(risk, (0.0, 0.0), RES, GOAL, cfg, allowance=(math.nan, 0.7))


def test_risk_at_reads_the_goal_cell():
    risk, hmap = _risk_grid(0.7)
    r = torch.tensor(risk)
    assert risk_at(r, hmap, GOAL) == pytest.approx(0.7)
    assert risk_at(r, hmap, (0.5, 0.5)) == pytest.approx(0.1)
    assert risk_at(r, hmap, (-1.0, 0.5)) is None and risk_at(r, hmap, (0.5, 6.5)) is None  # off the map
    r[5, 5] = math.nan
    assert risk_at(r, hmap, (0.5, 0.5)) is None
    with pytest.raises(ValueError):
        risk_at(r, hmap, (math.inf, 0.0))


def test_should_stop_ignores_steps_within_the_allowance():
    plan = [0.2, 0.7, 0.7]
    assert should_stop(plan, [0.1, 0.1, 0.1], 0.5, 0.0, 0.5, 0.05) == (True, 0.7)
    assert should_stop(plan, [0.1, 0.1, 0.1], 0.5, 0.0, 0.5, 0.05, [0.0, 0.75, 0.75]) == (False, 0.2)
    assert should_stop(plan, [0.1, 0.1, 0.1], 0.5, 0.0, 0.5, 0.05, [0.0, 0.75, 0.0]) == (True, 0.7)
    assert should_stop([0.2, 0.8, 0.7], [0.1] * 3, 0.5, 0.0, 0.5, 0.05, [0.0, 0.75, 0.75]) == (True, 0.8)
    with pytest.raises(ValueError):
        should_stop(plan, None, 0.5, 0.0, 0.5, 0.05, [0.0, 0.75])


def _rough_goal_map(n: int = 80) -> HeightMap:
    """Flat ground with a checkerboard of 0.27 m steps within 0.1 m of GOAL (step risk about 0.7)."""
    xs = RES * np.arange(n)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    h = np.zeros((n, n))
    patch = np.hypot(gx - GOAL[0], gy - GOAL[1]) <= 0.1 + 1e-9
    checker = (np.add.outer(np.arange(n), np.arange(n)) % 2).astype(bool)
    h[patch & checker] = 0.27
    return HeightMap(torch.tensor(h, dtype=torch.float32), (0.0, 0.0), RES)


@pytest.mark.parametrize("radius", [0.6, 0.0])
def test_planner_reaches_a_goal_on_rough_ground_only_with_the_allowance(radius):
    hmap = _rough_goal_map()
    model = KinematicModel(dt=0.5)
    at_goal = float(model.sample_risk(torch.tensor([GOAL[:2]]), hmap)[0])
    assert 0.55 < at_goal < 0.9  # rough, not an obstacle
    cost = NavigationCost(NavigationCostConfig(goal_risk_radius=radius), cost_to_go=CostToGo(model))
    planner = MPPI(model, cost, MPPIConfig(num_samples=512, horizon=10, seed=0))
    pose = torch.tensor([[1.5, 3.0, 0.0]], dtype=torch.float64)
    closest, stops = math.inf, 0
    for _ in range(40):
        plan = planner.plan(NavState(pose=pose[0].numpy()), hmap, GOAL)
        stop, _ = should_stop(plan.risk, plan.standstill_risk, 0.5, 1.0, 0.5, 0.05, plan.allowed_risk)
        if stop:
            stops += 1
            planner.reset(reseed=False)
            continue
        pose = model.step(pose, torch.tensor(plan.commands[:1]))
        closest = min(closest, math.hypot(float(pose[0, 0]) - GOAL[0], float(pose[0, 1]) - GOAL[1]))
        if closest < 0.3:
            break
    if radius > 0:
        assert closest < 0.3 and stops == 0
    else:
        assert closest > 0.3  # hovers at the edge of the risky spot
