"""Imports run one way: foundations → algorithms → wiring → ROS → entry points (docs/architecture.md).

Every ``import``/``from`` of a ``morobot`` module, at module level or inside a function, is read
from the source; an import from a lower layer into a higher one fails the test. rclpy may be
imported only in ``morobot/ros`` and ``morobot/nodes``.
"""

import ast
from pathlib import Path

import morobot

ROOT = Path(morobot.__file__).parent

#: Layer of each top-level part of the package (higher numbers may import lower ones).
LAYERS = {
    "params": 0, "freshness": 0, "frames": 0, "parallel": 0, "robots": 0, "cliutil": 0, "procutil": 0, "fileio": 0, "paths": 0, "pointcloud": 0, "provenance": 0, "recording": 0, "__init__": 0,
    "planning": 1, "mapping": 1, "sim": 1, "fdm": 1, "feasibility": 1, "korr": 1, "locomotion": 1,
    "navigation": 2,
    "ros": 3, "nodes": 4, "graph": 3, "launcher": 3, "launch_description": 3,
    "demo": 5, "cli": 5, "evaluation": 5, "tools": 5,
}
#: Algorithm packages that must not import each other, except these (known, documented) pairs.
ALGORITHMS = {"planning", "mapping", "sim", "fdm", "feasibility", "korr", "locomotion"}
ALLOWED_SIDEWAYS = {
    ("fdm", "planning"),  # the FDM implements the planner's DynamicsModel seam and its map risk
    ("fdm", "mapping"),   # data collection builds height maps like the robot
    ("fdm", "sim"),       # data collection in simulation (to move to a data package)
    ("fdm", "locomotion"),  # data collection on the legged robot under its policy (the same)
    ("locomotion", "sim"),  # the locomotion environment is the articulated robot in simulation
    ("mapping", "planning"),  # the mapper produces the planner's HeightMap (planning/interface.py)
    ("korr", "sim"),      # KORR tasks and training in the Panda simulator
}
#: Known wrong-way imports still to remove (docs/architecture.md, "Still to consolidate").
KNOWN: set = set()


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_imports_run_one_way():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        here = rel.parts[0].removesuffix(".py")
        assert here in LAYERS, f"{rel}: add its top-level part to LAYERS"
        for module in _imports(path):
            if not module.startswith("morobot."):
                continue
            there = _part(module)
            if there == here or (str(rel.as_posix()), there) in KNOWN:
                continue
            if LAYERS[there] > LAYERS[here]:
                wrong.append(f"{rel} imports {module} (layer {LAYERS[there]} > {LAYERS[here]})")
            elif here in ALGORITHMS and there in ALGORITHMS and (here, there) not in ALLOWED_SIDEWAYS:
                wrong.append(f"{rel} imports {module} (sideways between algorithm packages)")
    assert not wrong, "\n".join(wrong)


def test_rclpy_only_in_ros_and_nodes():
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if p.relative_to(ROOT).parts[0] not in ("ros", "nodes")
                 and any(m == "rclpy" or m.startswith("rclpy.") for m in _imports(p))]
    assert not offenders, offenders


def test_the_test_tree_mirrors_the_package():
    tests = ROOT.parent / "test"
    extra = {"e2e", "bench"}  # end-to-end runs across packages; the bench/ scripts
    for d in tests.iterdir():
        if d.is_dir() and not d.name.startswith((".", "__")):
            assert d.name in extra or (ROOT / d.name).is_dir(), f"test/{d.name} has no morobot/{d.name}"
    for path in tests.rglob("test_*.py"):
        assert path.parent == tests or path.parent.name in extra or (ROOT / path.parent.name).is_dir()


def test_long_modules_say_why():
    long = [p for p in ROOT.rglob("*.py") if len(p.read_text(encoding="utf-8").splitlines()) > 500]
    unexplained = [str(p.relative_to(ROOT)) for p in long if "Length:" not in (ast.get_docstring(
        ast.parse(p.read_text(encoding="utf-8"))) or "")]
    assert not unexplained, f"over 500 lines without a 'Length:' reason in the docstring: {unexplained}"
