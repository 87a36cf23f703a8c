"""The legged ANYmal under a locomotion policy (morobot.locomotion.sim) and the sim node's learned mode."""

import dataclasses

import numpy as np
import pytest
from rclpy.parameter import Parameter

from morobot.locomotion import train
from morobot.locomotion.sim import LeggedAnymalSim, LeggedSimConfig
from morobot.sim.legged import JOINTS
from morobot.sim.worlds import load_world


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory):
    """An (untrained) policy file in the shipped format: enough to test the plumbing."""
    out = tmp_path_factory.mktemp("policy")
    train.train(train.TrainConfig(out_dir=str(out), num_envs=2, workers=0, steps_per_env=4, iterations=1,
                                  actor_hidden=(16,), critic_hidden=(16,), progress=False))
    return str(out / "policy.pt")


def test_steps_with_the_policy_and_reports_state_joints_and_points(policy_path):
    sim = LeggedAnymalSim(load_world("flat_small"), LeggedSimConfig(policy=policy_path))
    assert np.allclose(sim.state().position[:2], load_world("flat_small").start[:2])
    sim.set_command([0.5, 0.0, 0.0])
    st = sim.advance(0.2)
    assert st.time == pytest.approx(0.2) and np.all(np.isfinite(st.position))
    js = sim.joint_state()
    assert js.names == JOINTS and js.positions.shape == (12,) and np.all(np.isfinite(js.efforts))
    assert sim.depth_points().shape[1] == 3
    assert np.allclose(sim.command, [0.5, 0.0, 0.0])
    last, before = sim.joint_targets()
    assert np.array_equal(last, sim.data.ctrl[sim.idx.act]) and not np.array_equal(last, before)
    sim.advance(0.02)  # one control step: the newest target becomes the previous one
    assert np.array_equal(sim.joint_targets()[1], last)
    sim.advance(0.6)  # no new command for longer than command_timeout: it stands
    assert not sim.command.any()
    sim.reset()
    assert sim.time == 0.0 and not sim.state().fallen


def test_a_robot_held_in_place_is_stuck_and_one_standing_still_is_not(policy_path):
    sim = LeggedAnymalSim(load_world("flat_small"), LeggedSimConfig(policy=policy_path))
    assert not sim.advance(2.0).stuck  # no command: standing is not being stuck
    for _ in range(100):  # 2 s commanded forward with the base held in place
        sim.set_command([0.6, 0.0, 0.0])
        sim.data.qvel[:] = 0.0
        st = sim.advance(0.02)
        sim.data.qpos[0:2] = load_world("flat_small").start[:2]
    assert st.stuck and not st.fallen


def test_no_foot_starts_inside_a_bump_under_it(policy_path):
    """The base is put down over the ground under it; a foot over a higher bump is lifted clear of it, and the robot
    lands on it (docs/navigation_eval.md, "Session 34": buried feet trapped the robot at rubble_high starts)."""
    flat = load_world("flat_small")
    sim = LeggedAnymalSim(flat, LeggedSimConfig(policy=policy_path))
    base_z = sim.state().position[2]
    lf = sim.idx.foot_positions(sim.data)[0]
    heights = np.array(flat.heights, dtype=np.float32)
    i, j = (np.round((lf[:2] - np.asarray(flat.origin)) / flat.resolution)).astype(int)
    heights[i - 1:i + 2, j - 1:j + 2] += 0.12  # a 12 cm block under the left front foot
    bumped = dataclasses.replace(flat, heights=heights)
    sim = LeggedAnymalSim(bumped, LeggedSimConfig(policy=policy_path))
    radius = sim.model.geom_size[sim.idx.foot_geoms[0], 0]

    def gaps():
        feet = sim.idx.foot_positions(sim.data)
        return feet[:, 2] - radius - sim.terrain_height(feet[:, 0], feet[:, 1])

    assert gaps().min() >= 0.0 and sim.state().position[2] > base_z + 0.1
    sim.advance(1.0)
    assert gaps().min() > -0.02 and not sim.state().fallen  # standing, the foot on the block, not in it


def test_restoring_a_snapshot_repeats_the_same_steps_exactly(policy_path):
    """snapshot()/restore(): the branches of `morobot collect --branches` start from one state; a restored
    simulator steps bit for bit as it did, whatever ran in between."""
    sim = LeggedAnymalSim(load_world("flat_small"), LeggedSimConfig(policy=policy_path))
    sim.set_command([0.6, 0.2, 0.3])
    sim.advance(0.47)  # mid control period: the step counter is part of the state

    def trace():
        rows = []
        for k in range(20):
            sim.set_command([0.8, -0.3, 0.5] if k < 10 else [0.1, 0.4, -0.6])
            st = sim.advance(0.05)
            rows.append(np.r_[st.position, st.quaternion, st.linear_velocity, sim.joint_state().efforts,
                              np.concatenate(sim.joint_targets()), st.time, st.stuck])
        return np.array(rows)

    snap = sim.snapshot()
    first = trace()
    sim.restore(snap)
    sim.set_command([-1.0, 0.5, 1.0])  # something else in between
    sim.advance(0.6)
    assert not np.allclose(sim.state().position, first[-1, :3])
    back = sim.restore(snap)
    assert back.time == pytest.approx(0.47, abs=0.01)
    assert np.array_equal(trace(), first)


def test_a_robot_on_its_back_counts_as_fallen(policy_path):
    sim = LeggedAnymalSim(load_world("flat_small"), LeggedSimConfig(policy=policy_path))
    sim.data.qpos[3:7] = (0.0, 1.0, 0.0, 0.0)
    assert sim.advance(0.04).fallen


@pytest.mark.ros
def test_the_sim_node_publishes_joint_states_and_targets_in_learned_mode(policy_path):
    from sensor_msgs.msg import JointState

    from morobot.nodes.mujoco_sim import MujocoSimNode
    from morobot.ros import qos

    from rosutil import RosHarness

    h = RosHarness()
    node = None
    try:
        node = h.add(MujocoSimNode(parameter_overrides=[Parameter("world", value="flat_small"),
                                                 Parameter("locomotion", value="learned"),
                                                 Parameter("locomotion_policy", value=policy_path),
                                                 Parameter("points_rate", value=0.0)]))
        io = h.node("legged_io")
        got, targets = [], []
        io.create_subscription(JointState, "/joint_states", got.append, qos.STATE)
        io.create_subscription(JointState, "/joint_targets", targets.append, qos.STATE)
        assert h.spin_until(lambda: len(got) >= 5 and len(targets) >= 5, 20.0)
        assert list(got[-1].name) == list(JOINTS) and len(got[-1].effort) == 12
        assert np.all(np.isfinite(got[-1].position))
        assert list(targets[-1].name) == list(JOINTS) and len(targets[-1].position) == 12
        assert not targets[-1].velocity and not targets[-1].effort
        assert np.all(np.abs(np.array(targets[-1].position)) < 3.0)  # joint angles, not garbage
    finally:
        if node is not None:
            node.on_shutdown()  # stop the sim thread before the node is destroyed
        h.close()


def test_eval_locomotion_writes_its_table_and_figures(policy_path, tmp_path):
    from morobot.locomotion.evaluate import main

    out = tmp_path / "eval"
    assert main(["--policy", policy_path, "--terrains", "flat", "stairs", "--levels", "0", "--episodes", "2",
                 "--out", str(out)]) == 0
    import json

    data = json.loads((out / "results.json").read_text())
    kinds = [(r["terrain"], tuple(r["command"])) for r in data["results"]]
    assert ("flat", (1.0, 0.0, 0.0)) in kinds and ("stairs", (1.0, 0.0, 0.0)) in kinds
    assert ("flat", (0.0, 0.0, 1.0)) in kinds  # turning on the spot
    assert all(0.0 <= r["falls_per_episode"] <= 1.0 and r["tracking_rms"] >= 0 for r in data["results"])
    assert all(sum(r["fall_causes"].values()) == round(r["falls_per_episode"] * r["episodes"])
               for r in data["results"])  # every fall has one cause
    starts = {(r["terrain"], r["start"]) for r in data["results"]}
    assert {("stairs", "scattered"), ("stairs", "top"), ("stairs", "pit")} <= starts
    assert "descended from a landing" in (out / "summary.md").read_text()
    assert 0.0 <= data["highest_step_descended"] <= 0.2
    assert (out / "locomotion_eval.png").stat().st_size > 10_000
    assert main(["--policy", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
    assert main(["--policy", policy_path, "--terrains", "flat", "--switching", "-1", "--out", str(out)]) == 2
    assert main(["--policy", policy_path, "--terrains", "rubble", "--rubble-ground", "0.5", "--out", str(out)]) == 2


def test_eval_locomotion_on_rubble_over_rough_ground(policy_path, tmp_path, monkeypatch):
    """``--rubble-ground``: the cells' rubble lies on rough ground, as in training with that option."""
    import json
    import warnings

    from morobot.locomotion import evaluate

    seen = []
    real = evaluate.LocomotionEnv

    def spy(n, cfg, seed=0):
        seen.append(cfg.rubble_ground)
        return real(n, cfg, seed)

    monkeypatch.setattr(evaluate, "LocomotionEnv", spy)
    out = tmp_path / "eval"
    with warnings.catch_warnings():  # standing cells are drawn too: the legend has them
        warnings.filterwarnings("error", message="No artists with labels")
        assert evaluate.main(["--policy", policy_path, "--terrains", "rubble", "--levels", "9", "--episodes", "2",
                              "--speed", "0", "--rubble-ground", "0.15", "--out", str(out)]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["rubble_ground"] == 0.15 and [r["command"] for r in data["results"]] == [[0.0, 0.0, 0.0]]
    assert seen == [0.15]


def test_eval_locomotion_switching_cells_command_the_seeded_schedule(policy_path, tmp_path):
    from morobot.locomotion.evaluate import SWITCH_RANGES, command_schedule, evaluate_cell, main

    s = command_schedule(seed=4, episodes=3, steps=100, every=25)
    assert s.shape == (5, 3, 3) and np.array_equal(s, command_schedule(4, 3, 100, 25))
    assert np.all((s >= np.array(SWITCH_RANGES)[:, 0]) & (s <= np.array(SWITCH_RANGES)[:, 1]))
    planar = np.linalg.norm(s[..., :2], axis=-1)
    assert np.all((planar == 0.0) | (planar >= 0.2))

    class Recorder:  # stands still and records the command part of what it sees
        def __init__(self):
            self.seen = []

        def act(self, obs):
            self.seen.append(np.array(obs[:, 9:12]))
            return np.zeros((len(obs), 12))

    rec = Recorder()
    r = evaluate_cell(rec, "flat", 0, 10, (1.0, 0.0, 0.0), 2, seed=4, switch_period=0.5)
    assert r.command == [] and r.switch_period == 0.5 and r.falls_per_episode == 0.0
    seen = np.stack(rec.seen)  # [steps, 2, 3]
    changes = np.flatnonzero(np.any(np.abs(np.diff(seen, axis=0)) > 1e-9, axis=(1, 2))) + 1
    assert set(changes.tolist()) <= set(range(25, len(seen), 25)) and len(changes) >= 30
    expected = command_schedule(4, 2, len(seen), 25)
    assert np.allclose(np.sign(seen[::25]), np.sign(expected[: len(seen[::25])]))  # the schedule, scaled
    out = tmp_path / "eval"
    assert main(["--policy", policy_path, "--terrains", "flat", "slopes", "--levels", "3", "--episodes", "2",
                 "--switching", "0.5", "--out", str(out)]) == 0
    import json

    data = json.loads((out / "results.json").read_text())
    switching = [(r["terrain"], r["level"]) for r in data["results"] if r["switch_period"] == 0.5]
    assert switching == [("flat", 0), ("slopes", 3)]
    assert "random, every 0.5 s" in (out / "summary.md").read_text()


def test_the_cameras_see_the_legs_only_inside_the_mappers_body_box():
    """The side cameras see the legs, and hard turns out of backward walking swing the feet into the front
    and rear cameras' view (the elevation mapper would map them as obstacles): every such point lies in the
    mapper's default body box, which stops above the ground the robot stands on, or on a foot within 8 cm of
    that ground (mapped as a bump well under the planners' 0.10 m step limit)."""
    from morobot.mapping.body import BODY_BOX
    from morobot.mapping.elevation import transform_points
    from morobot.sim.worlds import make_world

    sim = LeggedAnymalSim(make_world("flat", 0, size=(30.0, 30.0), start=(0.0, 0.0, 0.0)))
    sim.reset((0.0, 0.0, 0.0))
    frames = points = 0
    for k in range(400):
        sim.set_command(np.array((1.0, -0.5, 1.0) if (k // 50) % 2 else (-0.5, -0.3, 0.8)), stamp=sim.time)
        st = sim.advance(0.02)
        if k % 5 == 0:
            own = sim.own_points()
            frames += len(own) > 0
            points += len(own)
            inside = np.all((own >= np.array(BODY_BOX[0::2])) & (own <= np.array(BODY_BOX[1::2])), axis=1)
            near_ground = transform_points(own, st.position, st.quaternion)[:, 2] < 0.08  # the ground is z = 0
            assert np.all(inside | near_ground)
    assert frames >= 60 and points >= 1000
    for _ in range(100):  # standing, the base is lowest: the box still stops above the ground
        sim.set_command(np.zeros(3), stamp=sim.time)
        st = sim.advance(0.02)
    assert 0.02 < BODY_BOX[4] + st.position[2] < 0.06


def test_the_depth_cameras_are_chosen_by_name():
    from morobot.params import resolve
    from morobot.sim.params import SimNodeParams

    sim = LeggedAnymalSim(load_world("flat_small"), LeggedSimConfig(cameras=("front", "rear")))
    assert [c.name for c in sim.sensor.cameras] == ["front", "rear"]
    assert [c.name for c in LeggedAnymalSim(load_world("flat_small")).sensor.cameras] == [
        "front", "rear", "left", "right"]
    for bad in ((), ("front", "front"), ("top",)):
        with pytest.raises(ValueError, match="cameras"):
            LeggedSimConfig(cameras=bad)
        with pytest.raises(ValueError, match="depth_cameras"):
            resolve(SimNodeParams, {"depth_cameras": list(bad)})
