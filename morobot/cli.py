"""The ``morobot`` command.

    morobot launch navigate [name:=value ...]   start a node graph (no ``ros2 launch`` needed)
    morobot demo [--world W]                    navigate the simulated ANYmal to its goal, write a PNG
    morobot worlds [--show NAME --out F.png]    list / draw the named worlds

Learning commands (``collect``, ``train``, ``eval``) are registered by their modules below.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional


def _launch(ns: argparse.Namespace) -> int:
    from morobot.graph import GRAPHS
    from morobot.launcher import run

    args = {}
    for item in ns.args:
        if ":=" not in item:
            print(f"morobot launch: expected name:=value, got {item!r}", file=sys.stderr)
            return 2
        key, value = item.split(":=", 1)
        args[key] = value
    if ns.list_args:
        for a in GRAPHS[ns.graph].arguments:
            print(f"  {a.name}:={a.default!s:<18} {a.description}")
        return 0
    try:
        return run(ns.graph, args)
    except (KeyError, FileNotFoundError, ValueError) as exc:
        print(f"morobot launch: {exc}", file=sys.stderr)
        return 2


def _demo(ns: argparse.Namespace) -> int:
    from morobot.demo import main as demo_main

    return demo_main(ns)


def _worlds(ns: argparse.Namespace) -> int:
    from morobot import paths
    from morobot.sim.worlds import load_world

    names = sorted(p.stem for p in (paths.share_dir() / "config" / "worlds").glob("*.yaml"))
    if not ns.show:
        for name in names:
            w = load_world(name)
            print(f"{name:<18} kind={w.kind:<10} seed={w.seed:<6} start={tuple(round(v, 2) for v in w.start)} "
                  f"goal={tuple(round(v, 2) for v in w.goal)} boxes={len(w.boxes)}")
        return 0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from morobot.sim.worlds import plot_world

    world = load_world(ns.show)
    fig, ax = plt.subplots(figsize=(7, 7))
    plot_world(ax, world)
    out = ns.out or f"{world.name}.png"
    fig.savefig(out, dpi=120, bbox_inches="tight")
    print(out)
    return 0


#: Extra subcommands: name → (help, add_arguments(parser), run(namespace) -> int). Modules of the
#: learning stacks register here so ``--help`` lists only what exists.
EXTRA: dict[str, tuple[str, Callable, Callable]] = {}


def _register_extras() -> None:
    import importlib

    for module in ("morobot.fdm.cli", "morobot.evaluation.cli", "morobot.korr.cli", "morobot.tools.cli"):
        try:
            importlib.import_module(module).register(EXTRA)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="morobot", description="morobot: learned-dynamics navigation and manipulation on ROS 2.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("launch", help="start a node graph as processes on DDS (like ros2 launch)",
                       description="Start the nodes of a graph (the same description the launch files "
                                   "use) as separate processes; Ctrl-C stops them all.")
    p.add_argument("graph", choices=["navigate", "manipulate"], help="which graph")
    p.add_argument("args", nargs="*", help="launch arguments as name:=value")
    p.add_argument("--list-args", action="store_true", help="list the graph's launch arguments")
    p.set_defaults(func=_launch)

    p = sub.add_parser("demo", help="navigate the simulated ANYmal to its goal and write a PNG",
                       description="Start the navigation graph with the MuJoCo ANYmal, send the world's "
                                   "goal on /goal_pose, record the run and write a top-down PNG and a "
                                   "one-line summary. Exit code 0 when the goal is reached.")
    p.add_argument("--world", default="rough_obstacles", help="named world or YAML path")
    p.add_argument("--out", default="out/demo", help="output directory")
    p.add_argument("--timeout", type=float, default=120.0, help="sim-time budget (s)")
    p.add_argument("--rate", type=float, default=1.0, help="sim speed (× real time)")
    p.add_argument("--dynamics", default="kinematic", choices=["kinematic", "fdm"], help="planner dynamics")
    p.add_argument("--fdm-checkpoint", default="", help="FDM checkpoint (dynamics fdm)")
    p.add_argument("--params-file", default="", help="parameters YAML (default config/navigate.yaml)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("worlds", help="list the named worlds or draw one")
    p.add_argument("--show", metavar="NAME", help="draw this world to a PNG")
    p.add_argument("--out", help="PNG path for --show")
    p.set_defaults(func=_worlds)

    _register_extras()
    for name, (help_text, add_args, run) in EXTRA.items():
        p = sub.add_parser(name, help=help_text)
        add_args(p)
        p.set_defaults(func=run)
    return parser


def main(argv: Optional[list] = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    return int(ns.func(ns) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
