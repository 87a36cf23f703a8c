"""FDM data from the planner's closed loop (morobot.evaluation.onpolicy)."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from morobot.evaluation.nav import NavParams, PlannerSpec
from morobot.evaluation.onpolicy import FDMRecorder, collect_nav, collection_params, main
from morobot.evaluation.scenarios import make_scenarios
from morobot.fdm.data.collect import CollectConfig, cut_samples
from morobot.fdm.data.dataset import FDMDataset, read_manifest
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


def recorder(**kw):
    cfg = CollectConfig(out_dir="unused", history_features="base", scan=SCAN, horizon=3, stride=1, **kw)
    return FDMRecorder(cfg, rng=np.random.default_rng(0))


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
