"""The ``morobot`` command.

    morobot launch navigate [name:=value ...]   start a node graph (no ``ros2 launch`` needed)
    morobot demo [--world W]                    navigate the simulated ANYmal to its goal, write a PNG
    morobot worlds [--show NAME --out F.png]    list / draw the named worlds

    morobot collect --out data/fdm ...          collect FDM training data in simulation
    morobot merge-data --out DIR SRC...         merge data directories (e.g. old data + new worlds)
    morobot convert-bag BAG... --out DIR        turn rosbag2 recordings into the same dataset format
    morobot train {fdm,korr,locomotion} ...     train a learned model
    morobot eval {fdm,nav,korr,feasibility} ... evaluate it
    morobot record-demo ...                     record a demonstration with live feasibility verdicts

The learning commands are registered by their modules (``EXTRA``, ``PASSTHROUGH``).
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
#: learning stacks register here so ``--help`` lists only what exists. A name ``"train-korr"`` or
#: ``"eval-nav"`` (a group verb, a dash, a target) becomes ``morobot train korr`` / ``morobot eval nav``.
EXTRA: dict[str, tuple[str, Callable, Callable]] = {}

#: Commands whose own module parses the arguments (its ``main(argv)``), so their ``--help`` is the
#: module's: words → (module, help).
PASSTHROUGH: dict[tuple[str, ...], tuple[str, str]] = {
    ("collect",): ("morobot.fdm.collect", "collect FDM training data in simulation (parallel, sharded)"),
    ("merge-data",): ("morobot.fdm.merge", "merge FDM data directories into one (hard links, new manifest)"),
    ("convert-bag",): ("morobot.fdm.rosbag", "convert rosbag2 recordings of a robot into the FDM dataset format"),
    ("train", "fdm"): ("morobot.fdm.train", "train the perceptive forward-dynamics model"),
    ("train", "locomotion"): ("morobot.locomotion.train", "train the legged ANYmal's locomotion policy (PPO, rsl-rl)"),
    ("eval", "fdm"): ("morobot.fdm.evaluate", "evaluate FDM checkpoints on held-out worlds vs baselines"),
}

#: Verbs that group subcommands (``morobot train fdm``) and their help.
GROUPS = {"train": "train a learned model (fdm, korr, locomotion)", "eval": "evaluate (fdm, nav, korr, feasibility)"}


def _register_extras() -> None:
    import importlib

    if EXTRA:  # already registered (build_parser called before in this process)
        return
    for module in ("morobot.evaluation.cli", "morobot.korr.cli", "morobot.tools.cli"):
        try:
            importlib.import_module(module).register(EXTRA)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def _split_name(name: str) -> tuple[str, ...]:
    verb, _, target = name.partition("-")
    return (verb, target) if verb in GROUPS and target else (name,)


def _passthrough(words: tuple[str, ...], module: str) -> Callable:
    def run(ns: argparse.Namespace) -> int:
        import importlib

        return int(importlib.import_module(module).main(list(ns.rest)) or 0)

    run.__doc__ = f"Runs ``{module}.main`` with the remaining arguments ({' '.join(words)})."
    return run


def _add_rest(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="morobot", description="morobot: learned-dynamics navigation and manipulation on ROS 2.",
        epilog="Run 'morobot COMMAND --help' (or 'morobot train fdm --help') for a command's options.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    commands: dict[tuple[str, ...], tuple[str, Callable, Callable]] = {}
    for words, (module, help_text) in PASSTHROUGH.items():
        commands[words] = (help_text, _add_rest, _passthrough(words, module))
    for name, entry in EXTRA.items():
        commands[_split_name(name)] = entry

    groups: dict[str, argparse._SubParsersAction] = {}
    for words, (help_text, add_args, run) in sorted(commands.items()):
        if len(words) == 1:
            p = sub.add_parser(words[0], help=help_text, add_help=words not in PASSTHROUGH)
        else:
            verb, target = words
            if verb not in groups:
                g = sub.add_parser(verb, help=GROUPS[verb], description=GROUPS[verb])
                groups[verb] = g.add_subparsers(dest="target", required=True, metavar="TARGET")
            p = groups[verb].add_parser(target, help=help_text, add_help=words not in PASSTHROUGH)
        add_args(p)
        p.set_defaults(func=run)
    return parser


#: The dashed names of earlier releases (``morobot eval-nav``) still work.
_DASHED = {"eval-nav", "eval-korr", "eval-feasibility", "train-korr"}


def main(argv: Optional[list] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DASHED:
        argv = [*argv[0].split("-", 1), *argv[1:]]
    parser = build_parser()
    # Pass-through commands hand every following word to their module (``--help`` included).
    for words in PASSTHROUGH:
        if tuple(argv[:len(words)]) == words:
            return _passthrough(words, PASSTHROUGH[words][0])(argparse.Namespace(rest=argv[len(words):]))
    ns = parser.parse_args(argv)
    return int(ns.func(ns) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
