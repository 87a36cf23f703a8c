"""Training of the perceptive FDM: ``morobot train fdm --data DIR --out DIR``.

Writes to the output directory:

* ``latest.pt``/``latest.json``: model, optimiser and RNG state after every epoch
  (``--resume`` continues from it);
* ``best.pt``/``best.json``: the model with the lowest validation loss, or with ``--select-by position``
  the lowest horizon-end position error on the validation worlds;
* ``metrics.jsonl``: one JSON object per epoch (losses per term, validation errors, lr, time);
* ``loss.png``: the loss curves.

Worlds are split into train/val/test by world id (stratified by terrain kind, fixed
``--split-seed``); the split is stored in the checkpoints so evaluation uses the held-out worlds.

Length: one training loop with its resume, checkpoint selection and command line, which share
:class:`TrainArgs`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from morobot.fdm.checkpoint import CheckpointError, read_payload, save_checkpoint, seen_worlds
from morobot.fdm.data.dataset import DataSpec, FDMDataset, mirror_batch, read_manifest, split_worlds, train_on_seen
from morobot.fdm.heightscan import ScanConfig
from morobot.fdm.history import FEATURE_SETS
from morobot.fdm.training.curves import plot_curves, truncate_metrics
from morobot.fdm.training.loss import DISTANCES, LossWeights, fdm_loss
from morobot.fdm.training.ranking import RankingPairs
from morobot.fdm.model import FDMConfig, PerceptiveFDM, stop_at_failure

LATEST = "latest.pt"
BEST = "best.pt"
METRICS = "metrics.jsonl"
CURVE = "loss.png"
#: ``--select-by`` choices: the validation metric (``evaluate_loss`` key) whose minimum is ``best.pt``.
SELECT_BY = {"loss": "loss", "position": "final_position_error"}
#: ``--stop-at-failure`` choices (see :attr:`TrainArgs.stop_at_failure`).
STOP_MODES = ("off", "output", "train")


@dataclass
class TrainArgs:
    """Arguments of a training run.

    Attributes:
        data_dir: data directory (manifest + shards).
        out_dir: output directory (checkpoints, metrics, plot).
        epochs: total number of epochs (a resumed run continues up to this number).
        batch_size: samples per step.
        lr: initial AdamW learning rate (cosine-annealed to 5 % over the run).
        weight_decay: AdamW weight decay.
        seed: seed of initialisation, shuffling and bootstrap weights.
        ensemble_size: predictor members.
        device: torch device.
        no_scan: train the ablation without the height scan.
        val_fraction: fraction of worlds (per kind) held out for validation.
        test_fraction: fraction of worlds (per kind) held out for evaluation.
        split_seed: seed of the world split (keep fixed across compared runs).
        resume: continue from ``out_dir/latest.pt``.
        num_threads: torch CPU threads (0 leaves torch's default).
        grad_clip: gradient-norm clip.
        max_batches: stop each epoch after this many batches (0 = all; for smoke runs).
        progress: show tqdm progress bars.
        plot_every: redraw ``loss.png`` every this many epochs (and after the last one).
        model_overrides: FDMConfig fields to override (e.g. ``{"predictor_hidden": 48}``).
        scan_ceiling: if set, the model clips scan heights at this height above the base (m)
            instead of the data's ``clip_high``, here and at run time (see
            :class:`~morobot.fdm.heightscan.ScanConfig`).
        mirror_prob: probability that a training sample is reflected left-right
            (:func:`~morobot.fdm.data.dataset.mirror_batch`) each time it is drawn; 0 = off.
        init_from: fine-tune: start from this checkpoint's weights and input normalisation
            instead of a fresh model (its model config must equal this run's).
        allow_incomplete: train on data whose manifest says the collection or conversion did not
            finish (refused otherwise).
        history_features: the model's proprioceptive feature set, a prefix of the data's (the
            base-only ablation from legged data); None: the data's.
        rank_weight: weight of the ranking loss (:func:`~morobot.fdm.training.loss.ranking_loss`) over pairs
            of samples with one start and opposite outcomes (data with counterfactual branches); 0 = off.
        rank_pairs: such pairs drawn for each training batch.
        loss_distance: ``squared`` or ``euclidean`` position and heading terms
            (:class:`~morobot.fdm.training.loss.LossWeights`; also the validation loss that picks ``best.pt``).
        stop_at_failure: ``off``; ``output``: the checkpoint's poses stop at its predicted failures
            (:attr:`~morobot.fdm.model.FDMConfig.stop_at_failure`) while the loss fits the path as it is, as
            with ``off``; ``train``: the loss fits the stopped poses too. ``final_position_error`` in
            ``metrics.jsonl`` is of the poses as the checkpoint gives them.
        select_by: what picks ``best.pt`` (:data:`SELECT_BY`): the validation ``loss`` (all terms), or the
            ensemble mean's horizon-end ``position`` error on the validation worlds, which keeps falling for
            epochs after the failure term starts to overfit and lift the loss. Without validation worlds,
            the training loss either way.
    """

    data_dir: str
    out_dir: str
    epochs: int = 30
    batch_size: int = 2048
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    ensemble_size: int = 4
    device: str = "cpu"
    no_scan: bool = False
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0
    resume: bool = False
    allow_incomplete: bool = False
    num_threads: int = 2
    grad_clip: float = 1.0
    max_batches: int = 0
    progress: bool = True
    plot_every: int = 1
    model_overrides: dict[str, Any] = field(default_factory=dict)
    scan_ceiling: Optional[float] = None
    mirror_prob: float = 0.0
    init_from: Optional[str] = None
    history_features: Optional[str] = None
    rank_weight: float = 0.0
    rank_pairs: int = 256
    loss_distance: str = "squared"
    select_by: str = "loss"
    stop_at_failure: str = "off"

    def validate(self) -> None:
        """Raises ValueError on out-of-range arguments."""
        if self.epochs < 1 or self.batch_size < 1 or self.ensemble_size < 1:
            raise ValueError("epochs, batch_size and ensemble_size must be >= 1")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.grad_clip > 0):
            raise ValueError("lr and grad_clip must be positive, weight_decay non-negative")
        if self.num_threads < 0 or self.max_batches < 0:
            raise ValueError("num_threads and max_batches must be >= 0")
        if self.plot_every < 1:
            raise ValueError("plot_every must be >= 1")
        if not 0.0 <= self.mirror_prob <= 1.0:
            raise ValueError(f"mirror_prob must lie in [0, 1], got {self.mirror_prob}")
        if not (math.isfinite(self.rank_weight) and self.rank_weight >= 0) or self.rank_pairs < 1:
            raise ValueError(f"rank_weight must be finite and >= 0 and rank_pairs >= 1, got {self.rank_weight} "
                             f"and {self.rank_pairs}")
        if self.loss_distance not in DISTANCES:
            raise ValueError(f"loss_distance must be one of {DISTANCES}, got {self.loss_distance!r}")
        if self.stop_at_failure not in STOP_MODES:
            raise ValueError(f"stop_at_failure must be one of {STOP_MODES}, got {self.stop_at_failure!r}")
        if self.select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {tuple(SELECT_BY)}, got {self.select_by!r}")


def build_config(spec: DataSpec, args: TrainArgs) -> FDMConfig:
    """Model config matching the data spec, the run's arguments and overrides."""
    base = FDMConfig(
        history_length=spec.history_length,
        history_dt=spec.history_dt,
        history_dim=spec.history_dim,
        history_features=spec.history_features,
        scan=spec.scan if args.scan_ceiling is None else _ceiled(spec.scan, args.scan_ceiling),
        horizon=spec.horizon,
        dt=spec.dt,
        ensemble_size=args.ensemble_size,
        use_scan=not args.no_scan,
        stop_at_failure=args.stop_at_failure != "off",
    ).to_dict()
    unknown = sorted(set(args.model_overrides) - set(base))
    if unknown:
        raise ValueError(f"unknown model overrides {unknown}")
    if "stop_at_failure" in args.model_overrides:
        raise ValueError("set stop_at_failure with --stop-at-failure (it also says what the loss fits)")
    fixed = ({"history_length", "history_dt", "history_dim", "history_features", "scan", "horizon", "dt"}
             & set(args.model_overrides))
    if fixed:
        raise ValueError(f"{sorted(fixed)} are fixed by the data and cannot be overridden")
    return FDMConfig.from_dict({**base, **args.model_overrides})


def _normalized(config: dict[str, Any]) -> dict[str, Any]:
    """A stored model config as this version writes it (fields added since take their old meaning)."""
    try:
        return FDMConfig.from_dict(config).to_dict()
    except ValueError as exc:
        raise CheckpointError(f"invalid model config: {exc}") from exc


def _weights_config(config: dict[str, Any]) -> dict[str, Any]:
    """The fields that shape the weights: a fine-tune may change how the outputs are read (``stop_at_failure``)."""
    return {k: v for k, v in _normalized(config).items() if k != "stop_at_failure"}


def _ceiled(scan: ScanConfig, ceiling: float) -> ScanConfig:
    if not (math.isfinite(ceiling) and scan.clip_low < ceiling <= scan.clip_high):
        raise ValueError(f"scan_ceiling must lie in ({scan.clip_low}, {scan.clip_high}] (the data's clip range), "
                         f"got {ceiling}")
    return dataclasses.replace(scan, clip_high=float(ceiling))


def cosine_lr(base: float, epoch: int, epochs: int, floor: float = 0.05) -> float:
    """Cosine-annealed learning rate of ``epoch`` (0-based): ``base`` down to ``floor * base``.

    A closed form of the epoch, so a resumed run (even with more epochs) follows the schedule
    of an uninterrupted run of the same length.
    """
    return base * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs)))


def seed_everything(seed: int) -> torch.Generator:
    """Seeds python, numpy and torch; returns the generator used for shuffling and bootstrap."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def evaluate_loss(model: PerceptiveFDM, data: FDMDataset, batch_size: int, device: torch.device,
                  pairs: Optional[RankingPairs] = None, weights: LossWeights = LossWeights(),
                  fit_stopped: Optional[bool] = None) -> dict[str, float]:
    """Mean loss terms (``weights``) and final-step position error of the ensemble mean on ``data``.

    The loss is of the poses stopped at the predicted failures if ``fit_stopped`` (None: if the model's
    config stops them), the position error of the poses as the model gives them. With ``pairs`` also their
    mean ``ranking`` loss and ``ranking_accuracy`` (not part of ``loss``, so that runs with and without it
    compare).
    """
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in data.iterate(batch_size, with_scan=model.config.use_scan):
        b = _to(batch, device)
        out = model(b["history"], b.get("scan"), b["commands"], fit_stopped)
        total, terms = fdm_loss(out, b["poses"], b["failed"], weights)
        poses = out.poses
        if model.config.stop_at_failure and fit_stopped is False:
            poses = stop_at_failure(poses, out.hazard_logits)
        mean_xy = poses[..., :2].mean(0)
        final_err = (mean_xy[:, -1] - b["poses"][:, -1, :2]).norm(dim=-1).sum()
        n = b["commands"].shape[0]
        sums["loss"] = sums.get("loss", 0.0) + float(total) * n
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        sums["final_position_error"] = sums.get("final_position_error", 0.0) + float(final_err)
        count += n
    out = {k: v / max(count, 1) for k, v in sums.items()}
    if pairs is not None:
        out.update(pairs.evaluate(model, batch_size, device))
    return out


def _check_out_dir(out: Path, resume: bool) -> None:
    if resume:
        if not (out / LATEST).is_file():
            raise ValueError(f"--resume given but {out / LATEST} does not exist")
    elif (out / LATEST).exists():
        raise ValueError(f"{out} already holds a training run; pass --resume or choose another --out")
    elif (out / METRICS).exists():  # a run that died before its first checkpoint: start over
        (out / METRICS).unlink()


def train(args: TrainArgs) -> dict[str, Any]:
    """Runs (or resumes) a training run.

    Returns:
        Summary: output paths, the best score (``select_by``'s metric) and the last epoch's metrics.

    Raises:
        ValueError: on bad arguments, unusable data or an occupied output directory.
        CheckpointError: if a resumed checkpoint is corrupt or belongs to another model.
    """
    from tqdm import tqdm

    args.validate()
    out = Path(args.out_dir)
    _check_out_dir(out, args.resume)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    device = torch.device(args.device)
    gen = seed_everything(args.seed)

    manifest = read_manifest(args.data_dir)
    if manifest.get("complete") is False:
        if not args.allow_incomplete:
            raise ValueError(f"{args.data_dir} is incomplete ({len(manifest['shards'])} worlds of kinds "
                             f"{manifest['kinds']}): its collection or conversion did not finish; resume it, "
                             "or pass --allow-incomplete to train on what is there")
        print(f"[train] warning: training on incomplete data in {args.data_dir}", file=sys.stderr)
    split = split_worlds(manifest, args.val_fraction, args.test_fraction, args.split_seed)
    inherited: set[str] = set()
    init = read_payload(args.init_from, map_location="cpu") if args.init_from else None
    if init is not None:  # its worlds are not held out for a model fine-tuned from it (also on --resume: same split)
        init_meta = init["meta"]
        inherited = seen_worlds(init_meta)
        split, moved = train_on_seen(split, seen_worlds(init_meta, ("train",)), inherited)
        if moved:
            print(f"[train] {moved} validation/test worlds were seen by --init-from {args.init_from}: "
                  "they are training worlds in this run", file=sys.stderr)
    if not split["train"]:
        raise ValueError(f"no training worlds in {args.data_dir}")
    train_data = FDMDataset(args.data_dir, split["train"], history_features=args.history_features)
    val_data = (FDMDataset(args.data_dir, split["val"], history_features=args.history_features)
                if split["val"] else None)
    config = build_config(train_data.spec, args)
    for d in (train_data, val_data):
        if d is not None:
            d.use_scan_config(config.scan)
    pairs, val_pairs = None, None
    if args.rank_weight > 0:
        pairs = RankingPairs(train_data)
        if not len(pairs):
            raise ValueError(f"--rank-weight needs samples with one start and opposite outcomes in the training "
                             f"worlds of {args.data_dir} (record them with morobot collect-nav --branch-leads)")
        val_pairs = RankingPairs(val_data) if val_data is not None else None
        print(f"[train] ranking loss over {len(pairs)} training pairs"
              f"{f' and {len(val_pairs)} validation pairs' if val_pairs is not None else ''}", file=sys.stderr)
    model = PerceptiveFDM(config)
    model.set_normalization(**train_data.normalization(seed=args.seed))
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    start_epoch, best = 0, math.inf

    if init is not None and not args.resume:
        if _weights_config(init["config"]) != _weights_config(config.to_dict()):
            raise CheckpointError(f"--init-from {args.init_from} has another model config than this run")
        model.load_state_dict(init["state_dict"], strict=True)  # weights and its normalisation

    if args.resume:
        payload = read_payload(out / LATEST, map_location="cpu")
        if _normalized(payload["config"]) != config.to_dict():
            raise CheckpointError(f"{out / LATEST} was trained with another model config; cannot resume")
        state = payload.get("train_state")
        if not isinstance(state, dict):
            raise CheckpointError(f"{out / LATEST} holds no training state; cannot resume")
        model.load_state_dict(payload["state_dict"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        for key, flag, before in (("select_by", "--select-by", "loss"), ("stop_at_failure", "--stop-at-failure", "off")):
            if state.get(key, before) != getattr(args, key):
                raise ValueError(f"{out / LATEST} was trained with {flag} {state.get(key, before)}; resume it with "
                                 f"that, not {getattr(args, key)}")
        start_epoch, best = int(state["epoch"]), float(state["best"])
        truncate_metrics(out / METRICS, start_epoch)

    meta_common = {
        "seed": args.seed,
        "data_hash": manifest["data_hash"],
        "extra": {"split": split, "args": asdict(args), "data_dir": str(Path(args.data_dir).resolve()),
                  "seen": sorted(inherited)},
    }
    weights = LossWeights(distance=args.loss_distance)
    fit_stopped = args.stop_at_failure == "train"
    last: dict[str, Any] = {}
    if not args.resume and val_data is not None and len(val_data):
        # epoch 0: the untrained model on the validation worlds, the reference for progress
        out.mkdir(parents=True, exist_ok=True)
        initial = {"epoch": 0, "val": evaluate_loss(model, val_data, args.batch_size, device, val_pairs, weights,
                                                    fit_stopped)}
        with open(out / METRICS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(initial) + "\n")
    for epoch in range(start_epoch, args.epochs):
        lr = cosine_lr(args.lr, epoch, args.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        t0 = time.time()
        sums: dict[str, float] = {}
        seen = 0
        n_batches = math.ceil(len(train_data) / args.batch_size)
        if args.max_batches:
            n_batches = min(n_batches, args.max_batches)
        bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{args.epochs}", disable=not args.progress, leave=False)
        batches = train_data.iterate(args.batch_size, shuffle=True, generator=gen, with_scan=config.use_scan)
        for i, batch in enumerate(batches):
            if i >= n_batches:
                break
            if args.mirror_prob > 0:
                flip = torch.rand(batch["commands"].shape[0], generator=gen) < args.mirror_prob
                batch = mirror_batch(batch, flip, config.scan, config.history_features)
            b = _to(batch, device)
            n = b["commands"].shape[0]
            out_m = model(b["history"], b.get("scan"), b["commands"], fit_stopped)
            sample_w = None
            if config.ensemble_size > 1:  # bootstrap: each member sees a Poisson-resampled batch
                sample_w = torch.poisson(torch.ones(config.ensemble_size, n), generator=gen).to(device)
            loss, terms = fdm_loss(out_m, b["poses"], b["failed"], weights, sample_w)
            objective = loss
            if pairs is not None:  # the ranking term: pairs drawn anew for every batch
                drawn = pairs.draw(args.rank_pairs, gen)
                flip = (torch.rand(len(drawn), generator=gen) < args.mirror_prob) if args.mirror_prob > 0 else None
                terms["ranking"] = pairs.loss(model, drawn, device, flip)
                objective = loss + args.rank_weight * terms["ranking"]
            if not torch.isfinite(objective):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch + 1}, batch {i}")
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            optimizer.step()
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * n
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * n
            seen += n
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        bar.close()
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": lr,
            "train": {k: v / max(seen, 1) for k, v in sums.items()},
        }
        if val_data is not None and len(val_data):
            record["val"] = evaluate_loss(model, val_data, args.batch_size, device, val_pairs, weights, fit_stopped)
            score = record["val"][SELECT_BY[args.select_by]]
        else:
            score = record["train"]["loss"]
        record["seconds"] = round(time.time() - t0, 3)
        is_best = score < best
        best = min(best, score)
        train_state = {
            "optimizer": optimizer.state_dict(),
            "generator": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": epoch + 1,
            "best": best,
            "select_by": args.select_by,
            "stop_at_failure": args.stop_at_failure,
        }
        out.mkdir(parents=True, exist_ok=True)
        with open(out / METRICS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if is_best:
            save_checkpoint(out / BEST, model, metrics=record, **meta_common)
        save_checkpoint(out / LATEST, model, metrics=record, train_state=train_state, **meta_common)
        if (epoch + 1) % args.plot_every == 0 or epoch + 1 == args.epochs:
            plot_curves(out / METRICS, out / CURVE)
        last = record
        if args.progress:
            val_txt = f" val {record['val']['loss']:.4f}" if "val" in record else ""
            line = f"epoch {epoch + 1}: train {record['train']['loss']:.4f}{val_txt} ({record['seconds']} s)"
            print(line, file=sys.stderr)
    return {"out_dir": str(out), "best": str(out / BEST), "latest": str(out / LATEST), "best_score": best, "last": last}


def parse_args(argv: Optional[Sequence[str]] = None) -> TrainArgs:
    """Parses command-line arguments into :class:`TrainArgs`."""
    d = TrainArgs(data_dir="", out_dir="")
    p = argparse.ArgumentParser(prog="morobot train fdm", description="Train the perceptive forward-dynamics model.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="data directory (manifest.json + shards/)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--ensemble", type=int, default=d.ensemble_size, help="predictor ensemble size")
    p.add_argument("--device", default=d.device)
    p.add_argument("--no-scan", action="store_true", help="train the ablation without the height scan")
    p.add_argument("--history-features", choices=tuple(FEATURE_SETS), default=None,
                   help="proprioceptive inputs: a prefix of the data's set (e.g. base from legged data; default: "
                        "the data's)")
    p.add_argument("--mirror-prob", type=float, default=d.mirror_prob,
                   help="probability of reflecting a training sample left-right (data augmentation)")
    p.add_argument("--rank-weight", type=float, default=d.rank_weight,
                   help="weight of the ranking loss over samples with one start and opposite outcomes (data with "
                        "counterfactual branches: morobot collect-nav --branch-leads); 0 = off")
    p.add_argument("--rank-pairs", type=int, default=d.rank_pairs, help="ranking pairs drawn per training batch")
    p.add_argument("--loss-distance", choices=DISTANCES, default=d.loss_distance,
                   help="position and heading loss: squared distances (the reference design) or distances")
    p.add_argument("--select-by", choices=tuple(SELECT_BY), default=d.select_by,
                   help="what picks best.pt: the validation loss, or the horizon-end position error on the "
                        "validation worlds")
    p.add_argument("--scan-ceiling", type=float, default=None,
                   help="clip scan heights at this height above the base (m), in training and at run time; "
                        "match it to what the robot's sensors put into the elevation map")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--test-fraction", type=float, default=d.test_fraction)
    p.add_argument("--split-seed", type=int, default=d.split_seed)
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest.pt")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="train on data whose collection or conversion did not finish")
    p.add_argument("--init-from", default=None,
                   help="fine-tune: start from this checkpoint (same model config) instead of a fresh model")
    p.add_argument("--threads", type=int, default=d.num_threads, help="torch CPU threads (0 = default)")
    p.add_argument("--grad-clip", type=float, default=d.grad_clip)
    p.add_argument("--max-batches", type=int, default=d.max_batches, help="batches per epoch (0 = all)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--plot-every", type=int, default=d.plot_every, help="redraw loss.png every N epochs")
    p.add_argument("--model-config", help="JSON file with FDMConfig fields to override")
    p.add_argument("--stop-at-failure", choices=STOP_MODES, default=d.stop_at_failure,
                   help="output: the checkpoint's poses stop where it predicts a failure (FDMConfig.stop_at_failure), "
                        "the loss fits the path as it is; train: the loss fits the stopped poses")
    ns = p.parse_args(argv)
    overrides: dict[str, Any] = {}
    if ns.model_config:
        try:
            overrides = json.loads(Path(ns.model_config).read_text())
        except (OSError, ValueError) as exc:
            p.error(f"cannot read --model-config {ns.model_config}: {exc}")
        if not isinstance(overrides, dict):
            p.error("--model-config must hold a JSON object")
    return TrainArgs(
        data_dir=ns.data,
        out_dir=ns.out,
        epochs=ns.epochs,
        batch_size=ns.batch_size,
        lr=ns.lr,
        weight_decay=ns.weight_decay,
        seed=ns.seed,
        ensemble_size=ns.ensemble,
        device=ns.device,
        no_scan=ns.no_scan,
        scan_ceiling=ns.scan_ceiling,
        mirror_prob=ns.mirror_prob,
        val_fraction=ns.val_fraction,
        test_fraction=ns.test_fraction,
        split_seed=ns.split_seed,
        resume=ns.resume,
        allow_incomplete=ns.allow_incomplete,
        num_threads=ns.threads,
        grad_clip=ns.grad_clip,
        max_batches=ns.max_batches,
        progress=not ns.no_progress,
        plot_every=ns.plot_every,
        model_overrides=overrides,
        init_from=ns.init_from,
        history_features=ns.history_features,
        rank_weight=ns.rank_weight,
        rank_pairs=ns.rank_pairs,
        loss_distance=ns.loss_distance,
        select_by=ns.select_by,
        stop_at_failure=ns.stop_at_failure,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the process exit code."""
    args = parse_args(argv)
    try:
        summary = train(args)
    except (ValueError, FloatingPointError) as exc:
        print(f"morobot train fdm: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
