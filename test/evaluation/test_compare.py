"""``morobot eval compare``: sides over planner seeds, the paired and bootstrap intervals, headroom, the CLI."""

import json

import numpy as np
import pytest

from morobot.evaluation.compare import (Side, compare, difference_interval, differing, load_side, main,
                                        markdown)
from morobot.evaluation.metrics import paired_difference_interval


def _write(path, outcomes, planner="kinematic", mix="steps"):
    """A results.jsonl in ``path`` with one record per scenario: ``outcomes`` maps an id to success."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "results.jsonl", "w") as fh:
        for sid, ok in outcomes.items():
            rec = {"id": sid, "mix": mix if not sid.startswith("r") else "rough", "planner": planner,
                   "success": ok, "outcome": "reached" if ok else "fallen"}
            fh.write(json.dumps(rec) + "\n")
    return path


def _side(*columns, mix="steps"):
    """A side whose seed ``k`` has ``columns[k][i]`` as scenario ``s{i}``'s success."""
    runs = tuple({f"s{i}": {"id": f"s{i}", "mix": mix, "success": bool(ok)} for i, ok in enumerate(col)}
                 for col in columns)
    return Side("test", runs)


def test_one_seed_each_gives_newcombes_paired_interval():
    a = np.array([[1], [1], [0], [1], [0], [1]], float)
    b = np.array([[1], [0], [0], [0], [1], [0]], float)
    assert difference_interval(a, b) == paired_difference_interval(1, 3, 1, 1)


def test_several_seeds_average_the_planners_noise_and_bootstrap_over_scenarios():
    # scenario rates: first 1, 0.5, 0.5, 0; second 0.5, 0.5, 0, 0 -> differences 0.5, 0, 0.5, 0, mean 0.25
    first = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], float)
    second = np.array([[1, 0], [0, 1], [0, 0], [0, 0]], float)
    diff, low, high = difference_interval(first, second)
    assert diff == pytest.approx(0.25)
    assert low <= diff <= high and -1.0 <= low and high <= 1.0
    assert difference_interval(first, second) == (diff, low, high)  # seeded: the same interval every time
    # the same outcomes on every scenario: no spread at all
    assert difference_interval(first, first) == (0.0, 0.0, 0.0)
    # more scenarios with the same per-scenario difference narrow the interval
    wide = difference_interval(np.tile(first, (1, 1)), second)
    narrow = difference_interval(np.tile(first, (25, 1)), np.tile(second, (25, 1)))
    assert narrow[2] - narrow[1] < wide[2] - wide[1]


def test_rows_per_mix_with_any_and_every_seed():
    first = _side([1, 0, 0, 1], [1, 1, 0, 0])
    second = _side([1, 0, 0, 0])
    rows = compare(first, second)
    assert [r.mix for r in rows] == ["steps", "total"]
    steps = rows[0]
    assert steps.n == 4 and steps.first_goals == pytest.approx(2.0) and steps.second_goals == pytest.approx(1.0)
    assert steps.difference == pytest.approx(25.0)
    assert (steps.first_any, steps.first_every, steps.second_any, steps.second_every) == (3, 1, 1, 1)


def test_only_scenarios_every_run_has_are_compared(tmp_path):
    _write(tmp_path / "a0", {"s0": True, "s1": False, "r0": True})
    _write(tmp_path / "a1", {"s0": True, "s1": True})  # r0 missing in this seed
    _write(tmp_path / "b0", {"s0": False, "s1": False, "r0": True}, planner="fdm")
    first = load_side(f"{tmp_path / 'a0'},{tmp_path / 'a1'}")
    second = load_side(f"{tmp_path / 'b0'}:fdm")
    rows = compare(first, second)
    assert [(r.mix, r.n) for r in rows] == [("steps", 2), ("total", 2)]
    assert rows[-1].first_goals == pytest.approx(1.5) and rows[-1].second_goals == 0.0


def test_ids_that_hold_different_scenarios_in_different_runs_are_left_out(tmp_path, capsys):
    """A scenario generator change can give an id another goal: such an id is not paired, and the CLI says so."""
    for name, planner in (("a", "kinematic"), ("b", "fdm")):
        _write(tmp_path / name, {"s0": True, "s1": name == "a", "s2": False}, planner=planner)
    path = tmp_path / "b" / "results.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for rec, goal in zip(records, ([1.0, 0.0, 0.0], [2.0, 0.0, 0.0], None)):
        if goal is not None:  # s0 and s1 carry their scenario; s2 none (old records): it matches any
            rec["scenario"] = {"goal": goal}
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    apath = tmp_path / "a" / "results.jsonl"
    arecords = [json.loads(line) for line in apath.read_text().splitlines()]
    arecords[0]["scenario"], arecords[1]["scenario"] = {"goal": [1.0, 0.0, 0.0]}, {"goal": [2.1, 0.0, 0.0]}
    apath.write_text("".join(json.dumps(r) + "\n" for r in arecords))
    first, second = load_side(str(tmp_path / "a")), load_side(str(tmp_path / "b"))
    assert differing(first, second) == ["s1"]
    assert [(r.mix, r.n) for r in compare(first, second)] == [("steps", 2), ("total", 2)]
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "1 scenario ids hold different scenarios in different runs, left out: s1" in capsys.readouterr().err


def test_a_side_names_its_planner_where_a_file_has_several(tmp_path):
    d = _write(tmp_path / "mixed", {"s0": True})
    with open(d / "results.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "s0", "mix": "steps", "planner": "fdm", "success": False}) + "\n")
    with pytest.raises(ValueError, match="name one"):
        load_side(str(d))
    with pytest.raises(ValueError, match="no records of planner 'mppi'"):
        load_side(f"{d}:mppi")
    with pytest.raises(ValueError, match="no such results file"):
        load_side(str(tmp_path / "missing"))
    assert load_side(f"{d}:fdm").runs[0]["s0"]["success"] is False
    with open(d / "results.jsonl", "a") as fh:  # the same planner through the graph too
        fh.write(json.dumps({"id": "s0", "mix": "steps", "planner": "fdm", "mode": "graph", "success": True}) + "\n")
    with pytest.raises(ValueError, match="several modes"):
        load_side(f"{d}:fdm")


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    _write(tmp_path / "k0", {f"s{i}": i % 2 == 0 for i in range(6)})
    _write(tmp_path / "f0", {f"s{i}": i % 3 != 2 for i in range(6)}, planner="fdm")
    out = tmp_path / "rows.json"
    assert main([str(tmp_path / "f0"), str(tmp_path / "k0"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| steps | 6 | 4.0 | 3.0 | +16.7 |" in text
    rows = json.loads(out.read_text())
    assert rows[-1]["mix"] == "total" and rows[-1]["first_any"] == 4
    assert main([str(tmp_path / "f0"), str(tmp_path / "nothing")]) == 2
    _write(tmp_path / "other", {"x0": True})
    assert main([str(tmp_path / "f0"), str(tmp_path / "other")]) == 1


def test_equal_goals_print_as_zero_not_minus_zero():
    # the same per-scenario rates in another order: the mean difference is float noise (-9e-18)
    first = [[1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 0, 1], [1, 1, 1, 0, 1, 1]]
    second = [[1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 1], [1, 0, 0, 1, 0, 1], [1, 1, 1, 1, 1, 0]]
    a, b = _side(*first), _side(*second)
    assert difference_interval(np.array(first, float).T, np.array(second, float).T)[0] != 0.0
    rows = compare(a, b)
    assert rows[0].difference == 0.0 and "-0.0" not in markdown(rows, a, b)
