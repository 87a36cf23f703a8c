"""Tiny end-to-end runs: training lowers the loss, resuming is exact, evaluation writes its report."""

import json
import math

import numpy as np
import pytest
import torch

from morobot.fdm.evaluation import evaluate
from morobot.fdm.training import train
from morobot.fdm.checkpoint import load_checkpoint, read_payload
from morobot.fdm.data.dataset import DataSpec
from morobot.fdm.heightscan import ScanConfig
from morobot.fdm.data.synthetic import write_synthetic_dataset

SPEC = DataSpec(scan=ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2))
TINY = {
    "cnn_channels": [4, 8, 8, 8],
    "scan_features": 16,
    "history_hidden": 16,
    "context_dim": 24,
    "predictor_hidden": 16,
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fdmtrain")
    write_synthetic_dataset(root, worlds_per_kind=4, samples_per_world=64, seed=2, spec=SPEC)
    return root


def args(data_dir, out, **kw):
    base = dict(
        data_dir=str(data_dir),
        out_dir=str(out),
        epochs=4,
        batch_size=64,
        lr=1e-2,
        ensemble_size=2,
        val_fraction=0.25,
        test_fraction=0.25,
        num_threads=1,
        progress=False,
        plot_every=100,  # only after the last epoch
        model_overrides=dict(TINY),
    )
    base.update(kw)
    return train.TrainArgs(**base)


def test_training_lowers_loss_and_writes_outputs(data_dir, tmp_path):
    out = tmp_path / "run"
    summary = train.train(args(data_dir, out))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(0, 5))
    initial, rows = rows[0], rows[1:]
    assert "train" not in initial  # epoch 0: the untrained model on the validation worlds
    assert rows[-1]["val"]["loss"] < 0.7 * initial["val"]["loss"]
    assert rows[-1]["train"]["loss"] < rows[0]["train"]["loss"]
    assert (out / "loss.png").stat().st_size > 1000
    model, meta = load_checkpoint(out / "best.pt")
    assert meta["extra"]["split"]["test"] and meta["data_hash"]
    assert model.config.ensemble_size == 2 and model.config.predictor_hidden == 16
    assert float(model.history_std.min()) > 0 and not torch.equal(model.history_std, torch.ones(9))
    assert summary["best_score"] == min(r["val"]["loss"] for r in rows)
    with pytest.raises(ValueError, match="already holds"):
        train.train(args(data_dir, out))


def test_resume_is_exact(data_dir, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    train.train(args(data_dir, full, epochs=2, model_overrides={**TINY, "use_scan": False}))
    train.train(args(data_dir, part, epochs=1, model_overrides={**TINY, "use_scan": False}))
    with open(part / "metrics.jsonl", "a") as fh:  # a line written just before a crash
        fh.write(json.dumps({"epoch": 2, "train": {}}) + "\n")
    train.train(args(data_dir, part, epochs=2, resume=True, model_overrides={**TINY, "use_scan": False}))
    a, b = read_payload(full / "latest.pt")["state_dict"], read_payload(part / "latest.pt")["state_dict"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    epochs = [json.loads(line)["epoch"] for line in (part / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2]
    with pytest.raises(Exception, match="another model config"):
        train.train(args(data_dir, part, epochs=3, resume=True))


def test_main_and_evaluation_against_baselines(data_dir, tmp_path):
    run, ablation, report = tmp_path / "run", tmp_path / "noscan", tmp_path / "eval"
    cfg = tmp_path / "model.json"
    cfg.write_text(json.dumps(TINY))
    common = ["--data", str(data_dir), "--epochs", "1", "--max-batches", "2", "--batch-size", "64", "--ensemble", "2"]
    common += ["--threads", "1"]
    common += ["--val-fraction", "0.25", "--test-fraction", "0.25", "--no-progress", "--model-config", str(cfg)]
    assert train.main(common + ["--out", str(run)]) == 0
    assert train.main(common + ["--out", str(ablation), "--no-scan"]) == 0
    assert train.main(["--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    code = evaluate.main(
        ["--data", str(data_dir), "--checkpoint", str(run / "best.pt")]
        + ["--no-scan-checkpoint", str(ablation / "best.pt"), "--out", str(report), "--plots", "2"]
        + ["--compare", f"again={run / 'latest.pt'}", "--members", "1"]
    )
    assert code == 0
    results = json.loads((report / "metrics.json").read_text())
    assert set(results["overall"]) == {"fdm", "fdm_1_members", "no_scan", "again", evaluate.BASELINE}
    one, both = results["overall"]["fdm_1_members"], results["overall"]["fdm"]
    assert one["position_error_5s"] != both["position_error_5s"]  # the mean of one member, not of two
    errors, split = (report / "metrics.md").read_text().split("samples without and with a failure")
    assert errors.count("| again |") == 4 and split.count("| again |") == 4  # the same worlds, every subset
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--data", "d", "--checkpoint", "c", "--out", "o", "--compare", "no-equals-sign"])
    _, meta = load_checkpoint(run / "best.pt")
    assert results["worlds"] == sorted(meta["extra"]["split"]["test"])
    for name, block in results["overall"].items():
        for sec in (1, 2, 3, 4, 5):
            assert np.isfinite(block[f"position_error_{sec}s"]) and np.isfinite(block[f"heading_error_{sec}s"])
    assert results["overall"][evaluate.BASELINE]["collision_auroc"] == 0.5
    ours = results["overall"]["fdm"]
    assert ours["vs_baseline_final_lo"] <= ours["vs_baseline_final"] <= ours["vs_baseline_final_hi"]
    assert ours["vs_baseline_final"] == pytest.approx(
        ours["position_error_final"] / results["overall"][evaluate.BASELINE]["position_error_final"] - 1)
    assert "vs_baseline_final" not in results["overall"][evaluate.BASELINE]
    assert set(results["by_kind"]) == {"boxes", "flat", "slope"}
    assert len(list(report.glob("case_*.png"))) == 2
    assert (report / "metrics.md").read_text().count("| fdm |") == 8  # two tables: errors, then the split
    with pytest.raises(ValueError, match="has 2 members"):  # the whole ensemble is the fdm row itself
        evaluate.evaluate(evaluate.parse_args(["--data", str(data_dir), "--checkpoint", str(run / "best.pt"),
                                               "--out", str(report), "--members", "2"]))
    # swapping the checkpoints is caught
    swapped = ["--data", str(data_dir), "--checkpoint", str(run / "best.pt"), "--no-scan-checkpoint", str(run / "best.pt")]
    assert evaluate.main(swapped + ["--out", str(report)]) == 2
    # a compared model split the worlds otherwise (another split seed; or the same data before worlds were
    # added): the test worlds it trained or validated on are left out for every model
    other = tmp_path / "other_split"
    assert train.main(common + ["--out", str(other), "--split-seed", "1"]) == 0
    assert evaluate.main(["--data", str(data_dir), "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "e2"),
                          "--plots", "0", "--compare", f"other={other / 'best.pt'}"]) == 0
    fair = json.loads((tmp_path / "e2" / "metrics.json").read_text())
    _, other_meta = load_checkpoint(other / "best.pt")
    seen = set(other_meta["extra"]["split"]["train"]) | set(other_meta["extra"]["split"]["val"])
    test = set(meta["extra"]["split"]["test"])
    assert set(fair["worlds"]) == test - seen and test & seen  # some were dropped, none seen remain
    assert any("left out" in w for w in fair["warnings"])


def test_scan_ceiling_is_trained_and_kept(data_dir, tmp_path):
    from morobot.fdm.data.dataset import DatasetError, FDMDataset
    from morobot.fdm.heightscan import to_channels

    out = tmp_path / "ceil"
    train.train(args(data_dir, out, epochs=1, scan_ceiling=-0.2))
    model, _ = load_checkpoint(out / "best.pt")
    assert model.config.scan.clip_high == -0.2 and model.config.scan.clip_low == SPEC.scan.clip_low
    ds = FDMDataset(data_dir).use_scan_config(model.config.scan)
    scan = ds.batch(np.arange(len(ds)))["scan"]
    assert float(scan[:, 0][scan[:, 1] > 0].max()) <= -0.2 + 1e-6  # known cells; unknown ones hold the fill
    rel = np.array([[np.nan, 1.0], [-0.5, -3.0]], np.float32)
    ch = to_channels(rel, model.config.scan)
    np.testing.assert_allclose(ch[0], [[SPEC.scan.fill, -0.2], [-0.5, SPEC.scan.clip_low]])
    np.testing.assert_array_equal(ch[1], [[0, 1], [1, 1]])
    wider = ScanConfig(**{**SPEC.scan.to_dict(), "clip_high": 9.0})
    with pytest.raises(DatasetError, match="cannot read"):
        ds.use_scan_config(wider)
    with pytest.raises(ValueError, match="scan_ceiling"):
        train.train(args(data_dir, tmp_path / "bad", scan_ceiling=5.0))


def test_mirror_augmentation_trains_and_is_recorded(data_dir, tmp_path):
    out = tmp_path / "mirror"
    train.train(args(data_dir, out, epochs=2, mirror_prob=0.5))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val"]["loss"] < rows[0]["val"]["loss"]
    _, meta = load_checkpoint(out / "best.pt")
    assert meta["extra"]["args"]["mirror_prob"] == 0.5
    with pytest.raises(ValueError, match="mirror_prob"):
        train.train(args(data_dir, tmp_path / "bad", mirror_prob=1.5))
    assert train.parse_args(["--data", "d", "--out", "o", "--mirror-prob", "0.5"]).mirror_prob == 0.5


def test_incomplete_data_is_refused_unless_allowed(data_dir, tmp_path):
    import json
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(data_dir, partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    manifest["complete"] = False
    (partial / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="incomplete"):
        train.train(args(partial, tmp_path / "refused", epochs=1))
    result = train.train(args(partial, tmp_path / "allowed", epochs=1, allow_incomplete=True))
    assert result is not None


def test_fine_tuning_holds_out_no_world_its_init_saw(data_dir, tmp_path):
    """--init-from: the init's training and validation worlds never land in this run's val/test split."""
    from morobot.fdm.checkpoint import seen_worlds
    from morobot.fdm.data.dataset import train_on_seen

    cfg = {**TINY, "use_scan": False}
    first, tuned = tmp_path / "first", tmp_path / "tuned"
    train.train(args(data_dir, first, epochs=1, model_overrides=cfg))
    _, meta = load_checkpoint(first / "latest.pt")
    seen = seen_worlds(meta)
    assert seen == set(meta["extra"]["split"]["train"]) | set(meta["extra"]["split"]["val"])
    # another split seed: without the rule, some of those worlds would be validation or test worlds
    other = train.split_worlds(train.read_manifest(data_dir), 0.25, 0.25, 1)
    assert seen & (set(other["val"]) | set(other["test"]))
    train.train(args(data_dir, tuned, epochs=1, model_overrides=cfg, split_seed=1,
                     init_from=str(first / "latest.pt")))
    _, tuned_meta = load_checkpoint(tuned / "latest.pt")
    split = tuned_meta["extra"]["split"]
    trained = set(meta["extra"]["split"]["train"])
    assert not trained & set(split["val"]) and not seen & set(split["test"])
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(sum(other.values(), []))
    assert set(tuned_meta["extra"]["seen"]) == seen and seen_worlds(tuned_meta) >= seen  # inherited further
    moved, n = train_on_seen({"train": ["a"], "val": ["b", "c", "e"], "test": ["d", "f"]}, {"c"}, {"c", "d", "e"})
    assert moved == {"train": ["a", "c", "d"], "val": ["b", "e"], "test": ["f"]} and n == 2


@pytest.fixture(scope="module")
def branched_dir(data_dir, tmp_path_factory):
    """The synthetic data with a twin of every sample: the same start, held still (no command, no failure)."""
    from morobot.fdm.data.dataset import read_manifest, write_manifest, write_shard

    root = tmp_path_factory.mktemp("fdmbranched")
    entries = []
    for entry in read_manifest(data_dir)["shards"]:
        with np.load(data_dir / entry["file"], allow_pickle=False) as shard:
            a = {k: shard[k] for k in shard.files}
        twin = {"commands": np.zeros_like(a["commands"]), "poses": np.zeros_like(a["poses"]),
                "failed": np.zeros_like(a["failed"])}
        for k in ("history", "scan", "commands", "poses", "failed", "start_pose", "start_z"):
            a[k] = np.concatenate((a[k], twin.get(k, a[k])))
        entries.append(write_shard(root, entry["world_id"], a, SPEC))
    write_manifest(root, SPEC, entries, {"source": "synthetic, branched"})
    return root


def test_the_ranking_loss_trains_on_samples_with_one_start(branched_dir, data_dir, tmp_path):
    out = tmp_path / "ranked"
    train.train(args(branched_dir, out, epochs=3, rank_weight=1.0, rank_pairs=32, mirror_prob=0.5))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["train"]["ranking"] > 0 for r in rows[1:])
    assert rows[-1]["val"]["ranking"] < rows[0]["val"]["ranking"]  # validation pairs: ranked better
    assert rows[-1]["val"]["ranking"] < 0.5 < math.log(2.0)  # log 2: every pair ranked equal
    assert rows[-1]["val"]["ranking_accuracy"] > 0.9
    _, meta = load_checkpoint(out / "latest.pt")
    assert meta["extra"]["args"]["rank_weight"] == 1.0
    with pytest.raises(ValueError, match="one start and opposite outcomes"):
        train.train(args(data_dir, tmp_path / "plain", epochs=1, rank_weight=1.0))
    with pytest.raises(ValueError, match="rank_weight"):
        train.train(args(branched_dir, tmp_path / "bad", rank_weight=-1.0))
    parsed = train.parse_args(["--data", "d", "--out", "o", "--rank-weight", "0.5", "--rank-pairs", "64"])
    assert (parsed.rank_weight, parsed.rank_pairs) == (0.5, 64)


def test_euclidean_loss_trains_and_its_validation_loss_is_in_metres(data_dir, tmp_path):
    out = tmp_path / "euclid"
    train.train(args(data_dir, out, epochs=3, loss_distance="euclidean"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val"]["final_position_error"] < rows[0]["val"]["final_position_error"]
    for row in rows:  # the validation terms are distances too (mean over steps <= the final step's error here)
        assert 0 < row["val"]["position"] <= row["val"]["final_position_error"] + 0.05
    _, meta = load_checkpoint(out / "latest.pt")
    assert meta["extra"]["args"]["loss_distance"] == "euclidean"
    parsed = train.parse_args(["--data", "d", "--out", "o", "--loss-distance", "euclidean"])
    assert parsed.loss_distance == "euclidean"
    assert train.parse_args(["--data", "d", "--out", "o"]).loss_distance == "squared"
    with pytest.raises(ValueError, match="loss_distance"):
        train.train(args(data_dir, tmp_path / "bad", loss_distance="l1"))


def test_best_checkpoint_can_be_picked_by_the_validation_position_error(data_dir, tmp_path):
    out = tmp_path / "by_position"
    summary = train.train(args(data_dir, out, epochs=3, select_by="position"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]
    errors = [r["val"]["final_position_error"] for r in rows]
    assert summary["best_score"] == min(errors)
    assert read_payload(out / "best.pt")["meta"]["metrics"]["epoch"] == 1 + int(np.argmin(errors))
    assert train.parse_args(["--data", "d", "--out", "o", "--select-by", "position"]).select_by == "position"
    assert train.parse_args(["--data", "d", "--out", "o"]).select_by == "loss"
    with pytest.raises(ValueError, match="select_by"):
        train.train(args(data_dir, tmp_path / "bad", select_by="auroc"))
    with pytest.raises(ValueError, match="select-by position; resume it with that"):  # the best is another metric
        train.train(args(data_dir, out, epochs=4, select_by="loss", resume=True))


def test_stopped_poses_train_fine_tune_and_are_evaluated(data_dir, tmp_path):
    """--stop-at-failure output|train, fine-tuned into from a model without it, evaluated as extra rows."""
    cfg = {**TINY, "use_scan": False}
    plain, output, fitted, tuned, report = (tmp_path / n for n in ("plain", "output", "fitted", "tuned", "eval"))
    train.train(args(data_dir, plain, epochs=2, model_overrides=cfg))
    train.train(args(data_dir, output, epochs=2, model_overrides=cfg, stop_at_failure="output"))
    a, b = read_payload(plain / "latest.pt"), read_payload(output / "latest.pt")
    for k in a["state_dict"]:  # "output" trains exactly as "off" and only reads the poses otherwise
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert not a["config"]["stop_at_failure"] and b["config"]["stop_at_failure"]
    rows = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (plain, output)]
    assert rows[0][-1]["val"]["loss"] == rows[1][-1]["val"]["loss"]
    assert rows[0][-1]["val"]["final_position_error"] != rows[1][-1]["val"]["final_position_error"]
    train.train(args(data_dir, fitted, epochs=2, model_overrides=cfg, stop_at_failure="train"))
    c = read_payload(fitted / "latest.pt")
    assert c["config"]["stop_at_failure"] and not torch.equal(c["state_dict"]["fuse.0.weight"],
                                                              a["state_dict"]["fuse.0.weight"])
    fitted_rows = [json.loads(line) for line in (fitted / "metrics.jsonl").read_text().splitlines()]
    assert fitted_rows[-1]["val"]["loss"] < fitted_rows[0]["val"]["loss"]
    train.train(args(data_dir, tuned, epochs=1, model_overrides=cfg, stop_at_failure="output",
                     init_from=str(plain / "latest.pt")))  # the weights fit: only the outputs are read otherwise
    assert load_checkpoint(tuned / "latest.pt")[0].config.stop_at_failure
    with pytest.raises(ValueError, match="stop-at-failure train; resume it with that"):
        train.train(args(data_dir, fitted, epochs=3, resume=True, model_overrides=cfg, stop_at_failure="output"))
    with pytest.raises(ValueError, match="with --stop-at-failure"):
        train.train(args(data_dir, tmp_path / "bad", model_overrides={**cfg, "stop_at_failure": True}))
    assert train.parse_args(["--data", "d", "--out", "o", "--stop-at-failure", "output"]).stop_at_failure == "output"
    assert train.parse_args(["--data", "d", "--out", "o"]).stop_at_failure == "off"
    results = evaluate.evaluate(evaluate.parse_args(
        ["--data", str(data_dir), "--checkpoint", str(plain / "best.pt"), "--out", str(report), "--plots", "0",
         "--split", "all", "--compare", f"output={output / 'latest.pt'}", "--stop-at-failure"]))
    assert set(results["overall"]) == {"fdm", "fdm_stopped", "output", evaluate.BASELINE}
    plain_row, stopped_row = results["overall"]["fdm"], results["overall"]["fdm_stopped"]
    assert plain_row["collision_auroc"] == stopped_row["collision_auroc"]  # the same failure probabilities
    assert plain_row["position_error_5s"] != stopped_row["position_error_5s"]
