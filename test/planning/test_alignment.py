"""The alignment term of the navigation cost: walk the way on facing forwards."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from morobot.planning.cost import NavigationCost, NavigationCostConfig
from morobot.planning.cost_to_go import CostToGoConfig, geodesic_field
from morobot.planning.interface import NavState, Rollout
from morobot.planning.kinematic import KinematicModel
from morobot.planning.mppi import MPPI, MPPIConfig

RES = 0.1


def _rollout(poses) -> tuple[Rollout, torch.Tensor]:
    p = torch.tensor(poses, dtype=torch.float32)
    k, t = p.shape[:2]
    return Rollout(poses=p, risk=torch.zeros(k, t)), torch.zeros(k, t, 3)


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def test_travel_direction_is_the_bearing_without_a_field():
    cost = NavigationCost()
    xy = torch.tensor([[0.0, 0.0], [3.0, 4.0], [-2.0, 1.0]])
    psi = cost.travel_direction(xy, (1.0, 1.0))
    expected = [math.atan2(1.0, 1.0), math.atan2(-3.0, -2.0), math.atan2(0.0, 3.0)]
    np.testing.assert_allclose(psi.numpy(), expected, atol=1e-6)


def test_travel_direction_follows_the_cost_to_go_round_a_wall():
    # A wall at x = 3 from the border up to y = 4 between the probe and the goal: the way on leads
    # to the wall's end at (3, 4.1), not straight at the goal.
    n = 60
    xs = RES * np.arange(n)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    risk = np.zeros((n, n))
    risk[(np.abs(gx - 3.0) < 1e-9) & (gy <= 4.0 + 1e-9)] = 1.0
    goal = (5.0, 2.0)
    cost = NavigationCost()
    cost.field = geodesic_field(risk, (0.0, 0.0), RES, goal, CostToGoConfig(risk_cost=0.0, inflation_cost=0.0))
    probe = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    psi = float(cost.travel_direction(probe, goal)[0])
    towards_gap = math.atan2(4.1 - 2.0, 3.0 - 1.0)
    assert abs(_wrap(psi - towards_gap)) < 0.15
    assert abs(_wrap(psi - 0.0)) > 0.6  # the straight bearing to the goal is 0
    # Past the wall, on the goal's side, it is the bearing again.
    past = float(cost.travel_direction(torch.tensor([[4.0, 1.0]], dtype=torch.float64), goal)[0])
    assert past == pytest.approx(math.atan2(1.0, 1.0), abs=0.05)
    # A field for another goal is not used.
    other = float(cost.travel_direction(probe, (5.0, 3.0))[0])
    assert other == pytest.approx(math.atan2(1.0, 4.0), abs=1e-6)


def test_alignment_costs_the_mean_heading_error_far_from_the_goal():
    w = 20.0
    on = NavigationCost(NavigationCostConfig(alignment_weight=w))
    off = NavigationCost(NavigationCostConfig(alignment_weight=0.0))
    goal = (10.0, 0.0, 0.0)
    # The same positions, facing the goal, facing away, and sideways for the second half.
    xs = [1.0, 2.0, 3.0, 4.0]
    poses = [[[x, 0.0, yaw] for x in xs] for yaw in (0.0, math.pi)]
    poses.append([[x, 0.0, 0.0 if i < 2 else math.pi / 2] for i, x in enumerate(xs)])
    rollout, cmds = _rollout(poses)
    extra = (on(rollout, cmds, goal) - off(rollout, cmds, goal)).numpy()
    # The terminal heading weight (far) is the same in both costs; only alignment differs.
    np.testing.assert_allclose(extra, [0.0, w * math.pi, w * (math.pi / 2) / 2], rtol=1e-5, atol=1e-4)


def test_alignment_fades_out_near_the_goal():
    cfg = NavigationCostConfig(alignment_weight=20.0, alignment_radius=2.0)
    on, off = NavigationCost(cfg), NavigationCost(NavigationCostConfig(alignment_weight=0.0))
    goal = (0.0, 0.0, 0.0)
    # Facing away from the goal at 0.9 m (inside half the radius), 1.5 m (half weight), 3 m (full).
    rollout, cmds = _rollout([[[-0.9, 0.0, math.pi]], [[-1.5, 0.0, math.pi]], [[-3.0, 0.0, math.pi]]])
    extra = (on(rollout, cmds, goal) - off(rollout, cmds, goal)).numpy()
    np.testing.assert_allclose(extra, [0.0, 20.0 * math.pi * 0.5, 20.0 * math.pi], rtol=1e-5, atol=1e-4)


def test_alignment_config_is_validated():
    with pytest.raises(ValueError):
        NavigationCostConfig(alignment_weight=-1.0)
    with pytest.raises(ValueError):
        NavigationCostConfig(alignment_radius=0.0)


def _drive(weight: float, seed: int, start_yaw: float = math.pi, goal=(6.0, 0.0, 0.0), steps: int = 200):
    """Closed loop on a perfect-tracking plant at 10 Hz; returns (time to 0.3 m, backward share)."""
    cfg = MPPIConfig(num_samples=256, horizon=10, seed=seed, shift_steps=0.2)
    planner = MPPI(KinematicModel(), NavigationCost(NavigationCostConfig(alignment_weight=weight)), cfg)
    plant = KinematicModel(dt=0.1)
    pose = torch.tensor([[0.0, 0.0, start_yaw]], dtype=torch.float64)
    vx = []
    for k in range(steps):
        if math.hypot(goal[0] - float(pose[0, 0]), goal[1] - float(pose[0, 1])) < 0.3:
            return 0.1 * k, float(np.mean(np.array(vx) < 0.0))
        u = torch.tensor(planner.plan(NavState(pose=pose[0].numpy()), None, goal).commands[:1])
        vx.append(float(u[0, 0]))
        pose = plant.step(pose, u)
    return math.inf, float(np.mean(np.array(vx) < 0.0))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_robot_facing_away_turns_round_instead_of_walking_backwards(seed):
    # Without the term, walking backwards at the 0.5 m/s limit beats turning round within the 5 s
    # horizon, and every cycle re-decides the same: 6 m backwards in about 11 s (checked, seeds 0-1).
    t_off, back_off = _drive(0.0, seed)
    t_on, back_on = _drive(20.0, seed)
    assert back_off > 0.5
    assert back_on < 0.35
    assert t_on < t_off - 2.0
