"""On-disk FDM data: compressed numpy shards, a JSON manifest and a torch Dataset over them.

Layout of a data directory::

    manifest.json
    shards/<name>.npz        one world per shard (a world may have several shards)

Each shard (``np.savez_compressed``, written to a temporary name and renamed) holds ``N``
samples of one world:

=================  ====================  ====================================================
key                shape, dtype          meaning
=================  ====================  ====================================================
history            [N, L, 9] float32     proprioceptive history before the start (history.py)
scan               [N, rows, cols] f16   relative heights at the start, NaN = unknown
commands           [N, T, 3] float32     commanded body twists, step t held for ``dt``
poses              [N, T, 3] float32     measured (x, y, yaw) at the end of each step,
                                         relative to the start pose
failed             [N, T] uint8          1 if a failure happened in or before step t
start_pose         [N, 3] float32        start (x, y, yaw) in the world frame
start_z            [N] float32           start base height (m)
world_heights      [nx, ny] float32      the world's ground-truth heightfield (for plots)
world_origin       [2] float64           world (x, y) of heightfield cell [0, 0] centre
world_resolution   [] float64            heightfield cell size (m)
world_id, kind     [] str                world identifier and terrain kind
=================  ====================  ====================================================

``manifest.json`` lists the shards (file, samples, world id, kind, SHA-256), the data spec
(scan geometry, horizon, step and history timing) and a data hash over all of it. The manifest
is derived data: :func:`rebuild_manifest` regenerates it from the shards after a crash.

Length: the on-disk data format in one place: shards and manifest written, validated, split and loaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from morobot.fileio import atomic_write_bytes, atomic_write_json, file_sha256
from morobot.fdm.heightscan import ScanConfig, to_channels
from morobot.fdm.history import HISTORY_DIM, feature_columns, feature_names, mirror_map

DATA_FORMAT = "morobot-fdm-data"
DATA_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_DIR = "shards"
SAMPLE_KEYS = ("history", "scan", "commands", "poses", "failed", "start_pose", "start_z")
WORLD_KEYS = ("world_heights", "world_origin", "world_resolution", "world_id", "kind")


class DatasetError(ValueError):
    """The data directory, its manifest or a shard is missing, corrupt or inconsistent."""


@dataclass(frozen=True)
class DataSpec:
    """What every sample of a data directory looks like.

    Attributes:
        scan: geometry of the stored scans.
        horizon: steps ``T`` per sample.
        dt: duration of one step (s).
        history_length: history rows ``L``.
        history_dt: spacing of history rows (s).
        history_dim: features per history row.
        history_features: the feature set of the rows (``base``, ``legged``; :mod:`morobot.fdm.history`).
    """

    scan: ScanConfig = field(default_factory=ScanConfig)
    horizon: int = 10
    dt: float = 0.5
    history_length: int = 10
    history_dt: float = 0.05
    history_dim: int = HISTORY_DIM
    history_features: str = "base"

    def __post_init__(self) -> None:
        if len(feature_names(self.history_features)) != self.history_dim:
            raise DatasetError(f"history_dim {self.history_dim} does not fit the {self.history_features!r} features "
                               f"({len(feature_names(self.history_features))})")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["scan"] = self.scan.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataSpec":
        try:
            return cls(**{**data, "scan": ScanConfig(**data["scan"])})
        except (TypeError, KeyError, ValueError) as exc:
            raise DatasetError(f"bad data spec {data!r}: {exc}") from exc


def validate_shard(arrays: dict[str, np.ndarray], spec: DataSpec) -> int:
    """Checks shapes and values of shard arrays against ``spec``; returns the sample count.

    Raises:
        DatasetError: on a missing key, a wrong shape or non-finite values where none are allowed.
    """
    missing = [k for k in SAMPLE_KEYS + WORLD_KEYS if k not in arrays]
    if missing:
        raise DatasetError(f"shard lacks arrays {missing}")
    n = int(np.shape(arrays["history"])[0])
    rows, cols = spec.scan.shape
    expected = {
        "history": (n, spec.history_length, spec.history_dim),
        "scan": (n, rows, cols),
        "commands": (n, spec.horizon, 3),
        "poses": (n, spec.horizon, 3),
        "failed": (n, spec.horizon),
        "start_pose": (n, 3),
        "start_z": (n,),
    }
    for key, shape in expected.items():
        if tuple(np.shape(arrays[key])) != shape:
            raise DatasetError(f"shard array {key!r} has shape {np.shape(arrays[key])}, expected {shape}")
    for key in ("history", "commands", "poses", "start_pose", "start_z"):
        if not np.all(np.isfinite(arrays[key])):
            raise DatasetError(f"shard array {key!r} has non-finite values")
    if np.ndim(arrays["world_heights"]) != 2 or np.shape(arrays["world_origin"]) != (2,):
        raise DatasetError("shard world_heights must be [nx, ny] and world_origin [2]")
    if n < 1:
        raise DatasetError("shard has no samples")
    return n


def write_shard(root: str | Path, name: str, arrays: dict[str, Any], spec: DataSpec) -> dict[str, Any]:
    """Validates and writes one shard atomically to ``root/shards/<name>.npz``.

    Args:
        root: data directory.
        name: shard name (letters, digits, ``-`` and ``_``), unique within the directory.
        arrays: the shard arrays (see module docstring); ``world_id`` and ``kind`` as strings.
        spec: the data spec the arrays must follow.

    Returns:
        The manifest entry of the shard.

    Raises:
        DatasetError: if the arrays do not follow ``spec``.
        ValueError: on a bad shard name.
    """
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"shard name must be non-empty letters, digits, '-' or '_', got {name!r}")
    out = {
        "history": np.asarray(arrays["history"], dtype=np.float32),
        "scan": np.asarray(arrays["scan"], dtype=np.float16),
        "commands": np.asarray(arrays["commands"], dtype=np.float32),
        "poses": np.asarray(arrays["poses"], dtype=np.float32),
        "failed": np.asarray(arrays["failed"], dtype=np.uint8),
        "start_pose": np.asarray(arrays["start_pose"], dtype=np.float32),
        "start_z": np.asarray(arrays["start_z"], dtype=np.float32),
        "world_heights": np.asarray(arrays["world_heights"], dtype=np.float32),
        "world_origin": np.asarray(arrays["world_origin"], dtype=np.float64).reshape(2),
        "world_resolution": np.asarray(float(arrays["world_resolution"]), dtype=np.float64),
        "world_id": np.asarray(str(arrays["world_id"])),
        "kind": np.asarray(str(arrays["kind"])),
    }
    n = validate_shard(out, spec)
    rel = f"{SHARD_DIR}/{name}.npz"
    path = Path(root) / rel
    atomic_write_bytes(path, lambda fh: np.savez_compressed(fh, **out))
    return _entry(rel, path, out, n)


def _entry(rel: str, path: Path, arrays: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "file": rel,
        "samples": n,
        "world_id": str(arrays["world_id"]),
        "kind": str(arrays["kind"]),
        "failures": int(np.asarray(arrays["failed"])[:, -1].sum()),
        "sha256": file_sha256(path),
    }


def data_hash(spec: DataSpec, shards: Sequence[dict[str, Any]]) -> str:
    """Hash identifying a data set: the spec and the SHA-256 of every shard."""
    digest = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode())
    for sha in sorted(s["sha256"] for s in shards):
        digest.update(sha.encode())
    return digest.hexdigest()


def write_manifest(
    root: str | Path, spec: DataSpec, shards: Sequence[dict[str, Any]], meta: Optional[dict] = None,
    complete: bool = True,
) -> dict:
    """Writes ``manifest.json`` atomically and returns it.

    Args:
        complete: false while a collection or conversion is still running (or was killed): the data
            then never looks complete, and training refuses it unless told otherwise.
    """
    shards = sorted(shards, key=lambda s: s["file"])
    manifest = {
        "format": DATA_FORMAT,
        "format_version": DATA_FORMAT_VERSION,
        "spec": spec.to_dict(),
        "shards": list(shards),
        "total_samples": int(sum(s["samples"] for s in shards)),
        "worlds": sorted({s["world_id"] for s in shards}),
        "kinds": sorted({s["kind"] for s in shards}),
        "data_hash": data_hash(spec, shards),
        "complete": bool(complete),
        "meta": meta or {},
    }
    atomic_write_json(Path(root) / MANIFEST, manifest)
    return manifest


def read_manifest(root: str | Path) -> dict[str, Any]:
    """Reads and checks ``manifest.json``.

    Raises:
        DatasetError: if the manifest is missing, corrupt or of another format.
    """
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"FDM data manifest not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise DatasetError(f"FDM data manifest {path} is corrupt: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != DATA_FORMAT:
        raise DatasetError(f"{path} is not a morobot FDM data manifest")
    if manifest.get("format_version") != DATA_FORMAT_VERSION:
        raise DatasetError(f"{path}: unsupported data format version {manifest.get('format_version')}")
    for key in ("spec", "shards", "data_hash"):
        if key not in manifest:
            raise DatasetError(f"{path} lacks {key!r}")
    return manifest


def rebuild_manifest(root: str | Path, spec: DataSpec, meta: Optional[dict] = None) -> dict:
    """Regenerates the manifest from the shards present (e.g. after an interrupted collection).

    Shards that cannot be read or do not match ``spec`` are skipped and listed in
    ``meta["skipped"]``.
    """
    root = Path(root)
    entries, skipped = [], []
    for path in sorted((root / SHARD_DIR).glob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            n = validate_shard(arrays, spec)
        except Exception as exc:  # a half-written or foreign file: skip it, say so
            skipped.append(f"{path.name}: {exc}")
            continue
        entries.append(_entry(f"{SHARD_DIR}/{path.name}", path, arrays, n))
    return write_manifest(root, spec, entries, {**(meta or {}), "skipped": skipped}, complete=False)


def split_worlds(
    manifest: dict[str, Any], val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> dict[str, list[str]]:
    """Deterministic split of the world ids into train/val/test, stratified by terrain kind.

    Each kind with at least three worlds contributes at least one world to every non-empty
    fraction, so every terrain type is represented in the held-out sets.

    Args:
        manifest: a data manifest.
        val_fraction: fraction of each kind's worlds for validation.
        test_fraction: fraction for testing.
        seed: permutation seed (keep it fixed across runs that are compared).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}`` sorted world ids.
    """
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ValueError(f"bad split fractions val={val_fraction}, test={test_fraction}")
    by_kind: dict[str, set[str]] = {}
    for shard in manifest["shards"]:
        by_kind.setdefault(shard["kind"], set()).add(shard["world_id"])
    rng = np.random.default_rng(seed)
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for kind in sorted(by_kind):
        ids = sorted(by_kind[kind])
        ids = [ids[i] for i in rng.permutation(len(ids))]
        n = len(ids)
        n_test = int(round(n * test_fraction))
        n_val = int(round(n * val_fraction))
        if n >= 3:
            n_test = max(n_test, 1 if test_fraction > 0 else 0)
            n_val = max(n_val, 1 if val_fraction > 0 else 0)
        n_test = min(n_test, max(n - 1, 0))
        n_val = min(n_val, max(n - 1 - n_test, 0))
        split["test"] += ids[:n_test]
        split["val"] += ids[n_test : n_test + n_val]
        split["train"] += ids[n_test + n_val :]
    return {k: sorted(v) for k, v in split.items()}


def train_on_seen(split: dict[str, list[str]], trained: set[str], seen: set[str]) -> tuple[dict[str, list[str]], int]:
    """Moves validation worlds in ``trained`` and test worlds in ``seen`` to the training worlds.

    A model fine-tuned from a checkpoint has in effect trained on that checkpoint's training worlds:
    kept in validation they would flatter the model selection. Its test worlds must also be apart from
    the worlds the checkpoint was selected on (``seen``: trained or validated on). The checkpoint's own
    validation worlds stay validation worlds, so fine-tuning on the same data keeps its split.

    Returns:
        ``(split, moved)``: the new split (sorted ids) and how many worlds moved.
    """
    out = {"val": [w for w in split["val"] if w not in trained], "test": [w for w in split["test"] if w not in seen]}
    moved = sorted(set(split["val"]) - set(out["val"]) | set(split["test"]) - set(out["test"]))
    return {"train": sorted(split["train"] + moved), **out}, len(moved)


def freeze_after_failure(poses: np.ndarray, failed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Makes failure flags cumulative and holds the pose fixed after the first failure.

    Args:
        poses: ``[N, T, 3]`` poses.
        failed: ``[N, T]`` failure flags.

    Returns:
        ``(poses, failed)`` copies: ``failed`` non-decreasing along time, ``poses[:, t]`` equal to
        the pose at the end of the first failing step for all later ``t``.
    """
    failed = np.maximum.accumulate(np.asarray(failed, dtype=np.uint8), axis=1)
    poses = np.array(poses, copy=True)
    any_fail = failed[:, -1] > 0
    if np.any(any_fail):
        first = np.argmax(failed > 0, axis=1)
        t_idx = np.arange(failed.shape[1])[None, :]
        src = np.where(t_idx > first[:, None], first[:, None], t_idx)
        src = np.where(any_fail[:, None], src, t_idx)
        poses = np.take_along_axis(poses, src[..., None].repeat(3, axis=-1), axis=1)
    return poses, failed


def mirror_batch(
    batch: dict[str, torch.Tensor], mask: torch.Tensor, scan: Optional[ScanConfig] = None,
    features: str = "base",
) -> dict[str, torch.Tensor]:
    """Reflects the samples selected by ``mask`` about the robot's sagittal (x-z) plane.

    A left-right symmetric robot on mirrored terrain driven by mirrored commands moves along the
    mirrored path and fails exactly when the original did, so every sample has a free twin:
    lateral velocity, yaw rate, the lateral gravity component, ``y`` and ``yaw`` of the poses change
    sign, and the scan's columns (the robot's left axis) are reversed. ``failed`` is unchanged.

    Args:
        batch: output of :meth:`FDMDataset.batch` (``history``, ``commands``, ``poses``,
            optionally ``scan [B, C, rows, cols]``); not modified.
        mask: ``[B]`` bool, the samples to mirror.
        scan: the scan geometry; its window must be symmetric (``y_min == -y_max``) when the
            batch has a scan.
        features: the history's feature set: with ``legged`` the left and right legs' joints swap
            too (:func:`morobot.fdm.history.mirror_map`).

    Returns:
        A new batch dict.

    Raises:
        ValueError: wrong mask shape, or a scan window that is not left-right symmetric.
    """
    n = batch["commands"].shape[0]
    mask = torch.as_tensor(mask, dtype=torch.bool)
    if tuple(mask.shape) != (n,):
        raise ValueError(f"mask must be [{n}] bool, got shape {tuple(mask.shape)}")
    out = dict(batch)
    if not bool(mask.any()):
        return out
    columns, signs = mirror_map(features)
    if len(columns) != batch["history"].shape[-1]:
        raise ValueError(f"history has {batch['history'].shape[-1]} features, {features!r} has {len(columns)}")
    hist_sign = torch.as_tensor(signs, dtype=batch["history"].dtype)
    twist_sign = torch.tensor([1.0, -1.0, -1.0], dtype=batch["commands"].dtype)
    pose_sign = torch.tensor([1.0, -1.0, -1.0], dtype=batch["poses"].dtype)
    m = mask.view(n, 1, 1)
    out["history"] = torch.where(m, batch["history"][..., torch.as_tensor(columns)] * hist_sign, batch["history"])
    out["commands"] = torch.where(m, batch["commands"] * twist_sign, batch["commands"])
    out["poses"] = torch.where(m, batch["poses"] * pose_sign, batch["poses"])
    if "scan" in batch:
        if scan is None or abs(scan.y_min + scan.y_max) > 1e-9:
            raise ValueError("mirroring scans needs a left-right symmetric scan window (y_min == -y_max)")
        out["scan"] = torch.where(mask.view(n, 1, 1, 1), batch["scan"].flip(-1), batch["scan"])
    return out


class FDMDataset(Dataset):
    """All samples of the selected worlds of a data directory, held in memory.

    Args:
        root: data directory (with ``manifest.json``).
        worlds: world ids to load; all when None.
        verify: check each shard's SHA-256 against the manifest.
        history_features: serve the rows of this feature set, a prefix of the data's
            (:func:`morobot.fdm.history.feature_columns`; e.g. ``base`` rows from ``legged`` data); None: the data's.

    Raises:
        DatasetError: on a missing/corrupt manifest or shard, an inconsistent shard, or history features
            the data's rows cannot give.
    """

    def __init__(self, root: str | Path, worlds: Optional[Sequence[str]] = None, verify: bool = True,
                 history_features: Optional[str] = None) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.spec = DataSpec.from_dict(self.manifest["spec"])
        data_spec = self.spec
        if history_features is not None:
            try:
                n = feature_columns(self.spec.history_features, history_features)
            except ValueError as exc:
                raise DatasetError(f"{self.root}: {exc}") from None
            self.spec = replace(self.spec, history_dim=n, history_features=history_features)
        self.scan_config = self.spec.scan  # how scans are turned into model inputs (see use_scan_config)
        wanted = None if worlds is None else set(worlds)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in SAMPLE_KEYS}
        world_index: list[np.ndarray] = []
        self.world_ids: list[str] = []
        self.world_kinds: list[str] = []
        self.worlds: dict[str, dict[str, Any]] = {}
        for entry in self.manifest["shards"]:
            if wanted is not None and entry["world_id"] not in wanted:
                continue
            arrays = self._load_shard(entry, verify, data_spec)
            arrays["history"] = arrays["history"][..., :self.spec.history_dim]
            wid = entry["world_id"]
            if wid not in self.worlds:
                self.worlds[wid] = {
                    "heights": arrays["world_heights"],
                    "origin": tuple(float(v) for v in arrays["world_origin"]),
                    "resolution": float(arrays["world_resolution"]),
                    "kind": entry["kind"],
                }
                self.world_ids.append(wid)
                self.world_kinds.append(entry["kind"])
            poses, failed = freeze_after_failure(arrays["poses"], arrays["failed"])
            arrays = {**arrays, "poses": poses, "failed": failed}
            for k in SAMPLE_KEYS:
                parts[k].append(arrays[k])
            world_index.append(np.full(len(arrays["history"]), self.world_ids.index(wid), dtype=np.int64))
        if wanted is not None and not wanted <= set(self.world_ids):
            raise DatasetError(f"worlds not in {self.root}: {sorted(wanted - set(self.world_ids))}")
        rows, cols = self.spec.scan.shape
        empty = {
            "history": (0, self.spec.history_length, self.spec.history_dim),
            "scan": (0, rows, cols),
            "commands": (0, self.spec.horizon, 3),
            "poses": (0, self.spec.horizon, 3),
            "failed": (0, self.spec.horizon),
            "start_pose": (0, 3),
            "start_z": (0,),
        }
        self.arrays = {k: np.concatenate(v) if v else np.zeros(empty[k], np.float32) for k, v in parts.items()}
        self.world_index = np.concatenate(world_index) if world_index else np.zeros(0, np.int64)

    def _load_shard(self, entry: dict[str, Any], verify: bool, spec: DataSpec) -> dict[str, np.ndarray]:
        path = self.root / entry["file"]
        if not path.is_file():
            raise DatasetError(f"shard listed in the manifest is missing: {path}")
        if verify and file_sha256(path) != entry["sha256"]:
            raise DatasetError(f"shard {path} does not match the manifest (SHA-256 differs)")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:
            raise DatasetError(f"shard {path} is corrupt: {exc}") from exc
        n = validate_shard(arrays, spec)
        if n != entry["samples"]:
            raise DatasetError(f"shard {path} has {n} samples, the manifest says {entry['samples']}")
        return arrays

    def __len__(self) -> int:
        return int(self.arrays["history"].shape[0])

    @property
    def kinds(self) -> np.ndarray:
        """``[N]`` terrain kind of every sample."""
        return np.asarray(self.world_kinds, dtype=object)[self.world_index] if len(self) else np.zeros(0, object)

    def batch(self, indices: Any, with_scan: bool = True) -> dict[str, torch.Tensor]:
        """Model-ready tensors for a set of sample indices.

        Args:
            indices: sample indices.
            with_scan: build the scan channels (skip them for a model without the scan).

        Returns:
            ``history [B, L, 9]``, ``scan [B, 2, rows, cols]``, ``commands [B, T, 3]``,
            ``poses [B, T, 3]`` (relative to the start), ``failed [B, T]`` (float, cumulative),
            ``index [B]``; ``scan`` is absent when ``with_scan`` is False.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        a = self.arrays
        out = {
            "history": torch.from_numpy(a["history"][idx]),
            "commands": torch.from_numpy(a["commands"][idx]),
            "poses": torch.from_numpy(a["poses"][idx]),
            "failed": torch.from_numpy(a["failed"][idx].astype(np.float32)),
            "index": torch.from_numpy(idx),
        }
        if with_scan:
            out["scan"] = torch.from_numpy(to_channels(a["scan"][idx].astype(np.float32), self.scan_config))
        return out

    def use_scan_config(self, config: ScanConfig) -> "FDMDataset":
        """Feeds scans to models through ``config`` (e.g. a model's lower ceiling); returns self.

        Raises:
            DatasetError: if ``config`` has another grid than the data or a wider clip range.
        """
        if not config.compatible_with(self.spec.scan):
            raise DatasetError(f"scan config {config.to_dict()} cannot read this data's scans "
                               f"{self.spec.scan.to_dict()} (other grid or a wider clip range)")
        self.scan_config = config
        return self

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= int(i) < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        return {k: v[0] for k, v in self.batch([int(i) % len(self)]).items()}

    def iterate(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: Optional[torch.Generator] = None,
        with_scan: bool = True,
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Yields batches (the last one may be smaller); a vectorised alternative to a DataLoader."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = torch.randperm(len(self), generator=generator).numpy() if shuffle else np.arange(len(self))
        for start in range(0, len(self), batch_size):
            yield self.batch(order[start : start + batch_size], with_scan)

    def normalization(self, max_samples: int = 4096, seed: int = 0) -> dict[str, Any]:
        """Input statistics for :meth:`PerceptiveFDM.set_normalization`.

        Returns:
            ``history_mean``, ``history_std`` (``[9]``), ``scan_mean``, ``scan_std`` over known cells.
        """
        if len(self) == 0:
            raise DatasetError("cannot compute statistics of an empty dataset")
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(self), size=min(max_samples, len(self)), replace=False)
        hist = self.arrays["history"][idx].reshape(-1, self.spec.history_dim).astype(np.float64)
        scan = np.clip(self.arrays["scan"][idx].astype(np.float64), self.scan_config.clip_low,
                       self.scan_config.clip_high)
        known = scan[np.isfinite(scan)]
        return {
            "history_mean": hist.mean(0),
            "history_std": hist.std(0),
            "scan_mean": float(known.mean()) if known.size else 0.0,
            "scan_std": float(known.std()) if known.size else 1.0,
        }
