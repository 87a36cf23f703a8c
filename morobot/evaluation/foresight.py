"""Did the planner see its falls coming? ``morobot eval foresight`` over lock-step results.

Every lock-step record carries a ``risk_trace`` (:meth:`morobot.evaluation.nav.LockstepRunner.run`): per
planning cycle, the peak predicted risk of the plan the planner chose and of standing still. A fall
splits into two kinds by what the planner predicted from ``lead`` to ``gap`` seconds before it (the last
``gap`` seconds are left out: a model that reads the body's motion sees a fall that has begun, too late to act):

* **warned**: the chosen plan's risk reached ``level``. The prediction was there; the cost accepted it, the
  stop came too late, or standing still was no safer (the standstill column says which).
* **unwarned**: it stayed below ``level``. The model (with the map risk it is combined with) did not foresee it.

Two figures say how well the risk separates what comes next, whatever the level:

* ``cycle AUROC``: every cycle of every run, positive when a fall follows within ``gap`` to ``lead`` seconds
  (cycles in the last ``gap`` seconds before a fall are left out), scored by the chosen plan's peak risk;
* ``alarmed reached``: runs that reached their goal although a chosen plan's risk reached ``level``
  somewhere on the way (false alarms, if the level were a stop rule).

Where the planner's risk combines a learned model's failure probability with the map's geometric risk
(FDM-MPPI's default), the trace also holds the model's own part, and a second table repeats the figures on it
alone: warned falls, the median risk of the plan chosen and of standing still before them, falls before which
standing still was no safer, alarms on successful runs, the cycle AUROC, and over all cycles how often the map's
part set the planner's risk. ``riskier than standing`` counts the cycles whose chosen plan was at or above
``level`` and above standing still's by ``margin`` (the planner's ``risk_margin``): the only cycles a stop rule
relative to standing still could act on.

    morobot eval foresight runs/nav/results.jsonl [more.jsonl ...] [--lead 2] [--gap 0.5] [--level 0.5] [--planner fdm]
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from morobot.cliutil import parser as make_parser

#: Columns of a ``risk_trace`` row (the model's own risks since they were recorded).
T, PLAN, STANDSTILL, STOP, MODEL, MODEL_STANDSTILL = range(6)


def _rows(record: dict[str, Any]) -> list[list]:
    return [r for r in record.get("risk_trace") or () if r[PLAN] is not None]


def _model(row: list) -> Optional[float]:
    return row[MODEL] if len(row) > MODEL else None


def pre_fall(record: dict[str, Any], lead: float, gap: float = 0.0) -> Optional[dict[str, Any]]:
    """What the planner predicted from ``lead`` to ``gap`` seconds before a fall.

    Returns:
        ``{"plan", "standstill", "model", "model_standstill", "stops", "cycles"}``: the highest chosen-plan risk,
        the highest standstill risk, the learned model's own highest risks of the two (None if no cycle had one),
        the risk stops and the cycles in the window; None if the run did not fall or has no trace there.
    """
    if record.get("outcome") != "fallen":
        return None
    end = float(record["sim_time"])
    window = [r for r in _rows(record) if end - lead <= r[T] <= end - gap]
    if not window:
        return None
    still = [r[STANDSTILL] for r in window if r[STANDSTILL] is not None]
    model = [_model(r) for r in window if _model(r) is not None]
    model_still = [r[MODEL_STANDSTILL] for r in window if _model(r) is not None and r[MODEL_STANDSTILL] is not None]
    return {"plan": max(r[PLAN] for r in window), "standstill": max(still) if still else None,
            "model": max(model) if model else None, "model_standstill": max(model_still) if model_still else None,
            "stops": sum(int(r[STOP]) for r in window), "cycles": len(window)}


def cycle_labels(record: dict[str, Any], lead: float, gap: float = 0.0,
                 model: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, labels)`` of a run's cycles: the chosen plan's peak risk (``model``: the learned model's own;
    cycles without it are left out), and 1 where a fall follows within ``gap`` to ``lead`` seconds; the cycles
    of the last ``gap`` seconds before a fall are left out."""
    rows = [r for r in _rows(record) if _model(r) is not None] if model else _rows(record)
    if record.get("outcome") == "fallen":
        end = float(record["sim_time"])
        rows = [r for r in rows if r[T] <= end - gap]
        labels = np.array([int(r[T] >= end - lead) for r in rows], dtype=int)
    else:
        labels = np.zeros(len(rows), dtype=int)
    return np.array([_model(r) if model else r[PLAN] for r in rows], dtype=float), labels


def _median(values: list) -> Optional[float]:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def summarise(records: Iterable[dict[str, Any]], lead: float = 2.0, level: float = 0.5,
              gap: float = 0.5, margin: float = 0.05) -> list[dict[str, Any]]:
    """One row per planner and mix, then per planner over all mixes (``mix == "all"``).

    Raises:
        ValueError: not ``0 <= gap < lead``, or ``level`` or ``margin`` outside [0, 1].
    """
    if not 0.0 <= gap < lead:
        raise ValueError(f"need 0 <= gap < lead, got gap {gap} and lead {lead}")
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"level must be in [0, 1], got {level}")
    if not 0.0 <= margin <= 1.0:
        raise ValueError(f"margin must be in [0, 1], got {margin}")
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for rec in records:
        if rec.get("mode", "lockstep") != "lockstep" or "risk_trace" not in rec:
            continue
        groups[(rec["planner"], rec["mix"])].append(rec)
        groups[(rec["planner"], "all")].append(rec)
    out = []
    for (planner, mix), recs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] == "all", kv[0][1])):
        falls = [w for w in (pre_fall(r, lead, gap) for r in recs) if w is not None]
        warned = [w for w in falls if w["plan"] >= level]
        reached = [r for r in recs if r.get("outcome") == "reached"]
        alarmed = [r for r in reached if any(row[PLAN] >= level for row in _rows(r))]
        stills = [w["standstill"] for w in warned if w["standstill"] is not None]
        cycles = [row for r in recs for row in _rows(r)]
        split = [row for row in cycles if _model(row) is not None]
        out.append({
            "planner": planner, "mix": mix, "runs": len(recs),
            "falls": sum(r.get("outcome") == "fallen" for r in recs), "falls_traced": len(falls),
            "warned": len(warned),
            "median_plan_risk": _median([w["plan"] for w in falls]),
            "warned_standstill_safe": sum(s < level for s in stills),
            "stops_before_fall": sum(w["stops"] > 0 for w in falls),
            "reached": len(reached), "alarmed_reached": len(alarmed),
            "cycle_auroc": _cycle_auroc(recs, lead, gap, False),
            "model_warned": sum(w["model"] is not None and w["model"] >= level for w in falls),
            "model_traced": sum(w["model"] is not None for w in falls),
            "model_cycle_auroc": _cycle_auroc(recs, lead, gap, True),
            "median_model_risk": _median([w["model"] for w in falls]),
            "median_model_standstill": _median([w["model_standstill"] for w in falls]),
            "model_standstill_high": sum(w["model_standstill"] is not None and w["model_standstill"] >= level
                                         for w in falls),
            "model_alarmed_reached": sum(any(_model(row) is not None and _model(row) >= level for row in _rows(r))
                                         for r in reached),
            "cycles": len(cycles),
            "riskier_than_standing": sum(row[PLAN] >= level and row[STANDSTILL] is not None
                                         and row[PLAN] > row[STANDSTILL] + margin for row in cycles),
            "map_sets_risk": (sum(row[MODEL] < row[PLAN] - 1e-3 for row in split) / len(split)) if split else None,
            "median_cycle_risk": _median([row[PLAN] for row in split]),
            "median_cycle_model_risk": _median([row[MODEL] for row in split]),
        })
    return out


def _cycle_auroc(records: list[dict[str, Any]], lead: float, gap: float, model: bool) -> Optional[float]:
    """The cycle AUROC over ``records`` (None without both classes)."""
    from morobot.fdm.evaluation.evaluate import auroc

    pairs = [cycle_labels(r, lead, gap, model) for r in records]
    scores = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0)
    labels = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, dtype=int)
    value = auroc(scores, labels) if len(scores) else float("nan")
    return float(value) if np.isfinite(value) else None


def markdown(rows: Sequence[dict[str, Any]], lead: float, level: float, gap: float) -> str:
    """The summary as a markdown table."""
    head = (f"| planner | mix | runs | falls | warned (risk >= {level:g}, {lead:g} to {gap:g} s before) "
            f"| median pre-fall risk "
            f"| warned, standing still safe | risk stop before the fall | reached | alarmed reached | cycle AUROC "
            f"| model's own risk: warned | model's own: cycle AUROC |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        median = _fmt(r["median_plan_risk"])
        auc, model_auc = ("" if v is None else f"{v:.3f}" for v in (r["cycle_auroc"], r["model_cycle_auroc"]))
        model = f"{r['model_warned']}/{r['model_traced']}" if r["model_traced"] else ""
        lines.append(f"| {r['planner']} | {r['mix']} | {r['runs']} | {r['falls']} | {r['warned']}/{r['falls_traced']} "
                     f"| {median} | {r['warned_standstill_safe']}/{r['warned']} | {r['stops_before_fall']} "
                     f"| {r['reached']} | {r['alarmed_reached']}/{r['reached']} | {auc} | {model} | {model_auc} |")
    split = [r for r in rows if r["map_sets_risk"] is not None]
    if split:
        lines += ["", "| planner | mix | the model's own: median risk before a fall, plan chosen / standing still "
                  f"| standing still >= {level:g} | successful runs alarmed | cycles: riskier than standing "
                  "| the map's part sets the risk | median risk, planner's / model's |", "|" + "---|" * 8]
        for r in split:
            plan, still = (_fmt(v) for v in (r["median_model_risk"], r["median_model_standstill"]))
            lines.append(f"| {r['planner']} | {r['mix']} | {plan} / {still} | {r['model_standstill_high']}/"
                         f"{r['model_traced']} | {r['model_alarmed_reached']}/{r['reached']} "
                         f"| {r['riskier_than_standing']}/{r['cycles']} | {100 * r['map_sets_risk']:.0f} % "
                         f"| {_fmt(r['median_cycle_risk'])} / {_fmt(r['median_cycle_model_risk'])} |")
    return "\n".join(lines)


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2f}"


def read_records(paths: Sequence[str], planner: str = "") -> list[dict[str, Any]]:
    """The records of ``results.jsonl`` files (only ``planner``'s when given).

    Raises:
        ValueError: a file is missing or holds a line that is not JSON.
    """
    from morobot.evaluation.nav import read_results

    out = []
    for path in paths:
        if not Path(path).is_file():
            raise ValueError(f"no such results file: {path}")
        out += [rec for rec in read_results(path) if not planner or rec.get("planner") == planner]
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``morobot eval foresight``."""
    p = make_parser("morobot eval foresight", __doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="results.jsonl files of lock-step runs (morobot eval nav)")
    p.add_argument("--lead", type=float, default=2.0, help="seconds before a fall that count as its warning window")
    p.add_argument("--gap", type=float, default=0.5,
                   help="the last seconds before a fall, left out (a fall under way is no warning)")
    p.add_argument("--level", type=float, default=0.5, help="a chosen plan's peak risk from which a fall was warned")
    p.add_argument("--margin", type=float, default=0.05,
                   help="how much riskier than standing still a plan must be to count as riskier (risk_margin)")
    p.add_argument("--planner", default="", help="only this planner's records (kinematic, fdm)")
    p.add_argument("--json", default="", help="also write the rows here")
    ns = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        rows = summarise(read_records(ns.results, ns.planner), ns.lead, ns.level, ns.gap, ns.margin)
    except (ValueError, KeyError) as exc:
        print(f"morobot eval foresight: error: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print("morobot eval foresight: no lock-step record with a risk_trace (runs before it was recorded?)",
              file=sys.stderr)
        return 1
    print(markdown(rows, ns.lead, ns.level, ns.gap))
    if ns.json:
        from morobot.fileio import atomic_write_json

        atomic_write_json(Path(ns.json), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
