"""``morobot record-demo``.

    morobot record-demo --out demos/run1 [--duration 60] [--storage mcap|sqlite3] [--joint-states]
    morobot record-demo --recover .run1.<id>.partial --out demos/run1_recovered

The module also runs on its own: ``python -m morobot.tools.cli ...`` (the record-demo arguments).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from morobot.cliutil import run_with


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

    if not ns.recover:
        from pathlib import Path

        out = Path(ns.out).absolute()
        for partial in sorted(out.parent.glob(f".{out.name}.*.partial")) if out.parent.is_dir() else []:
            print(f"morobot record-demo: an earlier recording to {out.name} did not finish: recover it with "
                  f"--recover {partial} --out <new bag>", file=sys.stderr)
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


def record_main(argv: Optional[list] = None) -> int:
    """``morobot record-demo``."""
    return run_with("morobot record-demo", add_record_arguments, run_record, argv)


if __name__ == "__main__":
    raise SystemExit(record_main())
