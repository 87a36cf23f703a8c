"""The single graph description, the no-distro launcher's command lines and the launch file."""

import importlib.util
import sys
import types
from pathlib import Path

import pytest

from morobot import graph
from morobot.launcher import command_for

ROOT = Path(__file__).resolve().parents[1]


def test_resolve_defaults_and_conditions():
    nodes = graph.resolve("navigate")
    names = [n.spec.name for n in nodes]
    assert names == ["mujoco_sim", "elevation_mapper", "mppi_planner"]
    sim = nodes[0]
    assert sim.overrides["world"] == "rough_obstacles"
    assert sim.overrides["rate"] == pytest.approx(1.0) and isinstance(sim.overrides["rate"], float)
    assert all(n.overrides["use_sim_time"] is True for n in nodes)
    real = graph.resolve("navigate", {"use_sim": "false", "use_sim_time": "false", "use_monitor": "true"})
    assert [n.spec.name for n in real] == ["elevation_mapper", "mppi_planner", "fdm_monitor"]
    assert all(n.overrides["use_sim_time"] is False for n in real)
    # fdm_compile reaches the planner as a bool when given, and leaves the parameters file's value alone when not
    assert "fdm_compile" not in nodes[2].overrides
    compiled = graph.resolve("navigate", {"dynamics": "fdm", "fdm_compile": "true"})[2]
    assert compiled.overrides["fdm_compile"] is True and compiled.overrides["dynamics"] == "fdm"


def test_the_fdm_planners_checkpoint_follows_the_robot():
    """An empty checkpoint means the walking ANYmal's (the planner's default), and the rigid-body robot in
    simulation gets the rigid robot's checkpoint (it publishes no joint states)."""
    from morobot.navigation.factory import fdm_checkpoint
    from morobot.sim.params import SimNodeParams

    assert SimNodeParams().locomotion == "learned"
    assert graph.resolve("navigate")[2].overrides["dynamics"] == "kinematic"  # docs/navigation_eval.md "Session 37"
    planner = graph.resolve("navigate", {"dynamics": "fdm"})[2]
    assert planner.overrides["dynamics"] == "fdm" and "fdm_checkpoint" not in planner.overrides
    assert fdm_checkpoint({"fdm_checkpoint": ""}) == str(graph.paths.legged_fdm_checkpoint())
    rigid = str(graph.paths.rigid_fdm_checkpoint())
    assert graph.paths.legged_fdm_checkpoint() != graph.paths.rigid_fdm_checkpoint()
    for args in ({"locomotion": "abstract"}, {"locomotion": "abstract", "use_monitor": "true"}):
        nodes = graph.resolve("navigate", args)
        assert all(n.overrides["fdm_checkpoint"] == rigid for n in nodes if "fdm_checkpoint" in n.spec.arg_params)
    # a checkpoint given is kept; a real robot (no simulator) keeps the walking robot's default
    assert graph.resolve("navigate", {"locomotion": "abstract", "fdm_checkpoint": "x.pt"})[2].overrides[
        "fdm_checkpoint"] == "x.pt"
    real = graph.resolve("navigate", {"use_sim": "false", "locomotion": "abstract"})
    assert "fdm_checkpoint" not in real[1].overrides and real[1].spec.name == "mppi_planner"


def test_resolve_rejects_unknown():
    with pytest.raises(KeyError):
        graph.resolve("navigate", {"wrld": "x"})
    with pytest.raises(KeyError):
        graph.resolve("nope")
    with pytest.raises(FileNotFoundError):
        graph.resolve("navigate", {"params_file": "/nonexistent.yaml"})
    with pytest.raises(ValueError):
        graph.resolve("navigate", {"use_sim": "maybe"})


def test_params_file_has_a_section_per_node():
    import yaml

    for name, spec in graph.GRAPHS.items():
        data = yaml.safe_load(graph.paths.config_path(spec.params_file).read_text())
        for node in spec.nodes:
            assert "ros__parameters" in data[node.name], (name, node.name)


def test_command_line():
    node = graph.resolve("navigate", {"world": "flat_small", "rate": "2"})[0]
    cmd = command_for(node, python="py")
    assert cmd[:3] == ["py", "-m", "morobot.nodes.mujoco_sim"]
    assert "__node:=mujoco_sim" in cmd
    assert "world:=flat_small" in cmd and "rate:=2" in cmd and "use_sim_time:=true" in cmd
    assert str(node.params_file) in cmd


def _fake_launch_modules():
    """Minimal stand-ins for launch/launch_ros that record what the launch file builds."""
    launch = types.ModuleType("launch")
    actions = types.ModuleType("launch.actions")
    subs = types.ModuleType("launch.substitutions")
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")

    class Rec:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context[self.name]

    launch.LaunchDescription = lambda entities: list(entities)
    actions.DeclareLaunchArgument = type("DeclareLaunchArgument", (Rec,), {})
    actions.OpaqueFunction = type("OpaqueFunction", (Rec,), {})
    subs.LaunchConfiguration = LaunchConfiguration
    ros_actions.Node = type("Node", (Rec,), {})
    return {"launch": launch, "launch.actions": actions, "launch.substitutions": subs,
            "launch_ros": launch_ros, "launch_ros.actions": ros_actions}


@pytest.mark.parametrize("graph_name", sorted(graph.GRAPHS))
def test_launch_file_matches_graph(monkeypatch, graph_name):
    for name, mod in _fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    path = ROOT / "launch" / f"{graph_name}.launch.py"
    spec = importlib.util.spec_from_file_location("lf", path)
    lf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lf)
    entities = lf.generate_launch_description()
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    assert declared == {a.name: a.default for a in graph.GRAPHS[graph_name].arguments}
    opaque = [e for e in entities if type(e).__name__ == "OpaqueFunction"][0]
    context = dict(declared)
    nodes = opaque.kwargs["function"](context)
    expected = graph.resolve(graph_name, context)
    assert [n.kwargs["executable"] for n in nodes] == [e.spec.executable for e in expected]
    for node, exp in zip(nodes, expected):
        assert node.kwargs["package"] == "morobot"
        assert node.kwargs["parameters"] == [str(exp.params_file), exp.overrides]


def test_every_node_is_a_console_script():
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text())
    nodes = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "NODES")
    scripts = {k.value: v.value for k, v in zip(nodes.keys, nodes.values)}
    for spec in graph.GRAPHS.values():
        for node in spec.nodes:
            assert scripts[node.executable] == f"{node.module}:main"
            assert importlib.util.find_spec(node.module) is not None, node.module


def test_rviz_configs_show_topics_the_graphs_publish():
    """Every topic an RViz config displays is one a node of that graph publishes or subscribes."""
    import re

    import yaml

    from morobot.paths import config_path

    nodes_dir = Path(__file__).resolve().parents[1] / "morobot" / "nodes"
    names = set(re.findall(r'create_(?:publisher|subscription)\([A-Za-z0-9_.]+(?:\([^)]*\))?, "([a-z_/]+)"',
                           "".join(p.read_text() for p in nodes_dir.glob("*.py"))))
    names |= set(re.findall(r'create_(?:publisher|subscription)\([^,]+, "([a-z_/]+)"',
                            "".join(p.read_text() for p in nodes_dir.glob("*.py"))))
    for graph in ("navigate", "manipulate"):
        cfg = yaml.safe_load(config_path(f"{graph}.rviz").read_text())
        displays = cfg["Visualization Manager"]["Displays"]
        topics = [d[key]["Value"] for d in displays for key in ("Topic", "Description Topic") if key in d]
        assert topics and all(t.lstrip("/") in {n.lstrip("/") for n in names} for t in topics), (graph, topics)
