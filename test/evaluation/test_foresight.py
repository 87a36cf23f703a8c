"""``morobot eval foresight``: warned and unwarned falls, false alarms, the per-cycle AUROC, the CLI."""

import json

import pytest

from morobot.evaluation.foresight import cycle_labels, main, pre_fall, summarise


def _record(outcome, risks, mix="stairs", planner="fdm", standstill=0.1, stop_at=None, mode="lockstep", model=None):
    """A record with one cycle every 0.5 s; a fall ends the run at the last cycle's time. ``model``: the learned
    model's own risk of each cycle (rows of 6 columns; without it rows of 4, as the first traced runs wrote)."""
    trace = [[0.5 * i, r, standstill, int(i == stop_at)] + ([] if model is None else [model[i], 0.05])
             for i, r in enumerate(risks)]
    return {"planner": planner, "mix": mix, "mode": mode, "outcome": outcome,
            "sim_time": 0.5 * (len(risks) - 1), "risk_trace": trace}


def test_a_fall_is_warned_only_by_risk_inside_its_window():
    early = _record("fallen", [0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])  # high 3 s before the fall
    assert pre_fall(early, lead=2.0)["plan"] == pytest.approx(0.1)
    assert pre_fall(early, lead=3.0)["plan"] == pytest.approx(0.9)
    late = _record("fallen", [0.1, 0.1, 0.1, 0.1, 0.6, 0.2], standstill=0.7, stop_at=4)
    w = pre_fall(late, lead=2.0)
    assert w == {"plan": 0.6, "standstill": 0.7, "model": None, "model_standstill": None, "stops": 1, "cycles": 5}
    # the last gap seconds are a fall under way, not a warning
    assert pre_fall(late, lead=2.0, gap=1.0)["plan"] == pytest.approx(0.1)
    assert pre_fall(_record("fallen", [0.1, 0.2, 0.3], model=[0.4, 0.9, 0.1]), lead=1.0)["model"] == 0.9
    assert pre_fall(_record("reached", [0.9, 0.9]), lead=2.0) is None
    assert pre_fall({**late, "risk_trace": []}, lead=2.0) is None


def test_cycle_labels_mark_the_lead_before_a_fall():
    scores, labels = cycle_labels(_record("fallen", [0.1, 0.2, 0.3, 0.4, 0.5]), lead=1.0)
    assert list(scores) == [0.1, 0.2, 0.3, 0.4, 0.5] and list(labels) == [0, 0, 1, 1, 1]
    scores, labels = cycle_labels(_record("fallen", [0.1, 0.2, 0.3, 0.4, 0.5]), lead=1.0, gap=0.5)
    assert list(scores) == [0.1, 0.2, 0.3, 0.4] and list(labels) == [0, 0, 1, 1]  # the last cycle is left out
    _, labels = cycle_labels(_record("reached", [0.1, 0.9]), lead=1.0)
    assert list(labels) == [0, 0]
    rec = _record("fallen", [0.9, 0.9, 0.9], model=[0.1, 0.2, 0.3])
    assert list(cycle_labels(rec, lead=0.5, model=True)[0]) == [0.1, 0.2, 0.3]
    assert len(cycle_labels(_record("fallen", [0.9]), lead=0.5, model=True)[0]) == 0  # no model column


def test_summary_counts_per_mix_and_over_all():
    records = [
        _record("fallen", [0.1, 0.1, 0.8, 0.9], model=[0.1, 0.1, 0.6, 0.1]),  # warned (the model too), still safe
        _record("fallen", [0.1, 0.1, 0.8, 0.9], standstill=0.6, model=[0.1, 0.1, 0.1, 0.1]),  # the map warned
        _record("fallen", [0.1, 0.1, 0.1, 0.2]),                     # unwarned
        _record("reached", [0.1, 0.7, 0.1, 0.1, 0.1]),               # reached although alarmed
        _record("reached", [0.1, 0.1, 0.1], mix="rough"),
        _record("fallen", [0.9, 0.9], planner="kinematic"),
        _record("fallen", [0.9, 0.9], mode="graph"),                  # graph runs have no trace: skipped
        {"planner": "fdm", "mix": "stairs", "mode": "lockstep", "outcome": "fallen", "sim_time": 3.0},  # older run
    ]
    rows = {(r["planner"], r["mix"]): r for r in summarise(records, lead=1.0, level=0.5, gap=0.0)}
    assert set(rows) == {("fdm", "stairs"), ("fdm", "rough"), ("fdm", "all"), ("kinematic", "stairs"),
                         ("kinematic", "all")}
    st = rows[("fdm", "stairs")]
    assert (st["runs"], st["falls"], st["falls_traced"], st["warned"]) == (4, 3, 3, 2)
    assert st["warned_standstill_safe"] == 1 and st["median_plan_risk"] == pytest.approx(0.9)
    assert (st["reached"], st["alarmed_reached"]) == (1, 1)
    assert (st["model_warned"], st["model_traced"]) == (1, 2)
    # the model's cycles in the second before a fall: 0.1 0.6 0.1 | 0.1 0.1 0.1; before it: 0.1 | 0.1. The 0.6 beats
    # both, the other 10 pairs tie: (2 + 10 / 2) / 12
    assert st["model_cycle_auroc"] == pytest.approx(7 / 12)
    # cycles in the second before a fall: 0.8 0.9 | 0.8 0.9 | 0.1 0.2; the rest: 0.1 0.1 x3, 0.1 0.7 0.1 0.1 0.1
    assert 0.5 < st["cycle_auroc"] < 1.0
    assert rows[("fdm", "all")]["runs"] == 5 and rows[("fdm", "rough")]["cycle_auroc"] is None  # no fall there
    # the model's own before the two falls that have it: 0.6 and 0.1 (standing still 0.05 throughout)
    assert st["median_model_risk"] == pytest.approx(0.35) and st["median_model_standstill"] == pytest.approx(0.05)
    assert st["model_standstill_high"] == 0 and st["model_alarmed_reached"] == 0
    # plans at 0.5 or more and above standing still by 0.05: 0.8 0.9 (still 0.1), 0.8 0.9 (still 0.6), 0.7 (0.1)
    assert (st["riskier_than_standing"], st["cycles"]) == (5, 17)
    assert summarise(records, lead=1.0, gap=0.0, margin=0.25)[1]["riskier_than_standing"] == 4  # not 0.8 over 0.6
    # of the 8 cycles with a model column the map set the risk where the plan's 0.8 / 0.9 exceed the model's
    assert st["map_sets_risk"] == pytest.approx(0.5) and rows[("kinematic", "all")]["map_sets_risk"] is None
    with pytest.raises(ValueError, match="lead"):
        summarise(records, lead=0.0)
    with pytest.raises(ValueError, match="gap"):
        summarise(records, lead=1.0, gap=1.0)
    with pytest.raises(ValueError, match="level"):
        summarise(records, level=1.5)
    with pytest.raises(ValueError, match="margin"):
        summarise(records, margin=-0.1)


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    records = [_record("fallen", [0.1, 0.9, 0.2, 0.1]), _record("reached", [0.1])]
    path.write_text("\n".join(json.dumps(r) for r in records))
    out = tmp_path / "rows.json"
    assert main([str(path), "--planner", "fdm", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| fdm | stairs | 2 | 1 | 1/1 | 0.90 |" in text  # the fall at 1.5 s: cycles 0-1 s (gap 0.5 s)
    assert "the model's own" not in text.split("\n\n")[-1]  # no model column: no second table
    assert main([str(path), "--gap", "1.25"]) == 0  # only the cycle at 0 s
    assert "| fdm | stairs | 2 | 1 | 0/1 | 0.10 |" in capsys.readouterr().out
    assert json.loads(out.read_text())[0]["warned"] == 1
    assert main([str(path), "--planner", "kinematic"]) == 1  # nothing of that planner
    assert "no lock-step record" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.jsonl")]) == 2
    path.write_text(json.dumps(_record("fallen", [0.1, 0.9, 0.2, 0.1], model=[0.1, 0.7, 0.1, 0.1])))
    assert main([str(path)]) == 0
    # the map's part set the risk where the plan's 0.9 and 0.2 exceed the model's 0.7 and 0.1
    assert "| fdm | stairs | 0.70 / 0.05 | 0/1 | 0/0 | 1/4 | 50 % | 0.15 / 0.10 |" in capsys.readouterr().out
