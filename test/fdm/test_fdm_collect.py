"""Data collection on the MuJoCo ANYmal simulator (morobot.fdm.data.collect)."""

import numpy as np
import torch
import pytest

from morobot.fdm.data.collect import CollectConfig, collect, main, run_episode
from morobot.fdm.data.dataset import FDMDataset, read_manifest
from morobot.fdm.heightscan import ScanConfig
from morobot.sim.anymal import AnymalSim
from morobot.sim.worlds import Box, World

SCAN = ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2)


def small(out, **kw):
    base = dict(
        out_dir=str(out),
        kinds=("flat",),
        worlds_per_kind=1,
        samples_per_world=6,
        workers=1,
        world_size=(10.0, 10.0),
        episode_steps=14,
        scan=SCAN,
        progress=False,
    )
    base.update(kw)
    return CollectConfig(**base)


def test_episode_into_a_wall_is_labelled_and_frozen(monkeypatch):
    n, res = 100, 0.1
    wall = Box((2.0, 0.0, 0.5), (0.3, 6.0, 1.0))
    world = World("wall", "boxes", 0, np.zeros((n, n)), res, (-5.0, -5.0), [wall], (-2.0, 0.0, 0.0), (3.0, 0.0, 0.0))
    sim = AnymalSim(world)
    cfg = small("unused", episode_steps=24, stride=1)
    # drive straight at the wall: replace the random stream by a constant forward command
    forward = lambda rng, n, t, dt, limits: np.tile([0.8, 0.0, 0.0], (n, t, 1)).astype(np.float32)  # noqa: E731
    monkeypatch.setattr("morobot.fdm.data.collect.sample_command_sequences", forward)
    samples, stats = run_episode(sim, world, cfg, np.random.default_rng(0), np.array([-1.0, 0.0, 0.0]))
    assert stats["collision"] == 1 and stats["fall"] == 0
    hit = [s for s in samples if s["failed"].any()]
    assert hit, "no sample saw the collision"
    for s in hit:
        first = int(np.argmax(s["failed"]))
        assert (s["failed"][first:] == 1).all()
        np.testing.assert_allclose(s["poses"][first:], np.broadcast_to(s["poses"][first], s["poses"][first:].shape))
        assert s["start_pose"][0] + s["poses"][first, 0] < 2.0  # stopped in front of the wall
    clean = [s for s in samples if not s["failed"].any()]
    for s in clean:  # forward at up to 0.8 m/s: x grows, y and yaw stay near zero
        assert (np.diff(s["poses"][:, 0]) > 0).all()
        assert np.abs(s["poses"][:, 1:]).max() < 0.05
    for s in samples:
        assert s["history"].shape == (10, 9)
        np.testing.assert_allclose(s["history"][:, 0], 0.8, atol=1e-6)  # the commanded vx


def test_collect_writes_valid_data_and_resumes(tmp_path):
    out = tmp_path / "data"
    manifest = collect(small(out))
    assert manifest["total_samples"] == 6 and manifest["kinds"] == ["flat"] and manifest["complete"] is True
    ds = FDMDataset(out)
    assert ds.spec.scan == SCAN and len(ds) == 6
    assert np.isfinite(ds.arrays["poses"]).all()
    # poses are relative to the start: consistent with integrating the commands roughly
    disp = np.linalg.norm(ds.arrays["poses"][:, -1, :2], axis=-1)
    cmd_speed = np.linalg.norm(ds.arrays["commands"][:, :, :2], axis=-1).sum(-1) * 0.5
    assert (disp <= cmd_speed + 0.3).all()
    known = np.isfinite(ds.arrays["scan"])
    assert 0.3 < known.mean() < 1.0  # dropout and unknown patches, mostly known
    entry = manifest["shards"][0]
    assert entry["stats"]["episodes"] >= 1 and entry["world_id"].startswith("flat-")
    with pytest.raises(ValueError, match="already holds data"):
        collect(small(out))
    again = collect(small(out, kinds=("flat", "rough"), resume=True))
    assert again["kinds"] == ["flat", "rough"] and again["total_samples"] == 12
    assert [s["sha256"] for s in again["shards"] if s["kind"] == "flat"] == [entry["sha256"]]
    assert read_manifest(out)["data_hash"] == again["data_hash"]


def test_bad_config_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown world kinds"):
        collect(small(tmp_path, kinds=("moon",)))
    with pytest.raises(ValueError, match="multiple"):
        collect(small(tmp_path, dt=0.12))
    assert main(["--out", str(tmp_path / "x"), "--kinds", "moon", "--no-progress"]) == 2
    assert not (tmp_path / "x").exists()  # nothing written for a rejected configuration


def test_sensor_scans_see_what_the_depth_cameras_see():
    """scan_source="sensor": the scan comes from the mapper fed by the depth cameras, so a tall box
    shows up only as high as the cameras see it (never its top), unlike the ground-truth scan."""
    from morobot.fdm.heightscan import scan_from_world

    n, res = 100, 0.1
    box = Box((2.1, 0.0, 0.75), (0.4, 1.2, 1.5))  # 1.5 m tall, its face 1.9 m ahead of the robot
    world = World("box", "boxes", 0, np.zeros((n, n)), res, (-5.0, -5.0), [box], (-2.0, 0.0, 0.0), (3.0, 0.0, 0.0))
    sim = AnymalSim(world)
    cfg = small("unused", episode_steps=12, stride=1, scan_source="sensor")
    still = lambda rng, n, t, dt, limits: np.zeros((n, t, 3), np.float32)  # noqa: E731
    import morobot.fdm.data.collect as collect_mod

    orig = collect_mod.sample_command_sequences
    collect_mod.sample_command_sequences = still
    try:
        samples, _ = run_episode(sim, world, cfg, np.random.default_rng(0), np.array([0.0, 0.0, 0.0]))
    finally:
        collect_mod.sample_command_sequences = orig
    s = samples[0]
    scan = s["scan"]
    assert scan.shape == SCAN.shape
    gt = scan_from_world(world, s["start_pose"], s["start_z"], SCAN)
    tall = gt > 0.5
    near = tall | np.roll(tall, -1, axis=0) | np.roll(tall, -2, axis=0)  # the box and the cells before its face
    ahead = np.isfinite(scan) & near & (scan > gt.min() + 0.1)  # raised cells the mapper knows
    assert ahead.any(), "the cameras never saw the box"
    assert np.nanmax(scan[ahead]) < 0.3 < np.nanmin(gt[gt > 0.5])  # faces seen to camera height only
    ground = np.isfinite(scan) & (gt < -0.3)
    np.testing.assert_allclose(np.median(scan[ground]), np.median(gt[ground]), atol=0.05)
    assert 0.2 < np.isfinite(scan).mean() < 1.0  # behind and beside the robot stays unknown


def test_unknown_scan_source_rejected(tmp_path):
    with pytest.raises(ValueError, match="scan_source"):
        collect(small(tmp_path, scan_source="lidar"))


def test_a_killed_collection_never_looks_complete(tmp_path):
    """A run that stops after its first world (as after kill -9) leaves an incomplete manifest; the
    resumed run completes it."""
    import morobot.fdm.data.collect as collect_module

    out = tmp_path / "data"
    real = collect_module.collect_world
    calls = []

    def dies_after_one(task):
        if calls:
            raise KeyboardInterrupt  # the process stops here
        calls.append(task)
        return real(task)

    collect_module.collect_world = dies_after_one
    try:
        with pytest.raises(KeyboardInterrupt):
            collect(small(out, kinds=("flat", "rough")))
    finally:
        collect_module.collect_world = real
    partial = read_manifest(out)
    assert partial["complete"] is False and partial["kinds"] == ["flat"]
    assert partial["meta"]["seconds"] > 0.0  # the time spent is recorded with every world, not only at the end
    done = collect(small(out, kinds=("flat", "rough"), resume=True))
    assert done["complete"] is True and done["kinds"] == ["flat", "rough"]
    assert done["meta"]["seconds"] > partial["meta"]["seconds"]  # the sum over both runs
    again = collect(small(out, kinds=("flat", "rough"), resume=True))  # nothing left to do
    assert again["complete"] is True and again["meta"]["seconds"] >= done["meta"]["seconds"]


def test_collection_workers_die_with_their_parent(tmp_path):
    """A worker process started with the collection's initializer ends when its parent is killed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import time, multiprocessing as mp\n"
              "from morobot.procutil import die_with_parent\n"
              "def work(_):\n    time.sleep(60)\n"
              "if __name__ == '__main__':\n"
              "    pool = mp.get_context('spawn').Pool(1, initializer=die_with_parent)\n"
              "    r = pool.map_async(work, [0])\n"
              "    print(pool._pool[0].pid, flush=True)\n    time.sleep(60)\n")
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the worker outlived its killed parent")


def test_collect_on_ray_workers(tmp_path):
    """Two worlds as Ray tasks on a local Ray instance (the default backend for more than one worker)."""
    manifest = collect(small(tmp_path / "data", kinds=("flat", "rough"), workers=2))
    assert manifest["complete"] is True and manifest["total_samples"] == 12
    assert manifest["meta"]["config"]["backend"] == "ray"


def test_collect_on_the_legged_robot(tmp_path):
    """The articulated ANYmal under its policy: valid samples, labelled with its own falls and collisions."""
    manifest = collect(small(tmp_path / "data", robot="legged", kinds=("boxes",), samples_per_world=8))
    assert manifest["complete"] is True and manifest["total_samples"] == 8
    assert manifest["meta"]["source"] == "morobot.locomotion.sim"
    ds = FDMDataset(tmp_path / "data")
    assert np.isfinite(ds.arrays["poses"]).all() and np.isfinite(ds.arrays["history"]).all()
    # it walks: some sample moved, and no further than its commands allow
    disp = np.linalg.norm(ds.arrays["poses"][:, -1, :2], axis=-1)
    cmd_speed = np.linalg.norm(ds.arrays["commands"][:, :, :2], axis=-1).sum(-1) * 0.5
    assert disp.max() > 0.3 and (disp <= cmd_speed + 0.5).all()
    with pytest.raises(ValueError, match="stumbles"):
        collect(small(tmp_path / "other", robot="legged", locomotion={"stumble_rate": 0.3}))


def test_legged_contacts_count_obstacles_and_the_base_not_legs_on_the_ground():
    from morobot.fdm.data.collect import FailureContacts
    from morobot.locomotion.sim import LeggedAnymalSim
    from morobot.sim.worlds import make_world

    sim = LeggedAnymalSim(make_world("flat", 0, size=(8.0, 8.0)))
    contacts = FailureContacts(sim)
    sim.reset((0.0, 0.0, 0.0))
    for _ in range(50):
        sim.advance(0.02)
    assert contacts.max_force() == 0.0  # standing: only the feet touch the ground
    assert contacts.legs and contacts.legs < contacts.robot


def test_legged_history_features_are_collected_and_trainable(tmp_path):
    """--history-features legged_actions: 84-column rows with the joints and the controller's last two
    targets, a spec that says so, a model that takes them; the poorer sets are served from the same data."""
    from morobot.fdm.data.dataset import DatasetError, mirror_batch
    from morobot.fdm.history import feature_names
    from morobot.fdm.model import FDMConfig, PerceptiveFDM
    from morobot.robots import ANYMAL_JOINTS

    out = tmp_path / "data"
    manifest = collect(small(out, robot="legged", history_features="legged_actions", samples_per_world=6))
    ds = FDMDataset(out)
    assert ds.spec.history_features == "legged_actions" and ds.arrays["history"].shape[1:] == (10, 84)
    names = feature_names("legged_actions")
    h = ds.arrays["history"]
    q = h[:, -1, names.index("q_LF_KFE")]
    assert np.all(q < -0.3)  # a bent front knee: the robot stands on its legs
    for j in ANYMAL_JOINTS:  # position error = the newest target - the position
        np.testing.assert_allclose(h[..., names.index(f"qerr_{j}")],
                                   h[..., names.index(f"a1_{j}")] - h[..., names.index(f"q_{j}")], atol=1e-5)
    a1, a2 = h[..., names.index("a1_LF_HFE")], h[..., names.index("a2_LF_HFE")]
    assert not np.allclose(a1, a2)  # two different actions: the policy moves its targets every step
    assert manifest["spec"]["history_dim"] == 84
    model = PerceptiveFDM(FDMConfig(history_dim=84, history_features="legged_actions", scan=ds.spec.scan))
    batch = ds.batch(np.arange(len(ds)), True)
    model.eval()
    with torch.no_grad():
        outputs = model(batch["history"], batch["scan"], batch["commands"])
    assert all(torch.isfinite(v).all() for v in (outputs if isinstance(outputs, tuple) else outputs.values()))
    flipped = mirror_batch(batch, torch.ones(len(ds), dtype=torch.bool), ds.spec.scan, "legged_actions")
    for prefix in ("q_", "a2_"):
        assert torch.allclose(flipped["history"][:, :, names.index(f"{prefix}RF_KFE")],
                              batch["history"][:, :, names.index(f"{prefix}LF_KFE")])
    for features, width in (("legged", 48), ("base", 9)):  # the ablations' inputs from the same data
        sub = FDMDataset(out, history_features=features)
        assert sub.spec.history_features == features and sub.arrays["history"].shape[1:] == (10, width)
        np.testing.assert_array_equal(sub.arrays["history"], h[..., :width])
    base_out = tmp_path / "base"
    collect(small(base_out, samples_per_world=4))
    with pytest.raises(DatasetError, match="not a prefix"):
        FDMDataset(base_out, history_features="legged")
    with pytest.raises(ValueError, match="needs robot legged"):
        collect(small(tmp_path / "x", history_features="legged"))
    with pytest.raises(ValueError, match="does not fit"):
        FDMConfig(history_dim=9, history_features="legged")
