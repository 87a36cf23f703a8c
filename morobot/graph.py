"""The node graphs, described once.

``launch/*.launch.py`` (real ``launch``/``launch_ros`` on a ROS install) and ``morobot launch`` (separate
processes on real DDS, for machines without ``launch``) both build their processes from
:func:`resolve`, so the two can never disagree about which nodes run with which parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import yaml

from morobot import paths
from morobot.sim.params import SimNodeParams

_SIM_DEFAULTS = SimNodeParams()


@dataclass(frozen=True)
class LaunchArg:
    """A launch argument: ``name:=value`` on both launchers."""

    name: str
    default: str
    description: str


@dataclass(frozen=True)
class NodeSpec:
    """One node of a graph.

    Attributes:
        name: ROS node name (also its section in the params file).
        executable: console script (``ros2 run morobot <executable>``).
        module: Python module whose ``main()`` runs the node (used by ``morobot launch``).
        condition: launch argument that must be true for the node to start (None: always).
        arg_params: node parameters taken from launch arguments, ``{param: arg}``.
        remappings: ``(from, to)`` topic remappings.
    """

    name: str
    executable: str
    module: str
    condition: Optional[str] = None
    arg_params: dict = field(default_factory=dict)
    remappings: tuple = ()


@dataclass(frozen=True)
class GraphSpec:
    """A node graph. ``derive`` (optional) fills launch arguments whose default depends on others: it takes the
    argument values and returns those to set, and only arguments left empty are set."""

    name: str
    description: str
    params_file: str
    arguments: tuple
    nodes: tuple
    derive: Optional[Callable[[dict], dict]] = None


@dataclass
class ResolvedNode:
    """A node ready to start: what both launchers need."""

    spec: NodeSpec
    params_file: Path
    overrides: dict
    remappings: list
    namespace: str = ""


_COMMON_ARGS = (
    LaunchArg("use_sim", "true", "start the MuJoCo simulator (false on a real robot)"),
    LaunchArg("use_sim_time", "true", "nodes follow /clock (true under simulation)"),
    LaunchArg("rate", "1.0", "simulation speed as a multiple of real time (0 = as fast as possible)"),
    LaunchArg("namespace", "", "namespace of every node and its topics (e.g. robot1; /clock and /diagnostics "
              "stay global)"),
    LaunchArg("remap", "", "extra topic remappings for every node, from:=to pairs separated by commas "
              "(e.g. cmd_vel:=/locomotion/cmd_vel)"),
)


def _navigate_derived(values: dict) -> dict:
    """The simulated rigid body (``locomotion:=abstract``) publishes no joint states: its planner's FDM is the
    rigid robot's shipped checkpoint, not the walking ANYmal's that an empty ``fdm_checkpoint`` means."""
    if _truthy(values["use_sim"]) and values["locomotion"] == "abstract":
        return {"fdm_checkpoint": str(paths.rigid_fdm_checkpoint())}
    return {}


GRAPHS = {
    "navigate": GraphSpec(
        name="navigate",
        description="ANYmal navigation: sim, elevation mapper, MPPI planner (+ FDM monitor with a checkpoint)",
        params_file="navigate.yaml",
        arguments=_COMMON_ARGS + (
            LaunchArg("world", "rough_obstacles", "named world in config/worlds or a YAML path (sim only)"),
            LaunchArg("params_file", "", "parameters YAML (default: config/navigate.yaml)"),
            LaunchArg("dynamics", "kinematic", "planner dynamics: kinematic | fdm (the learned model; not the "
                      "default while it does not win the benchmark: docs/navigation_eval.md, Session 37)"),
            LaunchArg("fdm_checkpoint", "", "FDM checkpoint for dynamics:=fdm and the monitor (default: the "
                      "shipped one of the robot: the walking ANYmal's; locomotion:=abstract, the rigid body's)"),
            LaunchArg("fdm_compile", "", "dynamics:=fdm: true compiles the FDM's rollout with torch.compile at "
                      "start-up (faster cycles, slower start; empty: the parameters file's fdm_compile)"),
            LaunchArg("use_monitor", "false", "start the FDM monitor"),
            LaunchArg("cmd_vel_stamped", "true", "cmd_vel as geometry_msgs/TwistStamped (Nav2's default on Kilted) "
                      "or Twist (false)"),
            LaunchArg("locomotion", _SIM_DEFAULTS.locomotion, "simulated ANYmal: abstract (rigid body) | learned "
                      "(articulated, walking under the learned policy)"),
        ),
        nodes=(
            NodeSpec("mujoco_sim", "mujoco_sim", "morobot.nodes.mujoco_sim", condition="use_sim",
                     arg_params={"world": "world", "rate": "rate", "locomotion": "locomotion",
                                 "cmd_vel_stamped": "cmd_vel_stamped"},
                     ),
            NodeSpec("elevation_mapper", "elevation_mapper", "morobot.nodes.elevation_mapper"),
            NodeSpec("mppi_planner", "mppi_planner", "morobot.nodes.mppi_planner",
                     arg_params={"dynamics": "dynamics", "fdm_checkpoint": "fdm_checkpoint",
                                 "fdm_compile": "fdm_compile", "cmd_vel_stamped": "cmd_vel_stamped"}),
            NodeSpec("fdm_monitor", "fdm_monitor", "morobot.nodes.fdm_monitor", condition="use_monitor",
                     arg_params={"fdm_checkpoint": "fdm_checkpoint", "cmd_vel_stamped": "cmd_vel_stamped"}),
        ),
        derive=_navigate_derived,
    ),
    "manipulate": GraphSpec(
        name="manipulate",
        description="Franka Panda manipulation: sim, feasibility checker (filter), KORR policy",
        params_file="manipulate.yaml",
        arguments=_COMMON_ARGS + (
            LaunchArg("params_file", "", "parameters YAML (default: config/manipulate.yaml)"),
            LaunchArg("use_policy", "true", "start the KORR policy node"),
            LaunchArg("task", "push", "manipulation task of the policy"),
            LaunchArg("korr_checkpoint", "", "policy checkpoint (default: the shipped one for the task)"),
            LaunchArg("checker_mode", "filter", "feasibility checker mode: filter | demo"),
        ),
        nodes=(
            NodeSpec("mujoco_sim", "mujoco_sim", "morobot.nodes.mujoco_sim", condition="use_sim",
                     arg_params={"rate": "rate"}),
            NodeSpec("feasibility_checker", "feasibility_checker", "morobot.nodes.feasibility_checker",
                     arg_params={"mode": "checker_mode"}),
            NodeSpec("korr_policy", "korr_policy", "morobot.nodes.korr_policy", condition="use_policy",
                     arg_params={"task": "task", "checkpoint": "korr_checkpoint"}),
        ),
    ),
}


def _truthy(value: str) -> bool:
    v = str(value).strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def parse_value(text: str):
    """A launch-argument string → typed parameter value (YAML rules, as ``-p name:=value``)."""
    value = yaml.safe_load(text) if text != "" else ""
    return "" if value is None else value


def resolve(graph: str, args: Optional[dict] = None) -> list[ResolvedNode]:
    """The nodes of ``graph`` to start for launch arguments ``args`` (strings).

    Raises:
        KeyError: unknown graph or launch argument.
        FileNotFoundError: the params file does not exist.
    """
    if graph not in GRAPHS:
        raise KeyError(f"unknown graph {graph!r}; known: {sorted(GRAPHS)}")
    spec = GRAPHS[graph]
    known = {a.name: a.default for a in spec.arguments}
    args = dict(args or {})
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise KeyError(f"unknown launch arguments {unknown}; known: {sorted(known)}")
    values = {**known, **args}
    if spec.derive is not None:
        values.update({k: v for k, v in spec.derive(values).items() if values[k] == ""})
    params_file = Path(values["params_file"]) if values.get("params_file") else paths.config_path(spec.params_file)
    if not params_file.is_file():
        raise FileNotFoundError(f"params file not found: {params_file}")
    use_sim_time = _truthy(values["use_sim_time"])
    namespace = _namespace(values.get("namespace", ""))
    extra = parse_remaps(values.get("remap", ""))
    if namespace:
        params_file = namespaced_params_file(params_file, namespace)
    nodes = []
    for node in spec.nodes:
        if node.condition is not None and not _truthy(values[node.condition]):
            continue
        overrides = {"use_sim_time": use_sim_time}
        for param, arg in node.arg_params.items():
            if values[arg] != "":
                overrides[param] = parse_value(values[arg])
        nodes.append(ResolvedNode(node, params_file, overrides, list(node.remappings) + extra, namespace))
    return nodes


def parse_remaps(text: str) -> list[tuple[str, str]]:
    """``"a:=b,c:=d"`` → ``[("a", "b"), ("c", "d")]``.

    Raises:
        ValueError: an entry without ``:=`` or with an empty side.
    """
    out = []
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        src, sep, dst = item.partition(":=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"remap entries are from:=to, got {item!r}")
        out.append((src.strip(), dst.strip()))
    return out


def namespaced_params_file(params_file: Path, namespace: str) -> Path:
    """A copy of ``params_file`` whose node sections are keyed ``<namespace>/<node>``.

    ROS 2 matches a parameters file's keys against fully qualified node names, so ``mppi_planner:``
    does not reach ``/robot1/mppi_planner``. The copy lives in the temporary directory, named by
    the content's hash (written once, atomically).
    """
    import hashlib
    import tempfile

    from morobot.fileio import atomic_write_text

    data = yaml.safe_load(Path(params_file).read_text(encoding="utf-8")) or {}
    renamed = {(key if str(key).startswith("/") else f"{namespace}/{key}"): section for key, section in data.items()}
    text = yaml.safe_dump(renamed, sort_keys=False)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"morobot-params-{Path(params_file).stem}-{digest}.yaml"
    if not out.exists():
        atomic_write_text(out, text)
    return out


def _namespace(text: str) -> str:
    ns = str(text).strip().strip("/")
    if ns and not all(part and (part[0].isalpha() or part[0] == "_") and all(c.isalnum() or c == "_" for c in part)
                      for part in ns.split("/")):
        raise ValueError(f"namespace {text!r} is not a valid ROS name (letters, digits, _ and /)")
    return f"/{ns}" if ns else ""
