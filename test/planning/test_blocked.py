"""Blocked-motion marking: detection from odometry, the marked map, and the closed loop it fixes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from morobot.planning.blocked import BlockedMotionConfig, BlockedMotionMonitor
from morobot.planning.cost import NavigationCost, NavigationCostConfig
from morobot.planning.cost_to_go import CostToGo, CostToGoConfig
from morobot.planning.interface import HeightMap, NavState
from morobot.planning.kinematic import KinematicModel
from morobot.planning.mppi import MPPI, MPPIConfig

RES = 0.1


def _flat_map(origin=(-2.0, -4.0), shape=(80, 80)) -> HeightMap:
    return HeightMap(torch.zeros(shape), origin, RES, stamp=0.0)


def _run(monitor, seconds, command, measured, pose=(0.0, 0.0, 0.0), t0=0.0, dt=0.1):
    marks = []
    for k in range(int(round(seconds / dt))):
        mark = monitor.update(t0 + k * dt, pose, measured, command, 0.5)
        if mark is not None:
            marks.append(mark)
    return marks


def test_marks_once_after_the_duration_in_the_commanded_direction():
    cfg = BlockedMotionConfig(duration=1.5, clearance=0.5, radius=0.2, height=0.5)
    mon = BlockedMotionMonitor(cfg)
    yaw = 0.5 * math.pi
    # 1.4 s of pushing is not enough
    assert _run(mon, 1.45, (0.0, 0.5, 0.0), (0.0, 0.0, 0.0), pose=(1.0, 2.0, yaw)) == []
    mon.reset()
    marks = _run(mon, 1.65, (0.0, 0.5, 0.0), (0.0, 0.02, 0.3), pose=(1.0, 2.0, yaw))
    assert len(marks) == 1
    ob = marks[0]
    # body +y at yaw 90 deg is odom -x; the disc's edge is `clearance` from the centre
    assert ob.x == pytest.approx(1.0 - 0.7) and ob.y == pytest.approx(2.0)
    assert ob.z == pytest.approx(1.0) and ob.stamp == pytest.approx(1.5)
    assert mon.active(1.6) == [ob]


@pytest.mark.parametrize("measured, blocked", [
    ((0.5, 0.0, 0.0), False),    # tracking
    ((0.15, 0.0, 0.0), False),   # 30 % of the command
    ((0.1, 0.0, 0.0), True),     # 20 %
    ((0.0, 0.5, 0.0), True),     # sliding sideways makes no progress along the command
    ((-0.2, 0.0, 0.0), True),    # pushed back
])
def test_progress_along_the_command_decides(measured, blocked):
    mon = BlockedMotionMonitor(BlockedMotionConfig(max_ratio=0.25))
    assert bool(_run(mon, 2.0, (0.5, 0.0, 0.0), measured)) is blocked


def test_slow_commands_turning_in_place_and_interruptions_do_not_mark():
    mon = BlockedMotionMonitor(BlockedMotionConfig(min_command=0.15, duration=1.5))
    assert _run(mon, 5.0, (0.1, 0.0, 1.0), (0.0, 0.0, 0.0)) == []
    assert _run(mon, 5.0, (0.0, 0.0, 1.0), (0.0, 0.0, 0.0), t0=5.0) == []
    marks = []
    t = 10.0
    for _ in range(4):  # 1 s blocked, 0.2 s moving, ... never 1.5 s in a row
        marks += _run(mon, 1.0, (0.5, 0.0, 0.0), (0.0, 0.0, 0.0), t0=t)
        marks += _run(mon, 0.2, (0.5, 0.0, 0.0), (0.5, 0.0, 0.0), t0=t + 1.0)
        t += 1.2
    assert marks == []


def test_a_gap_between_updates_restarts_the_detection():
    """A late planner (updates 0.5 s apart) may have let the robot stop by itself: no marking."""
    mon = BlockedMotionMonitor(BlockedMotionConfig(duration=1.5, max_gap=0.4))
    assert _run(mon, 5.0, (0.5, 0.0, 0.0), (0.0, 0.0, 0.0), dt=0.5) == []
    assert len(_run(mon, 5.0, (0.5, 0.0, 0.0), (0.0, 0.0, 0.0), t0=10.0, dt=0.3)) >= 2


def test_apply_raises_the_disc_and_keeps_the_input():
    cfg = BlockedMotionConfig(duration=0.5, clearance=0.5, radius=0.2, height=0.5, lifetime=10.0)
    mon = BlockedMotionMonitor(cfg)
    hmap = _flat_map()
    hmap.heights[30, 40] = float("nan")  # an unknown cell under the disc gets the obstacle height
    assert mon.apply(hmap, 0.0) is hmap and mon.apply(None, 0.0) is None
    (ob,) = _run(mon, 0.6, (0.5, 0.0, 0.0), (0.0, 0.0, 0.0), pose=(0.3, 0.0, 0.0))
    assert (ob.x, ob.y) == pytest.approx((1.0, 0.0))
    out = mon.apply(hmap, 1.0)
    assert out is not hmap and out.origin == hmap.origin and out.resolution == hmap.resolution
    xs, ys = hmap.cell_centres()
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    inside = np.hypot(gx - 1.0, gy) <= 0.2 + 1e-9
    h = out.heights.numpy()
    assert inside.sum() >= 9 and np.all(h[inside] == pytest.approx(1.0)) and np.all(h[~inside] == 0.0)
    assert math.isnan(float(hmap.heights[30, 40])) and float(hmap.heights[32, 40]) == 0.0
    assert mon.apply(hmap, 2.0) is out  # cached for the same map and obstacles
    assert mon.apply(hmap, 11.0) is hmap  # expired
    assert mon.active(11.0) == []


def test_oldest_obstacles_are_dropped():
    mon = BlockedMotionMonitor(BlockedMotionConfig(duration=0.5, clearance=0.5, max_obstacles=2))
    for k in range(3):
        _run(mon, 0.6, (0.5, 0.0, 0.0), (0.0, 0.0, 0.0), pose=(float(k), 0.0, 0.0), t0=k)
    assert [round(ob.x - 0.7) for ob in mon.active(3.0)] == [1, 2]


@pytest.mark.parametrize("kwargs", [dict(duration=0.0), dict(max_ratio=1.0), dict(radius=float("nan")),
                                    dict(max_obstacles=2.5), dict(lifetime=-1.0)])
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError):
        BlockedMotionConfig(**kwargs)


def test_bad_inputs_raise():
    mon = BlockedMotionMonitor()
    with pytest.raises(ValueError):
        mon.update(0.0, (0.0, 0.0), (0.0, 0.0, 0.0), (0.5, 0.0, 0.0), 0.5)
    with pytest.raises(ValueError):
        mon.update(0.0, (0.0, 0.0, 0.0), (float("nan"), 0.0, 0.0), (0.5, 0.0, 0.0), 0.5)
    with pytest.raises(ValueError):
        mon.update(float("inf"), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.5, 0.0, 0.0), 0.5)


WALL = (0.9, 1.3, -0.5, 0.5)  # x_min, x_max, y_min, y_max of a wall missing from the map


def _hits_wall(xy: np.ndarray, radius: float = 0.4) -> bool:
    dx = max(WALL[0] - xy[0], xy[0] - WALL[1], 0.0)
    dy = max(WALL[2] - xy[1], xy[1] - WALL[3], 0.0)
    return math.hypot(dx, dy) < radius


@pytest.mark.parametrize("clearance", [None, 0.5, 0.9])
def test_a_wall_missing_from_the_map_is_marked_and_driven_around(clearance):
    """The map is flat, the plant stops at an invisible wall between the robot and the goal.

    Without marking (``None``) the planner pushes into the wall for the whole run. With the
    default clearance (0.9 m) the marked obstacle enters the map and the cost-to-go, and the plan
    goes around the wall to the goal. With a disc inside the reach of the geometric risk (0.5 m)
    the robot's own position is saturated at risk 1, no plan is riskier than standing still, and
    it keeps pushing: the reason for the default.
    """
    hmap = _flat_map()
    cfg = MPPIConfig(num_samples=256, horizon=10, seed=0, dt=0.5)
    km = KinematicModel(dt=cfg.dt)
    planner = MPPI(km, NavigationCost(NavigationCostConfig(), CostToGo(km, CostToGoConfig())), cfg)
    plant = KinematicModel(dt=0.1)
    monitor = None if clearance is None else BlockedMotionMonitor(BlockedMotionConfig(clearance=clearance))
    goal = (3.0, 0.0, 0.0)
    pose = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64)
    twist = np.zeros(3)
    last = np.zeros(3)
    t = 0.0
    for _ in range(300):  # 30 s at 10 Hz
        p = pose[0].numpy()
        if math.hypot(p[0] - goal[0], p[1] - goal[1]) < 0.3:
            break
        plan_map = hmap
        if monitor is not None:
            if monitor.update(t, p, twist, last, 0.5) is not None:
                planner.reset(reseed=False)
            plan_map = monitor.apply(hmap, t)
        last = planner.plan(NavState(pose=p, twist=twist), plan_map, goal).commands[0]
        nxt = plant.step(pose, torch.tensor(last[None]))
        if _hits_wall(nxt[0, :2].numpy()):
            twist = np.zeros(3)  # held by the wall
        else:
            twist = np.asarray(last, dtype=float)
            pose = nxt
        t += 0.1
    final = pose[0].numpy()
    if clearance == 0.9:
        assert math.hypot(final[0] - goal[0], final[1] - goal[1]) < 0.3
        assert monitor.obstacles  # it did have to mark the wall
    else:
        assert final[0] < WALL[0]
        assert clearance is None or len(monitor.obstacles) >= 3


def test_factory_reads_the_shipped_parameters():
    from morobot.navigation.factory import BLOCKED_PARAMS, make_blocked_monitor
    from morobot.navigation.params import PlannerParams, load

    p = load(PlannerParams, "mppi_planner")
    mon = make_blocked_monitor(p)
    assert mon is not None and mon.config == BlockedMotionConfig()  # the yaml holds the defaults
    assert make_blocked_monitor({**p, "blocked_marking": False}) is None
    assert make_blocked_monitor({}) is None  # an older parameter set: no monitor
    with pytest.raises(KeyError, match="blocked_radius"):
        make_blocked_monitor({k: v for k, v in p.items() if k != "blocked_radius"})
    assert set(BLOCKED_PARAMS) <= set(p)
