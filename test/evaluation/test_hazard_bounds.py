"""morobot.evaluation.hazard_bounds: the oracle reactions to icy patches, their walls, the summary and the CLI."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from morobot.evaluation import hazard_bounds as hb
from morobot.evaluation.hazard_bounds import OracleReaction, ReactionConfig, raise_cells, summary
from morobot.planning.interface import HeightMap
from morobot.sim.patches import Patch

#: One 2 x 2 m patch centred at (2, 0).
PATCH = Patch((2.0, 0.0), (2.0, 2.0), 0.0, 0.05, 0.0)


def _world():
    return SimpleNamespace(patches=[PATCH])


class _Walk:
    """A robot at constant speed along +x (or -x), as the probe's ``sim`` and ``state``."""

    def __init__(self, x=0.0, y=0.0, yaw=0.0):
        self.time, self.x, self.y, self.yaw = 0.0, x, y, yaw

    def advance(self, probe, dt, vx):
        self.time += dt
        self.x += vx * dt
        state = SimpleNamespace(position=np.array([self.x, self.y, 0.5]), yaw=self.yaw)
        return probe.step(self, state, None)


def _hmap(size=60, res=0.1, origin=(-1.0, -3.0)):
    return HeightMap(torch.zeros(size, size), origin, res)


def test_reaction_config_is_validated():
    with pytest.raises(ValueError, match="reaction"):
        ReactionConfig("jump")
    with pytest.raises(ValueError, match="delay"):
        ReactionConfig("stop", delay=-0.1)
    with pytest.raises(ValueError, match="speed"):
        ReactionConfig("walk_on", speed=0.0)
    with pytest.raises(ValueError, match="hold"):
        ReactionConfig("stop", hold=float("nan"))


def test_raise_cells_raises_known_cells_and_fills_unknown_ones_above_the_highest():
    h = torch.tensor([[0.0, 0.2], [float("nan"), 0.1]])
    hmap = HeightMap(h, (0.0, 0.0), 0.1)
    out = raise_cells(hmap, np.array([[True, False], [True, True]]), 0.5)
    assert torch.allclose(out.heights, torch.tensor([[0.5, 0.2], [0.7, 0.6]]))
    assert torch.isnan(hmap.heights[1, 0])  # the input is not modified


def test_none_never_reacts_and_leaves_the_map():
    probe, walk = OracleReaction(_world(), ReactionConfig("none")), _Walk()
    for _ in range(300):
        walk.advance(probe, 0.02, 0.5)
    assert probe.reactions == 0 and probe.state == "plan"
    assert probe.on_ice_s == pytest.approx(4.0, abs=0.05)  # 2 m of ice at 0.5 m/s
    hmap = _hmap()
    assert probe.map(hmap) is hmap
    assert np.array_equal(probe.command(np.array([0.5, 0.1, 0.2])), [0.5, 0.1, 0.2])


def test_known_walls_the_patches_from_the_start():
    probe = OracleReaction(_world(), ReactionConfig("known"))
    out = probe.map(_hmap())
    xs, ys = _hmap().cell_centres()
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    on = PATCH.contains(gx, gy)
    assert torch.all(out.heights[torch.as_tensor(on)] == 0.5) and torch.all(out.heights[torch.as_tensor(~on)] == 0.0)


def test_walk_on_goes_straight_after_the_delay_until_off_the_ice():
    cfg = ReactionConfig("walk_on", delay=0.3, speed=0.3)
    probe, walk = OracleReaction(_world(), cfg), _Walk()
    while walk.x < 1.0 + 0.5 * 0.28:  # onto the ice (edge at x = 1), not yet the delay
        walk.advance(probe, 0.02, 0.5)
    assert probe.state == "plan"
    while probe.state == "plan":
        walk.advance(probe, 0.02, 0.5)
    assert walk.x == pytest.approx(1.15, abs=0.02)  # 0.3 s after the first step at 0.5 m/s
    assert np.array_equal(probe.command(np.array([0.1, 0.3, 0.5])), [0.3, 0.0, 0.0])  # at least speed, no turn
    assert np.array_equal(probe.command(np.array([0.8, 0.3, 0.5])), [0.8, 0.0, 0.0])
    while walk.x <= 3.0:
        walk.advance(probe, 0.02, 0.5)
    walk.advance(probe, 0.02, 0.5)
    assert probe.state == "plan" and probe.reactions == 1 and not probe.walls


def test_stop_stands_for_hold_seconds():
    probe, walk = OracleReaction(_world(), ReactionConfig("stop", delay=0.0, hold=2.0)), _Walk(x=0.995)
    walk.advance(probe, 0.02, 0.5)  # the first step on the ice: the reaction at once
    assert probe.state == "react" and np.array_equal(probe.command(np.ones(3)), np.zeros(3))
    for _ in range(90):
        walk.advance(probe, 0.02, 0.0)
    assert probe.state == "react"
    for _ in range(10):
        walk.advance(probe, 0.02, 0.0)
    assert probe.state == "plan" and probe.reactions == 1


def test_back_out_walks_back_and_walls_the_ice_ahead_of_the_entry():
    cfg = ReactionConfig("back_out", delay=0.2, speed=0.3, margin=0.5, radius=1.0, ahead=1.5)
    probe, walk = OracleReaction(_world(), cfg), _Walk()
    while probe.state == "plan":
        walk.advance(probe, 0.02, 0.5)
    assert np.array_equal(probe.command(np.ones(3)), [-0.3, 0.0, 0.0])
    while probe.state == "react":
        walk.advance(probe, 0.02, -0.3)
    assert walk.x == pytest.approx(1.0 - 0.5, abs=0.02)  # off the ice by the margin
    assert len(probe.walls) == 1
    cx, cy = probe.walls[0]
    assert cx == pytest.approx(1.0 + 1.5, abs=0.03) and cy == pytest.approx(0.0)  # entry + ahead along the way in
    out = probe.map(_hmap())
    xs, ys = _hmap().cell_centres()
    i, j = int(np.argmin(abs(xs - cx))), int(np.argmin(abs(ys - cy)))
    assert out.heights[i, j] == 0.5 and out.heights[i, j + 15] == 0.0  # inside and 1.5 m beside the 1 m disc


def test_summary_pairs_each_reaction_with_none():
    def rec(i, reaction, ok):
        return {"id": f"s-{i}", "reaction": reaction, "success": ok, "outcome": "reached" if ok else "fallen",
                "on_ice_s": 0.0 if reaction == "known" else 2.0}

    records = [rec(i, "none", i < 2) for i in range(4)] + [rec(i, "known", True) for i in range(4)]
    text = summary(records)
    assert "| `none` | 4 | 2 | 2 |" in text and "| `known` | 4 | 4 | 0 |" in text
    assert "+50.0" in text and "(N = 4)" in text


def test_the_cli_runs_two_reactions_and_resumes(tmp_path, monkeypatch):
    """The command line with a stand-in for the lock-step run: records appended, a finished pair skipped."""
    calls = []

    def fake_run(task):
        scenario, reaction, params_file = task
        calls.append((scenario.id, reaction["reaction"]))
        ok = reaction["reaction"] == "known"
        return {"id": scenario.id, "mix": scenario.mix, "index": scenario.index, "seed": scenario.seed,
                "params": json.loads(json.dumps(scenario.params)), "config": reaction, "params_file": params_file,
                "outcome": "reached" if ok else "fallen", "success": ok, "reaction": reaction["reaction"],
                "on_ice_s": 0.0}

    monkeypatch.setattr(hb, "run_one", fake_run)
    args = ["--first", "3", "-n", "2", "--reactions", "none", "known", "--out", str(tmp_path)]
    assert hb.main(args) == 0
    assert len(calls) == 4
    assert hb.main(args) == 0 and len(calls) == 4  # nothing left to run
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {(r["id"], r["reaction"]) for r in rows} == {(f"slippery-{i:03d}", r) for i in (3, 4)
                                                        for r in ("none", "known")}
    assert "+100.0" in (tmp_path / "summary.md").read_text()
    with pytest.raises(SystemExit):
        hb.main(["--reactions", "fly", "--out", str(tmp_path)])
    # the same scenarios on milder ice are other runs: same ids, other worlds
    milder = args + ["--mix-param", "patch_friction=[0.08, 0.12]"]
    assert hb.main(milder) == 0 and len(calls) == 8
    assert "patch_friction=[0.08, 0.12]" in (tmp_path / "summary.md").read_text()
    assert hb.main(args + ["--mix-param", "friction=0.1"]) == 2  # not a generator parameter
    assert hb.main(args + ["--delay", "0.6"]) == 0 and len(calls) == 12  # other settings: other runs
    assert "| `none` | 2 |" in (tmp_path / "summary.md").read_text()  # the summary: this command's runs only
    with (tmp_path / "results.jsonl").open("a") as fh:
        fh.write('{"id": "slippery-0')  # a line cut short
    assert hb.main(args) == 2


def test_mix_with_changes_the_worlds_not_the_scenario_ids():
    from morobot.evaluation.scenarios import make_scenario

    mild = hb.mix_with("slippery", ["patch_friction=[0.08, 0.12]", "patch_size=[3.5, 5.5]"])
    a, b = make_scenario("slippery", 7), make_scenario(mild, 7)
    assert a.id == b.id and a.seed == b.seed
    assert b.params["patch_friction"] == (0.08, 0.12) and a.params["patch_friction"] == (0.04, 0.08)
    assert all(0.08 <= p.friction <= 0.12 for p in b.world().patches) and b.world().patches
    with pytest.raises(ValueError, match="KEY=VALUE"):
        hb.mix_with("slippery", ["patch_friction"])
    with pytest.raises(KeyError):
        hb.mix_with("icy", [])


def test_slow_scales_the_planners_command_on_the_ice_only():
    probe, walk = OracleReaction(_world(), ReactionConfig("slow", delay=0.0, speed=0.25)), _Walk(x=0.995)
    command = np.array([0.6, 0.8, 0.5])  # 1 m/s planar
    walk.advance(probe, 0.02, 0.5)
    assert np.allclose(probe.command(command), [0.15, 0.2, 0.125])  # a quarter: 0.25 m/s, the turn rate too
    assert np.allclose(probe.command(np.array([0.1, 0.0, 0.3])), [0.1, 0.0, 0.3])  # slower already: as it is
    while walk.x <= 3.0:
        walk.advance(probe, 0.02, 0.25)
    walk.advance(probe, 0.02, 0.25)
    assert probe.state == "plan" and np.allclose(probe.command(command), command)


def test_known_ice_is_walked_round_in_lockstep():
    """The legged robot in lock-step on a `slippery` scenario whose straight path crosses a patch: with the patches
    walled it reaches the goal without a step on the ice; without them it walks over it."""
    from morobot.evaluation.scenarios import make_scenario

    sc = make_scenario("slippery", 101, seed=0)
    known = hb.run_one((sc, {"reaction": "known"}, ""))
    assert known["outcome"] == "reached" and known["on_ice_s"] == 0.0, known
    none = hb.run_one((sc, {"reaction": "none"}, ""))
    assert none["on_ice_s"] > 1.0 and none["reactions"] == 0, none
    assert math.isfinite(none["final_distance"])
