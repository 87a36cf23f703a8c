"""Tables and figures of the navigation benchmark (from ``results.jsonl`` records alone).

:func:`write_report` writes, next to the results:

* ``summary.md``: per mode, a table with one row per terrain mix and planner (success rate with
  its 95 % Wilson interval, collision rate, outcome counts, median time to goal, path efficiency,
  clearance, planner cycle time) and, where scenarios were run in both modes, a lock-step vs
  graph agreement table;
* ``summary.json``: the same aggregates, machine-readable;
* ``nav_eval.png``: grouped success-rate bars (with the Wilson intervals) per terrain mix,
  planner and mode, and one example scenario per mix with every planner's path over the terrain.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from morobot.evaluation.metrics import (FALL_RISE_M, FALL_TERRAIN, FALL_WINDOW_S, OUTCOMES, aggregate,
                                        paired_difference_interval)
from morobot.fileio import atomic_save_figure, atomic_write_text

_PLANNER_COLOURS = {"kinematic": "tab:orange", "fdm": "tab:blue"}
_MODE_STYLES = {"lockstep": "-", "graph": "--"}


def _fmt(value: Optional[float], spec: str = ".1f", unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:{spec}}{unit}"


def summary_table(aggregates: Sequence[dict[str, Any]]) -> str:
    """Markdown table of :func:`~morobot.evaluation.metrics.aggregate` rows (one mode)."""
    lines = [
        "| terrain | planner | N | success | 95 % CI | collisions | reached / fallen / stuck / timeout / error "
        "| median time to goal | median path / straight | median min clearance | mean cycle |",
        "|---|---|---:|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for a in aggregates:
        lo, hi = a["success_ci"]
        outcomes = " / ".join(str(a["outcomes"][o]) for o in OUTCOMES)
        lines.append(
            f"| {a['mix']} | {a['planner']} | {a['n']} | {100 * a['success_rate']:.0f} % "
            f"| {100 * lo:.0f}–{100 * hi:.0f} % | {100 * a['collision_rate']:.0f} % | {outcomes} "
            f"| {_fmt(a['median_time_to_goal'], '.1f', ' s')} | {_fmt(a['median_path_ratio'], '.2f')} "
            f"| {_fmt(a['median_min_clearance'], '.2f', ' m')} | {_fmt(a['mean_cycle_ms'], '.1f', ' ms')} |")
    return "\n".join(lines)


def fall_table(aggregates: Sequence[dict[str, Any]]) -> str:
    """Markdown table of the falls per terrain under the robot before them (rows with falls only; empty if
    none): how many came after the terrain rose or dropped by more than ``FALL_RISE_M`` in ``FALL_WINDOW_S``."""
    rows = [a for a in aggregates if a["outcomes"].get("fallen")]
    if not rows:
        return ""
    lines = [f"| mode | terrain | planner | falls | terrain rising > {100 * FALL_RISE_M:.0f} cm | dropping | level |",
             "|---|---|---|---:|---:|---:|---:|"]
    for a in rows:
        by = a.get("falls_by_terrain", {})
        lines.append(f"| {a['mode']} | {a['mix']} | {a['planner']} | {a['outcomes']['fallen']} | "
                     + " | ".join(str(by.get(d, 0)) for d in FALL_TERRAIN) + " |")
    return "\n".join(lines)


def start_table(records: Sequence[dict[str, Any]]) -> str:
    """Goals on starts that settled and on those that did not (the legged robot's records, which carry
    ``settled``: :mod:`morobot.navigation.settle`), per mode, mix and planner; "" without such records."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        if r.get("settled") is not None:
            groups.setdefault((r["mode"], r["mix"], r["planner"]), []).append(r)
    if not groups:
        return ""
    lines = ["| mode | mix | planner | starts | settled | goals from settled starts | goals from unsettled starts "
             "| median wait |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for (mode, mix, planner), rs in sorted(groups.items()):
        still = [r for r in rs if r["settled"]]
        moving = [r for r in rs if not r["settled"]]
        waits = [r["settle_s"] for r in rs if r.get("settle_s") is not None]
        lines.append(f"| {mode} | {mix} | {planner} | {len(rs)} | {len(still)} | "
                     f"{sum(r['success'] for r in still)} of {len(still)} | "
                     f"{sum(r['success'] for r in moving)} of {len(moving)} | "
                     f"{_fmt(float(np.median(waits)) if waits else None, '.2f', ' s')} |")
    return "\n".join(lines)


def paired_table(records: Sequence[dict[str, Any]], first: str = "fdm",
                 second: str = "kinematic") -> tuple[str, list[dict[str, Any]]]:
    """``first`` against ``second`` planner on the scenarios both ran, per mode and mix: success rates,
    their difference and its paired 95 % interval (:func:`paired_difference_interval`).

    Returns:
        ``(markdown, rows)``; the markdown is empty when no scenario was run by both planners.
    """
    by_key: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in records:
        by_key.setdefault((r["mode"], r["mix"], r["id"]), {})[r["planner"]] = r
    groups: dict[tuple[str, str], list[int]] = {}
    for (mode, mix, _), runs in sorted(by_key.items()):
        if first in runs and second in runs:
            s1, s2 = bool(runs[first]["success"]), bool(runs[second]["success"])
            counts = groups.setdefault((mode, mix), [0, 0, 0, 0])
            counts[{(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}[(s1, s2)]] += 1
    rows = []
    for (mode, mix), (a, b, c, d) in sorted(groups.items()):
        diff, lo, hi = paired_difference_interval(a, b, c, d)
        n = a + b + c + d
        rows.append({"mode": mode, "mix": mix, "pairs": n, f"{first}_success": (a + b) / n,
                     f"{second}_success": (a + c) / n, "difference": diff, "difference_ci": [lo, hi],
                     f"{first}_only": b, f"{second}_only": c})
    if not rows:
        return "", rows
    lines = [f"| mode | terrain | pairs | {first} | {second} | difference | paired 95 % CI | only {first} "
             f"| only {second} |", "|---|---|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        lo, hi = r["difference_ci"]
        lines.append(f"| {r['mode']} | {r['mix']} | {r['pairs']} | {100 * r[f'{first}_success']:.0f} % "
                     f"| {100 * r[f'{second}_success']:.0f} % | {100 * r['difference']:+.0f} pts "
                     f"| {100 * lo:+.0f} to {100 * hi:+.0f} | {r[f'{first}_only']} | {r[f'{second}_only']} |")
    return "\n".join(lines), rows


def agreement_table(records: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Lock-step vs graph results of the scenarios run in both modes.

    Returns:
        ``(markdown, stats)`` with ``stats`` holding ``pairs``, ``same_outcome`` (count) and
        ``median_abs_time_diff`` (s, over pairs reached in both modes); the markdown is empty when
        no scenario was run in both modes.
    """
    by_key: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in records:
        by_key.setdefault((r["planner"], r["id"]), {})[r["mode"]] = r
    pairs = [(k, v["lockstep"], v["graph"]) for k, v in sorted(by_key.items())
             if "lockstep" in v and "graph" in v]
    if not pairs:
        return "", {"pairs": 0, "same_outcome": 0, "median_abs_time_diff": None}
    lines = ["| scenario | planner | lockstep | graph | time to goal lockstep / graph | path length lockstep / graph "
             "| collision lockstep (contacts / footprint) / graph (footprint) |",
             "|---|---|---|---|---:|---:|---|"]
    diffs = []
    same = 0
    for (planner, sid), lk, gr in pairs:
        same += lk["outcome"] == gr["outcome"]
        if lk["time_to_goal"] is not None and gr["time_to_goal"] is not None:
            diffs.append(abs(lk["time_to_goal"] - gr["time_to_goal"]))
        yn = {True: "yes", False: "no", None: "–"}
        lines.append(
            f"| {sid} | {planner} | {lk['outcome']} | {gr['outcome']} "
            f"| {_fmt(lk['time_to_goal'], '.1f', ' s')} / {_fmt(gr['time_to_goal'], '.1f', ' s')} "
            f"| {lk['path_length']:.2f} / {gr['path_length']:.2f} m "
            f"| {yn[lk['contact_collision']]} / {yn[lk['footprint_contact']]} / {yn[gr['footprint_contact']]} |")
    stats = {"pairs": len(pairs), "same_outcome": same,
             "median_abs_time_diff": float(np.median(diffs)) if diffs else None}
    return "\n".join(lines), stats


def _examples(records: Sequence[dict[str, Any]], per_mix: int = 1) -> list[str]:
    """Scenario ids to draw: per mix, prefer scenarios whose outcomes differ between runs, then failures."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in records:
        runs.setdefault(r["mix"], {}).setdefault(r["id"], []).append(r)
    chosen = []
    for mix in sorted(runs):
        ranked = sorted(runs[mix].items(),
                        key=lambda kv: (-len({r["outcome"] for r in kv[1]}), all(r["success"] for r in kv[1]),
                                        -len(kv[1]), kv[1][0]["index"]))
        chosen += [sid for sid, _ in ranked[:per_mix]]
    return chosen


def plot_report(records: Sequence[dict[str, Any]], out_png: str | Path, title: str = "") -> Path:
    """Success bars per terrain mix / planner / mode and example trajectories (PNG, atomic write)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from morobot.evaluation.scenarios import Scenario
    from morobot.sim.worlds import plot_world

    aggs = aggregate(records)
    mixes = sorted({a["mix"] for a in aggs})
    series = sorted({(a["planner"], a["mode"]) for a in aggs}, key=lambda s: (s[1] != "lockstep", s[0]))
    examples = _examples(records)
    n_ex = len(examples)
    fig = plt.figure(figsize=(max(12.0, 4.0 * n_ex), 10.0))
    grid = fig.add_gridspec(2, max(n_ex, 1), height_ratios=(1.0, 1.3))
    ax = fig.add_subplot(grid[0, :])
    width = 0.8 / max(len(series), 1)
    for k, (planner, mode) in enumerate(series):
        xs, ys, lo, hi, labels = [], [], [], [], []
        for i, mix in enumerate(mixes):
            a = next((a for a in aggs if a["mix"] == mix and a["planner"] == planner and a["mode"] == mode), None)
            if a is None:
                continue
            xs.append(i - 0.4 + width * (k + 0.5))
            ys.append(a["success_rate"])
            lo.append(max(0.0, a["success_rate"] - a["success_ci"][0]))  # clip float round-off at 0 and 1
            hi.append(max(0.0, a["success_ci"][1] - a["success_rate"]))
            labels.append(f"{a['successes']}/{a['n']}")
        bars = ax.bar(xs, ys, width * 0.95, yerr=[lo, hi], capsize=3, label=f"{planner} ({mode})",
                      color=_PLANNER_COLOURS.get(planner, "tab:gray"), alpha=1.0 if mode == "lockstep" else 0.5,
                      hatch=None if mode == "lockstep" else "//", edgecolor="k", linewidth=0.5)
        for bar, text in zip(bars, labels):
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() / 2, text, ha="center", va="center",
                    fontsize=8, color="white" if mode == "lockstep" else "black", fontweight="bold")
    ax.axhline(0.9, color="k", lw=0.8, ls=":", label="90 % target")
    ax.set_xticks(range(len(mixes)), mixes)
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.set_ylabel("success rate (95 % Wilson CI)")
    ax.legend(loc="upper center", fontsize=8, ncol=len(series) + 1)
    ax.set_title(title or "navigation benchmark: success per terrain mix")
    for j, sid in enumerate(examples):
        rs = [r for r in records if r["id"] == sid]
        scenario = Scenario.from_dict(rs[0]["scenario"])
        axm = fig.add_subplot(grid[1, j])
        plot_world(axm, scenario.world())
        for r in sorted(rs, key=lambda r: (r["mode"], r["planner"])):
            traj = np.asarray(r["trajectory"], dtype=float).reshape(-1, 3)
            if len(traj):
                axm.plot(traj[:, 1], traj[:, 2], _MODE_STYLES.get(r["mode"], "-"),
                         color=_PLANNER_COLOURS.get(r["planner"], "tab:gray"), lw=1.8,
                         label=f"{r['planner']} ({r['mode']}): {r['outcome']}")
        pts = [np.array([scenario.start[:2], scenario.goal[:2]])]
        pts += [np.asarray(r["trajectory"], dtype=float).reshape(-1, 3)[:, 1:] for r in rs]
        pts_all = np.concatenate(pts)
        centre = 0.5 * (pts_all.min(axis=0) + pts_all.max(axis=0))
        half = 0.5 * float(np.max(pts_all.max(axis=0) - pts_all.min(axis=0))) + 1.5
        axm.set_xlim(centre[0] - half, centre[0] + half)
        axm.set_ylim(centre[1] - half, centre[1] + half)
        axm.set_title(sid, fontsize=9)
        axm.legend(loc="upper left", fontsize=6)
    fig.tight_layout()
    out_png = atomic_save_figure(fig, out_png, dpi=110)
    plt.close(fig)
    return out_png


def _finite(value: Any) -> Any:
    """NaN/inf floats to None, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def write_report(records: Sequence[dict[str, Any]], out_dir: str | Path, header: str = "",
                 plot: bool = True) -> dict[str, Path]:
    """Write ``summary.md``, ``summary.json`` and (``plot``) ``nav_eval.png`` into ``out_dir``.

    Args:
        records: per-scenario records (any mix of modes and planners).
        out_dir: output directory.
        header: markdown put under the title (e.g. the command line and wall time).
        plot: also draw the PNG.

    Returns:
        ``{"markdown": path, "json": path[, "png": path]}``.

    Raises:
        ValueError: no records.
    """
    if not records:
        raise ValueError("no results to report")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    aggs = aggregate(records)
    parts = ["# Navigation benchmark", ""]
    if header:
        parts += [header.rstrip(), ""]
    for mode in ("lockstep", "graph"):
        rows = [a for a in aggs if a["mode"] == mode]
        if rows:
            parts += [f"## {mode}", "", summary_table(rows), ""]
    falls = fall_table(aggs)
    if falls:
        parts += [f"## falls by the terrain under the robot in the {FALL_WINDOW_S:.0f} s before them", "", falls, ""]
    starts = start_table(records)
    if starts:
        parts += ["## starts: the legged robot stood still before the goal, or not within the limit", "", starts, ""]
    paired, paired_rows = paired_table(records)
    if paired:
        parts += ["## FDM vs kinematic on the same scenarios (success difference, paired)", "", paired, ""]
    table, stats = agreement_table(records)
    if table:
        parts += ["## lockstep vs graph (same scenarios)", "",
                  f"{stats['same_outcome']} of {stats['pairs']} runs have the same outcome in both modes; "
                  f"median |time-to-goal difference| {_fmt(stats['median_abs_time_diff'], '.1f', ' s')}.", "",
                  table, ""]
    paths = {"markdown": out_dir / "summary.md", "json": out_dir / "summary.json"}
    _write_text(paths["markdown"], "\n".join(parts))
    summary = {"aggregates": aggs, "agreement": stats, "paired": paired_rows}
    _write_text(paths["json"], json.dumps(_finite(summary), indent=2,
                                          allow_nan=False))
    if plot:
        paths["png"] = plot_report(records, out_dir / "nav_eval.png")
    return paths
