"""Scenario goals the planners can finish at: the footprint risk on the true surface, moving a goal off an obstacle."""

import math

import numpy as np
import pytest

from morobot.evaluation.scenarios import (GOAL_RULE_PARAMS, GOAL_SEARCH_RADIUS, footprint_risk, goal_risk_limit,
                                          make_scenario, standable_goal)
from morobot.navigation.params import PlannerParams
from morobot.params import defaults
from morobot.sim.worlds import is_reachable, make_world


def test_the_limit_is_the_planners_goal_cap_less_their_margin():
    assert goal_risk_limit() == pytest.approx(GOAL_RULE_PARAMS["goal_risk_cap"] - GOAL_RULE_PARAMS["risk_margin"])
    assert 0.5 < goal_risk_limit() < 1.0
    # the rule's values are planner parameters (a renamed one would fail here), fixed apart from their defaults
    assert set(GOAL_RULE_PARAMS) <= set(defaults(PlannerParams))


def test_tuning_a_planner_default_leaves_the_scenarios(monkeypatch):
    """The goal rule reads its own geometry: a planner default changed (here the step limit) moves no goal."""
    import morobot.evaluation.scenarios as scenarios

    drawn = make_scenario("rubble_high", 125, standable=False)
    before = footprint_risk(drawn.world(), np.array([drawn.goal[:2]]))[0]
    real = defaults

    def tuned(cls):
        p = real(cls)
        return {**p, "step_limit": 0.3} if cls is PlannerParams else p

    monkeypatch.setattr("morobot.params.defaults", tuned)
    assert footprint_risk(drawn.world(), np.array([drawn.goal[:2]]))[0] == pytest.approx(before)
    monkeypatch.setattr(scenarios, "GOAL_RULE_PARAMS", {**scenarios.GOAL_RULE_PARAMS, "step_limit": 0.3})
    assert footprint_risk(drawn.world(), np.array([drawn.goal[:2]]))[0] < before - 0.3


def test_footprint_risk_on_the_true_surface():
    flat = make_world("flat", 0, size=(8.0, 8.0))
    assert footprint_risk(flat, np.array([[0.0, 0.0], [2.0, -1.0]])) == pytest.approx([0.0, 0.0])
    boxed = make_world("flat", 0, size=(8.0, 8.0), boxes=[{"center": (1.0, 1.0), "size": (0.8, 0.8, 0.5)}])
    on, near, far, off = footprint_risk(boxed, np.array([[1.0, 1.0], [1.0, 1.7], [-2.0, -2.0], [9.0, 0.0]]))
    assert on > 0.99 and near > 0.99  # the box's edge lies within the footprint 0.3 m from it
    assert far == 0.0 and off == 1.0  # off the world: never standable
    assert footprint_risk(flat, np.zeros((0, 2))).shape == (0,)
    assert footprint_risk(flat, np.array([[20.0, 0.0], [0.0, -30.0]])) == pytest.approx([1.0, 1.0])


def test_a_goal_above_the_limit_moves_to_the_nearest_cell_within_it():
    drawn = make_scenario("rubble_high", 125, standable=False)  # drawn on a rubble edge: risk 0.995
    assert footprint_risk(drawn.world(), np.array([drawn.goal[:2]]))[0] > goal_risk_limit()
    moved = make_scenario("rubble_high", 125)
    assert moved == standable_goal(drawn) and moved.start == drawn.start and moved.seed == drawn.seed
    shift = math.dist(moved.goal[:2], drawn.goal[:2])
    assert 0.2 < shift <= GOAL_SEARCH_RADIUS + 1e-9 and moved.goal[2] == drawn.goal[2]
    world = moved.world()
    assert footprint_risk(world, np.array([moved.goal[:2]]))[0] <= goal_risk_limit()
    assert is_reachable(world)
    assert standable_goal(moved) == moved  # a standable goal stays
    # nearest first: no closer cell of the search grid was within the limit on the drawn world
    steps = 0.1 * np.arange(-10, 11)
    closer = [(drawn.goal[0] + dx, drawn.goal[1] + dy) for dx in steps for dy in steps
              if 1e-9 < math.hypot(dx, dy) < shift - 1e-6]
    assert closer and np.all(footprint_risk(drawn.world(), np.array(closer)) > goal_risk_limit())


def test_a_goal_with_no_standable_cell_in_reach_stays_as_drawn():
    drawn = make_scenario("rubble_high", 125, standable=False)
    assert standable_goal(drawn, radius=0.05) == drawn


@pytest.mark.parametrize("mix", ["rubble_high", "rough", "steps"])
def test_generated_goals_are_within_the_limit(mix):
    for i in range(60, 70):  # rubble_high-065 was drawn on an obstacle cell (risk 1.0)
        sc = make_scenario(mix, i)
        assert footprint_risk(sc.world(), np.array([sc.goal[:2]]))[0] <= goal_risk_limit(), sc.id
