"""Saving and loading FDM checkpoints.

A checkpoint is ``NAME.pt`` plus a human-readable sidecar ``NAME.json``.

``NAME.pt`` (loaded with ``torch.load(weights_only=True)``) is self-contained::

    {"format": "morobot-fdm", "format_version": 1,
     "config": FDMConfig.to_dict(), "state_dict": {...}, "meta": {...},
     "train_state": {...}}            # optional: optimiser, epoch, RNG (for resuming)

``NAME.json`` repeats ``config`` and the ``meta`` fields at its top level (``seed``,
``data_hash``, ``metrics``, ``extra``, ``versions``, ``created``) and records the SHA-256 of
``NAME.pt``, the parameter count and the tensor shapes; a sidecar that does not match its
checkpoint is rejected. Both files are written to temporary names and renamed into place, the
``.pt`` first, so a crash never leaves a truncated file under the final name.

Every failure to load — missing file, unreadable or corrupt data, wrong format, a config that
does not validate, tensors of the wrong shape — raises :class:`CheckpointError`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import torch

from morobot import provenance
from morobot.fileio import atomic_write_bytes, atomic_write_json, file_sha256, load_verified_torch
from morobot.fdm.model import FDMConfig, PerceptiveFDM

FORMAT = "morobot-fdm"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not match the model it describes."""


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar belonging to checkpoint ``path``."""
    return Path(path).with_suffix(".json")


def versions() -> dict[str, str]:
    """Library versions recorded with every checkpoint."""
    return provenance.versions(("torch", "numpy", "morobot"))


def save_checkpoint(
    path: str | Path,
    model: PerceptiveFDM,
    *,
    seed: Optional[int] = None,
    data_hash: Optional[str] = None,
    metrics: Optional[dict[str, Any]] = None,
    extra: Optional[dict[str, Any]] = None,
    train_state: Optional[dict[str, Any]] = None,
) -> Path:
    """Writes ``path`` (``.pt``) and its JSON sidecar atomically.

    Args:
        path: checkpoint file, conventionally ending in ``.pt``.
        model: the model; its config and state dict (normalisation included) are stored.
        seed: training seed.
        data_hash: hash of the training data manifest.
        metrics: JSON-serialisable metrics (e.g. validation losses).
        extra: further JSON-serialisable metadata (e.g. the world split).
        train_state: optional resumable state (optimiser state dict, epoch, RNG state); must
            contain only tensors and plain Python containers/scalars.

    Returns:
        The checkpoint path.
    """
    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"checkpoint path must end in .pt, got {path}")
    meta = {
        "seed": seed,
        "data_hash": data_hash,
        "metrics": metrics or {},
        "extra": extra or {},
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # Round trip through JSON: fails early on non-serialisable metadata and leaves only plain
    # Python types, which torch.load(weights_only=True) accepts.
    meta = json.loads(json.dumps(meta))
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    if train_state is not None:
        payload["train_state"] = train_state
    atomic_write_bytes(path, lambda fh: torch.save(payload, fh))
    sidecar = {
        **meta,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "checkpoint": path.name,
        "sha256": file_sha256(path),
        "config": payload["config"],
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "shapes": {k: list(v.shape) for k, v in payload["state_dict"].items()},
    }
    atomic_write_json(sidecar_path(path), sidecar)
    return path


def read_payload(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads and validates the raw checkpoint dictionary (``weights_only=True``).

    Raises:
        CheckpointError: on a missing, unreadable, corrupt or foreign file, or a sidecar that
            belongs to another checkpoint.
    """
    path = Path(path)
    payload = load_verified_torch(path, "FDM checkpoint", CheckpointError, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a morobot FDM checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"FDM checkpoint {path} has format version {payload.get('format_version')}, expected {FORMAT_VERSION}"
        )
    for key in ("config", "state_dict", "meta"):
        if not isinstance(payload.get(key), dict):
            raise CheckpointError(f"FDM checkpoint {path} lacks a valid {key!r} entry")
    return payload


def model_from_payload(payload: dict[str, Any], path: str | Path = "<memory>") -> PerceptiveFDM:
    """Builds the model described by a payload and loads its weights strictly.

    Raises:
        CheckpointError: on an invalid config or missing, unexpected or mis-shaped tensors.
    """
    try:
        config = FDMConfig.from_dict(payload["config"])
    except ValueError as exc:
        raise CheckpointError(f"FDM checkpoint {path} has an invalid config: {exc}") from exc
    model = PerceptiveFDM(config)
    expected = model.state_dict()
    state = payload["state_dict"]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and (not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != tuple(v.shape))
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"FDM checkpoint {path} does not match its config: missing {missing}, unexpected {unexpected}, "
            f"mismatched {mismatched}"
        )
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"FDM checkpoint {path} has non-finite values in {bad}")
    model.load_state_dict(state, strict=True)
    return model


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[PerceptiveFDM, dict[str, Any]]:
    """Loads a checkpoint into a fresh model in eval mode.

    Args:
        path: the ``.pt`` file.
        map_location: device for the tensors.

    Returns:
        ``(model, meta)``.

    Raises:
        CheckpointError: if anything about the checkpoint is wrong (see module docstring).
    """
    payload = read_payload(path, map_location)
    model = model_from_payload(payload, path)
    model.eval()
    return model.to(map_location), payload["meta"]


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar of a checkpoint (config, meta, hash).

    Raises:
        CheckpointError: if the sidecar is missing or corrupt.
    """
    side = sidecar_path(path)
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"FDM checkpoint sidecar not found: {side}") from exc
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"FDM checkpoint sidecar {side} is corrupt: {exc}") from exc


def seen_worlds(meta: dict[str, Any], parts: tuple[str, ...] = ("train", "val")) -> set[str]:
    """World ids a checkpoint's model trained (and, by default, validated) on, its ``--init-from`` ancestors' included.

    Read from the metadata that training stores: ``extra.split`` (the ``parts`` named) and ``extra.seen``
    (the worlds inherited from the checkpoint it was fine-tuned from, trained or validated on).
    """
    extra = meta.get("extra", {}) if isinstance(meta, dict) else {}
    split = extra.get("split", {}) or {}
    return {str(w) for part in parts for w in split.get(part, [])} | {str(w) for w in extra.get("seen", [])}
