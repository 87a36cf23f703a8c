"""The ``morobot`` command.

    morobot launch navigate [name:=value ...]   start a node graph (no ``ros2 launch`` needed)
    morobot demo [--world W]                    navigate the simulated ANYmal to its goal, write a PNG
    morobot worlds [--show NAME --out F.png]    list / draw the named worlds
    morobot goal X Y [YAW] [--frame F]          send a goal, follow it until reached (Ctrl-C cancels)

    morobot collect --out data/fdm ...          collect FDM training data in simulation
    morobot collect-nav --out data/nav ...      the same from the planner's closed loop (legged robot)
    morobot merge-data --out DIR SRC...         merge data directories (e.g. old data + new worlds)
    morobot convert-bag BAG... --out DIR        turn rosbag2 recordings into the same dataset format
    morobot train {fdm,korr,locomotion} ...     train a learned model
    morobot eval {fdm,nav,foresight,compare,hazard-bounds,korr,feasibility,locomotion} ... evaluate it
    morobot record-demo ...                     record a demonstration with live feasibility verdicts

Every command is one row of :data:`COMMANDS`: its words, the ``module:function`` that runs it with
the remaining arguments (the function parses them itself, so ``--help`` is the command's own and
shows its defaults) and its help line. ``morobot --help`` imports none of those modules.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

from morobot.cliutil import parser as _parser


def launch_main(argv: Sequence[str]) -> int:
    """``morobot launch GRAPH [name:=value ...]``."""
    p = _parser("morobot launch", "Start the nodes of a graph (the same description the launch files use) as "
                                  "separate processes; Ctrl-C stops them all.")
    p.add_argument("graph", choices=["navigate", "manipulate"], help="which graph")
    p.add_argument("args", nargs="*", help="launch arguments as name:=value")
    p.add_argument("--list-args", action="store_true", help="list the graph's launch arguments")
    ns = p.parse_args(list(argv))
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


def demo_main(argv: Sequence[str]) -> int:
    """``morobot demo``."""
    p = _parser("morobot demo", "Start the navigation graph with the MuJoCo ANYmal, send the world's goal on "
                                "/goal_pose, record the run and write a top-down PNG and a one-line summary. "
                                "Exit code 0 when the goal is reached.")
    p.add_argument("--world", default="rough_obstacles", help="named world or YAML path")
    p.add_argument("--out", default="out/demo", help="output directory")
    p.add_argument("--timeout", type=float, default=120.0, help="sim-time budget (s)")
    p.add_argument("--rate", type=float, default=1.0, help="sim speed (x real time)")
    from morobot.graph import GRAPHS  # light: the graph's description
    from morobot.navigation.params import PlannerParams  # light: parameter definitions only
    from morobot.params import specs

    dynamics = next(s for s in specs(PlannerParams) if s.name == "dynamics")
    launched = next(a for a in GRAPHS["navigate"].arguments if a.name == "dynamics")  # what the graph launches
    p.add_argument("--dynamics", default=launched.default, choices=list(dynamics.choices), help=launched.description)
    p.add_argument("--fdm-checkpoint", default="", help="FDM checkpoint (dynamics fdm; default: the robot's shipped "
                                                        "one)")
    p.add_argument("--params-file", default="", help="parameters YAML (default config/navigate.yaml)")
    from morobot.sim.params import SimNodeParams  # light: parameter definitions only

    locomotion = next(s for s in specs(SimNodeParams) if s.name == "locomotion")
    p.add_argument("--locomotion", default=locomotion.default, choices=list(locomotion.choices),
                   help="simulated ANYmal: abstract (rigid body) or learned (legged, its locomotion policy)")
    p.add_argument("--no-video", dest="video", action="store_false", help="skip demo.mp4 (rendered from the run)")
    p.add_argument("--record", action="store_true", help="also record the run's topics as a rosbag2 (MCAP) in OUT/run")
    ns = p.parse_args(list(argv))
    from morobot.demo import main as run_demo

    return run_demo(ns)


def worlds_main(argv: Sequence[str]) -> int:
    """``morobot worlds``."""
    p = _parser("morobot worlds", "List the named worlds or draw one.")
    p.add_argument("--show", metavar="NAME", help="draw this world to a PNG")
    p.add_argument("--out", help="PNG path for --show")
    ns = p.parse_args(list(argv))
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


@dataclass(frozen=True)
class Command:
    """One sub-command: ``words`` run ``target`` (``"module:function"``, called with the remaining
    arguments and returning the exit code)."""

    words: tuple[str, ...]
    target: str
    help: str


#: Every ``morobot`` command, in the order ``--help`` lists them.
COMMANDS = (
    Command(("launch",), "morobot.cli:launch_main", "start a node graph as processes on DDS (like ros2 launch)"),
    Command(("demo",), "morobot.cli:demo_main", "navigate the simulated ANYmal to its goal and write a PNG"),
    Command(("worlds",), "morobot.cli:worlds_main", "list the named worlds or draw one"),
    Command(("goal",), "morobot.ros.goal_client:main",
            "send a navigation goal and print its progress until reached (Ctrl-C cancels it)"),
    Command(("collect",), "morobot.fdm.data.collect:main", "collect FDM training data in simulation (parallel, sharded)"),
    Command(("collect-nav",), "morobot.evaluation.onpolicy:main",
            "collect FDM training data from the planner's own closed loop on the legged robot"),
    Command(("merge-data",), "morobot.fdm.data.merge:main", "merge FDM data directories into one (hard links, new manifest)"),
    Command(("convert-bag",), "morobot.fdm.data.rosbag:main",
            "convert rosbag2 recordings of a robot into the FDM dataset format"),
    Command(("record-demo",), "morobot.tools.cli:record_main",
            "record a demonstration stream with its feasibility feedback as a rosbag2"),
    Command(("train", "fdm"), "morobot.fdm.training.train:main", "train the perceptive forward-dynamics model"),
    Command(("train", "korr"), "morobot.korr.cli:train_main",
            "train the KORR policies (demos, BC base, Koopman model, PPO residuals)"),
    Command(("train", "locomotion"), "morobot.locomotion.train:main",
            "train the legged ANYmal's locomotion policy (PPO, rsl-rl)"),
    Command(("eval", "fdm"), "morobot.evaluation.cli:fdm_main", "evaluate FDM checkpoints on held-out worlds vs baselines"),
    Command(("eval", "nav"), "morobot.evaluation.cli:nav_main",
            "navigation benchmark: seeded scenarios per terrain mix, kinematic vs FDM MPPI"),
    Command(("eval", "foresight"), "morobot.evaluation.foresight:main",
            "lock-step navigation results: did the planner's predicted risk warn of each fall"),
    Command(("eval", "hazard-bounds"), "morobot.evaluation.hazard_bounds:main",
            "what any reaction to ground the map cannot show (icy patches) could buy: oracle runs, kinematic MPPI"),
    Command(("eval", "compare"), "morobot.evaluation.compare:main",
            "two planners on the same lock-step scenarios over planner seeds: goals, paired interval, headroom"),
    Command(("eval", "korr"), "morobot.evaluation.cli:korr_main",
            "evaluate KORR policies under perturbations and the Koopman predictions"),
    Command(("eval", "locomotion"), "morobot.locomotion.evaluate:main",
            "how well the locomotion policy walks: tracking, falls, steps and slopes per terrain"),
    Command(("eval", "feasibility"), "morobot.evaluation.cli:feasibility_main",
            "demo-replay study: replay success with and without feasibility feedback"),
)

#: Verbs that group sub-commands (``morobot train fdm``) and their help.
GROUPS = {"train": "train a learned model", "eval": "evaluate (benchmarks and studies)"}

#: The dashed names of earlier releases (``morobot eval-nav``) still work.
ALIASES = {"eval-nav": ("eval", "nav"), "eval-korr": ("eval", "korr"), "eval-feasibility": ("eval", "feasibility"),
           "train-korr": ("train", "korr")}


def _call(target: str, argv: Sequence[str]) -> int:
    module, _, func = target.partition(":")
    return int(getattr(importlib.import_module(module), func)(list(argv)) or 0)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser (``morobot --help``, ``morobot train --help``); imports no command module."""
    parser = argparse.ArgumentParser(
        prog="morobot", description="morobot: learned-dynamics navigation and manipulation on ROS 2.",
        epilog="Run 'morobot COMMAND --help' (or 'morobot train fdm --help') for a command's options and defaults.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for cmd in COMMANDS:
        if len(cmd.words) == 1:
            sub.add_parser(cmd.words[0], help=cmd.help, add_help=False)
            continue
        verb, target = cmd.words
        if verb not in groups:
            targets = ", ".join(c.words[1] for c in COMMANDS if c.words[0] == verb)
            g = sub.add_parser(verb, help=f"{GROUPS[verb]} ({targets})", description=GROUPS[verb])
            groups[verb] = g.add_subparsers(dest="target", required=True, metavar="TARGET")
        groups[verb].add_parser(target, help=cmd.help, add_help=False)
    return parser


def main(argv: Optional[list] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ALIASES:
        argv = [*ALIASES[argv[0]], *argv[1:]]
    for cmd in COMMANDS:
        if tuple(argv[:len(cmd.words)]) == cmd.words:
            return _call(cmd.target, argv[len(cmd.words):])
    build_parser().parse_args(argv)  # --help, or an error naming what is wrong
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
