"""``morobot record-demo`` and ``morobot eval feasibility``.

    morobot record-demo --out demos/run1 [--duration 60] [--storage mcap|sqlite3] [--joint-states]
    morobot eval feasibility [-n 40] [--seed 0] [--out out/eval_feasibility]

``register(extra)`` adds both to the ``morobot`` command (``morobot.cli.EXTRA``); the module also runs
on its own: ``python -m morobot.tools.cli record-demo ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Optional


# ------------------------------------------------------------------------------ record-demo
def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Record /demo/ee_pose, /feasibility/status and /feasibility/haptic (and optionally "
                          "/joint_states) as a rosbag2 until --duration elapses or Ctrl-C; print a summary "
                          "(frames, infeasible ratio raw and debounced).")
    parser.add_argument("--out", required=True, help="bag directory to create (must not exist)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (wall)")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap", help="rosbag2 storage")
    parser.add_argument("--joint-states", action="store_true", help="also record /joint_states")
    parser.add_argument("--use-sim-time", action="store_true", help="stamp messages with /clock time")
    parser.add_argument("--summary-json", default="", help="also write the summary to this JSON file")
    parser.add_argument("--recover", default="", metavar="PARTIAL_DIR",
                        help="do not record: rebuild --out from the finished one-second segments a killed "
                             "recording left in PARTIAL_DIR (the hidden .<name>.*.partial directory)")


def run_record(ns: argparse.Namespace) -> int:
    from morobot.recording import recover, write_summary
    from morobot.ros.recorder import record

    try:
        if ns.recover:
            summary = recover(ns.recover, ns.out)
        else:
            summary = record(ns.out, duration=ns.duration, storage=ns.storage, joint_states=ns.joint_states,
                             use_sim_time=ns.use_sim_time)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"morobot record-demo: {exc}", file=sys.stderr)
        return 2
    print(summary.line(), flush=True)
    if ns.summary_json:
        write_summary(summary, ns.summary_json)
    return 0


# ------------------------------------------------------------------------- eval-feasibility
def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    from morobot.evaluation.feasibility_replay import VARIANTS, StudyConfig

    d = StudyConfig()
    parser.description = ("Demo-replay study: synthetic TCP demonstrations (some leave the workspace, pass the "
                          "wrist singularity or dip into the table) checked by the feasibility checker and "
                          "replayed on the simulated Panda without feedback and with feedback (hold / clamp "
                          "corrections); writes results.json and summary.md with the tables.")
    parser.add_argument("-n", "--num", type=int, default=d.num_demos, help="demonstrations")
    parser.add_argument("--seed", type=int, default=d.seed, help="base seed")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--dt", type=float, default=d.dt, help="demo frame period (s)")
    parser.add_argument("--position-tolerance", type=float, default=d.position_tolerance,
                        help="replay tracking tolerance (m)")
    parser.add_argument("--rotation-tolerance", type=float, default=d.rotation_tolerance,
                        help="replay orientation tolerance (rad)")
    parser.add_argument("--out", default="out/eval_feasibility", help="output directory")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("morobot", "cli.py", "__main__.py"):
        argv[0] = "morobot"
    return shlex.join(argv)


def run_eval(ns: argparse.Namespace) -> int:
    from morobot.evaluation.feasibility_replay import StudyConfig, aggregate, markdown_table, results_to_dicts, run_study

    try:
        config = StudyConfig(num_demos=ns.num, seed=ns.seed, dt=ns.dt, position_tolerance=ns.position_tolerance,
                             rotation_tolerance=ns.rotation_tolerance)
    except ValueError as exc:
        print(f"morobot eval feasibility: {exc}", file=sys.stderr)
        return 2
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()

    def progress(demo):
        if not ns.quiet:
            print(f"[{demo.index + 1}/{config.num_demos}] {demo.hazard:<11} {len(demo.stamps)} frames, "
                  f"{time.monotonic() - start:.0f} s", flush=True)

    results = run_study(config, variants=tuple(ns.variants), progress=progress)
    wall = time.monotonic() - start
    table = markdown_table(results, config)
    command = _command_line()
    (out / "summary.md").write_text(f"`{command}` ({wall / 60:.1f} min)\n\n{table}\n", encoding="utf-8")
    data = {"command": command, "wall_s": wall, "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
            "aggregate": aggregate(results, config), "results": results_to_dicts(results)}
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, out / "results.json")
    print(table)
    print(f"wrote {out / 'summary.md'} and {out / 'results.json'} ({wall:.0f} s)")
    return 0


RECORD = ("record-demo", "record a demonstration stream with its feasibility feedback as a rosbag2",
          add_record_arguments, run_record)
EVAL = ("eval-feasibility", "demo-replay study: replay success with and without feasibility feedback",
        add_eval_arguments, run_eval)


def register(extra: dict) -> None:
    """Add ``record-demo`` and ``eval-feasibility`` to ``morobot.cli.EXTRA``."""
    for name, help_text, add_args, run in (RECORD, EVAL):
        extra[name] = (help_text, add_args, run)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="morobot")
    sub = parser.add_subparsers(dest="command", required=True)
    extra: dict = {}
    register(extra)
    for name, (help_text, add_args, run) in extra.items():
        p = sub.add_parser(name, help=help_text)
        add_args(p)
        p.set_defaults(func=run)
    ns = parser.parse_args(argv)
    return int(ns.func(ns) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
