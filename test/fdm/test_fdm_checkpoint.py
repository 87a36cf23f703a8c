"""Checkpoint round trip and rejection of bad files; FDMDynamics on top (morobot.fdm.checkpoint/dynamics)."""

import json

import numpy as np
import pytest
import torch

from morobot.fdm.checkpoint import CheckpointError, load_checkpoint, read_metadata, read_payload, save_checkpoint
from morobot.fdm.dynamics import FDMDynamics
from morobot.fdm.heightscan import scan_from_heightmap
from morobot.fdm.history import ProprioHistory
from morobot.fdm.model import FDMConfig, PerceptiveFDM
from morobot.planning.interface import DynamicsModel, HeightMap, NavState

from fdm_small import SMALL


def trained_like(cfg=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # initialisation draws from the global generator
    model = PerceptiveFDM(cfg or FDMConfig(**SMALL))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    model.set_normalization(torch.rand(9, generator=gen), 1 + torch.rand(9, generator=gen), -0.4, 0.3)
    return model.eval()


@pytest.fixture()
def ckpt(tmp_path):
    model = trained_like()
    path = save_checkpoint(tmp_path / "model.pt", model, seed=7, data_hash="abc", metrics={"val": 0.5})
    return model, path


def test_round_trip_reproduces_outputs(ckpt):
    model, path = ckpt
    loaded, meta = load_checkpoint(path)
    assert meta["seed"] == 7 and meta["data_hash"] == "abc" and meta["metrics"] == {"val": 0.5}
    assert set(meta["versions"]) >= {"torch", "numpy", "python"}
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    side = read_metadata(path)
    assert side["config"] == model.config.to_dict() and len(side["sha256"]) == 64
    assert side["seed"] == 7 and side["data_hash"] == "abc" and side["metrics"] == {"val": 0.5}
    assert not list(path.parent.glob("*.tmp"))  # temporary files were renamed away


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_and_truncated_files(ckpt, tmp_path):
    _, path = ckpt
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(garbage)
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(truncated)


def test_sidecar_mismatch_detected(ckpt):
    _, path = ckpt
    other = trained_like(seed=1)
    save_checkpoint(path.with_name("other.pt"), other)
    path.with_suffix(".json").write_text(path.with_name("other.json").read_text())
    with pytest.raises(CheckpointError, match="does not match its sidecar"):
        load_checkpoint(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="sidecar"):
        load_checkpoint(path)


def test_shape_mismatch_rejected(ckpt, tmp_path):
    _, path = ckpt
    payload = read_payload(path)
    payload["config"]["predictor_hidden"] = 24  # weights were saved for 16
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(CheckpointError, match="mismatched"):
        load_checkpoint(bad)
    payload = read_payload(path)
    del payload["state_dict"]["predictor.w_out"]
    torch.save(payload, bad)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(bad)
    payload = read_payload(path)
    payload["config"]["bogus"] = 1
    torch.save(payload, bad)
    with pytest.raises(CheckpointError, match="invalid config"):
        load_checkpoint(bad)


def test_foreign_and_unsafe_files_rejected(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, plain)
    with pytest.raises(CheckpointError, match="not a morobot FDM checkpoint"):
        load_checkpoint(plain)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "morobot-fdm", "obj": ProprioHistory()}, unsafe)  # arbitrary object: refused
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        load_checkpoint(unsafe)


def test_save_rejects_bad_path_and_meta(tmp_path):
    model = trained_like()
    with pytest.raises(ValueError, match=".pt"):
        save_checkpoint(tmp_path / "model.bin", model)
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "m.pt", model, metrics={"x": object()})
    assert not (tmp_path / "m.pt").exists()


def state_and_map(cfg):
    rng = np.random.default_rng(0)
    hist = ProprioHistory(cfg.history_length, cfg.history_dt)
    for k in range(20):
        hist.push(0.05 * k, [0.5, 0.0, 0.1], [0.45, 0.0, 0.1], [0.0, 0.0, -1.0])
    state = NavState(pose=np.array([1.0, 2.0, 0.5]), z=0.55, history=hist.array(), stamp=1.0)
    hmap = HeightMap(torch.from_numpy(rng.normal(0, 0.05, (60, 60)).astype(np.float32)), (-2.0, -1.0), 0.1)
    return state, hmap


def test_dynamics_from_checkpoint_implements_the_seam(ckpt):
    model, path = ckpt
    dyn = FDMDynamics.from_checkpoint(path)
    assert isinstance(dyn, DynamicsModel)
    assert dyn.dt == model.config.dt
    state, hmap = state_and_map(model.config)
    commands = torch.rand(32, 7, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = dyn.rollout(state, commands, hmap)
    assert out.poses.shape == (32, 7, 3) and out.risk.shape == (32, 7) and out.uncertainty.shape == (32, 7)
    assert ((out.risk >= 0) & (out.risk <= 1)).all() and (out.risk.diff(dim=-1) >= -1e-6).all()
    # the same numbers as the bare model, started from the state's pose
    scan = torch.from_numpy(scan_from_heightmap(hmap, state.pose, state.z, model.config.scan)).unsqueeze(0)
    history = torch.from_numpy(state.history).unsqueeze(0)
    start = torch.tensor(state.pose, dtype=torch.float32)
    with torch.no_grad():
        ref = model.predict(model.encode(history, scan), commands, start)
    assert torch.allclose(out.poses, ref.poses, atol=1e-5)
    # context cached within a cycle, recomputed when the map changes
    ctx = dyn.encode(state, hmap)
    assert dyn.encode(state, hmap) is ctx
    changed = HeightMap(hmap.heights + 0.3, hmap.origin, hmap.resolution)
    assert dyn.encode(state, changed) is not ctx
    # no history, no map: still a valid rollout
    bare = dyn.rollout(NavState(pose=np.zeros(3), z=0.5), commands, None)
    assert torch.isfinite(bare.poses).all()


def test_dynamics_rejects_bad_input(ckpt):
    model, path = ckpt
    dyn = FDMDynamics.from_checkpoint(path)
    state, hmap = state_and_map(model.config)
    with pytest.raises(ValueError, match=r"\[K, T, 3\]"):
        dyn.rollout(state, torch.zeros(4, 3), hmap)
    with pytest.raises(ValueError, match="finite"):
        dyn.rollout(state, torch.full((2, 3, 3), float("nan")), hmap)
    with pytest.raises(ValueError, match="state.history"):
        dyn.rollout(NavState(pose=np.zeros(3), history=np.zeros((3, 9))), torch.zeros(2, 3, 3), hmap)
    with pytest.raises(ValueError, match="state.pose"):
        dyn.rollout(NavState(pose=np.zeros(2)), torch.zeros(2, 3, 3), hmap)
    with pytest.raises(CheckpointError):
        FDMDynamics.from_checkpoint(path.with_name("missing.pt"))


def test_single_member_model_reports_no_uncertainty(tmp_path):
    model = trained_like(FDMConfig(**{**SMALL, "ensemble_size": 1}))
    path = save_checkpoint(tmp_path / "one.pt", model)
    state, hmap = state_and_map(model.config)
    out = FDMDynamics.from_checkpoint(path).rollout(state, torch.zeros(4, 5, 3), hmap)
    assert out.uncertainty is None
    assert json.loads(path.with_suffix(".json").read_text())["config"]["ensemble_size"] == 1


def test_compiled_rollout_matches_eager(ckpt):
    """``compile=True``: rollouts through torch.compile give the eager numbers, and after ``warm_up`` of a
    shape a real rollout of that shape runs the compiled graph without compiling again."""
    model, path = ckpt
    eager = FDMDynamics.from_checkpoint(path)
    dyn = FDMDynamics.from_checkpoint(path, compile=True)
    assert dyn.compiled and not eager.compiled
    k = 64
    assert dyn.warm_up(k, 6) > 0.0 and dyn.warm_up(1, 6) > 0.0
    state, hmap = state_and_map(model.config)
    commands = torch.rand(k, 6, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    # from here a recompilation raises, which the dynamics reports as a fallback to eager (compile_error); the
    # config's own patch, not monkeypatch: setting the attribute left dynamo's config unusable for later tests
    with torch._dynamo.config.patch(error_on_recompile=True):
        out, one = dyn.rollout(state, commands, hmap), dyn.rollout(state, commands[:1], hmap)
    ref = eager.rollout(state, commands, hmap)
    assert dyn.compiled and dyn.compile_error is None  # the warmed-up graph ran: no recompile, no fallback
    for a, b in ((out.poses, ref.poses), (out.risk, ref.risk), (out.uncertainty, ref.uncertainty)):
        assert torch.allclose(a, b, atol=1e-5)
    # MPPI's final rollout of its mean (one sample): warmed up too
    assert dyn.compiled and dyn.compile_error is None and torch.allclose(one.poses, ref.poses[:1], atol=1e-5)


def test_failed_compilation_falls_back_to_eager(ckpt, monkeypatch):
    model, path = ckpt

    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("InductorError: no working C++ compiler found\nsecond line")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    dyn = FDMDynamics.from_checkpoint(path, compile=True)
    eager = FDMDynamics.from_checkpoint(path)
    state, hmap = state_and_map(model.config)
    commands = torch.rand(80, 5, 3, generator=torch.Generator().manual_seed(2)) * 2 - 1
    out = dyn.rollout(state, commands, hmap)
    assert not dyn.compiled
    assert dyn.compile_error == "RuntimeError: InductorError: no working C++ compiler found"
    assert torch.allclose(out.poses, eager.rollout(state, commands, hmap).poses, atol=1e-6)
