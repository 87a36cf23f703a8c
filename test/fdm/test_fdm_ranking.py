"""The ranking term of training (morobot.fdm.training.ranking) and the run's metric file and plot (curves)."""

import json

import numpy as np
import pytest
import torch

from morobot.fdm.data.dataset import DataSpec, FDMDataset, write_manifest, write_shard
from morobot.fdm.data.synthetic import make_world, simulate
from morobot.fdm.heightscan import ScanConfig
from morobot.fdm.model import FDMConfig, PerceptiveFDM
from morobot.fdm.training.curves import plot_curves, truncate_metrics
from morobot.fdm.training.ranking import RankingPairs

SPEC = DataSpec(scan=ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2))


@pytest.fixture(scope="module")
def branched(tmp_path_factory):
    """One world whose every sample has a twin with the same start that stood still and did not fail."""
    root = tmp_path_factory.mktemp("ranking")
    world = make_world("boxes", 3)
    a = simulate(world, np.random.default_rng(3), 48, SPEC)
    twin = {"commands": np.zeros_like(a["commands"]), "poses": np.zeros_like(a["poses"]),
            "failed": np.zeros_like(a["failed"])}
    for k in ("history", "scan", "commands", "poses", "failed", "start_pose", "start_z"):
        a[k] = np.concatenate((a[k], twin.get(k, a[k])))
    write_manifest(root, SPEC, [write_shard(root, world.world_id, a, SPEC)], {"source": "test"})
    return FDMDataset(root)


def _model(data):
    torch.manual_seed(0)
    cfg = FDMConfig(scan=SPEC.scan, history_length=SPEC.history_length, horizon=SPEC.horizon, dt=SPEC.dt,
                    cnn_channels=[4, 8, 8, 8], scan_features=16, history_hidden=16, context_dim=24,
                    predictor_hidden=16, ensemble_size=2)
    model = PerceptiveFDM(cfg)
    model.set_normalization(**data.normalization())
    return model


def test_pairs_are_the_failed_samples_against_their_twins(branched):
    pairs = RankingPairs(branched)
    n = len(branched) // 2
    failed = np.flatnonzero(branched.arrays["failed"][:n, -1])
    assert len(failed) > 3  # the synthetic boxes world has failures
    assert sorted(map(tuple, pairs.pairs.tolist())) == [(i, i + n) for i in failed]
    drawn = pairs.draw(100, torch.Generator().manual_seed(0))
    assert drawn.shape == (100, 2) and set(map(tuple, drawn.tolist())) <= set(map(tuple, pairs.pairs.tolist()))


def test_loss_and_accuracy_follow_the_model(branched):
    pairs, model = RankingPairs(branched), _model(branched)
    before = pairs.evaluate(model, 16, torch.device("cpu"))
    assert set(before) == {"ranking", "ranking_accuracy"} and 0 <= before["ranking_accuracy"] <= 1
    flip = torch.zeros(len(pairs), dtype=torch.bool)
    flip[::2] = True  # reflecting both samples of a pair keeps it a pair
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        pairs.loss(model, pairs.pairs, torch.device("cpu"), flip).backward()
        opt.step()
    after = pairs.evaluate(model, 16, torch.device("cpu"))
    assert after["ranking"] < before["ranking"] and after["ranking_accuracy"] == 1.0
    plain = FDMDataset(branched.root)
    plain.arrays["failed"][:] = 0  # no failure: no pair, nothing to evaluate
    assert len(RankingPairs(plain)) == 0 and RankingPairs(plain).evaluate(model, 16, torch.device("cpu")) == {}


def test_metrics_are_cut_back_to_the_resumed_epoch_and_plotted(tmp_path):
    rows = [{"epoch": 0, "val": {"loss": 2.0}}]
    terms = {"loss": 1.0, "collision": 0.3, "position": 0.2, "heading": 0.1, "stop": 0.01, "ranking": 0.6}
    rows += [{"epoch": e, "train": terms, "val": {"loss": 1.5}} for e in (1, 2, 3)]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    truncate_metrics(path, 2)
    assert [json.loads(line)["epoch"] for line in path.read_text().splitlines()] == [0, 1, 2]
    plot_curves(path, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 1000
    truncate_metrics(tmp_path / "absent.jsonl", 1)  # nothing to cut
    assert not (tmp_path / "absent.jsonl").exists()
