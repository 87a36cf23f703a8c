"""One source per parameter: dataclass fields → node declarations, YAML overrides checked against them."""

import pytest
import yaml
from rclpy.parameter import Parameter

from morobot.navigation import factory
from morobot.mapping.params import SHARED, MapperParams
from morobot.fdm.params import MonitorParams
from morobot.korr.params import PolicyParams
from morobot.navigation.params import PlannerParams, load
from morobot.sim.params import SimNodeParams
from morobot.params import ParamSpec, defaults, resolve, specs
from morobot.paths import config_path

from rosutil import RosHarness


def test_spec_checks_coerces_and_tightens():
    s = ParamSpec("rate", 1.0, "a rate", 0.0, 10.0, tighten="down")
    assert s.coerce(2) == 2.0 and isinstance(s.coerce(2), float)
    assert "above its maximum 10 (allowed 0 to 10)" in s.check(11.0)
    assert "must be a number" in s.check("fast")
    assert s.check_change(0.5, 1.0) is None
    assert "only be tightened" in s.check_change(2.0, 1.0)
    assert "read-only" in ParamSpec("n", 1, "n", read_only=True).check_change(2, 1)
    assert "only be tightened" in ParamSpec("r", 2.0, "r", 0.0, 50.0, tighten="up").check_change(0.0, 2.0)
    with pytest.raises(ValueError):
        ParamSpec("x", 1.0, "x", tighten="sideways")


def test_resolve_overrides_defaults_and_names_what_is_wrong():
    p = resolve(PlannerParams, {"control_rate": 5})
    assert p["control_rate"] == 5.0 and p["num_samples"] == defaults(PlannerParams)["num_samples"]
    with pytest.raises(ValueError, match=r"unknown parameters \['controlrate'\]"):
        resolve(PlannerParams, {"controlrate": 5.0})
    with pytest.raises(ValueError, match="goal_tolerance = 9 is above its maximum 5"):
        resolve(PlannerParams, {"goal_tolerance": 9.0}, source="x.yaml")


NODE_PARAMS = [(PlannerParams, "mppi_planner"), (MapperParams, "elevation_mapper"), (SimNodeParams, "mujoco_sim"),
               (MonitorParams, "fdm_monitor"), (PolicyParams, "korr_policy")]


@pytest.mark.parametrize("cls,node", NODE_PARAMS)
def test_every_yaml_key_is_a_valid_parameter(cls, node):
    found = 0
    for path in sorted(config_path("").glob("*.yaml")):
        section = (yaml.safe_load(path.read_text()) or {}).get(node)
        if section is not None:
            resolve(cls, section.get("ros__parameters") or {}, source=str(path))  # raises on any disagreement
            found += 1
    assert found >= 1


def test_the_navigation_file_only_overrides_the_planner_and_mapper():
    assert load(PlannerParams, "mppi_planner") == resolve(PlannerParams, {})
    assert load(MapperParams, "elevation_mapper") == resolve(MapperParams, {})


@pytest.mark.parametrize("cls,module", [(SimNodeParams, "mujoco_sim"), (MonitorParams, "fdm_monitor"),
                                        (PolicyParams, "korr_policy"), (PlannerParams, "mppi_planner"),
                                        (MapperParams, "elevation_mapper")])
def test_each_node_declares_its_dataclass(cls, module):
    import importlib

    assert importlib.import_module(f"morobot.nodes.{module}").PARAMS == specs(cls)


def test_the_factory_reads_only_declared_parameters():
    names = set(defaults(PlannerParams))
    for group in (factory.KINEMATIC_PARAMS, factory.MPPI_PARAMS, factory.COST_PARAMS, factory.COST_TO_GO_PARAMS,
                  factory.BLOCKED_PARAMS):
        assert set(group) <= names, set(group) - names
    assert set(SHARED) == {"size_x", "size_y", "resolution", "max_age", "voxel_size"}


@pytest.mark.ros
def test_nodes_declare_exactly_the_dataclass_fields():
    from morobot.nodes.elevation_mapper import ElevationMapperNode
    from morobot.nodes.mppi_planner import MppiPlannerNode

    h = RosHarness()
    try:
        for node_cls, cls in ((MppiPlannerNode, PlannerParams), (ElevationMapperNode, MapperParams)):
            node = h.add(node_cls(parameter_overrides=[Parameter("use_sim_time", value=False)]))
            builtin = ("use_sim_time", "start_type_description_service")
            declared = {name: p.value for name, p in node._parameters.items() if name not in builtin}
            want = {s.name: s.default for s in specs(cls)}
            assert set(declared) == set(want)
            for name, value in want.items():
                got = declared[name]
                assert (list(got) if isinstance(value, list) else got) == value, name
            desc = node.describe_parameter("max_map_age" if cls is PlannerParams else "points_timeout")
            assert "safety limit" in desc.description
    finally:
        h.close()


def test_planner_defaults_agree_with_the_algorithm_configs():
    """The node's defaults are the algorithms' defaults, except where a node value is deployed on purpose."""
    from morobot.navigation.factory import make_mppi_config
    from morobot.planning.blocked import BlockedMotionConfig
    from morobot.planning.cost import NavigationCostConfig
    from morobot.planning.mppi import MPPIConfig

    p = defaults(PlannerParams)
    built, library = make_mppi_config(p), MPPIConfig()
    for name in ("num_samples", "horizon", "dt", "temperature", "sigma", "u_min", "u_max", "noise_beta", "iterations"):
        assert getattr(built, name) == getattr(library, name), name
    cost = NavigationCostConfig()
    for name in ("goal_weight", "risk_penalty_threshold", "risk_weight", "alignment_weight", "risk_margin"):
        assert p[name] == getattr(cost, name), name
    assert BlockedMotionConfig().duration == p["blocked_duration"]
