"""The arrival term of the navigation cost: near the goal, plans that arrive sooner win."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from morobot.planning.cost import NavigationCost, NavigationCostConfig
from morobot.planning.interface import NavState, Rollout
from morobot.planning.kinematic import KinematicModel
from morobot.planning.mppi import MPPI, MPPIConfig


def _rollout(poses) -> tuple[Rollout, torch.Tensor]:
    p = torch.tensor(poses, dtype=torch.float32)
    k, t = p.shape[:2]
    return Rollout(poses=p, risk=torch.zeros(k, t)), torch.zeros(k, t, 3)


def test_arrival_costs_the_share_of_steps_outside_the_goal_region():
    w, goal = 20.0, (0.0, 0.0, 0.0)
    on = NavigationCost(NavigationCostConfig(arrival_weight=w, arrival_radius=0.3))
    off = NavigationCost(NavigationCostConfig(arrival_weight=0.0))
    xs = [[0.5, 0.2, 0.1, 0.0], [0.5, 0.4, 0.35, 0.2], [3.0, 2.9, 2.8, 2.7], [0.1, 0.0, 0.0, 0.0]]
    rollout, cmds = _rollout([[[x, 0.0, 0.0] for x in row] for row in xs])
    extra = (on(rollout, cmds, goal) - off(rollout, cmds, goal)).numpy()
    np.testing.assert_allclose(extra, [w / 4, 3 * w / 4, w, 0.0], rtol=1e-5, atol=1e-4)
    # far from the goal every plan pays the same: the term does not change which plan wins there
    assert extra[2] == pytest.approx(w)


def test_arrival_radius_is_validated():
    with pytest.raises(ValueError):
        NavigationCostConfig(arrival_radius=0.0)
    with pytest.raises(ValueError):
        NavigationCostConfig(arrival_weight=-1.0)


class _Rise(KinematicModel):
    """Risk rising from 0.45 to 0.8 over the last 0.5 m to the goal at (0.5, 0): a goal on a rubble rise."""

    def rollout(self, state, commands, hmap):
        r = super().rollout(state, commands, None)
        d = torch.hypot(r.poses[..., 0] - 0.5, r.poses[..., 1])
        return Rollout(poses=r.poses, risk=(0.45 + 0.35 * (1.0 - d / 0.5).clamp(0.0, 1.0)).to(r.poses.dtype))


def _arrive(weight: float, seed: int, steps: int = 100) -> tuple[float, float]:
    """Closed loop at 10 Hz on a plant that, like the walking robot, barely moves under slow commands (none
    below 0.05 m/s, full speed from 0.3 m/s); the goal 0.55 m ahead, accepted up to risk 0.95 (as a goal
    allowance would). Returns (time to within 0.3 m, mean commanded speed)."""
    goal = (0.5, 0.0, 0.0)
    cost = NavigationCost(NavigationCostConfig(arrival_weight=weight, risk_penalty_threshold=0.95,
                                               risk_relative=False))
    planner = MPPI(_Rise(), cost, MPPIConfig(num_samples=256, horizon=10, seed=seed, shift_steps=0.2))
    plant = KinematicModel(dt=0.1)
    pose = torch.tensor([[-0.05, 0.0, 0.0]], dtype=torch.float64)
    speeds = []
    for k in range(steps):
        if math.hypot(goal[0] - float(pose[0, 0]), float(pose[0, 1])) < 0.3:
            return 0.1 * k, float(np.mean(speeds))
        u = torch.tensor(planner.plan(NavState(pose=pose[0].numpy()), None, goal).commands[:1])
        speed = float(torch.hypot(u[0, 0], u[0, 1]))
        speeds.append(speed)
        gain = min(1.0, max(0.0, (speed - 0.05) / 0.25))
        pose = plant.step(pose, u * torch.tensor([gain, gain, 1.0], dtype=u.dtype))
    return math.inf, float(np.mean(speeds))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_with_the_term_the_robot_arrives_sooner_with_faster_commands(seed):
    # checked: without the term 1.1-1.5 s at a mean 0.23-0.28 m/s, with weight 20 0.6-0.7 s at 0.43-0.48 m/s
    t_off, v_off = _arrive(0.0, seed)
    t_on, v_on = _arrive(20.0, seed)
    assert t_on <= t_off - 0.3
    assert v_on >= v_off + 0.1
