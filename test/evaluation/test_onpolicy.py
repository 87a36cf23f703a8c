"""FDM data from the planner's closed loop (morobot.evaluation.onpolicy)."""

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from morobot.evaluation.nav import NavParams, PlannerSpec
from morobot.evaluation import onpolicy
from morobot.evaluation.onpolicy import (BranchRecorder, FDMRecorder, branch_command, branch_steps, branch_summary,
                                         collect_nav, collection_params, failed_scenarios, main, record_scenario,
                                         shard_name)
from morobot.evaluation.scenarios import make_scenarios
from morobot.fdm.data.collect import CollectConfig, cut_samples
from morobot.fdm.data.dataset import DATA_FORMAT, DATA_FORMAT_VERSION, MANIFEST, FDMDataset, read_manifest
from morobot.fdm.heightscan import ScanConfig
from morobot.planning.interface import HeightMap

SCAN = ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2)


class FakeMapper:
    def height_map(self, xy, stamp):
        return HeightMap(torch.zeros(40, 40), (-4.0, -4.0), 0.2)


class FakeSim:
    """Enough of a simulator for the recorder: no contacts, base history columns only."""

    def __init__(self):
        self.data = SimpleNamespace(ncon=0)
        self.model = SimpleNamespace(geom_bodyid=np.zeros(1, dtype=int))
        self.body_id = 0


def state(t, x, fallen=False):
    return SimpleNamespace(time=t, pose=np.array([x, 0.0, 0.0]), position=np.array([x, 0.0, 0.5]),
                           twist=np.array([0.5, 0.0, 0.0]), gravity=np.array([0.0, 0.0, -1.0]), fallen=fallen,
                           stuck=False)


def config(**kw):
    return CollectConfig(out_dir=kw.pop("out_dir", "unused"), history_features="base", scan=SCAN, horizon=3,
                         stride=1, **kw)


def recorder(**kw):
    return FDMRecorder(config(**kw), rng=np.random.default_rng(0))


def drive(rec, steps, fall_at=None, per_step=25, dt=0.02):
    """Planner cycles every ``per_step`` physics steps at 0.5 m/s; a fall in step ``fall_at`` (mid-step)."""
    sim, mapper, t, ended = FakeSim(), FakeMapper(), 0.0, False
    for _ in range(30):  # standing while the map builds: the history fills
        t += dt
        rec.step(sim, state(t, 0.0), mapper)
    for k in range(steps):
        rec.cycle(sim, state(t, 0.25 * k), mapper)
        rec.command(np.array([0.5, 0.0, 0.1 * k]))
        for i in range(per_step):
            t += dt
            fallen = fall_at == k and i == per_step // 2
            if rec.step(sim, state(t, 0.25 * k + 0.01 * (i + 1), fallen), mapper):
                return True
    return ended


def test_recorder_cuts_complete_steps_into_samples():
    rec = recorder()
    assert not drive(rec, 6)
    # 6 commands sent, 5 steps completed (the 6th was cut by the end of the run): samples at 0, 1, 2
    samples = rec.samples()
    assert [s["start_pose"][0] for s in samples] == [0.0, 0.25, 0.5]
    s = samples[1]
    np.testing.assert_allclose(s["commands"][:, 2], [0.1, 0.2, 0.3], atol=1e-6)
    np.testing.assert_allclose(s["poses"][:, 0], [0.25, 0.5, 0.75], atol=1e-6)  # relative to its start
    assert not s["failed"].any()
    assert s["history"].shape == (10, 9) and s["scan"].shape == samples[0]["scan"].shape and s["scan"].ndim == 2
    np.testing.assert_allclose(s["history"][-1, 0], 0.5)  # the held command is the history's command


def test_recorder_labels_a_fall_ends_the_run_and_freezes_the_poses():
    rec = recorder()
    assert drive(rec, 8, fall_at=4)
    assert rec.failure == "fall" and rec.failed_at == 4
    samples = rec.samples()
    assert len(samples) == 5  # starts 0..4: every sample that saw the fall, or ended before it
    last = samples[-1]  # starts at step 4, fails in it
    np.testing.assert_array_equal(last["failed"], [1, 1, 1])
    np.testing.assert_allclose(last["poses"][1:], np.broadcast_to(last["poses"][0], (2, 3)))
    np.testing.assert_allclose(last["commands"][1:], np.broadcast_to(last["commands"][0], (2, 3)))  # held
    np.testing.assert_array_equal(samples[2]["failed"], [0, 0, 1])


def test_recorder_noise_perturbs_within_the_limits():
    cfg = CollectConfig(out_dir="unused", history_features="base", scan=SCAN)
    rec = FDMRecorder(cfg, noise=0.5, rng=np.random.default_rng(1))
    sent = np.array([rec.command(np.array([1.0, 0.5, -1.0])) for _ in range(200)])
    assert np.abs(sent - [1.0, 0.5, -1.0]).max() > 0.1
    assert (np.abs(sent) <= cfg.limits.array() + 1e-12).all()
    with pytest.raises(ValueError):
        FDMRecorder(cfg, noise=-0.1)


def test_cut_samples_holds_the_last_command_after_a_failure():
    starts = {0: {"history": np.zeros((10, 9)), "pose": np.zeros(3), "z": 0.5}}
    poses = [np.array([0.1 * (i + 1), 0.0, 0.0]) for i in range(2)]
    out = cut_samples(starts, poses, np.array([[0.2, 0, 0], [0.4, 0, 0]]), failed_at=1, horizon=4)
    np.testing.assert_allclose(out[0]["commands"][:, 0], [0.2, 0.4, 0.4, 0.4])
    np.testing.assert_array_equal(out[0]["failed"], [0, 1, 1, 1])


def test_collection_params_plan_once_per_model_step():
    p = collection_params(NavParams.load(), 0.5)
    assert p.planner["control_rate"] == 2.0 and p.sim["cmd_timeout"] >= 1.0


def test_collect_nav_writes_data_the_fdm_trains_on(tmp_path):
    out = tmp_path / "nav"
    scenarios = make_scenarios(["stairs"], 1, seed=1, budget=12.0)
    cfg = CollectConfig(out_dir=str(out), history_features="legged_actions", stride=1, workers=1, seed=1,
                        backend="processes", progress=False)
    manifest = collect_nav(scenarios, PlannerSpec("kinematic"), cfg, noise=0.1)
    assert manifest["complete"] and manifest["total_samples"] > 0
    (entry,) = manifest["shards"]
    assert entry["world_id"] == "nav-kinematic-stairs-000-s1" and entry["kind"] == "steps"
    assert entry["stats"]["mix"] == "stairs"
    assert read_manifest(out)["spec"] == CollectConfig(out_dir="", robot="legged", history_features="legged_actions",
                                                       scan_source="sensor").spec.to_dict()
    ds = FDMDataset(out, [entry["world_id"]])
    item = ds[0]
    assert item["history"].shape == (10, 84) and item["scan"].shape == (2, 59, 45)
    # resuming skips the finished scenario; a second run without resume is refused
    assert collect_nav(scenarios, PlannerSpec("kinematic"), replace(cfg, resume=True),
                       noise=0.1)["total_samples"] == manifest["total_samples"]
    with pytest.raises(ValueError):
        collect_nav(scenarios, PlannerSpec("kinematic"), cfg)


def test_cli_rejects_a_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x"), "--fdm-checkpoint", str(tmp_path / "none.pt")])
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_branch_recorder_repeats_the_run_then_holds_its_command_and_keeps_the_samples_that_reach_it():
    main_run = recorder()
    assert drive(main_run, 12, fall_at=8)
    branch = BranchRecorder(config(), 0.0, np.random.default_rng(0), branch=4, alternative=np.zeros(3))
    assert drive(branch, 12, fall_at=8)  # ends itself: the branch's horizon (3 steps) is recorded
    assert branch.failure == "" and len(branch.poses) == 7
    sent = np.array(branch.commands)
    np.testing.assert_array_equal(sent[:4], np.array(main_run.commands)[:4])
    assert not sent[4:].any()
    samples = branch.samples()
    # starts 0..4 complete their horizon; only those reaching step 4 (2, 3, 4) are new
    assert [round(float(s["start_pose"][0]), 2) for s in samples] == [0.5, 0.75, 1.0]
    np.testing.assert_array_equal(samples[0]["commands"][2], [0.0, 0.0, 0.0])
    assert samples[0]["commands"][1, 0] == 0.5
    with pytest.raises(ValueError):
        BranchRecorder(config(), 0.0, np.random.default_rng(0), branch=-1, alternative=np.zeros(3))


def test_branch_steps_and_commands():
    assert branch_steps(10, [2, 4, 6], 1) == [8, 6, 4]
    assert branch_steps(9, [2, 3], 2) == [6]  # rounded down to a sample start, once
    assert branch_steps(3, [2, 3], 1) == [1]  # none before the first possible start
    limits = np.array([1.0, 0.5, 1.0])
    np.testing.assert_array_equal(branch_command("stop", limits, np.random.default_rng(0)), np.zeros(3))
    drawn = np.array([branch_command("random", limits, np.random.default_rng(i)) for i in range(50)])
    assert (np.abs(drawn) <= limits).all() and drawn.std(axis=0).min() > 0.1
    with pytest.raises(ValueError):
        branch_command("fast", limits, np.random.default_rng(0))


class FakeRunner:
    """Drives a probe like :func:`drive`; the planner's run falls in step 6, a branch's command avoids it."""

    def __init__(self):
        self.runs = 0

    def run(self, scenario, probe):
        self.runs += 1
        branched = isinstance(probe, BranchRecorder)
        drive(probe, 10, fall_at=None if branched else 6)
        return {"outcome": "timeout" if branched else "fallen"}


def test_record_scenario_branches_a_failed_run(tmp_path, monkeypatch):
    (scenario,) = make_scenarios(["steps"], 1, seed=1, budget=12.0)
    planner, runner = PlannerSpec("kinematic"), FakeRunner()
    monkeypatch.setattr(onpolicy, "_WORKER", {"key": (planner, "", 1), "runner": runner})
    cfg = config(out_dir=str(tmp_path))
    task = (scenario, planner, "", cfg.to_dict(), 0.0, 1, 1, ((2, 4), ("stop", "random"), True))
    entry = record_scenario(task)
    assert runner.runs == 5  # the run and 2 leads x 2 kinds
    assert entry["world_id"] == shard_name(scenario, planner, 1) + "-branch"
    stats = entry["stats"]
    assert stats["failure"] == "fall" and len(stats["branches"]) == 4
    assert all(b["same_prefix"] and b["failure"] == "" for b in stats["branches"])
    assert sorted({b["lead"] for b in stats["branches"]}) == [2, 4]
    assert entry["samples"] > 0 and entry["failures"] == 0  # the run's own (failing) samples are left out
    assert branch_summary({"shards": [entry]}) == [
        "branch random, 2 steps before the failure: 1 of 1 without a failure",
        "branch random, 4 steps before the failure: 1 of 1 without a failure",
        "branch stop, 2 steps before the failure: 1 of 1 without a failure",
        "branch stop, 4 steps before the failure: 1 of 1 without a failure"]


def test_failed_scenarios_reads_an_earlier_collection(tmp_path):
    scenarios = make_scenarios(["steps"], 3, seed=1, budget=12.0)
    planner = PlannerSpec("kinematic")
    shards = [{"world_id": shard_name(s, planner, 1), "stats": {"failure": f}}
              for s, f in zip(scenarios, ["fall", "", "collision"])]
    (tmp_path / MANIFEST).write_text(json.dumps({"format": DATA_FORMAT, "format_version": DATA_FORMAT_VERSION,
                                                 "spec": {}, "shards": shards, "data_hash": ""}))
    assert failed_scenarios(scenarios, tmp_path, planner, 1) == [scenarios[0], scenarios[2]]
    assert failed_scenarios(scenarios, tmp_path, planner, 2) == []


def test_collect_nav_checks_its_branch_options(tmp_path):
    scenarios = make_scenarios(["steps"], 1, seed=1, budget=12.0)
    cfg = CollectConfig(out_dir=str(tmp_path / "x"), workers=1, backend="processes", progress=False)
    for kw in ({"branch_leads": [0]}, {"branch_leads": [2], "branch_kinds": ["fast"]},
               {"branch_leads": [2], "branch_kinds": []}, {"branches_only": True}):
        with pytest.raises(ValueError):
            collect_nav(scenarios, PlannerSpec("kinematic"), cfg, **kw)
    assert not (tmp_path / "x").exists()
