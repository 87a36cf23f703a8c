"""Counterfactual branches in random-command collection (morobot.fdm.data.branches, collect --branches)."""

from types import SimpleNamespace

import numpy as np
import pytest

from morobot.fdm.data.branches import branch_commands, drive_branches, drive_step
from morobot.fdm.data.collect import CollectConfig, collect, run_episode
from morobot.fdm.data.commands import CommandLimits
from morobot.fdm.data.dataset import FDMDataset
from morobot.fdm.data.starts import outcome_pairs, start_groups
from morobot.fdm.heightscan import ScanConfig
from morobot.locomotion.sim import LeggedAnymalSim
from morobot.sim.worlds import make_world

SCAN = ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2)


class LineSim:
    """A point moving along x at the commanded speed; it falls past ``x = wall``."""

    def __init__(self, wall=10.0):
        self.x, self.t, self.wall = 0.0, 0.0, wall
        self.cmd = np.zeros(3)

    def set_command(self, cmd):
        self.cmd = np.asarray(cmd, float)

    def advance(self, dt):
        self.x += self.cmd[0] * dt
        self.t += dt
        return self.state()

    def state(self):
        return SimpleNamespace(pose=np.array([self.x, 0.0, 0.0]), position=np.array([self.x, 0.0, 0.5]),
                               fallen=self.x > self.wall, stuck=False, time=self.t)

    def snapshot(self):
        return (self.x, self.t, self.cmd.copy())

    def restore(self, snap):
        self.x, self.t, self.cmd = snap[0], snap[1], snap[2].copy()
        return self.state()


NO_CONTACT = SimpleNamespace(max_force=lambda: 0.0)


def test_a_step_reports_its_first_failure_and_runs_all_its_ticks():
    ticks = []
    hit = SimpleNamespace(max_force=lambda: 80.0)
    sim = LineSim(wall=0.05)
    state, failure = drive_step(sim, np.array([1.0, 0, 0]), 10, 0.05, hit, 50.0, on_tick=ticks.append)
    assert failure == "collision" and len(ticks) == 10 and state.pose[0] == pytest.approx(0.5)
    _, failure = drive_step(LineSim(wall=0.05), np.array([1.0, 0, 0]), 10, 0.05, NO_CONTACT, 50.0)
    assert failure == "fall"
    _, failure = drive_step(LineSim(), np.array([1.0, 0, 0]), 10, 0.05, NO_CONTACT, 50.0)
    assert failure is None


def test_branches_start_from_one_state_and_leave_it_as_it_was():
    sim = LineSim(wall=2.2)
    sim.set_command([1.0, 0, 0])
    sim.advance(1.0)  # at x = 1
    cmds = np.zeros((3, 4, 3), np.float32)
    cmds[1, :, 0], cmds[2, :, 0] = 0.5, 1.0  # stop; 1 m in 2 s; 2 m (past the wall in step 2)

    def step(s, c):
        return drive_step(s, c, 10, 0.05, NO_CONTACT, 50.0)

    runs = drive_branches(sim, cmds, step, inside=lambda st: st.pose[0] < 100)
    assert [r["failed_at"] for r in runs] == [None, None, 2] and runs[2]["failure"] == "fall"
    assert [len(r["poses"]) for r in runs] == [4, 4, 3]
    assert runs[0]["poses"][-1][0] == pytest.approx(1.0) and runs[1]["poses"][-1][0] == pytest.approx(2.0)
    assert sim.x == pytest.approx(1.0) and sim.t == pytest.approx(1.0) and sim.cmd[0] == 1.0
    # a branch that leaves the usable area ends there without the step that left it
    runs = drive_branches(sim, cmds[2:], step, inside=lambda st: st.pose[0] < 1.4)
    assert runs[0]["failed_at"] is None and len(runs[0]["poses"]) == 0
    with pytest.raises(ValueError, match="snapshot"):
        drive_branches(SimpleNamespace(), cmds, step, inside=lambda st: True)


def test_branch_commands_stay_within_limits_and_the_first_can_be_a_stop():
    rng = np.random.default_rng(0)
    lim = CommandLimits()
    c = branch_commands(rng, 5, 10, 0.5, lim, stop_first=True)
    assert c.shape == (5, 10, 3) and not c[0].any() and np.abs(c[1:]).sum() > 0
    assert (np.abs(c) <= lim.array() + 1e-6).all()
    assert branch_commands(rng, 5, 10, 0.5, lim, stop_first=False)[0].any()


def test_an_episode_with_branches_keeps_its_own_samples_and_adds_groups_of_one_start():
    """The legged robot on rubble: the episode's own samples are the same with and without branches; each
    start's branches follow it, share its history, pose and scan, and form the ranking pairs."""
    world = make_world("rough", 5, size=(12.0, 12.0), rubble=0.10, n_boxes=0)
    out = {}
    for n in (0, 3):
        cfg = CollectConfig(out_dir="unused", robot="legged", history_features="legged_actions", episode_steps=12,
                            stride=2, branches=n, scan=SCAN)
        out[n] = run_episode(LeggedAnymalSim(world), world, cfg, np.random.default_rng(3), np.array([0.0, 0.0, 0.3]),
                             np.random.default_rng(4))
    (own, stats0), (more, stats) = out[0], out[3]
    assert len(own) >= 1 and stats0["branches"] == 0
    starts = stats["branches"] // 3
    assert stats["branches"] == 3 * starts and starts >= len(own)
    # start by start: each start's own sample (while its horizon fits the episode), then its branches
    i = 0
    for g in range(starts):
        group = [more[i]]
        while i + len(group) < len(more) and np.array_equal(more[i + len(group)]["history"], more[i]["history"]):
            group.append(more[i + len(group)])
        assert len(group) <= 4 and all(np.array_equal(s["start_pose"], group[0]["start_pose"]) for s in group)
        if g < len(own):
            assert len(group) >= 2 and all(np.array_equal(own[g][k], group[0][k]) for k in own[g])
        i += len(group)
    assert i == len(more)
    assert any(not s["commands"].any() for s in more)  # the stop branches
    # a budget stops branching once that many samples' worth of starts are branched
    cfg = CollectConfig(out_dir="unused", robot="legged", history_features="legged_actions", episode_steps=12,
                        stride=2, branches=3, scan=SCAN)
    _, few = run_episode(LeggedAnymalSim(world), world, cfg, np.random.default_rng(3), np.array([0.0, 0.0, 0.3]),
                         np.random.default_rng(4), branch_budget=5)
    assert few["branches"] == 6 and few["steps"] == stats["steps"]


def test_collect_with_branches_writes_ranking_pairs(tmp_path):
    cfg = CollectConfig(out_dir=str(tmp_path / "d"), robot="legged", kinds=("rough",), worlds_per_kind=1,
                        samples_per_world=12, workers=1, world_size=(10.0, 10.0), episode_steps=14, scan=SCAN,
                        branches=2, world_params={"rubble": 0.10}, progress=False)
    manifest = collect(cfg)
    assert manifest["complete"] and manifest["total_samples"] == 12
    assert manifest["shards"][0]["stats"]["branches"] >= 4
    ds = FDMDataset(tmp_path / "d")
    groups = start_groups(ds)
    assert len(np.unique(groups)) < len(ds)  # samples share starts
    pairs = outcome_pairs(ds.arrays["failed"][:, -1], groups)
    assert all(groups[a] == groups[b] for a, b in pairs)
    with pytest.raises(ValueError, match="robot legged"):
        collect(CollectConfig(out_dir=str(tmp_path / "x"), branches=2, progress=False))
    with pytest.raises(ValueError, match="branches must be"):
        collect(CollectConfig(out_dir=str(tmp_path / "y"), robot="legged", branches=-1, progress=False))
