"""Navigation benchmark: scenarios, metrics, the lock-step loop, the report and the CLI (no ROS)."""

import argparse
import json
import math

import numpy as np
import pytest
import torch

from morobot.evaluation import cli as eval_cli
from morobot.evaluation.metrics import (OutcomeRules, aggregate, classify, fall_terrain, footprint_contacts,
                                        paired_difference_interval, path_length, stuck_time, terrain_change_before,
                                        wilson_interval)
from morobot.evaluation.nav import (ContactMonitor, LockstepProbe, LockstepRunner, NavParams, PlannerSpec,
                                    read_results, robot_footprint, write_results)
from morobot.evaluation.report import agreement_table, fall_table, paired_table, write_report
from morobot.evaluation.scenarios import TERRAIN_MIXES, Scenario, custom_scenario, make_scenario, make_scenarios
from morobot.mapping.params import MapperParams
from morobot.mapping.params import elevation_config as make_elevation_config
from morobot.navigation.params import PlannerParams, load
from morobot.params import load_section as load_node_parameters
from morobot.paths import config_path
from morobot.planning.interface import HeightMap
from morobot.planning.kinematic import KinematicModel
from morobot.navigation.factory import (make_kinematic_model,
                                      make_mppi_config, make_navigation_cost)
from morobot.sim.worlds import is_reachable, load_world, make_world


# ------------------------------------------------------------------------------------ scenarios
def test_scenarios_are_deterministic_per_seed_and_index():
    a = make_scenario("rough", 3, seed=0)
    b = make_scenario("rough", 3, seed=0)
    assert a == b
    assert np.array_equal(a.world().heights, b.world().heights)
    assert make_scenario("rough", 3, seed=1) != a
    assert make_scenario("rough", 4, seed=0) != a
    # scenario i does not depend on how many are generated
    short, long = make_scenarios(["steps"], 2, seed=5), make_scenarios(["steps"], 5, seed=5)
    assert short == long[:2]
    assert make_scenarios(["steps"], 2, seed=5, first=3) == long[3:5]
    assert Scenario.from_dict(json.loads(json.dumps(a.to_dict()))) == a


@pytest.mark.parametrize("mix", sorted(TERRAIN_MIXES))
def test_scenarios_are_reachable_and_in_range(mix):
    for sc in make_scenarios([mix], 2, seed=11):
        assert sc.mix == mix and sc.kind == TERRAIN_MIXES[mix].kind
        assert 8.0 <= sc.distance <= 10.0
        world = sc.world()
        x0, x1, y0, y1 = world.extent
        for pose in (sc.start, sc.goal):
            assert x0 + 1.0 <= pose[0] <= x1 - 1.0 and y0 + 1.0 <= pose[1] <= y1 - 1.0
        assert is_reachable(world)
        assert tuple(world.start) == sc.start and tuple(world.goal) == sc.goal


def test_world_yaml_reproduces_the_scenario(tmp_path):
    sc = make_scenario("cluttered", 1, seed=2)
    loaded = load_world(sc.write_world_yaml(tmp_path / "w.yaml"))
    world = sc.world()
    assert np.array_equal(loaded.heights, world.heights)
    assert loaded.boxes == world.boxes and len(world.boxes) > 5
    assert loaded.start == world.start and loaded.goal == world.goal


def test_scenario_arguments_are_validated():
    with pytest.raises(KeyError):
        make_scenarios(["lava"], 1)
    with pytest.raises(ValueError):
        make_scenarios(["rough"], 0)
    with pytest.raises(ValueError):
        make_scenario("rough", 0, distance=(8.0, 14.0))  # does not fit a 16 m world
    with pytest.raises(ValueError):
        make_scenario("rough", 0, budget=0.0)


# ------------------------------------------------------------------------------------ metrics
def test_wilson_interval_known_values():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(27, 30) == pytest.approx((0.7438, 0.9654), abs=2e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(3, 30)
    assert lo < 0.1 < hi
    with pytest.raises(ValueError):
        wilson_interval(4, 3)


def test_paired_difference_interval():
    """Newcombe's paired interval: inside [-1, 1], around the difference, mirrored when the planners
    swap, narrower than the unpaired one when the outcomes agree, above zero for a clear win."""
    diff, lo, hi = paired_difference_interval(12, 9, 2, 21)
    assert diff == pytest.approx(7 / 44) and lo < diff < hi and 0.0 < lo < 0.02 and 0.28 < hi < 0.31
    assert paired_difference_interval(12, 2, 9, 21) == pytest.approx((-diff, -hi, -lo))
    assert paired_difference_interval(20, 10, 0, 0)[1] > 0.1  # won 10 of 30, lost none
    d0, lo0, hi0 = paired_difference_interval(15, 0, 0, 15)  # identical outcomes: a narrow interval at 0
    unpaired = 2 * (wilson_interval(15, 30)[1] - 0.5)
    assert d0 == 0.0 and -unpaired < lo0 < 0.0 < hi0 < unpaired
    assert paired_difference_interval(0, 0, 0, 0) == (0.0, -1.0, 1.0)
    with pytest.raises(ValueError):
        paired_difference_interval(-1, 0, 0, 0)
    records = [{"mode": "lockstep", "mix": "rough", "id": f"rough-{i:03d}", "planner": planner,
                "success": planner == "fdm" or i % 2 == 0} for i in range(10) for planner in ("fdm", "kinematic")]
    table, rows = paired_table(records)
    assert rows[0]["pairs"] == 10 and rows[0]["difference"] == pytest.approx(0.5) and rows[0]["fdm_only"] == 5
    assert "+50 pts" in table and paired_table(records[::2])[0] == ""  # one planner only: no table


def _line(t_end, speed, start=(0.0, 0.0), dt=0.02):
    t = np.arange(0.0, t_end + 1e-9, dt)
    return t, np.stack([start[0] + speed * t, np.full_like(t, start[1])], axis=1)


def test_classify_reached_fallen_stuck_timeout():
    goal = (5.0, 0.0, 0.0)
    t, xy = _line(5.0, 1.0)  # arrives at t = 5
    assert classify(t, xy, goal, 60.0, 4.9, None) == ("reached", 4.9)
    # a fall first wins; the planner's claim is ignored when the robot is not really there
    assert classify(t, xy, goal, 60.0, 4.9, 2.0) == ("fallen", 2.0)
    assert classify(t, xy, goal, 60.0, 1.0, None)[0] != "reached"
    # reached after the budget is not a success
    assert classify(t, xy, goal, 4.0, 4.9, None)[0] == "timeout"
    # 1 m in 5 s, then standing still: stuck 20 s after the last progress
    t2 = np.arange(0.0, 60.0, 0.02)
    xy2 = np.stack([np.minimum(t2, 5.0) * 0.2, np.zeros_like(t2)], axis=1)
    outcome, when = classify(t2, xy2, goal, 60.0, None, None)
    assert outcome == "stuck"
    assert 20.0 < when < 26.0
    assert stuck_time(t2, np.hypot(xy2[:, 0] - 5.0, xy2[:, 1]), 20.0, 0.25) == pytest.approx(when)
    # slow but steady progress is a timeout, not stuck
    t3, xy3 = _line(60.0, 0.05)
    assert classify(t3, xy3, (50.0, 0.0), 60.0, None, None) == ("timeout", 60.0)
    assert path_length(xy3) == pytest.approx(3.0, abs=1e-6)


def test_outcome_rules_validated():
    with pytest.raises(ValueError):
        OutcomeRules(success_radius=0.0)


def test_footprint_contacts_flag_touching_a_tall_box():
    world = make_world("flat", 0, size=(10.0, 10.0), boxes=[{"center": (2.0, 0.0), "size": (1.0, 1.0, 1.0)}])
    hl, hw = 0.5, 0.3
    face = 1.5  # the box's -x face
    poses = np.array([
        [face - hl - 0.01, 0.0, 0.0],   # nose 1 cm from the face: contact
        [face - hl - 0.10, 0.0, 0.0],   # 10 cm away: free
        [face - hw - 0.01, 0.0, math.pi / 2],  # turned sideways: the flank is 1 cm away
        [face - hl - 0.01, 0.0, math.pi / 2],  # turned sideways at the same spot: 21 cm away
        [-3.0, 0.0, 0.0],
    ])
    assert footprint_contacts(world, poses, hl, hw).tolist() == [True, False, True, False, False]
    low = make_world("flat", 0, size=(10.0, 10.0), boxes=[{"center": (2.0, 0.0), "size": (1.0, 1.0, 0.1)}])
    assert not footprint_contacts(low, poses, hl, hw).any()  # climbable boxes are not obstacles


def test_robot_footprint_bounds_the_feet():
    hl, hw = robot_footprint()
    assert 0.45 < hl < 0.7 and 0.25 < hw < 0.45  # ANYmal C standing: ~1 m x 0.6 m
    assert hw < hl


def _rec(mix, planner, outcome, ttg=None, collision=False, mode="lockstep", index=0):
    return {"mode": mode, "planner": planner, "mix": mix, "id": f"{mix}-{index:03d}", "index": index,
            "success": outcome == "reached", "collision": collision, "outcome": outcome, "time_to_goal": ttg,
            "path_length": 10.0, "distance": 8.0, "min_clearance": 0.5, "mean_cycle_ms": 10.0,
            "contact_collision": collision, "footprint_contact": collision}


def test_aggregate_counts_rates_and_medians():
    recs = [_rec("rough", "kinematic", "reached", 10.0, index=0), _rec("rough", "kinematic", "reached", 14.0, index=1),
            _rec("rough", "kinematic", "stuck", collision=True, index=2),
            _rec("rough", "kinematic", "fallen", collision=True, index=3),
            _rec("steps", "kinematic", "timeout", index=0)]
    aggs = {(a["mix"], a["planner"]): a for a in aggregate(recs)}
    rough = aggs[("rough", "kinematic")]
    assert rough["n"] == 4 and rough["successes"] == 2 and rough["success_rate"] == 0.5
    assert rough["success_ci"] == pytest.approx(list(wilson_interval(2, 4)))
    assert rough["collision_rate"] == 0.5
    assert rough["median_time_to_goal"] == 12.0
    assert rough["median_path_ratio"] == 1.25
    assert rough["outcomes"] == {"reached": 2, "fallen": 1, "stuck": 1, "timeout": 0, "error": 0}
    steps = aggs[("steps", "kinematic")]
    assert steps["success_rate"] == 0.0 and math.isnan(steps["median_time_to_goal"])


def test_falls_are_told_apart_by_the_terrain_under_the_robot_before_them():
    t = np.arange(0.0, 5.01, 0.2)
    climbing = np.where(t < 3.5, 0.0, 0.15)  # a riser 1.5 s before the fall at 5 s
    assert terrain_change_before(t, climbing, 5.0) == pytest.approx(0.15)
    assert terrain_change_before(t, climbing, 3.0) == 0.0  # the riser came after
    assert math.isnan(terrain_change_before(t, np.full_like(t, np.nan), 5.0))
    assert [fall_terrain(c) for c in (0.15, -0.08, 0.03, math.nan)] == ["rising", "dropping", "level", None]
    recs = [{**_rec("stairs", "kinematic", "fallen", collision=True, index=i), "fall_terrain": d}
            for i, d in enumerate(["rising", "rising", "dropping", "level"])]
    recs.append(_rec("stairs", "kinematic", "reached", 12.0, index=4))
    aggs = aggregate(recs)
    assert aggs[0]["falls_by_terrain"] == {"rising": 2, "dropping": 1, "level": 1}
    assert "| lockstep | stairs | kinematic | 4 | 2 | 1 | 1 |" in fall_table(aggs)
    assert fall_table(aggregate(recs[-1:])) == ""  # no falls, no table


def test_agreement_table_pairs_modes():
    recs = [_rec("rough", "kinematic", "reached", 10.0), _rec("rough", "kinematic", "reached", 11.0, mode="graph"),
            _rec("steps", "kinematic", "stuck"), _rec("steps", "kinematic", "reached", 20.0, mode="graph"),
            _rec("slopes", "kinematic", "reached", 9.0)]
    table, stats = agreement_table(recs)
    assert stats == {"pairs": 2, "same_outcome": 1, "median_abs_time_diff": 1.0}
    assert "rough-000" in table and "slopes-000" not in table


# ------------------------------------------------------------------------------------ factory
def test_factory_builds_what_the_node_builds():
    p = load(PlannerParams, "mppi_planner")
    cfg = make_mppi_config(p)
    assert cfg.num_samples == p["num_samples"] and cfg.horizon == p["horizon"] and cfg.dt == p["dt"]
    assert cfg.shift_steps == pytest.approx(min(1.0, 1.0 / (p["control_rate"] * p["dt"])))
    assert cfg.seed == p["seed"] and cfg.keep_rollouts == p["rollouts_shown"]
    assert make_mppi_config({**p, "seed": -1}).seed is None
    assert make_navigation_cost(p).config.risk_penalty_threshold == p["risk_penalty_threshold"]
    # the cost's penalty threshold, the stop's and the cost-to-go's walls are separate parameters
    split = make_navigation_cost({**p, "risk_penalty_threshold": 0.2, "risk_threshold": 0.45,
                                  "ctg_lethal_risk": 0.65})
    assert split.config.risk_penalty_threshold == 0.2 and split.cost_to_go.config.lethal_risk == 0.65
    assert make_kinematic_model(p).step_limit == p["step_limit"]
    m = load(MapperParams, "elevation_mapper")
    assert make_elevation_config(m).max_age == m["max_age"]
    with pytest.raises(KeyError, match="horizon"):
        make_mppi_config({k: v for k, v in p.items() if k != "horizon"})
    with pytest.raises(KeyError):
        load_node_parameters("no_such_node", config_path("navigate.yaml"))


def test_deployed_step_limit_sees_the_risers_the_default_gait_cannot_climb():
    """The planner's risk at a stair riser, with config/navigate.yaml over the defaults (the learned gait climbs 10 cm
    risers with 6 % falls, 13 cm with 56 %, docs/locomotion.md): 13 cm is at the limit, 15 cm clearly risky, 10 cm
    low, 4 cm free."""
    p = load(PlannerParams, "mppi_planner")
    deployed = make_kinematic_model(p)

    def riser_risk(model, rise):
        heights = torch.zeros(40, 40)
        heights[20:] = rise  # a riser across the 4 x 4 m map at x = 2 m; the robot at its foot, mid-map
        return float(model.sample_risk(torch.tensor([[1.9, 2.0]]), HeightMap(heights, (0.0, 0.0), 0.1))[0])

    assert riser_risk(deployed, 0.13) >= 0.5
    assert riser_risk(deployed, 0.15) >= 0.8
    assert riser_risk(deployed, 0.10) < 0.15
    assert riser_risk(deployed, 0.04) < 0.01
    # the rigid robot's limit (the library default) all but ignores them, so both planners walked into stairs
    assert riser_risk(KinematicModel(), 0.15) < 0.05


# ------------------------------------------------------------------------------------ simulation
def test_contact_monitor_sees_a_box_but_not_flat_ground():
    from morobot.sim.anymal import AnymalSim

    world = make_world("flat", 0, size=(8.0, 8.0), start=(-2.0, 0.0, 0.0), goal=(3.0, 2.5, 0.0),
                       boxes=[{"center": (-0.6, 0.0), "size": (0.4, 2.0, 1.0)}])
    sim = AnymalSim(world)
    monitor = ContactMonitor(sim)
    for _ in range(40):  # standing still
        sim.advance(0.02)
        monitor.update(sim.data, sim.time, 0.02)
    assert not monitor.collided
    for _ in range(150):  # walk into the wall
        sim.set_command((0.8, 0.0, 0.0))
        sim.advance(0.02)
        monitor.update(sim.data, sim.time, 0.02)
    assert monitor.collided and monitor.box_time > 0.1
    assert sim.state().position[0] < -0.6


@pytest.fixture(scope="module")
def flat_run():
    runner = LockstepRunner(PlannerSpec("kinematic"), NavParams.load())
    sc = custom_scenario("flat", (-1.5, 0.0, 0.0), (1.5, 0.0, 0.0), size=8.0, budget=20.0)
    return runner, sc, runner.run(sc)


def test_lockstep_flat_goal_is_reached(flat_run):
    _runner, sc, rec = flat_run
    assert rec["outcome"] == "reached" and rec["success"] and not rec["collision"], rec
    assert rec["mode"] == "lockstep" and rec["planner"] == "kinematic"
    assert rec["final_distance"] <= 0.3 + 0.05
    assert 2.0 < rec["time_to_goal"] < 15.0
    assert 2.5 < rec["path_length"] < 4.5
    assert rec["planner_cycles"] >= 10 and rec["mean_cycle_ms"] > 0.0
    traj = np.asarray(rec["trajectory"])
    assert traj[0, 0] == 0.0 and np.hypot(traj[-1, 1] - 1.5, traj[-1, 2]) < 0.35
    assert np.all(np.diff(traj[:, 0]) > 0)
    # one risk row per planning cycle: time since the goal, the chosen plan's and standing still's peak risk,
    # the stop flag and the learned model's own risks (none for the kinematic planner)
    assert all(row[4:] == [None, None] for row in rec["risk_trace"])
    trace = np.asarray([row[:4] for row in rec["risk_trace"]], dtype=float)
    assert trace.shape == (rec["planner_cycles"], 4)
    assert np.all(np.diff(trace[:, 0]) > 0) and trace[-1, 0] <= rec["sim_time"] + 1e-6
    assert np.all((trace[:, 1:3] >= 0.0) & (trace[:, 1:3] <= 1.0))
    assert trace[:, 1].max() < 0.5 and trace[:, 3].sum() == rec["risk_stops"] == 0  # open flat ground
    json.dumps(rec, allow_nan=False)


def test_lockstep_is_deterministic(flat_run):
    runner, sc, rec = flat_run
    again = runner.run(sc)
    assert again["trajectory"] == rec["trajectory"]
    assert again["time_to_goal"] == rec["time_to_goal"]


def test_a_probe_sees_every_step_and_cycle_and_can_end_the_run(flat_run):
    from morobot.evaluation.nav import LockstepProbe

    runner, sc, rec = flat_run

    class Counting(LockstepProbe):
        steps = cycles = commands = maps = 0

        def step(self, sim, state, mapper):
            self.steps += 1
            return False

        def cycle(self, sim, state, mapper):
            self.cycles += 1

        def command(self, command):
            self.commands += 1
            return command

        def map(self, hmap):
            self.maps += 1
            return hmap

    probe = Counting()
    again = runner.run(sc, probe)
    assert again["trajectory"] == rec["trajectory"]  # a probe that changes nothing changes nothing
    assert probe.maps >= probe.cycles // 2  # every map the mapper publishes (5 Hz) passes the probe
    assert probe.commands == probe.cycles - 1 == rec["planner_cycles"]  # the last cycle: the goal, no command
    assert probe.steps * runner.step >= rec["time_to_goal"]

    class Stopping(LockstepProbe):
        def command(self, command):
            return 0.0 * command  # a probe's command is what the robot gets

    still = runner.run(sc, Stopping())
    assert not still["success"] and np.hypot(*np.subtract(still["trajectory"][-1][1:3], sc.start[:2])) < 0.1


def test_lockstep_workers_as_ray_tasks_give_the_same_records(flat_run, tmp_path):
    """Two lock-step workers on a local Ray instance: the same record as in this process (deterministic)."""
    from morobot.evaluation.nav import evaluate

    _runner, sc, rec = flat_run
    other = custom_scenario("flat", (-1.5, 1.0, 0.0), (1.5, 1.0, 0.0), size=8.0, budget=20.0, name="flat-other")
    out = evaluate([sc, other], [PlannerSpec("kinematic")], tmp_path, workers=2, progress=False)
    assert len(out) == 2 and all(r["success"] for r in out)
    same = next(r for r in out if r["id"] == rec["id"])
    assert same["trajectory"] == rec["trajectory"]


def test_resume_reruns_a_record_of_another_scenario_under_the_same_id(flat_run, tmp_path):
    """A result stored under the scenario's id but for another scenario (e.g. generated before a generator
    change) is run again; one of the scenario itself is kept."""
    from dataclasses import replace

    from morobot.evaluation.nav import evaluate, read_results, write_results

    _runner, sc, rec = flat_run
    stale = {**rec, "success": False, "outcome": "timeout",
             "scenario": replace(sc, goal=(1.0, 0.5, 0.0)).to_dict()}
    write_results(tmp_path / "results.jsonl", [stale])
    out = evaluate([sc], [PlannerSpec("kinematic")], tmp_path, progress=False)
    assert out[0]["success"] and out[0]["trajectory"] == rec["trajectory"]
    kept = {**rec, "outcome": "marker"}  # the same scenario: not run again
    write_results(tmp_path / "results.jsonl", [kept])
    assert evaluate([sc], [PlannerSpec("kinematic")], tmp_path, progress=False)[0]["outcome"] == "marker"
    assert read_results(tmp_path / "results.jsonl")[0]["outcome"] == "marker"


def test_lockstep_on_the_legged_robot(tmp_path):
    """The articulated ANYmal walking under its policy, in lock-step: it reaches a flat goal, without
    collisions; a legged-history FDM gets its joint states and targets on the way (issue 16)."""
    from fdm_small import SMALL

    from morobot.fdm.checkpoint import save_checkpoint
    from morobot.fdm.model import FDMConfig, PerceptiveFDM

    sc = custom_scenario("flat", (-1.5, 0.0, 0.0), (1.5, 0.0, 0.0), size=8.0, budget=20.0)
    rec = LockstepRunner(PlannerSpec("kinematic"), NavParams.load(), robot="legged").run(sc)
    assert rec["outcome"] == "reached" and not rec["collision"] and rec["robot"] == "legged", rec
    assert rec["box_contact_s"] == 0.0 and rec["terrain_contact_s"] == 0.0  # legs on the ground are walking
    assert rec["settled"] is True and 0.5 <= rec["settle_s"] <= 2.0  # dropped, it stood still before the goal
    ckpt = tmp_path / "legged.pt"
    legged_actions = {"history_dim": 84, "history_features": "legged_actions"}  # joints and joint targets
    save_checkpoint(ckpt, PerceptiveFDM(FDMConfig(**{**SMALL, **legged_actions})))
    legged_fdm = PlannerSpec("fdm", str(ckpt))
    short = custom_scenario("flat", (-1.5, 0.0, 0.0), (1.5, 0.0, 0.0), size=8.0, budget=3.0)
    rec = LockstepRunner(legged_fdm, NavParams.load(), robot="legged").run(short)  # an untrained model: it runs
    assert rec["error"] is None and rec["planner_cycles"] > 10
    with pytest.raises(ValueError, match="needs robot legged"):
        LockstepRunner(legged_fdm, NavParams.load()).run(short)
    # the simulator's locomotion_policy parameter chooses the policy in lock-step as in the graph
    params = NavParams.load()
    params.sim["locomotion_policy"] = str(tmp_path / "no_such_policy.pt")
    with pytest.raises(Exception, match="no_such_policy"):
        LockstepRunner(PlannerSpec("kinematic"), params, robot="legged").run(short)


class _PushOver(LockstepProbe):
    """Tips the legged robot over with a roll torque on its base during its first 0.6 s."""

    def step(self, sim, state, mapper):
        sim.data.xfrc_applied[sim.idx.base_body, 3] = 400.0 if sim.time < 0.6 else 0.0
        return False


def test_legged_lockstep_waits_for_a_settled_start_and_a_fall_there_is_an_error():
    """The dropped robot's goal waits until it stands still (or the limit): a robot that never does still
    runs, marked unsettled; a robot that falls before the goal is an error of the start, not a planner's fall."""
    from morobot.navigation.settle import SettleRule

    short = custom_scenario("flat", (-1.5, 0.0, 0.0), (1.5, 0.0, 0.0), size=8.0, budget=2.0)
    strict = SettleRule(speed=1e-6, rate=1e-6, hold=0.5, limit=1.5)  # stillness no gait reaches
    rec = LockstepRunner(PlannerSpec("kinematic"), NavParams.load(), robot="legged", settle=strict).run(short)
    assert rec["settled"] is False and rec["settle_s"] == pytest.approx(1.5, abs=0.05) and rec["error"] is None
    assert rec["loop_sim_s"] > 1.5 + 1.9  # the budget counts from the goal, sent after the wait
    rec = LockstepRunner(PlannerSpec("kinematic"), NavParams.load(), robot="legged").run(short, _PushOver())
    assert rec["outcome"] == "error" and "fell at the start" in rec["error"] and not rec["fallen"], rec
    with pytest.raises(ValueError, match="start-up limit"):
        LockstepRunner(PlannerSpec("kinematic"), NavParams.load(), robot="legged", settle=SettleRule(limit=6.0))
    rigid = LockstepRunner(PlannerSpec("kinematic"), NavParams.load()).run(short)  # put down at rest: no wait
    assert "settled" not in rigid and rigid["error"] is None


def test_start_table_splits_goals_by_settled_starts():
    from morobot.evaluation.report import start_table

    def rec(settled, success, wait):
        return {"mode": "lockstep", "mix": "rubble_high", "planner": "fdm", "settled": settled, "success": success,
                "settle_s": wait}

    rows = [rec(True, True, 0.7), rec(True, False, 0.9), rec(False, True, 2.0), rec(False, False, 2.0),
            rec(False, False, 2.0), {"mode": "lockstep", "mix": "rough", "planner": "fdm", "success": True}]
    table = start_table(rows)
    assert "| lockstep | rubble_high | fdm | 5 | 2 | 1 of 2 | 1 of 3 | 2.00 s |" in table
    assert "rough" not in table  # the rigid robot's records carry no start
    assert start_table(rows[-1:]) == ""


def test_results_and_report_files(flat_run, tmp_path):
    _runner, _sc, rec = flat_run
    graph = {**rec, "mode": "graph", "time_to_goal": rec["time_to_goal"] + 0.5, "mean_cycle_ms": None}
    write_results(tmp_path / "results.jsonl", [graph, rec])
    back = read_results(tmp_path / "results.jsonl")
    assert [r["mode"] for r in back] == ["graph", "lockstep"] and back[1] == rec
    paths = write_report(back, tmp_path, header="cmd")
    md = paths["markdown"].read_text()
    assert "| flat | kinematic | 1 | 100 % |" in md and "lockstep vs graph" in md
    assert json.loads(paths["json"].read_text())["agreement"]["same_outcome"] == 1
    assert paths["png"].stat().st_size > 20_000
    assert not list(tmp_path.glob("*.tmp*"))


# ------------------------------------------------------------------------------------ CLI
def test_cli_parses_with_its_defaults():
    parser = argparse.ArgumentParser(prog="morobot eval nav")
    eval_cli.add_arguments(parser)
    ns = parser.parse_args(["-n", "3", "--mixes", "rough", "steps", "--mode", "graph", "--fdm-checkpoint", "x.pt"])
    assert ns.num == 3 and ns.mixes == ["rough", "steps"] and ns.mode == "graph"
    assert ns.fdm_checkpoint == "x.pt"
    defaults = parser.parse_args([])
    assert defaults.num == 30 and defaults.mode == "lockstep" and defaults.budget == 60.0
    assert defaults.mixes == ["rough", "slopes", "steps", "cluttered"]
    assert not defaults.goals_as_drawn and parser.parse_args(["--goals-as-drawn"]).goals_as_drawn
    with pytest.raises(SystemExit):
        parser.parse_args(["--mixes", "lava"])


def test_cli_goals_as_drawn_reaches_the_scenario_generator(tmp_path, monkeypatch):
    import morobot.evaluation.scenarios as scenarios_module

    seen = []

    def capture(*args, **kwargs):
        seen.append(kwargs.get("standable"))
        raise ValueError("captured")

    monkeypatch.setattr(scenarios_module, "make_scenarios", capture)
    assert eval_cli.nav_main(["--out", str(tmp_path), "--goals-as-drawn"]) == 2
    assert eval_cli.nav_main(["--out", str(tmp_path)]) == 2
    assert seen == [False, True]


def test_each_run_keeps_the_versions_that_shape_it():
    """Lock-step runs differ across MuJoCo versions: runs.json and summary.md say which made them."""
    import mujoco

    from morobot.provenance import versions

    v = versions(("mujoco", "no-such-package-here"))
    assert v["mujoco"] == mujoco.__version__ and v["no-such-package-here"] == "" and v["python"]
    run = {"command": "morobot eval nav", "mode": "lockstep", "new_results": 3, "wall_s": 60.0,
           "date": "2026-12-02 18:00", "versions": v}
    header = eval_cli._header([run, {**run, "versions": {}}], "config/navigate.yaml")
    assert f"mujoco {mujoco.__version__}" in header and "no-such-package-here" not in header
    assert header.count("wall 1.0 min") == 2  # runs recorded before versions were kept still list


def test_cli_rejects_a_missing_checkpoint(tmp_path, capsys):
    assert eval_cli.nav_main(["--fdm-checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_graph_mode_passes_the_thread_count_to_the_nodes(tmp_path, monkeypatch):
    """--threads reaches the node processes as OMP_NUM_THREADS (and nothing is set without it)."""
    import morobot.launcher
    from morobot.evaluation.nav import run_graph

    seen = []

    class Stop(Exception):
        """Ends run_graph where it would start the node processes."""

    class FakeProcesses:
        def __init__(self, graph, args=None, log_dir=None, env=None):
            seen.append((graph, env))
            raise Stop

    monkeypatch.setattr(morobot.launcher, "GraphProcesses", FakeProcesses)
    scenario = make_scenario("rough", 0)
    for threads in (1, None):
        with pytest.raises(Stop):
            run_graph(scenario, PlannerSpec("kinematic"), tmp_path, threads=threads)
    assert seen == [("navigate", {"OMP_NUM_THREADS": "1"}), ("navigate", None)]


def test_graph_mode_on_the_legged_robot_waits_for_a_settled_start(tmp_path, monkeypatch):
    """Graph mode hands the supervisor the settle rule on the legged robot only, and records what it saw."""
    import morobot.launcher
    import morobot.ros.supervisor as supervisor
    from morobot.evaluation.nav import run_graph
    from morobot.navigation.settle import SettleRule

    launched = []

    class FakeProcesses:
        def __init__(self, graph, args=None, log_dir=None, env=None):
            launched.append(args["locomotion"])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    rules = []

    def fake_supervise(world, tolerance, timeout, procs, wall_limit, startup_limit, min_base_height, settle=None):
        rules.append(settle)
        waited = settle is not None  # as if the limit had opened the gate
        rec = supervisor.DemoRecord(goal_sent_at=1.3, settled=False if waited else None,
                                    settle_s=1.3 if waited else None)
        x, y, yaw = world.start
        rec.path = [[1.3 + 0.1 * i, x, y, 0.5, yaw] for i in range(5)]
        return rec, f"sim-time budget of {timeout:.0f}s spent"

    monkeypatch.setattr(morobot.launcher, "GraphProcesses", FakeProcesses)
    monkeypatch.setattr(supervisor, "supervise", fake_supervise)
    scenario = make_scenario("rough", 0)
    legged = run_graph(scenario, PlannerSpec("kinematic"), tmp_path, robot="legged")
    rigid = run_graph(scenario, PlannerSpec("kinematic"), tmp_path)
    assert rules[0] == SettleRule() and rules[1] is None
    assert legged["settled"] is False and math.isclose(legged["settle_s"], 1.3) and "settled" not in rigid
    assert launched == ["learned", "abstract"]


def test_supervisor_fall_rule_matches_the_post_hoc_rule():
    """The graph supervisor stops on a collapse without tipping (base low over the surface)."""
    from morobot.sim.falls import fall_reason

    world = make_scenario("rubble", 0).world()
    x, y = world.start[:2]
    ground = float(world.elevation_at(x, y))
    upright = np.array([0.0, 0.0, -1.0])
    assert fall_reason(world, (x, y, ground + 0.5), upright) is None
    assert fall_reason(world, (x, y, ground + 0.1), upright).startswith("robot fell")
    assert fall_reason(world, (x, y, ground + 0.1), upright, min_base_height=None) is None
    assert fall_reason(world, (x, y, ground + 0.5), np.array([0.0, -1.0, 0.0])) == "robot tipped over"
    assert fall_reason(world, (1e3, 1e3, float(world.heights.min())), upright) is None  # off the map, level
    assert fall_reason(world, (1e3, 1e3, float(world.heights.min()) - 1.0), upright).startswith("robot fell")
