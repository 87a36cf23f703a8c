"""Evaluation of trained FDMs on held-out worlds against two baselines.

``morobot eval fdm --data DIR --checkpoint RUN/best.pt [--no-scan-checkpoint
ABL/best.pt] --out DIR`` compares

* the FDM,
* the same network trained without the height scan (``morobot train fdm --no-scan``), and
* constant velocity / perfect tracking (commands integrated exactly, collision probability 0),

on the test worlds recorded in the checkpoint (or ``--split val|all``): position and heading
error at 1…5 s, collision AUROC (per step, cumulative labels), the correlation of the ensemble
spread with the error, overall and per terrain kind; on data with counterfactual branches (``morobot
collect-nav --branch-leads``) also the command ranking: from one start, how often the command that
failed got the higher failure probability. Writes ``metrics.json``, ``metrics.md``
and ``case_XX.png`` plots of predictions over the terrain.

Length: the metrics, the tables and the command line of one report, which must agree row for row.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from morobot.fdm import se2
from morobot.fdm.checkpoint import CheckpointError, load_checkpoint, seen_worlds
from morobot.fdm.data.dataset import FDMDataset, read_manifest
from morobot.fdm.data.starts import outcome_pairs, start_groups
from morobot.fdm.history import feature_columns
from morobot.fileio import atomic_write_bytes, atomic_write_json
from morobot.fdm.model import PerceptiveFDM

BASELINE = "constant_velocity"


def auroc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve (probability a positive outranks a negative; ties count half).

    Args:
        scores: ``[N]`` scores, higher = more likely positive.
        labels: ``[N]`` binary labels.

    Returns:
        AUROC in ``[0, 1]``, or NaN if only one class is present.

    Raises:
        ValueError: on mismatched sizes, non-finite scores or non-binary labels.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same size, got {s.size} and {y.size}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    y = y.astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # average ranks (1-based) over groups of ties
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    avg = 0.5 * (starts + ends - 1) + 1.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def command_ranking(risk: Any, failed: Any, groups: Any) -> tuple[float, int]:
    """How well the predicted failure probability ranks the commands tried from one start.

    Over every pair of samples with the same start (``groups``) of which exactly one failed, the fraction in
    which the failing one has the higher ``risk`` (ties count half): an AUROC within starts, the question a
    planner asks (which command, from here?). ``risk`` and ``failed`` are ``[N]`` (e.g. at the horizon's end).

    Returns:
        ``(ranking, pairs)``; ranking is NaN without such pairs.
    """
    r = np.asarray(risk, dtype=np.float64).reshape(-1)
    if r.size != np.size(failed) or r.size != np.size(groups):
        raise ValueError(f"risk, failed and groups must have the same size, got {r.size}, {np.size(failed)}, "
                         f"{np.size(groups)}")
    pairs = outcome_pairs(failed, groups)
    if not len(pairs):
        return float("nan"), 0
    diff = r[pairs[:, 0]] - r[pairs[:, 1]]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / len(diff)), int(len(diff))


def horizon_steps(dt: float, horizon: int, seconds: Sequence[float] = (1, 2, 3, 4, 5)) -> dict[str, int]:
    """Step indices whose end time equals each requested time (times beyond the horizon dropped)."""
    out = {}
    for sec in seconds:
        k = sec / dt
        if abs(k - round(k)) < 1e-6 and 1 <= round(k) <= horizon:
            out[f"{sec:g}s"] = int(round(k)) - 1
    return out


@torch.no_grad()
def predict_dataset(
    model: PerceptiveFDM, data: FDMDataset, batch_size: int = 2048, device: str = "cpu"
) -> dict[str, np.ndarray]:
    """Ensemble-mean predictions for every sample (poses relative to the start).

    Returns:
        ``poses [N, T, 3]``, ``collision [N, T]``, ``uncertainty [N, T]``.
    """
    model.eval().to(device)
    cols = feature_columns(data.spec.history_features, model.config.history_features)  # e.g. base from legged
    parts: dict[str, list[np.ndarray]] = {"poses": [], "collision": [], "uncertainty": []}
    if model.config.use_scan:
        data.use_scan_config(model.config.scan)  # the model's own clip range (e.g. a lower ceiling)
    for batch in data.iterate(batch_size, with_scan=model.config.use_scan):
        hist = batch["history"][..., :cols].to(device)
        scan = batch["scan"].to(device) if model.config.use_scan else None
        pred = model.predict(model.encode(hist, scan), batch["commands"].to(device))
        parts["poses"].append(pred.poses.cpu().numpy())
        parts["collision"].append(pred.collision.cpu().numpy())
        parts["uncertainty"].append(pred.uncertainty.cpu().numpy())
    t = data.spec.horizon
    return {k: np.concatenate(v) if v else np.zeros((0, t, 3) if k == "poses" else (0, t)) for k, v in parts.items()}


def constant_velocity(data: FDMDataset) -> dict[str, np.ndarray]:
    """Perfect-tracking baseline: the commands integrated exactly, zero collision probability."""
    cmd = torch.from_numpy(data.arrays["commands"]).double()
    poses = se2.integrate(cmd, data.spec.dt).float().numpy() if len(data) else np.zeros((0, data.spec.horizon, 3))
    zeros = np.zeros(poses.shape[:2], dtype=np.float32)
    return {"poses": poses, "collision": zeros, "uncertainty": zeros}


def metrics(pred: dict[str, np.ndarray], target_poses: np.ndarray, failed: np.ndarray, dt: float,
            groups: Optional[np.ndarray] = None) -> dict[str, Any]:
    """Errors at 1…5 s, AUROC and uncertainty/error correlation for one set of predictions.

    With ``groups`` (:func:`start_groups`) also ``command_ranking`` and ``ranking_pairs``
    (:func:`command_ranking` at the horizon's end) where the data has starts with more than one command.
    """
    n, t = failed.shape
    out: dict[str, Any] = {"samples": int(n), "failure_rate": float(failed[:, -1].mean()) if n else float("nan")}
    if n == 0:
        return out
    pos_err = np.linalg.norm(pred["poses"][..., :2] - target_poses[..., :2], axis=-1)
    dyaw = pred["poses"][..., 2] - target_poses[..., 2]
    yaw_err = np.abs(np.arctan2(np.sin(dyaw), np.cos(dyaw)))
    for name, k in horizon_steps(dt, t).items():
        out[f"position_error_{name}"] = float(pos_err[:, k].mean())
        out[f"heading_error_{name}"] = float(yaw_err[:, k].mean())
    out["position_error_final"] = float(pos_err[:, -1].mean())
    out.update(error_by_outcome(pos_err[:, -1], failed[:, -1] > 0))
    out["collision_auroc"] = auroc(pred["collision"].reshape(-1), failed.reshape(-1))
    if groups is not None:
        ranking, pairs = command_ranking(pred["collision"][:, -1], failed[:, -1], groups)
        if pairs:
            out["command_ranking"], out["ranking_pairs"] = ranking, pairs
    unc = pred["uncertainty"][:, -1]
    if np.std(unc) > 0 and np.std(pos_err[:, -1]) > 0:
        out["uncertainty_error_corr"] = float(np.corrcoef(unc, pos_err[:, -1])[0, 1])
    return out


def error_by_outcome(final_error: np.ndarray, failed: np.ndarray) -> dict[str, float]:
    """The horizon-end position error of samples that end in a failure and of the others.

    A failure freezes the recorded pose, so a model that misses it is off by the rest of the walk: these
    samples weigh far more in the mean than their number. ``failed_error_share`` is their part of the sum.
    """
    failed = np.asarray(failed, dtype=bool)
    total = float(final_error.sum())
    nan = float("nan")
    return {
        "final_error_ok": float(final_error[~failed].mean()) if (~failed).any() else nan,
        "final_error_failed": float(final_error[failed].mean()) if failed.any() else nan,
        "failed_error_share": float(final_error[failed].sum()) / total if total > 0 else nan,
    }


def change_interval(error: np.ndarray, baseline: np.ndarray, groups: np.ndarray, draws: int = 4000,
                    seed: int = 0) -> dict[str, float]:
    """Relative change of the mean error against a baseline's, with a 95 % bootstrap interval over groups.

    Samples of one world are not independent, so whole worlds (``groups``) are resampled: each draw takes as many
    worlds as there are, with replacement, and compares the two errors summed over them.
    """
    ids, inverse = np.unique(np.asarray(groups), return_inverse=True)
    err = np.bincount(inverse, weights=error, minlength=len(ids))
    base = np.bincount(inverse, weights=baseline, minlength=len(ids))
    if base.sum() <= 0:
        return {}
    pick = np.random.default_rng(seed).integers(len(ids), size=(draws, len(ids)))
    num, den = err[pick].sum(axis=1), base[pick].sum(axis=1)
    changes = num[den > 0] / den[den > 0] - 1.0
    lo, hi = np.quantile(changes, [0.025, 0.975])
    return {"vs_baseline_final": float(err.sum() / base.sum() - 1.0), "vs_baseline_final_lo": float(lo),
            "vs_baseline_final_hi": float(hi)}


def _rows(results: dict[str, Any], keys: Sequence[str]) -> list[str]:
    """Table rows (every model, overall then per kind) of ``keys``; ``-`` where a value is missing."""
    lines = []
    for subset, block in [("all", results["overall"])] + [(k, v) for k, v in sorted(results["by_kind"].items())]:
        for model in results["overall"]:
            row = block.get(model, {})
            vals = [f"{row[k]:.3f}" if isinstance(row.get(k), float) else "-" for k in keys]
            lines.append(f"| {subset} | {model} | " + " | ".join(vals) + " |")
    return lines


def _table(results: dict[str, Any]) -> str:
    first = next(iter(results["overall"].values()))
    keys = [k for k in first if k.startswith(("position_error_", "heading_error_")) and not k.endswith("_final")]
    keys.append("collision_auroc")
    if any("command_ranking" in row for row in results["overall"].values()):
        keys.append("command_ranking")
    if any("vs_baseline_final" in row for row in results["overall"].values()):
        keys += ["vs_baseline_final", "vs_baseline_final_lo", "vs_baseline_final_hi"]
    split = ["failure_rate", "final_error_ok", "final_error_failed", "failed_error_share"]
    lines = ["| subset | model | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 2)]
    lines += _rows(results, keys)
    lines += ["", "Position error at the horizon's end, samples without and with a failure:", "",
              "| subset | model | " + " | ".join(split) + " |", "|" + "---|" * (len(split) + 2)]
    lines += _rows(results, split)
    return "\n".join(lines) + "\n"


def plot_cases(
    data: FDMDataset, predictions: dict[str, dict[str, np.ndarray]], indices: Sequence[int], out_dir: Path
) -> list[Path]:
    """One PNG per sample: terrain, ground truth and each model's predicted trajectory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for n, i in enumerate(indices):
        world = data.worlds[data.world_ids[int(data.world_index[i])]]
        start = torch.from_numpy(data.arrays["start_pose"][i].astype(np.float64))
        heights = world["heights"]
        res, (ox, oy) = world["resolution"], world["origin"]
        extent = [ox - res / 2, ox + res * (heights.shape[0] - 0.5), oy - res / 2, oy + res * (heights.shape[1] - 0.5)]
        fig, ax = plt.subplots(figsize=(6, 6))
        im = ax.imshow(heights.T, origin="lower", extent=extent, cmap="terrain")
        fig.colorbar(im, ax=ax, shrink=0.8, label="height (m)")

        def world_xy(rel: np.ndarray) -> np.ndarray:
            return se2.compose(start, torch.from_numpy(rel.astype(np.float64))).numpy()

        gt = world_xy(data.arrays["poses"][i])
        ax.plot(gt[:, 0], gt[:, 1], "k.-", lw=2, label="ground truth")
        fail = np.flatnonzero(data.arrays["failed"][i])
        if fail.size:
            ax.plot(gt[fail[0], 0], gt[fail[0], 1], "rx", ms=12, mew=3, label="failure")
        for (name, pred), style in zip(predictions.items(), ("b.-", "m.--", "g.:")):
            traj = world_xy(pred["poses"][i])
            ax.plot(traj[:, 0], traj[:, 1], style, label=f"{name} (p_fail={pred['collision'][i, -1]:.2f})")
        ax.plot(start[0], start[1], "ko", ms=8)
        span = 6.0
        ax.set_xlim(float(start[0]) - span, float(start[0]) + span)
        ax.set_ylim(float(start[1]) - span, float(start[1]) + span)
        ax.set_title(f"{world['kind']} / {data.world_ids[int(data.world_index[i])]} / sample {i}")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        ax.legend(fontsize="small", loc="upper left")
        fig.tight_layout()
        path = out_dir / f"case_{n:02d}.png"
        atomic_write_bytes(path, lambda fh: fig.savefig(fh, format="png", dpi=90))
        plt.close(fig)
        paths.append(path)
    return paths


@dataclass
class EvalArgs:
    """Arguments of an evaluation run.

    Attributes:
        data_dir: data directory.
        checkpoint: FDM checkpoint (``.pt``).
        out_dir: where metrics and plots go.
        no_scan_checkpoint: optional checkpoint of the no-scan ablation.
        compare: more ``{name: checkpoint}`` evaluated on the same worlds (those of
            ``checkpoint``'s split), e.g. a previous model.
        members: also evaluate ``checkpoint`` with only its first ``N`` ensemble members, for each
            ``N`` (as the planner's ``fdm_members`` runs it), in rows named ``fdm_<N>_members``.
        stopped: also evaluate every learned model whose poses do not stop at its predicted failures
            with them stopped (:func:`~morobot.fdm.model.stop_at_failure`), in rows named ``<name>_stopped``.
        split: ``test``/``val`` (worlds recorded in the checkpoint) or ``all``.
        num_plots: number of case plots.
        batch_size: evaluation batch size.
        device: torch device.
        seed: seed for choosing the plotted cases.
    """

    data_dir: str
    checkpoint: str
    out_dir: str
    no_scan_checkpoint: Optional[str] = None
    compare: dict[str, str] = field(default_factory=dict)
    members: list[int] = field(default_factory=list)
    stopped: bool = False
    split: str = "test"
    num_plots: int = 6
    batch_size: int = 2048
    device: str = "cpu"
    seed: int = 0


def _choose_cases(data: FDMDataset, count: int, seed: int) -> list[int]:
    """Up to ``count`` samples spread over the terrain kinds, alternating failures and successes."""
    if count <= 0 or len(data) == 0:
        return []
    rng = np.random.default_rng(seed)
    kinds = data.kinds
    failed = data.arrays["failed"][:, -1] > 0
    pools = []
    for kind in sorted(set(kinds.tolist())):
        sel = kinds == kind
        fails = list(rng.permutation(np.flatnonzero(sel & failed)))
        successes = list(rng.permutation(np.flatnonzero(sel & ~failed)))
        pools.append([fails, successes])
    picks: list[int] = []
    turn = 0
    while len(picks) < count and any(p[0] or p[1] for p in pools):
        for pool in pools:
            if len(picks) >= count:
                break
            first, second = pool[turn % 2], pool[(turn + 1) % 2]
            source = first if first else second
            if source:
                picks.append(int(source.pop()))
        turn += 1
    return sorted(picks)


def evaluate(args: EvalArgs) -> dict[str, Any]:
    """Runs the evaluation; returns (and writes) the metrics.

    Raises:
        CheckpointError: on unusable checkpoints.
        ValueError: on an unknown split, worlds missing from the data, or mismatched models.
    """
    if args.split not in ("test", "val", "all"):
        raise ValueError(f"split must be test, val or all, got {args.split!r}")
    model, meta = load_checkpoint(args.checkpoint, map_location=args.device)
    models: dict[str, PerceptiveFDM] = {"fdm": model}
    for n in args.members:
        if not 1 <= n < model.config.ensemble_size:
            raise ValueError(f"--members {n}: the checkpoint has {model.config.ensemble_size} members; "
                             f"use 1 to {model.config.ensemble_size - 1}")
        models[f"fdm_{n}_members"] = model.with_members(n)
    others: list[dict[str, Any]] = []  # the other models' checkpoint metadata
    if args.no_scan_checkpoint:
        ablation, ablation_meta = load_checkpoint(args.no_scan_checkpoint, map_location=args.device)
        others.append(ablation_meta)
        if ablation.config.use_scan:
            raise ValueError(f"{args.no_scan_checkpoint} uses the height scan; expected a --no-scan model")
        models["no_scan"] = ablation
    for name, path in args.compare.items():
        if name in models or name == BASELINE:
            raise ValueError(f"--compare name {name!r} is taken")
        models[name], other_meta = load_checkpoint(path, map_location=args.device)
        others.append(other_meta)
    if args.stopped:
        for name, m in list(models.items()):
            if not m.config.stop_at_failure:
                if f"{name}_stopped" in models:
                    raise ValueError(f"model name {name}_stopped is taken")
                models[f"{name}_stopped"] = m.with_stop_at_failure()
    manifest = read_manifest(args.data_dir)
    warnings = []
    if meta.get("data_hash") and meta["data_hash"] != manifest["data_hash"]:
        warnings.append("data hash differs from the checkpoint's training data")
    worlds = None
    if args.split != "all":
        worlds = meta.get("extra", {}).get("split", {}).get(args.split)
        if worlds is None:
            raise ValueError(f"checkpoint {args.checkpoint} records no {args.split!r} split; use --split all")
        if not worlds:
            raise ValueError(f"the checkpoint's {args.split!r} split is empty; use --split all")
        # held out for every model compared: a world another checkpoint trained or validated on (its own
        # split of another data set, e.g. before worlds were added) would flatter that model
        seen = set().union(*(seen_worlds(m) for m in others))
        kept = [w for w in worlds if w not in seen]
        if len(kept) < len(worlds):
            warnings.append(f"{len(worlds) - len(kept)} of the {len(worlds)} {args.split} worlds left out: another "
                            "compared checkpoint trained or validated on them")
        if not kept:
            raise ValueError(f"every {args.split} world was seen by another compared checkpoint; use --split all "
                             "on data none of them saw")
        worlds = kept
    data = FDMDataset(args.data_dir, worlds)
    for name, m in models.items():
        timing = (m.config.horizon, m.config.dt, m.config.history_length)
        if timing != (data.spec.horizon, data.spec.dt, data.spec.history_length):
            raise ValueError(f"model {name!r} does not match the data's horizon/dt/history")
        try:
            feature_columns(data.spec.history_features, m.config.history_features)
        except ValueError as exc:
            raise ValueError(f"model {name!r}: {exc}") from None

    preds = {name: predict_dataset(m, data, args.batch_size, args.device) for name, m in models.items()}
    preds[BASELINE] = constant_velocity(data)
    target, failed, kinds = data.arrays["poses"], data.arrays["failed"], data.kinds
    groups = start_groups(data)
    results: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "no_scan_checkpoint": args.no_scan_checkpoint,
        "split": args.split,
        "worlds": data.world_ids,
        "warnings": warnings,
        "overall": {name: metrics(p, target, failed, data.spec.dt, groups) for name, p in preds.items()},
        "by_kind": {},
    }
    final = {name: np.linalg.norm(p["poses"][:, -1, :2] - target[:, -1, :2], axis=-1) for name, p in preds.items()}
    for name in models:
        results["overall"][name].update(change_interval(final[name], final[BASELINE], data.world_index))
    for kind in sorted(set(kinds.tolist())):
        sel = kinds == kind
        results["by_kind"][kind] = {
            name: metrics({k: v[sel] for k, v in p.items()}, target[sel], failed[sel], data.spec.dt, groups[sel])
            for name, p in preds.items()
        }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases = _choose_cases(data, args.num_plots, args.seed)
    results["plots"] = [str(p) for p in plot_cases(data, preds, cases, out)]
    atomic_write_json(out / "metrics.json", results)
    table = _table(results)
    atomic_write_bytes(out / "metrics.md", lambda fh: fh.write(table.encode("utf-8")))
    return results


def parse_args(argv: Optional[Sequence[str]] = None) -> EvalArgs:
    """Parses command-line arguments into :class:`EvalArgs`."""
    p = argparse.ArgumentParser(prog="morobot eval fdm", description="Evaluate FDM checkpoints on held-out worlds.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="data directory")
    p.add_argument("--checkpoint", required=True, help="FDM checkpoint (.pt)")
    p.add_argument("--no-scan-checkpoint", help="checkpoint of the --no-scan ablation")
    p.add_argument("--out", required=True, help="output directory for metrics and plots")
    p.add_argument("--compare", nargs="*", default=[], metavar="NAME=CHECKPOINT",
                   help="more checkpoints to evaluate on the same worlds (e.g. previous=models/fdm/fdm_default.pt)")
    p.add_argument("--members", nargs="*", type=int, default=[], metavar="N",
                   help="also evaluate the checkpoint with only its first N ensemble members (the planner's "
                        "fdm_members)")
    p.add_argument("--stop-at-failure", action="store_true",
                   help="also evaluate every model whose poses do not stop at its predicted failures with them "
                        "stopped (rows NAME_stopped)")
    p.add_argument("--split", default="test", choices=("test", "val", "all"))
    p.add_argument("--plots", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    compare = {}
    for item in ns.compare:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            p.error(f"--compare takes NAME=CHECKPOINT, got {item!r}")
        compare[name] = path
    return EvalArgs(
        data_dir=ns.data,
        compare=compare,
        members=list(ns.members),
        stopped=ns.stop_at_failure,
        checkpoint=ns.checkpoint,
        out_dir=ns.out,
        no_scan_checkpoint=ns.no_scan_checkpoint,
        split=ns.split,
        num_plots=ns.plots,
        batch_size=ns.batch_size,
        device=ns.device,
        seed=ns.seed,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; prints the metrics table, returns the exit code."""
    args = parse_args(argv)
    try:
        results = evaluate(args)
    except (CheckpointError, ValueError) as exc:
        print(f"morobot eval fdm: error: {exc}", file=sys.stderr)
        return 2
    print(_table(results), end="")
    for w in results["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
