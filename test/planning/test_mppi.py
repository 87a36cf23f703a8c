"""Tests of the MPPI planner (closed loop with the kinematic model as plant) and its cost."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from morobot.planning.cost import NavigationCost, NavigationCostConfig
from morobot.planning.interface import HeightMap, NavState, Rollout
from morobot.planning.kinematic import KinematicModel
from morobot.planning.mppi import MPPI, MPPIConfig

RES = 0.1
BOX = (1.2, 1.8, -0.5, 0.5)  # x_min, x_max, y_min, y_max of a 1 m tall box


def _box_map() -> HeightMap:
    origin = (-1.0, -4.0)
    xs = origin[0] + RES * np.arange(80)
    ys = origin[1] + RES * np.arange(80)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    inside = (gx >= BOX[0]) & (gx <= BOX[1]) & (gy >= BOX[2]) & (gy <= BOX[3])
    return HeightMap(torch.tensor(np.where(inside, 1.0, 0.0), dtype=torch.float32), origin, RES)


def _box_clearance(xy: np.ndarray) -> np.ndarray:
    dx = np.maximum(np.maximum(BOX[0] - xy[:, 0], xy[:, 0] - BOX[1]), 0.0)
    dy = np.maximum(np.maximum(BOX[2] - xy[:, 1], xy[:, 1] - BOX[3]), 0.0)
    return np.hypot(dx, dy)


def _closed_loop(planner: MPPI, hmap, goal, steps: int, start=(0.0, 0.0, 0.0)):
    """Execute the first planned command on a kinematic plant; return the final pose and a dense path."""
    plant = KinematicModel(dt=planner.config.dt)
    fine = [KinematicModel(dt=planner.config.dt * f) for f in np.linspace(0.1, 1.0, 10)]
    pose = torch.tensor([start], dtype=torch.float64)
    path = [pose[0].numpy().copy()]
    for _ in range(steps):
        result = planner.plan(NavState(pose=pose[0].numpy()), hmap, goal)
        u = torch.tensor(result.commands[:1])
        path.extend(m.step(pose, u)[0].numpy() for m in fine)
        pose = plant.step(pose, u)
    return pose[0].numpy(), np.array(path)


def _yaw_error(a: float, b: float) -> float:
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


class Recorder:
    """DynamicsModel wrapper that keeps the command batches it was asked to roll out."""

    def __init__(self, inner):
        self.inner = inner
        self.dt = inner.dt
        self.batches: list[torch.Tensor] = []

    def rollout(self, state, commands, hmap):
        self.batches.append(commands.clone())
        return self.inner.rollout(state, commands, hmap)


class WorldIntegrator:
    """Toy DynamicsModel unrelated to the kinematic one: (vx, vy) are odom-frame velocities."""

    dt = 0.5

    def __init__(self, uncertainty: bool = False, nan: bool = False):
        self.uncertainty = uncertainty
        self.nan = nan

    def rollout(self, state, commands, hmap):
        pose0 = torch.as_tensor(np.asarray(state.pose), dtype=commands.dtype)
        poses = pose0 + torch.cumsum(commands * self.dt, dim=1)
        if self.nan:
            poses = poses * float("nan")
        risk = torch.zeros(commands.shape[:2], dtype=commands.dtype)
        unc = torch.full_like(risk, 0.1) if self.uncertainty else None
        return Rollout(poses=poses, risk=risk, uncertainty=unc)


# ------------------------------------------------------------------------------- closed loop
def test_reaches_a_goal_in_free_space():
    # Checked over seeds 0-7: final distance <= 0.08 m and yaw error <= 0.27 rad.
    planner = MPPI(KinematicModel(), NavigationCost(), MPPIConfig(num_samples=1024, horizon=10, seed=3))
    goal = (2.5, 1.0, 1.0)
    pose, _ = _closed_loop(planner, None, goal, steps=30)
    assert math.hypot(pose[0] - goal[0], pose[1] - goal[1]) < 0.15
    assert _yaw_error(pose[2], goal[2]) < 0.35


def test_goes_around_a_tall_box():
    # Checked over seeds 0-7: clearance >= 0.83 m, final distance <= 0.18 m.
    model = KinematicModel()
    planner = MPPI(model, NavigationCost(), MPPIConfig(num_samples=512, horizon=10, seed=0))
    goal = (3.0, 0.0, 0.0)
    pose, path = _closed_loop(planner, _box_map(), goal, steps=25)
    clearance = _box_clearance(path[:, :2])
    assert clearance.min() > model.footprint_radius, "the footprint touched the box"
    assert math.hypot(pose[0] - goal[0], pose[1] - goal[1]) < 0.3
    # It really had to detour: the straight line runs through the box.
    assert np.abs(path[:, 1]).max() > BOX[3] + model.footprint_radius


def test_planner_drives_any_dynamics_model():
    cost = NavigationCost(NavigationCostConfig(heading_weight=0.0))
    planner = MPPI(WorldIntegrator(), cost, MPPIConfig(num_samples=256, horizon=8, seed=1))
    state = NavState(pose=np.zeros(3))
    for _ in range(12):
        result = planner.plan(state, None, (-1.5, 1.0, 0.0))
        state = NavState(pose=state.pose + result.commands[0] * 0.5)
    assert math.hypot(state.pose[0] + 1.5, state.pose[1] - 1.0) < 0.2


# ---------------------------------------------------------------------------------- sampling
def test_samples_respect_bounds_and_contain_zero_and_previous_mean():
    cfg = MPPIConfig(num_samples=300, horizon=6, seed=2, u_min=(-0.2, -0.1, -0.3), u_max=(0.6, 0.1, 0.3))
    recorder = Recorder(KinematicModel())
    planner = MPPI(recorder, NavigationCost(), cfg)
    state = NavState(pose=np.zeros(3))
    first = planner.plan(state, None, (5.0, 2.0, 0.0))
    second = planner.plan(state, None, (5.0, 2.0, 0.0))
    lo, hi = torch.tensor(cfg.u_min), torch.tensor(cfg.u_max)
    samples = recorder.batches[-2]  # the last batch is the re-roll of the mean
    assert samples.shape == (300, 6, 3)
    assert bool(((samples >= lo - 1e-7) & (samples <= hi + 1e-7)).all())
    assert float(samples[0].abs().max()) == 0.0
    shifted = np.vstack([first.commands[1:], first.commands[-1:]])
    np.testing.assert_allclose(samples[1].numpy(), shifted, atol=1e-6)
    for result in (first, second):
        assert np.all(result.commands >= np.array(cfg.u_min) - 1e-6)
        assert np.all(result.commands <= np.array(cfg.u_max) + 1e-6)
    # The planner pushes against the forward bound to reach the far goal.
    assert second.commands[0, 0] > 0.3


def test_zero_sample_is_clipped_into_bounds_that_exclude_zero():
    cfg = MPPIConfig(num_samples=16, horizon=4, u_min=(0.1, -0.1, -0.1), u_max=(0.5, 0.1, 0.1))
    recorder = Recorder(KinematicModel())
    MPPI(recorder, NavigationCost(), cfg).plan(NavState(pose=np.zeros(3)), None, (1.0, 0.0, 0.0))
    np.testing.assert_allclose(recorder.batches[0][0].numpy(), np.tile([0.1, 0.0, 0.0], (4, 1)))


def test_fractional_shift_interpolates_the_mean():
    cfg = MPPIConfig(num_samples=32, horizon=5, seed=0, shift_steps=0.5)
    recorder = Recorder(KinematicModel())
    planner = MPPI(recorder, NavigationCost(), cfg)
    state = NavState(pose=np.zeros(3))
    first = planner.plan(state, None, (2.0, 0.0, 0.0)).commands
    planner.plan(state, None, (2.0, 0.0, 0.0))
    expected = 0.5 * (first + np.vstack([first[1:], first[-1:]]))
    np.testing.assert_allclose(recorder.batches[-2][1].numpy(), expected, atol=1e-6)


def test_seed_makes_plans_deterministic():
    def run(seed):
        planner = MPPI(KinematicModel(), NavigationCost(), MPPIConfig(num_samples=128, horizon=6, seed=seed))
        state = NavState(pose=np.array([0.1, 0.2, 0.3]))
        return [planner.plan(state, _box_map(), (2.0, -1.0, 0.0)).commands for _ in range(2)]

    a, b, c = run(7), run(7), run(8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[0], c[0])


def test_reset_restores_the_initial_behaviour():
    planner = MPPI(KinematicModel(), NavigationCost(), MPPIConfig(num_samples=64, horizon=5, seed=4))
    state = NavState(pose=np.zeros(3))
    first = planner.plan(state, None, (1.0, 1.0, 0.0)).commands
    planner.plan(state, None, (1.0, 1.0, 0.0))
    planner.reset()
    assert planner.mean is None
    np.testing.assert_array_equal(planner.plan(state, None, (1.0, 1.0, 0.0)).commands, first)


# ------------------------------------------------------------------------------------ result
def test_result_is_consistent_with_the_dynamics():
    model = KinematicModel()
    cfg = MPPIConfig(num_samples=200, horizon=7, seed=5, keep_rollouts=12, iterations=2)
    planner = MPPI(model, NavigationCost(), cfg)
    state = NavState(pose=np.array([0.0, 0.0, 0.2]))
    hmap = _box_map()
    result = planner.plan(state, hmap, (3.0, 0.0, 0.0))
    assert result.commands.shape == (7, 3) and result.poses.shape == (7, 3) and result.risk.shape == (7,)
    replay = model.rollout(state, torch.tensor(result.commands, dtype=torch.float32)[None], hmap)
    np.testing.assert_allclose(result.poses, replay.poses[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(result.risk, replay.risk[0].numpy(), atol=1e-5)
    assert result.rollouts.shape == (12, 7, 3) and result.rollout_costs.shape == (12,)
    assert result.rollout_costs[0] == pytest.approx(result.best_cost)
    assert result.best_cost <= result.rollout_costs.min() + 1e-6
    assert math.isfinite(result.cost) and result.uncertainty is None
    assert set(result.timings) == {"sample", "rollout", "cost", "update", "final", "total"}
    assert result.timings["total"] >= result.timings["rollout"] > 0.0
    assert result.model_risk is None and result.standstill_model_risk is None  # no learned part


def test_the_learned_models_own_risk_is_reported_beside_the_combined_one():
    from morobot.planning.map_risk import MapRiskOverlay

    class Risky(WorldIntegrator):
        def rollout(self, state, commands, hmap):
            out = super().rollout(state, commands, hmap)
            return Rollout(out.poses, torch.full_like(out.risk, 0.2), out.uncertainty)

    for margin in (None, 0.0):  # the weighted mean's rollout, and the best sample's (the fallback)
        cfg = MPPIConfig(num_samples=64, horizon=6, seed=0, fallback_margin=margin)
        planner = MPPI(MapRiskOverlay(Risky(), KinematicModel(dt=cfg.dt)), NavigationCost(), cfg)
        result = planner.plan(NavState(pose=np.array([0.0, 0.0, 0.0])), _box_map(), (3.0, 0.0, 0.0))
        assert result.used_best_sample == (margin is not None)
        np.testing.assert_allclose(result.model_risk, 0.2, atol=1e-6)
        np.testing.assert_allclose(result.standstill_model_risk, 0.2, atol=1e-6)
        assert np.all(result.risk >= result.model_risk - 1e-6)  # the combined risk holds the map's part too


def test_uncertainty_is_reported_and_non_finite_predictions_stop_the_robot():
    cfg = MPPIConfig(num_samples=32, horizon=4, seed=0)
    result = MPPI(WorldIntegrator(uncertainty=True), NavigationCost(), cfg).plan(
        NavState(pose=np.zeros(3)), None, (1.0, 0.0, 0.0)
    )
    np.testing.assert_allclose(result.uncertainty, 0.1, atol=1e-7)
    broken = MPPI(WorldIntegrator(nan=True), NavigationCost(), cfg).plan(
        NavState(pose=np.zeros(3)), None, (1.0, 0.0, 0.0)
    )
    np.testing.assert_array_equal(broken.commands, 0.0)
    assert broken.best_cost == math.inf and broken.cost == math.inf


class PillarCost:
    """Cost for WorldIntegrator: end near x = 3, and 1000 for passing within 0.3 m of (1.5, 0)."""

    def __call__(self, rollout, commands, goal, prev_command=None):
        xy = rollout.poses[..., :2]
        hit = torch.linalg.vector_norm(xy - torch.tensor([1.5, 0.0]), dim=-1).amin(dim=1) < 0.3
        return (xy[:, -1, 0] - 3.0).abs() + 1000.0 * hit


def test_falls_back_to_the_best_sample_when_the_mean_collides():
    # Forward speed is pinned at 1 m/s; lateral samples are symmetric, so with a huge temperature
    # the weighted mean is (nearly) straight ahead and runs into the pillar.
    kwargs = dict(num_samples=400, horizon=6, seed=0, temperature=1e6, sigma=(0.0, 0.8, 0.0),
                  u_min=(1.0, -1.0, 0.0), u_max=(1.0, 1.0, 0.0))
    state, goal = NavState(pose=np.zeros(3)), (3.0, 0.0, 0.0)
    plain = MPPI(WorldIntegrator(), PillarCost(), MPPIConfig(fallback_margin=None, **kwargs)).plan(state, None, goal)
    assert plain.cost >= 1000.0 and not plain.used_best_sample
    guarded = MPPI(WorldIntegrator(), PillarCost(), MPPIConfig(**kwargs)).plan(state, None, goal)
    assert guarded.used_best_sample
    assert guarded.cost == pytest.approx(guarded.best_cost) and guarded.cost < 1.0
    xy = guarded.poses[:, :2]
    assert np.linalg.norm(xy - [1.5, 0.0], axis=1).min() >= 0.3
    np.testing.assert_allclose(guarded.poses, np.cumsum(guarded.commands * 0.5, axis=0), atol=1e-6)


# --------------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_value_error():
    planner = MPPI(KinematicModel(), NavigationCost(), MPPIConfig(num_samples=8, horizon=3))
    good = NavState(pose=np.zeros(3))
    with pytest.raises(ValueError, match="state.pose"):
        planner.plan(NavState(pose=np.array([np.nan, 0.0, 0.0])), None, (1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="state.pose"):
        planner.plan(NavState(pose=np.zeros(2)), None, (1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="state.twist"):
        planner.plan(NavState(pose=np.zeros(3), twist=np.array([0.0, np.inf, 0.0])), None, (1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="goal"):
        planner.plan(good, None, (1.0, np.nan, 0.0))
    with pytest.raises(ValueError, match="goal"):
        planner.plan(good, None, (1.0, 0.0))
    with pytest.raises(ValueError, match="heights"):
        planner.plan(good, HeightMap(torch.zeros(0, 4), (0.0, 0.0), 0.1), (1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="dt"):
        MPPI(KinematicModel(dt=0.2), NavigationCost(), MPPIConfig(dt=0.5))
    with pytest.raises(ValueError, match="DynamicsModel"):
        MPPI(object(), NavigationCost(), MPPIConfig())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_samples": 1},
        {"horizon": 0},
        {"temperature": 0.0},
        {"sigma": (0.1, 0.1)},
        {"u_min": (1.0, 0.0, 0.0), "u_max": (0.0, 0.0, 0.0)},
        {"noise_beta": 1.0},
        {"shift_steps": -1.0},
        {"fallback_margin": -1.0},
    ],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError):
        MPPIConfig(**kwargs)


# -------------------------------------------------------------------------------------- cost
def _single(poses, risk=None, unc=None, commands=None):
    poses = torch.tensor(poses, dtype=torch.float32)
    k, t = poses.shape[:2]
    risk = torch.zeros(k, t) if risk is None else torch.tensor(risk, dtype=torch.float32)
    commands = torch.zeros(k, t, 3) if commands is None else torch.tensor(commands, dtype=torch.float32)
    unc = None if unc is None else torch.tensor(unc, dtype=torch.float32)
    return Rollout(poses=poses, risk=risk, uncertainty=unc), commands


def test_cost_prefers_rollouts_ending_closer_to_the_goal():
    cost = NavigationCost()
    rollout, cmds = _single([[[0.5, 0.0, 0.0], [1.0, 0.0, 0.0]], [[0.5, 0.0, 0.0], [1.8, 0.0, 0.0]]])
    c = cost(rollout, cmds, (2.0, 0.0, 0.0))
    assert c[1] < c[0]
    # Terminal distance dominates: +0.8 m closer at the end is worth 20 * 0.8 plus progress, plus arrival (the
    # second ends within 0.3 m of the goal: half its steps are outside the goal region, all of the first's).
    assert float(c[0] - c[1]) == pytest.approx(20 * 0.8 + 10 * 0.4 + 10 * 0.5, rel=1e-5)


def test_cost_penalises_risk_above_the_threshold_and_uncertainty():
    cfg = NavigationCostConfig()
    cost = NavigationCost(cfg)
    poses = [[[1.0, 0.0, 0.0]] * 2] * 3
    rollout, cmds = _single(poses, risk=[[0.0, 0.0], [0.4, 0.4], [0.0, 0.6]])
    c = cost(rollout, cmds, (1.0, 0.0, 0.0))
    assert float(c[1] - c[0]) == pytest.approx(cfg.risk_weight * 0.4, rel=1e-5)
    assert float(c[2] - c[0]) == pytest.approx(cfg.risk_weight * 0.3 + cfg.collision_penalty, rel=1e-5)
    with_unc, _ = _single(poses, unc=[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    cu = cost(with_unc, cmds, (1.0, 0.0, 0.0))
    assert cu[0] < cu[1] < cu[2]


def test_heading_matters_once_close_to_the_goal():
    cfg = NavigationCostConfig()
    cost = NavigationCost(cfg)
    near, cmds = _single([[[1.0, 0.1, 0.0]], [[1.0, 0.1, 1.0]]])
    c_near = cost(near, cmds, (1.0, 0.0, 0.0))
    far, _ = _single([[[0.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]]])
    c_far = cost(far, cmds, (1.0, 0.0, 0.0))
    assert float(c_near[1] - c_near[0]) == pytest.approx(cfg.heading_weight, rel=1e-5)
    assert float(c_far[1] - c_far[0]) == pytest.approx(cfg.heading_weight * cfg.heading_far_scale, rel=1e-5)
    # Yaw errors wrap: 3.0 rad vs -3.0 rad differ by 0.28 rad, not 6 rad.
    wrapped, _ = _single([[[1.0, 0.0, 3.0]]])
    assert float(cost(wrapped, cmds[:1], (1.0, 0.0, -3.0))[0]) == pytest.approx(
        cfg.heading_weight * (2 * math.pi - 6.0), rel=1e-4
    )


def test_cost_prefers_smooth_forward_commands():
    cost = NavigationCost()
    poses = [[[0.0, 0.0, 0.0]] * 4] * 3
    commands = [
        [[0.5, 0.0, 0.0]] * 4,  # smooth, forward
        [[0.5, 0.0, 0.0], [-0.5, 0.0, 0.0]] * 2,  # jerky
        [[-0.5, 0.0, 0.0]] * 4,  # smooth, backward
    ]
    rollout, cmds = _single(poses, commands=commands)
    c = cost(rollout, cmds, (0.0, 0.0, 0.0))
    assert c[0] < c[2] < c[1]
    # The previous command enters the smoothness term.
    c_prev = cost(rollout, cmds, (0.0, 0.0, 0.0), prev_command=(-0.5, 0.0, 0.0))
    assert c_prev[0] > c[0] and c_prev[2] == pytest.approx(float(c[2]))


def test_cost_bad_input_raises():
    cost = NavigationCost()
    rollout, cmds = _single([[[0.0, 0.0, 0.0]]])
    with pytest.raises(ValueError, match="goal"):
        cost(rollout, cmds, (np.nan, 0.0, 0.0))
    with pytest.raises(ValueError, match="commands"):
        cost(rollout, torch.zeros(1, 2, 3), (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="risk"):
        cost(Rollout(poses=rollout.poses, risk=torch.zeros(2)), cmds, (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="prev_command"):
        cost(rollout, cmds, (0.0, 0.0, 0.0), prev_command=(0.0, np.inf, 0.0))
    with pytest.raises(ValueError):
        NavigationCostConfig(goal_weight=-1.0)
    with pytest.raises(ValueError):
        NavigationCostConfig(risk_penalty_threshold=1.5)


def test_stop_risk_looks_at_the_near_part_of_the_plan():
    from morobot.planning.cost import stop_risk

    risk = [0.1, 0.2, 0.3, 0.9]
    assert stop_risk(risk, 0.5) == 0.9  # whole plan
    assert stop_risk(risk, 0.5, 1.0) == 0.2  # first two 0.5 s steps
    assert stop_risk(risk, 0.5, 0.1) == 0.1  # at least one step
    assert stop_risk(risk, 0.5, 60.0) == 0.9
    assert stop_risk([], 0.5, 1.0) == 0.0
    with pytest.raises(ValueError):
        stop_risk(risk, 0.0)
    with pytest.raises(ValueError):
        stop_risk(risk, 0.5, -1.0)


def test_reset_without_reseed_keeps_the_noise_stream():
    hmap = None
    a, b = (MPPI(KinematicModel(), NavigationCost(), MPPIConfig(num_samples=64, horizon=5, seed=4)) for _ in range(2))
    state = NavState(pose=np.zeros(3))
    a.plan(state, hmap, (2.0, 0.0, 0.0))
    b.plan(state, hmap, (2.0, 0.0, 0.0))
    a.reset(reseed=False)
    assert a.mean is None
    b.reset()  # reseeded: the next plan repeats the first one
    pa, pb = a.plan(state, hmap, (2.0, 0.0, 0.0)), b.plan(state, hmap, (2.0, 0.0, 0.0))
    assert not np.allclose(pa.commands, pb.commands)


def test_relative_penalty_compares_with_standing_still():
    cfg = NavigationCostConfig()
    cost = NavigationCost(cfg)
    poses = [[[1.0, 0.0, 0.0]] * 2] * 3
    rollout, cmds = _single(poses, risk=[[0.6, 0.7], [0.6, 0.74], [0.6, 0.8]])
    absolute = cost(rollout, cmds, (1.0, 0.0, 0.0))
    assert float(absolute[0] - 0.0) > cfg.collision_penalty  # no reference: the absolute rule
    cost.set_standstill(torch.tensor([0.6, 0.7]))
    rel = cost(rollout, cmds, (1.0, 0.0, 0.0))
    assert float(rel[0]) < cfg.collision_penalty and float(rel[1]) < cfg.collision_penalty  # within 0.05
    assert float(rel[2] - rel[1]) == pytest.approx(cfg.collision_penalty + cfg.risk_weight * 0.03, rel=1e-4)
    low, _ = _single(poses[:1], risk=[[0.0, 0.55]])
    cost.set_standstill(torch.tensor([0.0, 0.1]))  # the floor never drops below risk_threshold + 0
    assert float(cost(low, cmds[:1], (1.0, 0.0, 0.0))[0]) > cfg.collision_penalty
    cost.set_standstill(torch.tensor([0.6, 0.7, 0.8]))  # another horizon: ignored
    assert float(cost(rollout, cmds, (1.0, 0.0, 0.0))[0]) > cfg.collision_penalty
    off = NavigationCost(NavigationCostConfig(risk_relative=False))
    off.set_standstill(torch.tensor([0.6, 0.7]))
    assert float(off(rollout, cmds, (1.0, 0.0, 0.0))[0]) > cfg.collision_penalty


def test_should_stop_only_when_moving_is_riskier_than_standing_still():
    from morobot.planning.cost import should_stop

    plan = [0.2, 0.7, 0.9]
    assert should_stop(plan, None, 0.5, 1.0, 0.5, 0.05) == (True, 0.7)
    assert should_stop(plan, [0.1, 0.2, 0.3], 0.5, 1.0, 0.5, 0.05) == (True, 0.7)
    assert should_stop(plan, [0.6, 0.66, 0.9], 0.5, 1.0, 0.5, 0.05) == (False, 0.7)  # 0.7 <= 0.66 + 0.05
    assert should_stop(plan, [0.6, 0.66, 0.9], 0.5, 1.0, 0.5, None) == (True, 0.7)  # absolute rule
    assert should_stop([0.1, 0.4], [0.0, 0.0], 0.5, 0.0, 0.5, 0.05) == (False, 0.4)
    with pytest.raises(ValueError):
        should_stop(plan, None, 0.0, 1.0, 0.5, 0.05)


@pytest.mark.parametrize("relative", [True, False])
def test_a_robot_touching_an_obstacle_backs_out_instead_of_freezing(relative):
    """0.3 m in front of the box face (inside the 0.45 m footprint): every plan starts risky.

    With the relative rule the planner steers out and never has to stop; with the absolute rule
    the first plan already trips the stop (the old behaviour that froze robots next to boxes).
    """
    from morobot.planning.cost import should_stop

    hmap = _box_map()
    cfg = MPPIConfig(num_samples=256, horizon=10, seed=0)
    cost = NavigationCost(NavigationCostConfig(risk_relative=relative))
    planner = MPPI(KinematicModel(dt=cfg.dt), cost, cfg)
    plant = KinematicModel(dt=cfg.dt)
    pose = torch.tensor([[BOX[0] - 0.3, 0.0, 0.0]], dtype=torch.float64)
    goal = (0.0, 2.5, 0.0)
    stops = 0
    for _ in range(12):
        plan = planner.plan(NavState(pose=pose[0].numpy()), hmap, goal)
        assert plan.standstill_risk is not None and plan.standstill_risk.shape == (10,)
        stop, _ = should_stop(plan.risk, plan.standstill_risk, cfg.dt, 1.0, 0.5, 0.05 if relative else None)
        if stop:
            stops += 1
            planner.reset(reseed=False)
            continue
        pose = plant.step(pose, torch.tensor(plan.commands[:1]))
    if relative:
        assert stops == 0
        assert float(_box_clearance(pose[:, :2].numpy())[0]) > 0.45
    else:
        assert stops >= 1
