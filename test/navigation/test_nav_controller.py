"""The navigation control core (morobot.navigation.controller), without ROS: every stop rule, the
input ages by arrival time, non-finite map cells, unknown surroundings, and the release check."""

import math

import numpy as np
import pytest
import torch

from morobot.navigation.controller import (NavigationController, Odometry, known_fraction,
                                           sanitize_heights)
from morobot.navigation.params import PlannerParams
from morobot.params import defaults, resolve
from morobot.planning.cost import risk_at
from morobot.planning.interface import HeightMap


def _params(**kw):
    return resolve(PlannerParams, {"num_samples": 128, "blocked_marking": False, **kw})


def _map(t, heights=None, x=0.0, y=0.0):
    h = torch.zeros(60, 60) if heights is None else heights
    return HeightMap(h, (x - 3.0, y - 3.0), 0.1, t)


def _odom(t, x=0.0, y=0.0):
    return Odometry(np.array([x, y, 0.0]), np.zeros(3), 0.5, np.array([0.0, 0.0, -1.0]), t)


@pytest.fixture
def ctl():
    c = NavigationController(_params())
    c.odometry(_odom(0.0), 0.0)
    c.map(_map(0.0), 0.0)
    c.set_goal(np.array([2.5, 0.0, 0.0]))
    return c


def _step(c, now):
    return c.release(c.cycle(now), now)


def test_tracks_towards_the_goal(ctl):
    d = _step(ctl, 0.05)
    assert d.code == "tracking" and d.command[0] > 0.1 and d.plan is not None


def test_waits_without_a_goal_and_stops_at_it():
    c = NavigationController(_params())
    assert not c.cycle(0.0).sends
    c.odometry(_odom(0.0, x=2.4), 0.0)
    c.map(_map(0.0), 0.0)
    c.set_goal(np.array([2.5, 0.0, 0.0]))
    d = _step(c, 0.05)
    assert d.code == "goal_reached" and not d.command.any() and c.goal is None


def test_age_is_by_arrival_and_stale_inputs_stop(ctl):
    assert _step(ctl, 0.35).code == "tracking"
    d = _step(ctl, 0.5)  # odometry arrived 0.5 s ago (max_odom_age 0.4)
    assert d.code == "stale_odom" and not d.command.any()
    ctl.odometry(_odom(0.6), 0.6)
    d = _step(ctl, 2.1)  # map arrived 2.1 s ago
    assert d.code in ("stale_odom", "stale_map") and not d.command.any()
    # a sample that was already old on arrival counts as old
    ctl.odometry(_odom(0.0), 3.0)
    ctl.map(_map(3.0), 3.0)
    assert _step(ctl, 3.0).code == "stale_odom"


def test_a_stamp_from_the_future_is_rejected_and_cannot_keep_the_robot_moving(ctl):
    why = ctl.odometry(_odom(1000.0), 0.1)
    assert why and "ahead of the clock" in why
    d = _step(ctl, 0.15)
    assert d.code == "fault" and not d.command.any()
    assert ctl.map(_map(1000.0), 0.2) is not None
    # then silence: nothing fresh arrives, the robot stays stopped
    assert all(not _step(ctl, t).command.any() for t in np.arange(0.2, 5.0, 0.1))
    ctl.odometry(_odom(5.0), 5.0)  # valid odometry again clears the fault
    ctl.map(_map(5.0), 5.0)
    assert _step(ctl, 5.05).code == "tracking"


def test_release_checks_the_ages_again_and_clamps_to_the_speed_ceiling(ctl):
    d = ctl.cycle(0.3)
    assert d.code == "tracking"
    late = ctl.release(d, 0.6)  # the cycle took 0.3 s: odometry is stale when the command leaves
    assert late.code == "stale_odom" and "at release" in late.message and not late.command.any()
    ctl.odometry(_odom(0.6), 0.6)
    d = ctl.cycle(0.65)
    d.command = np.array([5.0, -3.0, 2.0])
    assert np.allclose(ctl.release(d, 0.65).command, [1.0, -0.5, 1.0])


def test_limit_change_moves_towards_the_command_by_at_most_accel_dt():
    from morobot.navigation.controller import limit_change

    out = limit_change(np.array([1.0, -0.5, -1.0]), np.array([0.0, 0.0, 1.0]), 0.1, (2.0, 0.0, 4.0))
    assert np.allclose(out, [0.2, -0.5, 0.6])  # vy unlimited (0)
    assert np.allclose(limit_change(np.array([0.1, 0.0, 0.0]), np.zeros(3), 0.1, (2.0, 2.0, 2.0)), [0.1, 0, 0])
    cmd = np.array([0.3, 0.7, -0.9])
    assert np.array_equal(limit_change(cmd, np.array([0.1, 0.2, 0.3]), 0.1, (0.0, 0.0, 0.0)), cmd)  # bit for bit


def test_accel_limit_ramps_moving_commands_and_never_delays_a_stop():
    c = NavigationController(_params(accel_limit=(1.0, 1.0, 2.0)))
    c.odometry(_odom(0.0), 0.0)
    c.map(_map(0.0), 0.0)
    c.set_goal(np.array([2.5, 0.0, 0.0]))
    d = c.cycle(0.05)
    d.command = np.array([1.0, 0.5, -1.0])
    assert np.allclose(c.release(d, 0.05).command, [0.1, 0.1, -0.2])  # from standing: one period's worth
    d = c.cycle(0.15)
    d.command = np.array([1.0, -0.5, 1.0])
    assert np.allclose(c.release(d, 0.15).command, [0.2, 0.0, 0.0])  # 0.1 s later: 0.1, 0.1 and 0.2 more
    c.odometry(_odom(0.15), 0.15)
    late = c.release(c.cycle(0.7), 0.7)  # odometry went stale: the stop leaves at once
    assert late.code == "stale_odom" and not late.command.any()
    c.odometry(_odom(2.0), 2.0)
    c.map(_map(2.0), 2.0)
    d = c.cycle(2.05)
    d.command = np.array([-0.5, 0.0, 0.0])
    assert np.allclose(c.release(d, 2.05).command, [-0.1, 0.0, 0.0])  # a ramp from the stop, not from 0.2
    unlimited = NavigationController(_params())
    unlimited.odometry(_odom(0.0), 0.0)
    unlimited.map(_map(0.0), 0.0)
    unlimited.set_goal(np.array([2.5, 0.0, 0.0]))
    d = unlimited.cycle(0.05)
    d.command = np.array([1.0, 0.5, -1.0])
    assert np.allclose(unlimited.release(d, 0.05).command, [1.0, 0.5, -1.0])  # the default: no limit


def test_inf_cells_are_walls_never_free_ground():
    h = torch.zeros(60, 60)
    h[40:43, :] = math.inf  # a wall across the map, 1 m ahead
    h[10, 10] = -math.inf
    h[5, 5] = math.nan
    hmap, n = sanitize_heights(_map(0.0, h))
    assert n == 60 * 3 + 1 and torch.isnan(hmap.heights[5, 5])
    assert torch.all(hmap.heights[40:43] == 1.0) and hmap.heights[10, 10] == -1.0
    c = NavigationController(_params())
    c.odometry(_odom(0.0), 0.0)
    assert "non-finite" in c.map(_map(0.0, h), 0.0)
    c.set_goal(np.array([2.5, 0.0, 0.0]))
    for t in np.arange(0.05, 2.0, 0.1):
        d = _step(c, t)
        c.odometry(_odom(t), t)
        c.map(_map(t, h), t)
    assert d.plan is not None and np.all(d.plan.poses[:, 0] < 0.9)  # the plan stays short of the wall


def test_an_unknown_map_around_the_robot_stops_it(ctl):
    h = torch.full((60, 60), math.nan)
    ctl.map(_map(0.1, h), 0.1)
    d = _step(ctl, 0.15)
    assert d.code == "unknown_map" and not d.command.any()
    h[:, :] = 0.0
    h[25:35, 25:35] = math.nan  # under the robot only (the cameras' blind spot): drives
    ctl.map(_map(0.2, h), 0.2)
    assert _step(ctl, 0.25).code == "tracking"


def test_known_fraction_counts_cells_outside_the_map_as_unknown():
    hmap = _map(0.0)
    assert known_fraction(hmap, np.array([0.0, 0.0]), 1.0) == pytest.approx(1.0, abs=0.05)
    assert known_fraction(hmap, np.array([2.95, 0.0]), 1.0) == pytest.approx(0.5, abs=0.08)
    assert known_fraction(hmap, np.array([50.0, 0.0]), 1.0) == 0.0


def test_planner_parameter_ceilings(monkeypatch):
    p = defaults(PlannerParams)
    assert PlannerParams.cross_check(p) is None
    for bad, word in (({"u_max": [5.0, 0.5, 1.0]}, "speed_limit"), ({"u_min": [1.0, 0.0, 0.0]}, "stand still"),
                      ({"u_max": [1.0, 0.5, -0.1]}, "stand still"), ({"device": "gpu"}, "cuda:N"),
                      ({"ctg_lethal_risk": 0.3}, "unknown cells would be walls")):
        assert word in PlannerParams.cross_check({**p, **bad})
    assert PlannerParams.cross_check({**p, "device": "cuda:1"}) is None
    with pytest.raises(ValueError, match="unknown parameters"):
        resolve(PlannerParams, {"num_sample": 10})
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # refused on a machine without a GPU
    with pytest.raises(ValueError, match="no CUDA GPU"):
        NavigationController(_params(device="cuda"))
    assert NavigationController(_params(device="cpu")).device == "cpu"


def test_a_legged_fdm_takes_the_joints_and_stops_without_them(tmp_path):
    """An FDM trained on the legged history (joints): the core feeds it joint states; none or stale ones
    stop the robot, as any missing input does."""
    from fdm_small import SMALL

    from morobot.fdm.checkpoint import save_checkpoint
    from morobot.fdm.model import FDMConfig, PerceptiveFDM
    from morobot.navigation.controller import Joints
    from morobot.sim.anymal import STANDING_POSE
    from morobot.robots import ANYMAL_JOINTS

    ckpt = tmp_path / "legged.pt"
    save_checkpoint(ckpt, PerceptiveFDM(FDMConfig(**{**SMALL, "history_dim": 48, "history_features": "legged"})))
    c = NavigationController(_params(dynamics="fdm", fdm_checkpoint=str(ckpt), num_samples=64))
    assert c.needs_joints and c.history.features == "legged"

    def odom(t):
        o = _odom(t)
        o.linear, o.angular = np.zeros(3), np.zeros(3)
        return o

    c.odometry(odom(0.0), 0.0)
    c.map(_map(0.0), 0.0)
    c.set_goal(np.array([2.5, 0.0, 0.0]))
    d = _step(c, 0.05)
    assert d.code == "no_joints" and not d.command.any() and len(c.history) == 0
    q = np.array([STANDING_POSE[j] for j in ANYMAL_JOINTS])
    for k in range(12):  # 0.55 s of joint states and odometry at 20 Hz
        t = 0.1 + 0.05 * k
        c.joint_state(Joints(q, np.zeros(12), np.full(12, 5.0), t), t)
        c.odometry(odom(t), t)
        c.map(_map(t), t)
    assert c.history.ready and c.history.array().shape == (10, 48)
    d = _step(c, 0.7)
    assert d.code in ("tracking", "risk_stop") and d.code != "no_joints"
    c.odometry(odom(1.2), 1.2)  # odometry goes on, the joints went quiet at 0.65 s
    c.map(_map(1.2), 1.2)
    d = _step(c, 1.25)
    assert d.code == "stale_joints" and not d.command.any()


def test_a_legged_actions_fdm_takes_the_joint_targets_and_stops_without_them(tmp_path):
    """An FDM that also reads the controller's last two actions: the core keeps the last two target
    messages; without fresh ones the robot stops (no_targets / stale_targets)."""
    from fdm_small import SMALL

    from morobot.fdm.checkpoint import save_checkpoint
    from morobot.fdm.history import feature_names
    from morobot.fdm.model import FDMConfig, PerceptiveFDM
    from morobot.navigation.controller import Joints
    from morobot.sim.anymal import STANDING_POSE
    from morobot.robots import ANYMAL_JOINTS

    ckpt = tmp_path / "legged_actions.pt"
    save_checkpoint(ckpt, PerceptiveFDM(FDMConfig(**{**SMALL, "history_dim": 84,
                                                     "history_features": "legged_actions"})))
    c = NavigationController(_params(dynamics="fdm", fdm_checkpoint=str(ckpt), num_samples=64))
    assert c.needs_joints and c.needs_targets

    def odom(t):
        o = _odom(t)
        o.linear, o.angular = np.zeros(3), np.zeros(3)
        return o

    q = np.array([STANDING_POSE[j] for j in ANYMAL_JOINTS])
    c.set_goal(np.array([2.5, 0.0, 0.0]))
    c.joint_state(Joints(q, np.zeros(12), np.full(12, 5.0), 0.0), 0.0)
    c.odometry(odom(0.0), 0.0)
    c.map(_map(0.0), 0.0)
    d = _step(c, 0.05)
    assert d.code == "no_targets" and not d.command.any() and len(c.history) == 0
    for k in range(12):  # 0.55 s at 20 Hz; targets step by 0.01 rad each message
        t = 0.1 + 0.05 * k
        c.joint_state(Joints(q, np.zeros(12), np.full(12, 5.0), t), t)
        c.joint_targets(q + 0.01 * (k + 1), t)
        c.odometry(odom(t), t)
        c.map(_map(t), t)
    names = feature_names("legged_actions")
    row = c.history.array()[-1]
    assert row.shape == (84,)
    assert row[names.index("a1_LF_HFE")] == pytest.approx(q[1] + 0.12, abs=1e-6)
    assert row[names.index("a2_LF_HFE")] == pytest.approx(q[1] + 0.11, abs=1e-6)
    assert row[names.index("qerr_LF_HFE")] == pytest.approx(0.12, abs=1e-6)
    d = _step(c, 0.7)
    assert d.code in ("tracking", "risk_stop")
    c.joint_state(Joints(q, np.zeros(12), np.full(12, 5.0), 1.2), 1.2)  # joints go on, targets went quiet
    c.odometry(odom(1.2), 1.2)
    c.map(_map(1.2), 1.2)
    d = _step(c, 1.25)
    assert d.code == "stale_targets" and not d.command.any()


@pytest.mark.parametrize("radius", [0.6, 0.0])
def test_a_goal_on_rough_ground_is_planned_onto_only_with_the_goal_allowance(radius):
    """A checkerboard of steps 10 % above the step limit within 0.1 m of the goal (risk about 0.7 at the goal, 0.8 m
    ahead)."""
    p = _params(goal_risk_radius=radius, num_samples=512)
    xs = -3.0 + 0.1 * np.arange(60)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    checker = (np.add.outer(np.arange(60), np.arange(60)) % 2).astype(bool)
    h = np.where((np.hypot(gx - 0.8, gy) <= 0.1 + 1e-9) & checker, 1.1 * p["step_limit"], 0.0)
    c = NavigationController(p)
    c.odometry(_odom(0.0), 0.0)
    c.map(_map(0.0, torch.tensor(h, dtype=torch.float32)), 0.0)
    c.set_goal(np.array([0.8, 0.0, 0.0]))
    risk = c.mppi.cost.cost_to_go.risk_source.risk_map(c.hmap)
    assert 0.5 < risk_at(risk, c.hmap, (0.8, 0.0)) < 0.9  # rough, not an obstacle
    ends = []
    for k in range(3):  # a few cycles: MPPI warm-starts on its previous plan
        d = _step(c, 0.05 * (k + 1))
        assert d.code == "tracking"
        ends.append(math.hypot(d.plan.poses[-1, 0] - 0.8, d.plan.poses[-1, 1]))
    if radius > 0:
        assert d.plan.allowed_risk is not None and d.plan.allowed_risk.max() > 0.5
        assert ends[-1] < 0.3
    else:
        assert d.plan.allowed_risk is None
        assert min(ends) > 0.3  # the plan stops at the rim of the risky spot
