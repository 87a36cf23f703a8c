"""On-disk data format, manifest, split and Dataset (morobot.fdm.data.dataset)."""

import json

import numpy as np
import pytest

from morobot.fdm.data.dataset import (
    DatasetError,
    DataSpec,
    FDMDataset,
    freeze_after_failure,
    read_manifest,
    rebuild_manifest,
    split_worlds,
    write_manifest,
    write_shard,
)
from morobot.fdm.heightscan import ScanConfig
from morobot.fdm.data.synthetic import make_world, simulate, write_synthetic_dataset

SPEC = DataSpec(scan=ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fdmdata")
    write_synthetic_dataset(root, worlds_per_kind=3, samples_per_world=40, seed=1, spec=SPEC)
    return root


def test_manifest_and_dataset_shapes(data_dir):
    manifest = read_manifest(data_dir)
    assert manifest["total_samples"] == 9 * 40
    assert manifest["kinds"] == ["boxes", "flat", "slope"]
    assert all(len(s["sha256"]) == 64 and s["file"].startswith("shards/") for s in manifest["shards"])
    ds = FDMDataset(data_dir)
    assert len(ds) == 360
    item = ds[3]
    rows, cols = SPEC.scan.shape
    assert item["history"].shape == (10, 9)
    assert item["scan"].shape == (2, rows, cols)
    assert item["commands"].shape == item["poses"].shape == (10, 3)
    assert item["failed"].shape == (10,)
    batch = ds.batch([0, 5, 7])
    assert batch["scan"].shape == (3, 2, rows, cols)
    assert set(np.unique(batch["scan"][:, 1].numpy())) <= {0.0, 1.0}
    assert sum(len(b["commands"]) for b in ds.iterate(64, shuffle=True)) == 360
    assert set(ds.kinds) == {"boxes", "flat", "slope"}
    stats = ds.normalization()
    assert stats["history_mean"].shape == (9,) and stats["scan_std"] > 0


def test_failure_flags_cumulative_and_poses_frozen(data_dir):
    ds = FDMDataset(data_dir)
    failed = ds.arrays["failed"]
    assert (np.diff(failed.astype(int), axis=1) >= 0).all()
    poses = ds.arrays["poses"]
    for i in np.flatnonzero(failed[:, -1])[:10]:
        first = int(np.argmax(failed[i]))
        assert np.allclose(poses[i, first:], poses[i, first])


def test_freeze_after_failure_unit():
    poses = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    failed = np.array([[0, 1, 0, 0], [0, 0, 0, 0]])
    p, f = freeze_after_failure(poses, failed)
    np.testing.assert_array_equal(f, [[0, 1, 1, 1], [0, 0, 0, 0]])
    np.testing.assert_array_equal(p[0], poses[0][[0, 1, 1, 1]])
    np.testing.assert_array_equal(p[1], poses[1])


def test_split_by_world_is_disjoint_deterministic_and_stratified(data_dir):
    manifest = read_manifest(data_dir)
    a = split_worlds(manifest, 0.2, 0.2, seed=3)
    assert a == split_worlds(manifest, 0.2, 0.2, seed=3)
    sets = [set(a[k]) for k in ("train", "val", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set().union(*sets) == set(manifest["worlds"])
    kinds = {s["world_id"]: s["kind"] for s in manifest["shards"]}
    assert {kinds[w] for w in a["test"]} == {"boxes", "flat", "slope"}
    held = FDMDataset(data_dir, a["test"])
    assert set(held.world_ids) == set(a["test"]) and len(held) == 40 * len(a["test"])
    with pytest.raises(ValueError):
        split_worlds(manifest, 0.6, 0.6)


def test_corrupt_or_missing_data_is_reported(data_dir, tmp_path):
    with pytest.raises(DatasetError, match="manifest not found"):
        FDMDataset(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(DatasetError, match="corrupt"):
        read_manifest(tmp_path)
    manifest = read_manifest(data_dir)
    manifest["shards"][0] = {**manifest["shards"][0], "sha256": "0" * 64}
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "shards").symlink_to(data_dir / "shards")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="SHA-256"):
        FDMDataset(copy)
    with pytest.raises(DatasetError, match="not in"):
        FDMDataset(data_dir, ["no-such-world"])


def test_shard_validation_and_manifest_rebuild(tmp_path):
    world = make_world("boxes", 5)
    arrays = simulate(world, np.random.default_rng(0), 12, SPEC)
    entry = write_shard(tmp_path, "w5-000", arrays, SPEC)
    bad = {**arrays, "commands": arrays["commands"][:, :4]}
    with pytest.raises(DatasetError, match="commands"):
        write_shard(tmp_path, "bad", bad, SPEC)
    with pytest.raises(ValueError, match="shard name"):
        write_shard(tmp_path, "../evil", arrays, SPEC)
    write_manifest(tmp_path, SPEC, [entry])
    (tmp_path / "shards" / "half.npz").write_bytes(b"PK\x03\x04 not a zip")  # a crashed write
    (tmp_path / "manifest.json").unlink()
    manifest = rebuild_manifest(tmp_path, SPEC)
    assert [s["file"] for s in manifest["shards"]] == ["shards/w5-000.npz"]
    assert manifest["meta"]["skipped"] and manifest["data_hash"] == write_manifest(tmp_path, SPEC, [entry])["data_hash"]
    assert len(FDMDataset(tmp_path)) == 12
