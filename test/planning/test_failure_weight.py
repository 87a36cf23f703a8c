"""The cost's failure_weight: the learned model's own failure probability, not hidden under the map's risk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from morobot.planning.cost import NavigationCost, NavigationCostConfig
from morobot.planning.interface import NavState, Rollout
from morobot.planning.kinematic import KinematicModel
from morobot.planning.mppi import MPPI, MPPIConfig


def _rollouts(model_risk):
    poses = torch.tensor([[[1.0, 0.0, 0.0]] * 3] * 2)
    risk = torch.full((2, 3), 0.45)  # the map's risk, the same for both and above both model risks
    mr = None if model_risk is None else torch.tensor(model_risk)
    return Rollout(poses=poses, risk=risk, model_risk=mr), torch.zeros(2, 3, 3)


def test_the_term_charges_the_models_failure_probability_by_the_horizons_end():
    goal = (1.0, 0.0, 0.0)
    rollout, cmds = _rollouts([[0.0, 0.05, 0.1], [0.1, 0.3, 0.4]])
    plain = NavigationCost()(rollout, cmds, goal)
    assert float(plain[1] - plain[0]) == pytest.approx(0.0, abs=1e-6)  # hidden under the map's 0.45
    weighted = NavigationCost(NavigationCostConfig(failure_weight=100.0))(rollout, cmds, goal)
    assert float(weighted[1] - weighted[0]) == pytest.approx(100.0 * 0.3, rel=1e-5)
    assert torch.allclose(weighted - plain, torch.tensor([10.0, 40.0]))
    no_model, cmds = _rollouts(None)  # the kinematic model has no failure probability of its own
    assert torch.equal(NavigationCost(NavigationCostConfig(failure_weight=100.0))(no_model, cmds, goal),
                       NavigationCost()(no_model, cmds, goal))
    with pytest.raises(ValueError):
        NavigationCostConfig(failure_weight=-1.0)


class SpeedRisk:
    """Kinematic poses; a learned-looking failure probability that grows with the commanded speed, and a map
    risk of 0.45 everywhere that is larger than it for every plan (rubble at the step limit)."""

    def __init__(self):
        self.kin = KinematicModel()
        self.dt = self.kin.dt

    def rollout(self, state, commands, hmap):
        out = self.kin.rollout(state, commands, hmap)
        speed2 = commands[..., 0] ** 2 + commands[..., 1] ** 2
        model = 0.4 * torch.cumsum(speed2, dim=1) / commands.shape[1]  # full speed for the horizon: 0.4
        return Rollout(poses=out.poses, risk=torch.maximum(model, torch.full_like(model, 0.45)), model_risk=model)


@pytest.mark.parametrize("weight", [0.0, 300.0])
def test_a_planner_that_weighs_the_failure_probability_walks_slower(weight):
    """Without the term the planner goes at full speed, as the max with the map's risk shows it nothing; with it
    the planner trades speed for a lower failure probability."""
    cost = NavigationCost(NavigationCostConfig(failure_weight=weight))
    planner = MPPI(SpeedRisk(), cost, MPPIConfig(num_samples=512, horizon=10, seed=0))
    speeds = []
    for _ in range(4):
        result = planner.plan(NavState(pose=np.zeros(3)), None, (8.0, 0.0, 0.0))
        speeds.append(float(np.hypot(*result.commands[0, :2])))
    if weight == 0.0:
        assert speeds[-1] > 0.85
    else:
        assert 0.2 < speeds[-1] < 0.7


def test_the_planner_parameter_reaches_the_cost():
    from morobot.navigation.factory import make_navigation_cost
    from morobot.navigation.params import PlannerParams
    from morobot.params import defaults

    p = defaults(PlannerParams)
    assert p["failure_weight"] == 0.0  # off by default
    p["failure_weight"] = 300.0
    assert make_navigation_cost(p).config.failure_weight == 300.0
