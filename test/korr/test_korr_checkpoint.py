"""KORR checkpoints (round trips, rejection of bad files), runtime policy, train/eval CLI wiring."""

import argparse
import json
import time

import numpy as np
import pytest
import torch

from morobot.korr import checkpoint as ckpt
from morobot.korr.bc import BCPolicy
from morobot.korr.koopman import KoopmanConfig, KoopmanModel
from morobot.korr.residual import ResidualAgent, ResidualConfig
from morobot.korr.tasks import ACT_DIM, OBS_DIM

torch.set_num_threads(1)


def _agent(variant="korr", hidden=256, **config):
    torch.manual_seed(0)
    base = BCPolicy(OBS_DIM, ACT_DIM, hidden=hidden)
    base.normalizer.fit(np.random.default_rng(0).normal(size=(50, OBS_DIM)))
    koop = KoopmanModel(KoopmanConfig(OBS_DIM, ACT_DIM, latent_dim=16, hidden=hidden)) if variant != "mlp" else None
    agent = ResidualAgent(ResidualConfig(variant, OBS_DIM, ACT_DIM, hidden=hidden, **config), base, koop)
    with torch.no_grad():
        agent.actor[-1].weight.normal_(0, 0.5)  # a visible residual
    return agent.eval()


@pytest.fixture(scope="module")
def saved_agent(tmp_path_factory):
    path = tmp_path_factory.mktemp("korr") / "residual_korr.pt"
    agent = _agent()
    ckpt.save_agent(path, agent, "push", 0.1, {"seed": 3})
    return path, agent


def test_agent_round_trip_and_sidecar(saved_agent):
    path, agent = saved_agent
    loaded, payload = ckpt.load_agent(path)
    obs = torch.as_tensor(np.random.default_rng(1).normal(size=(8, OBS_DIM)), dtype=torch.float32)
    # Weight matrices are stored as float16: same actions up to fp16 rounding.
    np.testing.assert_allclose(loaded.act_deterministic(obs).numpy(), agent.act_deterministic(obs).numpy(), atol=2e-3)
    assert loaded.normalizer.mean.dtype == torch.float32
    np.testing.assert_array_equal(loaded.normalizer.std.numpy(), agent.normalizer.std.numpy())
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["sha256"] == ckpt.sha256(path) and side["kind"] == "residual" and side["meta"]["seed"] == 3
    assert payload["config"]["residual"]["variant"] == "korr"
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)


def test_bc_and_koopman_round_trip(tmp_path):
    base = BCPolicy(OBS_DIM, ACT_DIM, hidden=16)
    ckpt.save_bc(tmp_path / "bc.pt", base, "insert", 0.1)
    back, payload = ckpt.load_bc(tmp_path / "bc.pt")
    obs = torch.randn(4, OBS_DIM)
    torch.testing.assert_close(back(obs), base(obs))  # small tensors stay float32: exact
    assert payload["config"]["task"] == "insert"
    koop = KoopmanModel(KoopmanConfig(OBS_DIM, ACT_DIM, latent_dim=8, hidden=16))
    ckpt.save_koopman(tmp_path / "koopman.pt", koop, "insert")
    kback, _ = ckpt.load_koopman(tmp_path / "koopman.pt")
    torch.testing.assert_close(kback.A, koop.A)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_bc(tmp_path / "koopman.pt")  # wrong kind


def test_rejects_bad_files(tmp_path, saved_agent):
    path, _ = saved_agent
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_agent(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_agent(garbage)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_agent(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "something-else", "state_dict": {}}, foreign)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_agent(foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": ckpt.FORMAT, "obj": argparse.Namespace(a=1)}, pickled)  # needs full unpickling
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_agent(pickled)
    # A sidecar that belongs to another file.
    copy = tmp_path / "copy.pt"
    copy.write_bytes(path.read_bytes())
    side = json.loads(path.with_suffix(".json").read_text())
    side["sha256"] = "0" * 64
    copy.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ckpt.CheckpointError, match="sidecar"):
        ckpt.load_agent(copy)
    # Shapes that do not fit the config.
    payload = torch.load(path, weights_only=True)
    payload["config"]["residual"]["hidden"] = 64
    bad = tmp_path / "bad_shape.pt"
    torch.save(payload, bad)
    with pytest.raises(ckpt.CheckpointError, match="does not fit"):
        ckpt.load_agent(bad)
    payload["config"]["residual"]["variant"] = "nonsense"
    torch.save(payload, bad)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_agent(bad)


def test_checkpoints_without_koopman_training_load_as_joint(tmp_path):
    path = tmp_path / "pred.pt"
    ckpt.save_agent(path, _agent(hidden=16, koopman_training="prediction"), "push", 0.1)
    loaded, payload = ckpt.load_agent(path)
    assert loaded.config.koopman_training == "prediction"  # saved with the config
    del payload["config"]["residual"]["koopman_training"]  # as written before the option existed
    del payload["config"]["residual"]["latent_norm"]
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    back = ckpt.load_agent(old)[0].config
    assert back.koopman_training == "joint" and back.latent_norm is False


def test_resume_state_keeps_the_model_optimizer(tmp_path):
    from morobot.korr.ppo import PPO

    pred = dict(hidden=16, koopman_training="prediction")
    ppo = PPO(_agent("korr", **pred))
    assert ppo.model_optimizer is not None and PPO(_agent("korr", hidden=16)).model_optimizer is None  # joint
    state = ppo.state_dict()
    assert "model_optimizer" in state
    PPO(_agent("korr", **pred)).load_state_dict(state)
    without = {k: v for k, v in state.items() if k != "model_optimizer"}
    with pytest.raises(KeyError):  # train.py starts such a run over instead of resuming it
        PPO(_agent("korr", **pred)).load_state_dict(without)


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        ckpt.atomic_write(target, boom)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_resume_state_round_trip(tmp_path):
    from morobot.korr.ppo import PPO

    agent = _agent("mlp", hidden=16)
    ppo = PPO(agent)
    state = {"ppo": ppo.state_dict(), "step": 512, "finished": [[512, 1.0, 1.0, 30]],
             "torch_rng": torch.get_rng_state()}
    ckpt.save_resume(tmp_path / "r.resume.pt", state)
    back = ckpt.load_resume(tmp_path / "r.resume.pt")
    PPO(_agent("mlp", hidden=16)).load_state_dict(back["ppo"])
    assert back["step"] == 512 and back["finished"][0][3] == 30
    (tmp_path / "junk.resume.pt").write_bytes(b"junk")
    assert ckpt.load_resume(tmp_path / "junk.resume.pt") is None
    assert ckpt.load_resume(tmp_path / "absent.resume.pt") is None


# ------------------------------------------------------------------------------- runtime
def test_policy_act_shapes_inputs_and_timing(saved_agent):
    from morobot.korr.kinematics import ArmKinematics
    from morobot.korr.policy import KorrPolicy

    path, _ = saved_agent
    policy = KorrPolicy(path)
    assert policy.task == "push" and policy.variant == "korr" and policy.control_dt == pytest.approx(0.1)
    q7 = ArmKinematics().solve(np.array([0.45, 0.0, 0.15]))
    q9 = np.concatenate([q7, [0.04, 0.04]])
    pose = (np.array([0.5, 0.0, 0.025]), np.array([1.0, 0.0, 0.0, 0.0]))
    cmd = policy.act(q9, np.zeros(9), pose)
    assert cmd.positions.shape == (7,) and cmd.velocities.shape == (7,)
    assert 0.0 <= cmd.gripper <= 0.08 and np.all(np.isfinite(cmd.positions))
    assert np.max(np.abs(cmd.positions - q7)) < 0.3  # one bounded step
    cmd7 = policy.act(q7, np.zeros(7), np.array([0.5, 0.0, 0.025, 1.0, 0.0, 0.0, 0.0]))
    assert cmd7.positions.shape == (7,)
    with pytest.raises(ValueError):
        policy.act(q7[:5], np.zeros(7), pose)
    with pytest.raises(ValueError):
        policy.act(q9, np.zeros(9), np.zeros(5))
    with pytest.raises(ValueError):
        policy.act(np.full(9, np.nan), np.zeros(9), pose)
    policy.reset()
    for _ in range(60):
        policy.act(q9, np.zeros(9), pose)
    median_ms = 1000 * float(np.median(policy.timings[-50:]))
    assert median_ms < 20.0, median_ms  # ~1 ms on an idle core; generous for shared CI machines


def test_policy_rejects_koopman_checkpoint(tmp_path):
    from morobot.korr.policy import KorrPolicy

    koop = KoopmanModel(KoopmanConfig(OBS_DIM, ACT_DIM, latent_dim=8, hidden=16))
    ckpt.save_koopman(tmp_path / "koopman.pt", koop, "push")
    with pytest.raises(ckpt.CheckpointError):
        KorrPolicy(tmp_path / "koopman.pt")


def test_cli_arguments_and_train_bc_stage(tmp_path):
    from morobot.korr.bc import DemoData
    from morobot.korr.cli import eval_args, train_args
    from morobot.korr.train import TrainArgs, main

    parser = argparse.ArgumentParser()
    train_args(parser)
    ns = parser.parse_args(["--task", "push", "--stage", "bc", "--residual-steps", "10", "--no-progress"])
    assert ns.residual_steps == 10 and ns.progress is False and ns.resume is True
    eval_parser = argparse.ArgumentParser()
    eval_args(eval_parser)
    assert eval_parser.parse_args(["--episodes", "5"]).episodes == 5
    assert set(vars(ns)) == set(TrainArgs.__dataclass_fields__)
    rng = np.random.default_rng(0)
    n = 64
    obs = rng.normal(size=(n, OBS_DIM)).astype(np.float32)
    act = np.tanh(rng.normal(size=(n, ACT_DIM))).astype(np.float32)
    (tmp_path / "push").mkdir()
    DemoData(obs, act, act, obs, np.arange(n) // 16, (np.arange(n) % 16) == 15).save(tmp_path / "push" / "demos.npz")
    assert main(["--task", "push", "--stage", "bc", "--bc-epochs", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    policy, payload = ckpt.load_bc(tmp_path / "push" / "bc.pt")
    assert payload["meta"]["metrics"]["epochs"] == 2
    assert (tmp_path / "push" / "bc_loss.png").is_file()
    log = json.loads((tmp_path / "push" / "train_log.json").read_text())
    assert log["bc"]["epochs"] == 2 and "cpu_s" in log["bc"]
    assert main(["--task", "nope", "--out", str(tmp_path), "--no-progress"]) == 2
    t0 = time.perf_counter()
    assert main(["--task", "push", "--stage", "bc", "--out", str(tmp_path), "--no-progress"]) == 0  # skipped: exists
    assert time.perf_counter() - t0 < 5.0
