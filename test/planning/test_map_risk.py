"""Tests of MapRiskOverlay: geometric terrain risk at the poses another model predicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from morobot.navigation.factory import make_fdm_planner_dynamics, make_planner
from morobot.navigation.params import PlannerParams, load
from morobot.planning.interface import DynamicsModel, HeightMap, NavState, Rollout
from morobot.planning.kinematic import KinematicModel
from morobot.planning.map_risk import MapRiskOverlay

DT = 0.5


class ShiftedModel:
    """Predicts straight motion along +x at the commanded vx but only ``gain`` of it, zero risk.

    A stand-in for a learned model whose poses differ from perfect tracking.
    """

    dt = DT

    def __init__(self, gain: float = 0.5, risk: float = 0.0) -> None:
        self.gain, self.risk = gain, risk

    def rollout(self, state, commands, hmap):
        k, t, _ = commands.shape
        x = state.pose[0] + self.gain * DT * torch.cumsum(commands[..., 0], dim=1)
        poses = torch.stack((x, torch.full_like(x, float(state.pose[1])), torch.zeros_like(x)), dim=-1)
        unc = torch.full((k, t), 0.1, dtype=commands.dtype)
        return Rollout(poses=poses, risk=torch.full((k, t), self.risk, dtype=commands.dtype), uncertainty=unc)


def _wall_map(wall_x: float = 3.0) -> HeightMap:
    """A flat 10 x 10 m map (origin at -5, -5) with a 1 m wall filling the rows x >= wall_x."""
    h = torch.zeros(100, 100)
    xs = -5.0 + 0.1 * torch.arange(100)
    h[xs >= wall_x, :] = 1.0
    return HeightMap(heights=h, origin=(-5.0, -5.0), resolution=0.1)


def _cmds(vx: float, steps: int = 10, k: int = 1) -> torch.Tensor:
    return torch.tensor([vx, 0.0, 0.0], dtype=torch.float32).expand(k, steps, 3).clone()


def test_is_a_dynamics_model_and_keeps_poses_and_uncertainty():
    inner = ShiftedModel()
    overlay = MapRiskOverlay(inner, KinematicModel(dt=DT))
    assert isinstance(overlay, DynamicsModel) and overlay.dt == DT
    state = NavState(pose=np.zeros(3))
    cmds = _cmds(1.0, k=3)
    a, b = inner.rollout(state, cmds, _wall_map()), overlay.rollout(state, cmds, _wall_map())
    torch.testing.assert_close(a.poses, b.poses)
    torch.testing.assert_close(a.uncertainty, b.uncertainty)


def test_risk_follows_the_predicted_poses_not_perfect_tracking():
    """Commanded 1 m/s for 5 s reaches the wall at x = 3; the model says the robot covers 30 % of that."""
    geo = KinematicModel(dt=DT)
    state = NavState(pose=np.array([0.0, 0.0, 0.0]))
    hmap = _wall_map(3.0)
    kin = geo.rollout(state, _cmds(1.0), hmap)
    assert float(kin.risk.amax()) > 0.9  # perfect tracking drives into the wall
    slow = MapRiskOverlay(ShiftedModel(gain=0.3), geo).rollout(state, _cmds(1.0), hmap)
    assert float(slow.risk.amax()) < 0.05  # predicted to stop at x = 1.5, well short of the wall
    fast = MapRiskOverlay(ShiftedModel(gain=1.0), geo).rollout(state, _cmds(1.0), hmap)
    assert float(fast.risk.amax()) > 0.9


def test_risk_is_cumulative_and_at_least_the_inner_risk():
    geo = KinematicModel(dt=DT)
    state = NavState(pose=np.array([0.0, 0.0, 0.0]))
    out = MapRiskOverlay(ShiftedModel(gain=1.0, risk=0.2), geo).rollout(state, _cmds(1.0), _wall_map(3.0))
    r = out.risk[0]
    assert torch.all(r[1:] >= r[:-1])
    assert torch.all(r >= 0.2 - 1e-6)
    assert float(r[0]) == pytest.approx(0.2, abs=1e-3)  # the first 0.5 m is far from the wall
    assert float(r[-1]) > 0.9 and torch.all(out.model_risk == 0.2)  # the model's own part, for diagnostics


def test_per_step_map_risk_shows_which_plans_leave_a_risky_spot():
    """Starting with the footprint on the wall: with the running maximum every plan is as risky as standing
    still; per step, backing away gets less risky with every step and crossing the wall is still seen."""
    geo = KinematicModel(dt=DT)
    state = NavState(pose=np.array([2.8, 0.0, 0.0]))
    hmap = _wall_map(3.0)
    away = torch.cat((_cmds(-0.4), _cmds(0.0)))  # back off at 0.4 m/s; stand still
    cum = MapRiskOverlay(ShiftedModel(gain=1.0), geo).rollout(state, away, hmap)
    assert torch.allclose(cum.risk[0], cum.risk[1]) and float(cum.risk[0, 0]) > 0.5
    step = MapRiskOverlay(ShiftedModel(gain=1.0), geo, cumulative=False).rollout(state, away, hmap)
    assert torch.all(step.risk[0, 1:] <= step.risk[0, :-1] + 1e-6) and float(step.risk[0, -1]) < 0.05
    assert float(step.risk[0].mean()) < float(step.risk[1].mean())
    through = MapRiskOverlay(ShiftedModel(gain=1.0), geo, cumulative=False).rollout(
        NavState(pose=np.zeros(3)), _cmds(1.0), hmap)
    assert float(through.risk.amax()) > 0.9  # the peak, which the penalty and the stop use, is unchanged


def test_commanded_map_risk_is_at_least_the_kinematic_planners():
    """The model predicts the robot covers 30 % of the commanded 5 m towards a wall at 3 m: on its own poses
    the path is safe; with the commanded path counted, the plan is as risky as the kinematic model says."""
    geo = KinematicModel(dt=DT)
    state = NavState(pose=np.array([0.0, 0.0, 0.0]))
    hmap = _wall_map(3.0)
    cmds = torch.cat((_cmds(1.0), _cmds(0.2)))
    kin = geo.rollout(state, cmds, hmap)
    for cumulative in (True, False):
        plain = MapRiskOverlay(ShiftedModel(gain=0.3), geo, cumulative=cumulative).rollout(state, cmds, hmap)
        assert float(plain.risk.amax()) < 0.05
        both = MapRiskOverlay(ShiftedModel(gain=0.3), geo, cumulative, commanded=True).rollout(state, cmds, hmap)
        assert torch.all(both.risk >= kin.risk - 1e-6) and float(both.risk[0].amax()) > 0.9
        assert float(both.risk[1].amax()) < 0.05  # 0.2 m/s for 5 s stays 2 m short of the wall
    assert torch.all(both.risk[0] == kin.risk[0])  # per step: exactly the kinematic model's


def test_without_learned_poses_the_kinematic_rollout_carries_the_learned_risk():
    geo = KinematicModel(dt=DT)
    state = NavState(pose=np.array([0.0, 0.0, 0.0]))
    hmap = _wall_map(3.0)
    cmds = torch.cat((_cmds(1.0), _cmds(0.2)))
    kin = geo.rollout(state, cmds, hmap)
    out = MapRiskOverlay(ShiftedModel(gain=0.3, risk=0.4), geo, cumulative=False, learned_poses=False).rollout(
        state, cmds, hmap)
    torch.testing.assert_close(out.poses, kin.poses)  # the commanded motion, not the model's 30 %
    torch.testing.assert_close(out.risk, torch.maximum(kin.risk, torch.full_like(kin.risk, 0.4)))
    assert out.uncertainty is None  # the model's spread belongs to its own poses
    blind = MapRiskOverlay(ShiftedModel(gain=0.3, risk=0.4), geo, learned_poses=False).rollout(state, cmds, None)
    torch.testing.assert_close(blind.poses, kin.poses)
    assert torch.all(blind.risk == 0.4)


def test_kinematic_poses_need_the_map_risk(tmp_path):
    p = {**load(PlannerParams, "mppi_planner"), "dynamics": "fdm", "fdm_poses": False, "fdm_map_risk": False}
    with pytest.raises(ValueError, match="needs fdm_map_risk"):
        make_fdm_planner_dynamics(p, tmp_path / "unused.pt")


def test_passing_over_an_obstacle_between_poses_is_seen():
    """A thin wall between two predicted poses: the chord midpoint catches it."""
    h = torch.zeros(100, 100)
    h[69:71, :] = 1.0  # x in [1.9, 2.0]
    hmap = HeightMap(heights=h, origin=(-5.0, -5.0), resolution=0.1)
    geo = KinematicModel(dt=DT, footprint_radius=0.1)
    state = NavState(pose=np.array([0.0, 0.0, 0.0]))
    # steps of 1.2 m: poses at 1.2, 2.4, ... so no end pose is within 0.1 m of the wall, the midpoint 1.8 is
    out = MapRiskOverlay(ShiftedModel(gain=1.0), geo).rollout(state, _cmds(2.4, steps=3), hmap)
    assert float(out.risk[0, 1]) > 0.5


def test_without_a_map_the_inner_risk_is_unchanged():
    inner = ShiftedModel(risk=0.25)
    out = MapRiskOverlay(inner, KinematicModel(dt=DT)).rollout(NavState(pose=np.zeros(3)), _cmds(1.0), None)
    assert torch.all(out.risk == 0.25) and torch.all(out.model_risk == 0.25)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dynamics model"):
        MapRiskOverlay(object(), KinematicModel())
    with pytest.raises(ValueError, match="KinematicModel"):
        MapRiskOverlay(ShiftedModel(), ShiftedModel())


def test_factory_wraps_the_fdm_per_parameter(tmp_path):
    from morobot.fdm.checkpoint import save_checkpoint
    from morobot.fdm.dynamics import FDMDynamics
    from morobot.fdm.model import FDMConfig, PerceptiveFDM

    from fdm_small import SMALL

    ckpt = tmp_path / "fdm.pt"
    torch.manual_seed(0)
    save_checkpoint(ckpt, PerceptiveFDM(FDMConfig(**SMALL)))
    p = load(PlannerParams, "mppi_planner")
    assert p["fdm_map_risk"] is True  # the shipped default
    dyn, history = make_fdm_planner_dynamics(p, ckpt)
    assert isinstance(dyn, MapRiskOverlay) and isinstance(dyn.inner, FDMDynamics)
    assert history is not None
    planner = make_planner(p, dyn)
    assert planner.cost.cost_to_go.risk_source is dyn.geometric  # one risk map per cycle, shared
    plain, _ = make_fdm_planner_dynamics({**p, "fdm_map_risk": False}, ckpt)
    assert isinstance(plain, FDMDynamics)
    with pytest.raises(ValueError, match="horizon"):
        make_fdm_planner_dynamics({**p, "horizon": 50}, ckpt)
    with pytest.raises(KeyError, match="fdm_map_risk"):
        make_fdm_planner_dynamics({k: v for k, v in p.items() if k != "fdm_map_risk"}, ckpt)
    # the wrapped FDM plans: finite, in [0, 1], non-decreasing risk
    state = NavState(pose=np.array([0.0, 0.0, 0.0]))
    out = dyn.rollout(state, _cmds(0.8, steps=int(p["horizon"]), k=4), _wall_map(2.0))
    assert torch.isfinite(out.risk).all() and float(out.risk.min()) >= 0.0 and float(out.risk.max()) <= 1.0
    assert torch.all(out.risk[:, 1:] >= out.risk[:, :-1])
    assert math.isfinite(float(out.poses.abs().sum()))


def test_factory_compiles_the_fdm_at_start_up(tmp_path, monkeypatch):
    """``fdm_compile``: the factory asks for torch.compile and runs it once at the planner's batch shape."""
    from morobot.fdm.checkpoint import save_checkpoint
    from morobot.fdm.model import FDMConfig, PerceptiveFDM

    from fdm_small import SMALL

    ckpt = tmp_path / "fdm.pt"
    save_checkpoint(ckpt, PerceptiveFDM(FDMConfig(**SMALL)))
    shapes = []

    def recording_compile(fn, **kwargs):
        assert kwargs == {"dynamic": False}

        def run(context, commands, start):
            shapes.append(tuple(commands.shape))
            return fn(context, commands, start)
        return run

    monkeypatch.setattr(torch, "compile", recording_compile)
    p = load(PlannerParams, "mppi_planner")
    assert p["fdm_compile"] is False  # the shipped default: eager
    eager, _ = make_fdm_planner_dynamics(p, ckpt)
    assert not eager.inner.compiled and shapes == []
    dyn, _ = make_fdm_planner_dynamics({**p, "fdm_compile": True}, ckpt)
    horizon = p["horizon"]  # compiled before the first cycle, for the samples and for MPPI's final rollout
    assert dyn.inner.compiled and shapes == [(p["num_samples"], horizon, 3), (1, horizon, 3)]
    with pytest.raises(KeyError, match="fdm_compile"):
        make_fdm_planner_dynamics({k: v for k, v in p.items() if k != "fdm_compile"}, ckpt)


def test_factory_uses_the_first_fdm_members(tmp_path):
    """``fdm_members``: the planner's FDM keeps at most the checkpoint's first N ensemble members (0 = all)."""
    from morobot.fdm.checkpoint import save_checkpoint
    from morobot.fdm.model import FDMConfig, PerceptiveFDM

    from fdm_small import SMALL

    ckpt = tmp_path / "fdm.pt"
    torch.manual_seed(0)
    save_checkpoint(ckpt, PerceptiveFDM(FDMConfig(**SMALL)))  # 3 members
    p = load(PlannerParams, "mppi_planner")
    assert p["fdm_members"] == 2  # the shipped default (docs/navigation_eval.md, "Session 18")
    full, _ = make_fdm_planner_dynamics({**p, "fdm_members": 0}, ckpt)
    two, _ = make_fdm_planner_dynamics(p, ckpt)
    many, _ = make_fdm_planner_dynamics({**p, "fdm_members": 9}, ckpt)  # more than it has: all of them
    assert full.inner.config.ensemble_size == many.inner.config.ensemble_size == 3
    assert two.inner.config.ensemble_size == 2
    state = NavState(pose=np.array([0.0, 0.0, 0.0]))
    cmds = _cmds(0.8, steps=int(p["horizon"]), k=4)
    assert two.rollout(state, cmds, None).uncertainty is not None
    one, _ = make_fdm_planner_dynamics({**p, "fdm_members": 1, "fdm_map_risk": False}, ckpt)
    assert one.rollout(state, cmds, None).uncertainty is None  # a single member has no spread to weigh
    with pytest.raises(ValueError, match="members"):
        make_fdm_planner_dynamics({**p, "fdm_members": -1}, ckpt)
    with pytest.raises(KeyError, match="fdm_members"):
        make_fdm_planner_dynamics({k: v for k, v in p.items() if k != "fdm_members"}, ckpt)
