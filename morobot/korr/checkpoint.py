"""KORR checkpoints: ``NAME.pt`` (state dicts, ``torch.load(weights_only=True)``) + ``NAME.json``.

``NAME.pt``::

    {"format": "morobot-korr", "format_version": 1, "kind": "bc" | "koopman" | "residual",
     "config": {...}, "state_dict": {...}, "meta": {...}}

Weight matrices (>= ``HALF_MIN_NUMEL`` elements) are stored as float16 (``load_state_dict``
casts them back to float32), which halves the files; everything else stays float32.

``config`` holds everything needed to rebuild the modules (task, dimensions, residual variant,
control period); ``meta`` the seed, metrics and versions. The JSON sidecar repeats config and
meta and records the SHA-256 of the ``.pt``; a sidecar that does not match is rejected. Both are
written to a temporary name, flushed and renamed (``.pt`` first). Resumable training state lives
in separate ``NAME.resume.pt`` files (see :func:`save_resume` / :func:`load_resume`).

Any failure to load — missing, truncated or foreign file, wrong version, bad config, tensors of
the wrong shape — raises :class:`CheckpointError`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from morobot import provenance
from morobot.fileio import atomic_write_bytes, atomic_write_json, file_sha256, load_verified_torch

FORMAT = "morobot-korr"
FORMAT_VERSION = 1
KINDS = ("bc", "koopman", "residual")
#: Floating tensors with at least this many elements (weight matrices) are stored as float16;
#: biases, normalisation statistics and small matrices stay float32.
HALF_MIN_NUMEL = 4096


class CheckpointError(ValueError):
    """A KORR checkpoint is missing, corrupt or inconsistent."""


# ----------------------------------------------------------------------------- file helpers
atomic_write = atomic_write_bytes
sha256 = file_sha256


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def versions() -> dict[str, str]:
    return provenance.versions(("torch", "numpy", "mujoco"))


# ------------------------------------------------------------------------------ checkpoints
def save_checkpoint(path: str | Path, kind: str, config: dict, state_dict: dict[str, torch.Tensor],
                    meta: dict | None = None) -> Path:
    """Writes a checkpoint and its sidecar atomically.

    Args:
        path: ``*.pt`` path.
        kind: one of ``KINDS``.
        config: JSON-serialisable module configuration.
        state_dict: the module's state dict.
        meta: JSON-serialisable metadata (seed, metrics, timings).
    """
    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"checkpoint path must end in .pt, got {path}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    meta = dict(meta or {})
    meta.setdefault("versions", versions())
    meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    config = json.loads(json.dumps(config))  # plain types only (weights_only loading)
    meta = json.loads(json.dumps(meta))
    tensors = {}
    for k, v in state_dict.items():
        v = v.detach().cpu().clone()
        if v.is_floating_point() and v.numel() >= HALF_MIN_NUMEL:
            v = v.half()  # weight matrices: fp16 storage halves the file; loading casts back
        tensors[k] = v
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "config": config,
               "state_dict": tensors, "meta": meta}
    atomic_write(path, lambda fh: torch.save(payload, fh))
    atomic_write_json(sidecar_path(path), {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "checkpoint": path.name,
        "sha256": sha256(path), "config": config, "meta": meta,
        "parameters": int(sum(v.numel() for v in payload["state_dict"].values())),
    })
    return path


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Loads and validates a checkpoint payload (``weights_only=True``).

    Args:
        path: ``*.pt`` path.
        kind: expected kind (any if None).

    Raises:
        CheckpointError: see module docstring.
    """
    path = Path(path)
    payload = load_verified_torch(path, "KORR checkpoint", CheckpointError)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a morobot KORR checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {payload.get('format_version')}, expected {FORMAT_VERSION}")
    if payload.get("kind") not in KINDS or (kind is not None and payload["kind"] != kind):
        raise CheckpointError(f"{path}: kind {payload.get('kind')!r}, expected {kind or KINDS}")
    for key, typ in (("config", dict), ("state_dict", dict), ("meta", dict)):
        if not isinstance(payload.get(key), typ):
            raise CheckpointError(f"{path}: missing or malformed {key!r}")
    if not all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values()):
        raise CheckpointError(f"{path}: state_dict holds non-tensors")
    return payload


def load_into(module: torch.nn.Module, payload: dict, path: str | Path = "") -> torch.nn.Module:
    """``module.load_state_dict(payload['state_dict'])``, raising CheckpointError on mismatch."""
    try:
        module.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"KORR checkpoint {path} does not fit its model: {exc}") from exc
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"KORR checkpoint {path}: non-finite values in {name}")
    return module


# ------------------------------------------------------------------------------- resuming
def save_resume(path: str | Path, state: dict) -> None:
    """Writes resumable training state (tensors and plain containers only) atomically."""
    atomic_write(path, lambda fh: torch.save(state, fh))


def load_resume(path: str | Path) -> dict | None:
    """The resumable state at ``path``, or None if absent or unreadable (training restarts)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    return state if isinstance(state, dict) else None


# ------------------------------------------------------------------------ model round trips
def _require(config: dict, keys: tuple[str, ...], path) -> None:
    missing = [k for k in keys if k not in config]
    if missing:
        raise CheckpointError(f"KORR checkpoint {path}: config lacks {missing}")


def save_bc(path, policy, task: str, control_dt: float, meta: dict | None = None) -> Path:
    config = {"task": task, "control_dt": control_dt, "obs_dim": policy.normalizer.mean.numel(),
              "act_dim": policy.net[-1].out_features, "hidden": policy.hidden}
    return save_checkpoint(path, "bc", config, policy.state_dict(), meta)


def _build_bc(config: dict, path):
    from morobot.korr.bc import BCPolicy

    _require(config, ("obs_dim", "act_dim", "hidden"), path)
    try:
        return BCPolicy(int(config["obs_dim"]), int(config["act_dim"]), int(config["hidden"]))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"KORR checkpoint {path}: bad bc config: {exc}") from exc


def load_bc(path):
    """(BCPolicy in eval mode, payload)."""
    payload = load_checkpoint(path, "bc")
    policy = load_into(_build_bc(payload["config"], path), payload, path)
    return policy.eval(), payload


def save_koopman(path, model, task: str, meta: dict | None = None) -> Path:
    return save_checkpoint(path, "koopman", {"task": task, "koopman": model.config.to_dict()},
                           model.state_dict(), meta)


def _build_koopman(config: dict, path):
    from morobot.korr.koopman import KoopmanConfig, KoopmanModel

    try:
        return KoopmanModel(KoopmanConfig(**config))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"KORR checkpoint {path}: bad koopman config: {exc}") from exc


def load_koopman(path):
    """(KoopmanModel in eval mode, payload)."""
    payload = load_checkpoint(path, "koopman")
    _require(payload["config"], ("koopman",), path)
    model = load_into(_build_koopman(payload["config"]["koopman"], path), payload, path)
    return model.eval(), payload


def save_agent(path, agent, task: str, control_dt: float, meta: dict | None = None) -> Path:
    base = agent.base
    config = {
        "task": task, "control_dt": control_dt,
        "bc": {"obs_dim": base.normalizer.mean.numel(), "act_dim": base.net[-1].out_features,
               "hidden": base.hidden},
        "koopman": None if agent.koopman is None else agent.koopman.config.to_dict(),
        "residual": agent.config.to_dict(),
    }
    return save_checkpoint(path, "residual", config, agent.state_dict(), meta)


def load_agent(path):
    """(ResidualAgent in eval mode, payload)."""
    from morobot.korr.residual import ResidualAgent, ResidualConfig

    payload = load_checkpoint(path, "residual")
    config = payload["config"]
    _require(config, ("bc", "koopman", "residual"), path)
    base = _build_bc(config["bc"], path)
    koopman = None if config["koopman"] is None else _build_koopman(config["koopman"], path)
    try:
        # checkpoints from before these options existed: joint training, raw latent
        agent = ResidualAgent(ResidualConfig(**{"koopman_training": "joint", "latent_norm": False,
                                                **config["residual"]}), base, koopman)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"KORR checkpoint {path}: bad residual config: {exc}") from exc
    return load_into(agent, payload, path).eval(), payload
