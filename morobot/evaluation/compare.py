"""Two planners on the same scenarios, over one or more planner seeds: ``morobot eval compare``.

Each side is one or more ``results.jsonl`` of ``morobot eval nav`` (a directory or the file), one per
planner seed (the planner's ``seed`` parameter, e.g. through ``--params-file``), and the planner whose
records to take: ``DIR[,DIR...][:PLANNER]``. Only scenarios present in every run of both sides are compared, and
only where every run holds the same scenario under its id (runs from before a change of the scenario generator
may not; those ids are left out and counted on stderr).

Per terrain mix and over all mixes:

* the goals of each side, averaged over its seeds;
* the difference in points with its 95 % interval. With one seed on each side it is Newcombe's paired
  interval (as in ``summary.md``). With more, a scenario's outcome is its success rate over the seeds, the
  difference is the mean over scenarios of the rates' difference, and the interval a percentile bootstrap
  over scenarios (10,000 resamples, seeded): the planner's sampling noise is then averaged instead of
  being part of one pairing;
* per side, the scenarios reached under at least one seed (``any``) and under every seed (``every``). ``any``
  is what a perfect choice among the plans this planner's noise produces would reach: an estimate of the
  headroom left for a better model of the same commands.

    morobot eval compare runs/kin0,runs/kin1:kinematic runs/fdm0,runs/fdm1:fdm [--json rows.json]
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from morobot.cliutil import parser as make_parser
from morobot.evaluation.metrics import paired_difference_interval

#: Bootstrap resamples and their seed (multi-seed intervals).
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Side:
    """One planner's runs: one ``{scenario id: record}`` per planner seed."""

    label: str
    runs: tuple[dict[str, dict[str, Any]], ...]


@dataclass(frozen=True)
class Row:
    """One mix (or ``total``) of a comparison; goals are means over seeds, the difference in points."""

    mix: str
    n: int
    first_goals: float
    second_goals: float
    difference: float
    low: float
    high: float
    first_any: int
    first_every: int
    second_any: int
    second_every: int


def _results_file(path: str) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "results.jsonl"
    if not p.is_file():
        raise ValueError(f"no such results file: {p}")
    return p


def load_side(spec: str) -> Side:
    """``DIR[,DIR...][:PLANNER]`` → :class:`Side` (the planner may be left out where a file holds one).

    Raises:
        ValueError: a missing file, a planner the file does not hold, a file with several planners and
            none named, or one planner's runs in several modes (lock-step and graph).
    """
    from morobot.evaluation.nav import read_results

    paths, _, planner = spec.partition(":")
    runs = []
    for path in (p for p in paths.split(",") if p):
        records = read_results(_results_file(path))
        planners = sorted({r.get("planner", "") for r in records})
        name = planner or (planners[0] if len(planners) == 1 else "")
        if not name:
            raise ValueError(f"{path} holds planners {planners}: name one ({path}:PLANNER)")
        if name not in planners:
            raise ValueError(f"{path} has no records of planner {name!r} (it has {planners})")
        mine = [r for r in records if r.get("planner") == name]
        modes = sorted({r.get("mode", "") for r in mine})
        if len(modes) > 1:
            raise ValueError(f"{path} holds {name} runs of several modes {modes}: compare one mode at a time")
        runs.append({r["id"]: r for r in mine})
    if not runs:
        raise ValueError(f"no results in {spec!r}")
    return Side(label=f"{planner or name} ({len(runs)} seed{'s' if len(runs) > 1 else ''})", runs=tuple(runs))


def success_matrix(side: Side, ids: Sequence[str]) -> np.ndarray:
    """``[scenarios, seeds]`` of 0/1: whether each run reached its goal."""
    out = np.zeros((len(ids), len(side.runs)))
    for k, run in enumerate(side.runs):
        out[:, k] = [bool(run[i]["success"]) for i in ids]
    return out


def difference_interval(first: np.ndarray, second: np.ndarray, resamples: int = RESAMPLES,
                        seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """First's success rate minus second's over the same scenarios, with a 95 % interval.

    Args:
        first: ``[N, seeds]`` 0/1 outcomes of the first planner; ``second`` likewise (its own seed count).

    Returns:
        ``(difference, low, high)`` as fractions: Newcombe's paired interval with one seed on each side,
        otherwise a percentile bootstrap over scenarios of the mean per-scenario rate difference.
    """
    n = first.shape[0]
    if n == 0:
        return 0.0, -1.0, 1.0
    if first.shape[1] == 1 and second.shape[1] == 1:
        a, b = first[:, 0] > 0.5, second[:, 0] > 0.5
        return paired_difference_interval(int(np.sum(a & b)), int(np.sum(a & ~b)), int(np.sum(~a & b)),
                                          int(np.sum(~a & ~b)))
    d = first.mean(axis=1) - second.mean(axis=1)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(low), float(high)


def differing(first: Side, second: Side) -> list[str]:
    """Ids that every run of both sides has but not with the same scenario (records without one match any)."""
    runs = first.runs + second.runs
    out = []
    for sid in sorted(set.intersection(*(set(run) for run in runs))):
        specs = [run[sid]["scenario"] for run in runs if "scenario" in run[sid]]
        if any(spec != specs[0] for spec in specs[1:]):
            out.append(sid)
    return out


def compare(first: Side, second: Side) -> list[Row]:
    """Rows per mix (sorted) and a ``total`` row over the scenarios every run of both sides has, with the same
    scenario under each id (see :func:`differing`)."""
    common = set.intersection(*(set(run) for run in first.runs + second.runs)) - set(differing(first, second))
    mixes: dict[str, list[str]] = {}
    for sid in sorted(common):
        mixes.setdefault(first.runs[0][sid]["mix"], []).append(sid)
    rows = []
    for mix, ids in sorted(mixes.items()) + [("total", sorted(common))]:
        a, b = success_matrix(first, ids), success_matrix(second, ids)
        diff, low, high = difference_interval(a, b)
        points = [round(100 * v, 9) + 0.0 for v in (diff, low, high)]  # float noise never prints as -0.0
        rows.append(Row(mix, len(ids), float(a.mean(axis=1).sum()), float(b.mean(axis=1).sum()), *points,
                        int(a.max(axis=1).sum()), int(a.min(axis=1).sum()),
                        int(b.max(axis=1).sum()), int(b.min(axis=1).sum())))
    return rows


def markdown(rows: Sequence[Row], first: Side, second: Side) -> str:
    """The comparison as a markdown table."""
    lines = [f"first: {first.label}; second: {second.label}; goals are means over seeds",
             "", "| mix | N | first goals | second goals | first - second (points) | 95 % interval | "
             "first any / every seed | second any / every seed |", "|---|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.mix} | {r.n} | {r.first_goals:.1f} | {r.second_goals:.1f} | {r.difference:+.1f} | "
                     f"[{r.low:+.1f}, {r.high:+.1f}] | {r.first_any} / {r.first_every} | "
                     f"{r.second_any} / {r.second_every} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``morobot eval compare``."""
    p = make_parser("morobot eval compare", __doc__.split("\n\n")[0])
    p.add_argument("first", help="DIR[,DIR...][:PLANNER]: results of the first planner, one directory per seed")
    p.add_argument("second", help="the same for the second planner (the same scenarios)")
    p.add_argument("--json", default="", help="also write the rows here")
    ns = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        first, second = load_side(ns.first), load_side(ns.second)
        rows = compare(first, second)
        changed = differing(first, second)
    except (ValueError, KeyError) as exc:
        print(f"morobot eval compare: error: {exc}", file=sys.stderr)
        return 2
    if changed:
        print(f"morobot eval compare: {len(changed)} scenario ids hold different scenarios in different runs, left "
              f"out: {', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}", file=sys.stderr)
    if rows[-1].n == 0:
        print("morobot eval compare: the two sides share no scenario", file=sys.stderr)
        return 1
    print(markdown(rows, first, second))
    if ns.json:
        from morobot.fileio import atomic_write_json

        atomic_write_json(Path(ns.json), [asdict(r) for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
