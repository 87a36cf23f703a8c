"""The simulator's stumble model, rubble terrain, and the data/benchmark plumbing around them."""

import json
import math

import numpy as np
import pytest

from morobot.sim.locomotion import STUMBLE_PARAMS, BaseState, LocomotionConfig, LocomotionController, quat_to_matrix
from morobot.sim.worlds import make_world

FEET = np.array([[0.35, 0.25, -0.54], [0.35, -0.25, -0.54], [-0.35, 0.25, -0.54], [-0.35, -0.25, -0.54]])
FORCES = np.full(4, 50.0 * 9.81 / 4)
BUMPY = np.tile([0.0, 0.0, 0.06, 0.0], (4, 1))  # a 6 cm bump at half look-ahead under every foot


def _state():
    q = np.array([1.0, 0.0, 0.0, 0.0])
    return BaseState(np.array([0.0, 0.0, 0.57]), q, 0.0, np.zeros(3), np.zeros(3), -quat_to_matrix(q)[2, :])


def _hazard(heights, twist, **cfg):
    ctrl = LocomotionController(FEET, 50.0, LocomotionConfig(**{"stumble_rate": 1.0, **cfg}))
    ctrl.reset(twist)
    return ctrl.stumble_hazard(heights)


def test_hazard_needs_speed_and_unevenness():
    assert np.all(_hazard(BUMPY, (1.0, 0.0, 0.0), stumble_rate=0.0) == 0)  # off by default
    assert np.all(_hazard(BUMPY, (0.0, 0.0, 0.0)) == 0)  # standing on it
    assert np.all(_hazard(BUMPY, (0.2, 0.0, 0.0)) == 0)  # walking slowly
    fast = _hazard(BUMPY, (1.0, 0.0, 0.0))
    assert np.all(fast > 0)
    assert np.all(_hazard(np.zeros((4, 4)), (1.0, 0.0, 0.0)) == 0)  # flat
    ctrl = LocomotionController(FEET, 50.0, LocomotionConfig(stumble_rate=1.0))
    ctrl.reset((1.0, 0.0, 0.0))
    _, _, dist = ctrl._foot_travel()
    slope = 0.3 * dist  # a uniform 17 deg incline along the way: no unevenness
    assert np.all(ctrl.stumble_hazard(slope) == 0)
    # sideways and backwards count more than forwards at the same foot speed
    assert np.all(_hazard(BUMPY, (0.0, 0.6, 0.0)) > _hazard(BUMPY, (0.6, 0.0, 0.0)))
    assert np.all(_hazard(BUMPY, (-0.6, 0.0, 0.0)) > _hazard(BUMPY, (0.6, 0.0, 0.0)))
    # an unclimbable sample (a box face ahead) is a contact, not a stumble
    wall = np.tile([0.0, 0.0, 0.0, 0.5], (4, 1))
    assert np.all(_hazard(wall, (1.0, 0.0, 0.0)) == 0)


def test_a_drawn_stumble_drops_the_legs_and_stops():
    ctrl = LocomotionController(FEET, 50.0, LocomotionConfig(stumble_rate=1e6))
    ctrl.reset((1.0, 0.0, 0.0))
    out = ctrl.update((1.0, 0.0, 0.0), _state(), BUMPY, FORCES, 0.02)
    assert out.stumbled and out.stumble_hazard > 0
    assert np.isnan(out.leg_targets).all() and out.reference[0] < 1.0
    calm = LocomotionController(FEET, 50.0, LocomotionConfig(stumble_rate=1e6))
    out = calm.update((0.0, 0.0, 0.0), _state(), BUMPY, FORCES, 0.02)
    assert not out.stumbled and out.stumble_hazard == 0 and np.isfinite(out.leg_targets).all()


def test_config_validation_and_node_fields():
    with pytest.raises(ValueError):
        LocomotionConfig(stumble_rate=-1.0)
    with pytest.raises(ValueError):
        LocomotionConfig(stumble_unevenness=0.0)
    assert set(STUMBLE_PARAMS) <= set(LocomotionConfig.__dataclass_fields__)


def test_rubble_changes_only_what_it_should():
    plain = make_world("rough", seed=4, amplitude=0.15)
    again = make_world("rough", seed=4, amplitude=0.15, rubble=0.0)
    np.testing.assert_array_equal(plain.heights, again.heights)  # rubble 0: same world as before
    rubble = make_world("rough", seed=4, amplitude=0.15, rubble=0.06)
    diff = rubble.heights - plain.heights
    assert 0.05 < np.abs(diff).max() <= 0.06 + 1e-9
    # foot-scale: neighbouring cells 0.4 m apart differ far more than in the smooth terrain
    step = 4
    assert np.abs(np.diff(rubble.heights[::step], axis=0)).mean() > 1.5 * np.abs(np.diff(plain.heights[::step], axis=0)).mean()
    with pytest.raises(ValueError):
        make_world("rough", seed=4, rubble=0.05, rubble_size=0.1)


def _walk(world, cmd, seconds, **loco):
    from morobot.sim.anymal import AnymalSim, AnymalSimConfig

    sim = AnymalSim(world, AnymalSimConfig(locomotion=LocomotionConfig(**loco)))
    sim.reset()
    for _ in range(int(seconds / 0.02)):
        sim.set_command(cmd)
        state = sim.advance(0.02)
        if state.fallen:
            return sim, sim.advance(1.0)  # the legs gave way: let the body come down
    return sim, state


def test_sim_robot_falls_when_running_over_rubble_but_not_when_walking():
    world = make_world("rough", seed=2, amplitude=0.12, rubble=0.06, start=(-4.0, 0.0, 0.0), goal=(4.0, 0.0, 0.0))
    loco = {"stumble_rate": 5.0, "stumble_unevenness": 0.02}
    sim, state = _walk(world, (1.0, 0.0, 0.0), 6.0, **loco)
    assert state.fallen
    assert state.position[2] - float(world.elevation_at(state.position[0], state.position[1])) < 0.45  # dropped
    _, slow = _walk(world, (0.3, 0.0, 0.0), 6.0, **loco)
    assert not slow.fallen and slow.position[0] > -3.0
    _, off = _walk(world, (1.0, 0.0, 0.0), 6.0)  # stumbling off: never falls
    assert not off.fallen and off.position[0] > 0.0


# ------------------------------------------------------------------------------- plumbing
def test_rubble_mix_scenarios_carry_the_stumble_model(tmp_path):
    from morobot.evaluation.nav import _params_with_locomotion
    from morobot.evaluation.scenarios import BENCHMARK_MIXES, STUMBLING, Scenario, make_scenario

    assert "rubble" not in BENCHMARK_MIXES
    sc = make_scenario("rubble", 3)
    assert sc.locomotion == {**STUMBLING, "stumble_seed": sc.seed}
    assert sc.locomotion_config().stumble_rate == STUMBLING["stumble_rate"]
    assert Scenario.from_dict(json.loads(json.dumps(sc.to_dict()))) == sc
    old = make_scenario("rough", 3).to_dict()
    del old["locomotion"]  # results written before the field existed
    assert Scenario.from_dict(old).locomotion == {} and not Scenario.from_dict(old).locomotion_config().stumbling
    params = _params_with_locomotion(None, sc.locomotion, tmp_path / "p.yaml")
    import yaml

    sim = yaml.safe_load(params.read_text())["mujoco_sim"]["ros__parameters"]
    assert sim["stumble_rate"] == STUMBLING["stumble_rate"] and isinstance(sim["stumble_rate"], float) and sim["stumble_seed"] == sc.seed
    assert sim["robot"] == "anymal"  # the rest of the file is kept
    with pytest.raises(ValueError):
        _params_with_locomotion(None, {"friction": 1.0}, tmp_path / "q.yaml")


def test_collect_passes_world_params_and_locomotion(tmp_path):
    from morobot.fdm.data.collect import CollectConfig, collect, parse_args
    from morobot.fdm.heightscan import ScanConfig

    cfg = parse_args(["--out", "x", "--world-param", "rubble=0.06", "--locomotion", "stumble_rate=0.3"])
    assert cfg.world_params == {"rubble": 0.06} and cfg.locomotion == {"stumble_rate": 0.3}
    base = dict(kinds=("rough",), worlds_per_kind=1, samples_per_world=8, workers=1, world_size=(10.0, 10.0),
                episode_steps=14, scan=ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2),
                progress=False, world_params={"amplitude": 0.12, "rubble": 0.06})
    with pytest.raises(ValueError):
        collect(CollectConfig(out_dir=str(tmp_path / "bad"), **{**base, "world_params": {"lava": 1}}))
    with pytest.raises(ValueError):
        collect(CollectConfig(out_dir=str(tmp_path / "bad2"), **base, locomotion={"stumble": 1}))
    stumbling = collect(CollectConfig(out_dir=str(tmp_path / "s"), **base,
                                      locomotion={"stumble_rate": 100.0, "stumble_unevenness": 0.005}))
    steady = collect(CollectConfig(out_dir=str(tmp_path / "n"), **base))
    falls = lambda m: sum(e["stats"]["fall"] for e in m["shards"])  # noqa: E731
    assert falls(stumbling) > 0 and falls(steady) == 0
    assert stumbling["meta"]["config"]["locomotion"]["stumble_rate"] == 100.0


def test_merge_datasets(tmp_path):
    from morobot.fdm.data.dataset import DataSpec, DatasetError, FDMDataset, read_manifest
    from morobot.fdm.heightscan import ScanConfig
    from morobot.fdm.data.merge import main, merge_datasets
    from morobot.fdm.data.synthetic import write_synthetic_dataset

    spec = DataSpec(scan=ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2))
    write_synthetic_dataset(tmp_path / "a", worlds_per_kind=1, samples_per_world=8, seed=1, spec=spec)
    write_synthetic_dataset(tmp_path / "b", worlds_per_kind=1, samples_per_world=8, seed=2, spec=spec)
    a, b = read_manifest(tmp_path / "a"), read_manifest(tmp_path / "b")
    assert not set(a["worlds"]) & set(b["worlds"])
    merged = merge_datasets(tmp_path / "m", [tmp_path / "a", tmp_path / "b", tmp_path / "a"])  # a twice: same shards
    assert merged["total_samples"] == a["total_samples"] + b["total_samples"]
    assert set(merged["worlds"]) == set(a["worlds"]) | set(b["worlds"])
    assert len(FDMDataset(tmp_path / "m")) == merged["total_samples"]
    with pytest.raises(ValueError):
        merge_datasets(tmp_path / "m", [tmp_path / "a"])  # occupied
    other = DataSpec(scan=ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.25))
    write_synthetic_dataset(tmp_path / "c", worlds_per_kind=1, samples_per_world=8, seed=3, spec=other)
    with pytest.raises(DatasetError):
        merge_datasets(tmp_path / "m2", [tmp_path / "a", tmp_path / "c"])
    assert main(["--out", str(tmp_path / "m3"), str(tmp_path / "missing")]) == 2


def test_fine_tuning_starts_from_the_checkpoint(tmp_path):
    from morobot.fdm.training import train
    from morobot.fdm.checkpoint import CheckpointError
    from morobot.fdm.data.dataset import DataSpec
    from morobot.fdm.heightscan import ScanConfig
    from morobot.fdm.data.synthetic import write_synthetic_dataset

    spec = DataSpec(scan=ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2))
    write_synthetic_dataset(tmp_path / "d", worlds_per_kind=3, samples_per_world=48, seed=2, spec=spec)
    tiny = {"cnn_channels": [4, 8, 8, 8], "scan_features": 16, "history_hidden": 16, "context_dim": 24,
            "predictor_hidden": 16}

    def run(out, **kw):
        base = dict(data_dir=str(tmp_path / "d"), out_dir=str(tmp_path / out), batch_size=64, lr=1e-2,
                    ensemble_size=2, val_fraction=0.34, test_fraction=0.0, num_threads=1, progress=False,
                    plot_every=100, model_overrides=dict(tiny))
        return train.train(train.TrainArgs(**{**base, **kw}))

    run("first", epochs=4)
    first = [json.loads(r) for r in (tmp_path / "first" / "metrics.jsonl").read_text().splitlines()]
    run("tuned", epochs=1, init_from=str(tmp_path / "first" / "latest.pt"))
    tuned = [json.loads(r) for r in (tmp_path / "tuned" / "metrics.jsonl").read_text().splitlines()]
    # epoch 0 of the fine-tuning run is the loaded model: the first run's last validation loss
    assert tuned[0]["val"]["loss"] == pytest.approx(first[-1]["val"]["loss"], rel=1e-3)
    assert tuned[0]["val"]["loss"] < 0.8 * first[0]["val"]["loss"]
    with pytest.raises(CheckpointError):
        run("other", epochs=1, init_from=str(tmp_path / "first" / "latest.pt"), ensemble_size=3)
    assert math.isfinite(tuned[-1]["val"]["loss"])
