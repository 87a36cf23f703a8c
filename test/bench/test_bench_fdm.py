"""Smoke test of bench/bench_fdm.py: the smallest configuration of each measurement, no timing assertions."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fdm_small import SMALL
from morobot.fdm.model import FDMConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_fdm", ROOT / "bench" / "bench_fdm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_fdm"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_fdm", None)


@pytest.fixture(scope="module")
def dyn(bench):
    return bench.load_dynamics()


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_planners_return_finite_commands(bench, dyn):
    r = bench.bench_planning(dyn, samples=64, horizon=3, repeats=2, warmup=0)
    for name in bench.PLANNERS:
        commands = np.asarray(r[name]["commands"])
        assert commands.shape == (3, 3), name
        assert np.all(np.isfinite(commands)), name
        assert math.isfinite(r[name]["plan_cost"]), name
        assert r[name]["wall_median"] > 0.0 and r[name]["wall_min"] > 0.0
    assert r["max_cost_gap"] < 1e-3
    assert r["max_compiled_gap"] < 1e-3 and r["compile_seconds"] > 0.0  # torch.compile: the same plans


def test_fewer_members_are_timed_against_the_whole_ensemble(bench, dyn):
    two = bench.load_dynamics(members=2)
    assert dyn.config.ensemble_size > 2
    r = bench.bench_planning(two, samples=64, horizon=3, repeats=1, warmup=0, full=dyn.model)
    assert r["members"] == 2 and r["planners"] == (*bench.PLANNERS, bench.ALL_MEMBERS)
    for name in r["planners"]:
        assert np.all(np.isfinite(r[name]["commands"])) and r[name]["wall_median"] > 0.0, name


def test_per_sample_encoding_gives_the_same_plan(bench, dyn):
    hmap, base = bench.make_scene(0, dyn)
    planners = bench.make_planners(dyn, samples=64, horizon=3, seed=0)
    ours, theirs = planners["morobot"].mppi, planners["re-encode"].mppi
    for i in range(3):  # warm-started cycles: the same noise stream in both planners
        state = bench.cycle_state(base, i)
        a = ours.plan(state, hmap, bench.GOAL)
        b = theirs.plan(state, hmap, bench.GOAL)
        assert a.best_index == b.best_index
        assert b.best_cost == pytest.approx(a.best_cost, rel=1e-5, abs=1e-4)
        assert b.cost == pytest.approx(a.cost, rel=1e-5, abs=1e-4)
        np.testing.assert_allclose(b.rollout_costs, a.rollout_costs, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(b.commands, a.commands, atol=1e-5)
    assert bench.encoding_gap(dyn, base, hmap, samples=64, horizon=3) < 1e-3


@pytest.mark.parametrize("stop", [True, False])
def test_stepwise_predictor_matches_batched_model(bench, dyn, stop):
    """Also with the poses stopped at the predicted failures (the shipped model's setting) and without."""
    from morobot.fdm.dynamics import FDMDynamics

    dyn = FDMDynamics(dyn.model.with_stop_at_failure(stop), device=dyn.device)
    hmap, state = bench.make_scene(0, dyn)
    gaps = bench.stepwise_gap(dyn, state, hmap, samples=32, horizon=5)
    assert gaps["position"] < 1e-4 and gaps["yaw"] < 1e-4
    assert gaps["risk"] < 1e-5 and gaps["uncertainty"] < 1e-4


def test_training_step_small_config(bench):
    configs = {"small": FDMConfig(**SMALL), "small no scan": FDMConfig(**{**SMALL, "use_scan": False})}
    r = bench.bench_training(batch=8, repeats=1, warmup=0, configs=configs)
    for name in configs:
        assert r[name]["samples_per_s"] > 0.0
        assert math.isfinite(r[name]["loss"])


def test_collection_smallest_run(bench):
    r = bench.bench_collection(["flat"], samples_per_world=5)
    assert r["collector"]["samples"] == 5
    assert r["collector"]["sim_s"] > 0.0 and r["physics"]["sim_s"] > 0.0
    assert r["physics"]["drive_wall"] > 0.0


def test_several_sample_sizes_and_a_device_are_parsed(bench):
    args = bench.parse_args(["--sections", "plan", "--samples", "64", "128", "--device", "cpu"])
    assert args.samples == [64, 128] and args.device == "cpu"
    with pytest.raises(SystemExit):
        bench.parse_args(["--samples", "64", "1"])  # every size needs >= 2 samples
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            bench.parse_args(["--device", "cuda"])


def test_synced_dynamics_passes_the_rollout_through(bench, dyn):
    hmap, state = bench.make_scene(0, dyn)
    synced = bench.SyncedDynamics(dyn)
    cmd = torch.zeros(4, 3, 3)
    a, b = synced.rollout(state, cmd, hmap), dyn.rollout(state, cmd, hmap)
    assert synced.dt == dyn.dt
    assert torch.equal(a.poses, b.poses) and torch.equal(a.risk, b.risk)


def test_graphed_dynamics_predicts_as_the_model(bench, dyn):
    """The CUDA-graphs variant (compiled without graphs on a CPU) gives the eager rollout, in fresh tensors."""
    hmap, state = bench.make_scene(0, dyn)
    graphed = bench.GraphedFDMDynamics(dyn.model, "cpu")
    cmd = torch.rand(8, 4, 3, generator=torch.Generator().manual_seed(0)) - 0.5
    a, b = graphed.rollout(state, cmd, hmap), dyn.rollout(state, cmd, hmap)
    assert graphed.compile_error is None
    assert torch.allclose(a.poses, b.poses, atol=1e-5) and torch.allclose(a.risk, b.risk, atol=1e-5)
    again = graphed.rollout(state, -cmd, hmap)
    assert not torch.equal(again.poses, a.poses)
    assert torch.allclose(a.poses, dyn.rollout(state, cmd, hmap).poses, atol=1e-5)  # the second left the first
