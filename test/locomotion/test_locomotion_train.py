"""morobot train locomotion: a short run with rsl-rl's PPO, resume, the exported policy."""

import json

import numpy as np
import pytest
import torch

from morobot.locomotion import train
from morobot.locomotion.env import LocomotionEnv
from morobot.locomotion.policy import LocomotionPolicy, PolicyError


def _cfg(out, **kw):
    base = dict(out_dir=str(out), num_envs=4, workers=0, steps_per_env=8, iterations=2, actor_hidden=(32, 16),
                critic_hidden=(32, 16), save_every=1, progress=False)
    return train.TrainConfig(**{**base, **kw})


def test_trains_resumes_and_exports_a_policy(tmp_path):
    out = tmp_path / "run"
    figures = train.train(_cfg(out), command="test")
    assert figures["iteration"] == 2 and figures["env_steps"] == 2 * 4 * 8
    for name in ("latest.pt", "log.csv", "training.png", "policy.pt", "policy.json"):
        assert (out / name).is_file(), name
    with pytest.raises(ValueError, match="--resume"):
        train.train(_cfg(out))
    figures = train.train(_cfg(out, iterations=3), resume=True)
    assert figures["iteration"] == 3
    rows = (out / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 3 and rows[0].startswith("iteration,env_steps")
    meta = json.loads((out / "policy.json").read_text())
    assert meta["iterations"] == 3 and meta["seed"] == 0 and meta["command"]
    policy = LocomotionPolicy(out / "policy.pt")
    env = LocomotionEnv(2, seed=3)
    actions = policy.act(env.observations()["critic"])
    assert actions.shape == (2, 12) and np.isfinite(actions).all()
    # the exported actor is the trained one: same output as the checkpoint's actor
    ckpt = torch.load(out / "latest.pt", weights_only=True)
    assert all(torch.equal(v, ckpt["ppo"]["actor_state_dict"][k])
               for k, v in torch.load(out / "policy.pt", weights_only=True).items())


def test_a_broken_policy_file_is_refused(tmp_path):
    with pytest.raises(PolicyError, match="not found"):
        LocomotionPolicy(tmp_path / "none.pt")
    (tmp_path / "p.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "p.json").write_text(json.dumps({"format": "morobot-locomotion-policy", "format_version": 1}))
    with pytest.raises(PolicyError):
        LocomotionPolicy(tmp_path / "p.pt")


def test_cli_reports_bad_arguments_in_one_line(tmp_path, capsys):
    assert train.main(["--out", str(tmp_path / "x"), "--num-envs", "0"]) == 2
    assert "num_envs" in capsys.readouterr().err


def test_a_run_continues_from_a_shipped_training_state(tmp_path):
    first = tmp_path / "first"
    train.train(_cfg(first), command="test")
    shipped = tmp_path / "models" / "robot_train_state.pt"
    shipped.parent.mkdir()
    (first / "latest.pt").rename(shipped)
    (first / "log.csv").rename(shipped.with_name("robot_log.csv"))
    figures = train.train(_cfg(tmp_path / "second", iterations=3), resume_from=str(shipped))
    assert figures["iteration"] == 3
    assert len((tmp_path / "second" / "log.csv").read_text().strip().splitlines()) == 1 + 3
    with pytest.raises(ValueError, match="does not exist"):
        train.train(_cfg(tmp_path / "third"), resume_from=str(tmp_path / "none.pt"))
    # another run's latest.pt: its log.csv goes on (it was once copied over as the log, binary)
    figures = train.train(_cfg(tmp_path / "fourth", iterations=5), resume_from=str(tmp_path / "second" / "latest.pt"))
    assert figures["iteration"] == 5
    assert len((tmp_path / "fourth" / "log.csv").read_text().strip().splitlines()) == 1 + 5


def test_a_log_from_before_the_curriculum_tracks_is_continued_with_the_new_columns(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("iteration,level_stairs\r\n1,8.5\r\n2,8.6\r\n")
    fields = train._continue_log(log, ["iteration", "level_stairs", "level_stairs_up"])
    assert fields == ["iteration", "level_stairs", "level_stairs_up"]
    rows = log.read_text().splitlines()
    assert rows == ["iteration,level_stairs,level_stairs_up", "1,8.5,", "2,8.6,"]
    assert train._continue_log(log, ["level_stairs", "iteration"]) == fields  # a subset: left as it is
    assert log.read_text().splitlines() == rows
    fresh = tmp_path / "new.csv"
    assert train._continue_log(fresh, ["a", "b"]) == ["a", "b"] and fresh.read_text().strip() == "a,b"


def test_levels_resume_per_track_and_spread_from_a_single_old_level():
    from morobot.locomotion.env import TRACKS
    from morobot.locomotion.vec_env import ProcessVecEnv

    env = ProcessVecEnv(6, workers=0, seed=1, overrides={"patch_size": 8.0})
    try:
        per_track = np.arange(6 * len(TRACKS)).reshape(6, len(TRACKS)) % 10
        env.set_levels(per_track)
        assert np.array_equal(env._local.track_level, per_track)
        # the episodes being played count at their track's restored level (not the constructor's)
        assert np.array_equal(env._local.level, per_track[np.arange(6), env._local.track])
        env.set_levels(np.full(6, 6.0))  # a state saved before the tracks: each track from 0 to that level
        spread = env._local.track_level
        assert spread.shape == (6, len(TRACKS)) and spread.min() >= 0 and spread.max() <= 6
        assert len(np.unique(spread)) > 2
        before = spread.copy()
        env.set_levels(np.zeros(5))  # another number of environments: left as they are
        assert np.array_equal(env._local.track_level, before)
    finally:
        env.close()
