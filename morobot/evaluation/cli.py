"""``morobot eval ...``: every evaluation target's entry point (nav here; fdm, korr and feasibility
hand over to their modules).

``morobot eval nav``: the navigation benchmark from the command line.

    morobot eval nav -n 30                                  # kinematic planner, lock-step, 4 mixes
    morobot eval nav -n 30 --fdm-checkpoint fdm.pt          # kinematic and FDM planners
    morobot eval nav -n 3 --mode graph                      # the first 3 scenarios through ROS
    morobot eval nav --report-only                          # redraw the report from results.jsonl

Every invocation appends to ``<out>/results.jsonl`` (resuming: finished scenarios are skipped)
and rewrites ``summary.md``, ``summary.json`` and ``nav_eval.png`` from all results there; the
commands, their wall times and the versions of the packages that shape a run (MuJoCo, torch, numpy,
pinocchio: lock-step is deterministic on one installation, not across MuJoCo versions) are kept in
``<out>/runs.json`` and listed in ``summary.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from morobot.cliutil import run_with
from morobot.fileio import atomic_write_text
from morobot.provenance import versions

from morobot.evaluation.scenarios import BENCHMARK_MIXES, TERRAIN_MIXES

NAME = "eval-nav"
HELP = "navigation benchmark: seeded scenarios per terrain mix, kinematic vs FDM MPPI"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval-nav`` options to ``parser``."""
    parser.description = ("Run seeded navigation scenarios per terrain mix with the MPPI planner (kinematic "
                          "model with geometric risk, and the FDM with --fdm-checkpoint), in lock-step or "
                          "through the ROS graph; write results.jsonl, summary.md and nav_eval.png.")
    parser.add_argument("--mixes", nargs="+", default=list(BENCHMARK_MIXES), choices=list(TERRAIN_MIXES),
                        help=f"terrain mixes (default: {' '.join(BENCHMARK_MIXES)})")
    parser.add_argument("-n", "--num", type=int, default=30, help="scenarios per terrain mix")
    parser.add_argument("--first", type=int, default=0, help="index of the first scenario")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the scenarios")
    parser.add_argument("--budget", type=float, default=60.0, help="sim-time budget per scenario (s)")
    parser.add_argument("--goals-as-drawn", action="store_true",
                        help="keep goals the planners rate as obstacles where they were drawn (the scenarios "
                        "before session 35; by default such a goal moves to the nearest cell within 1 m that is not)")
    parser.add_argument("--mode", choices=["lockstep", "graph"], default="lockstep",
                        help="lockstep: pure components in one process; graph: the real ROS graph (real time)")
    parser.add_argument("--fdm-checkpoint", default="", help="also evaluate the FDM planner with this checkpoint")
    parser.add_argument("--no-kinematic", action="store_true", help="skip the kinematic planner")
    parser.add_argument("--params-file", default="", help="node parameters (default config/navigate.yaml)")
    parser.add_argument("--out", default="out/eval_nav", help="output directory")
    parser.add_argument("--workers", type=int, default=1, help="lock-step workers (Ray tasks when > 1)")
    parser.add_argument("--backend", choices=["ray", "processes"], default="ray",
                        help="lock-step workers: ray (a local instance, or the cluster at --ray-address) or processes")
    parser.add_argument("--ray-address", default="", help="join this Ray cluster (auto, host:port)")
    parser.add_argument("--robot", choices=["abstract", "legged"], default="abstract",
                        help="abstract: the rigid-body ANYmal (the FDM's so far); legged: the articulated one under its "
                             "locomotion policy (use its own --out)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per lock-step worker (graph mode: per node process, OMP_NUM_THREADS)")
    parser.add_argument("--rate", type=float, default=1.0, help="graph mode: sim speed (x real time)")
    parser.add_argument("--ros-domain-id", type=int, default=None,
                        help="graph mode: ROS_DOMAIN_ID for the graph and the supervisor")
    parser.add_argument("--no-resume", action="store_true", help="re-run scenarios already in results.jsonl")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from results.jsonl")
    parser.add_argument("--no-plot", action="store_true", help="skip nav_eval.png")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("morobot", "cli.py", "__main__.py"):
        argv[0] = "morobot"
    return shlex.join(argv)


#: Modules whose versions change the simulated runs (physics, rendering, networks): kept with each run.
RUN_MODULES = ("mujoco", "torch", "numpy", "pinocchio")


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2))


def _header(runs: list[dict[str, Any]], params_source: str) -> str:
    lines = [f"Parameters: `{params_source}`. Runs (wall time on this machine):", ""]
    for r in runs:
        libs = ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).items() if v)
        lines.append(f"* `{r['command']}` — {r['mode']}, {r['new_results']} new results, "
                     f"wall {r['wall_s'] / 60:.1f} min ({r['date']}{'; ' + libs if libs else ''})")
    return "\n".join(lines)


def run(ns: argparse.Namespace) -> int:
    """Execute ``morobot eval nav``; returns the exit code (2 on bad arguments)."""
    from morobot.evaluation.nav import NavParams, PlannerSpec, evaluate, read_results
    from morobot.evaluation.report import summary_table, write_report
    from morobot.evaluation.metrics import aggregate
    from morobot.evaluation.scenarios import make_scenarios

    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / "runs.json"
    runs = json.loads(runs_path.read_text()) if runs_path.is_file() else []
    try:
        params = NavParams.load(ns.params_file or None)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"morobot {NAME}: {exc}", file=sys.stderr)
        return 2
    if not ns.report_only:
        planners = [] if ns.no_kinematic else [PlannerSpec("kinematic")]
        if ns.fdm_checkpoint:
            if not Path(ns.fdm_checkpoint).is_file():
                print(f"morobot {NAME}: FDM checkpoint not found: {ns.fdm_checkpoint}", file=sys.stderr)
                return 2
            planners.append(PlannerSpec("fdm", str(Path(ns.fdm_checkpoint).resolve())))
        if not planners:
            print(f"morobot {NAME}: no planner to evaluate (--no-kinematic without --fdm-checkpoint)",
                  file=sys.stderr)
            return 2
        try:
            scenarios = make_scenarios(ns.mixes, ns.num, seed=ns.seed, budget=ns.budget, first=ns.first,
                                       standable=not ns.goals_as_drawn)
        except (KeyError, ValueError) as exc:
            print(f"morobot {NAME}: {exc}", file=sys.stderr)
            return 2
        if ns.mode == "graph":
            os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
            if ns.ros_domain_id is not None:
                os.environ["ROS_DOMAIN_ID"] = str(int(ns.ros_domain_id))
        before = len(read_results(out / "results.jsonl"))
        wall0 = time.monotonic()
        evaluate(scenarios, planners, out, mode=ns.mode, params_file=ns.params_file or None,
                 workers=ns.workers, threads=ns.threads, resume=not ns.no_resume, rate=ns.rate,
                 progress=not ns.quiet, backend=ns.backend, ray_address=ns.ray_address, robot=ns.robot)
        wall = time.monotonic() - wall0
        after = len(read_results(out / "results.jsonl"))
        runs.append({"command": _command_line(), "mode": ns.mode, "new_results": after - before,
                     "scenarios": len(scenarios) * len(planners), "wall_s": round(wall, 1),
                     "date": time.strftime("%Y-%m-%d %H:%M"), "versions": versions(RUN_MODULES)})
        _write_json(runs_path, runs)
    records = read_results(out / "results.jsonl")
    if not records:
        print(f"morobot {NAME}: no results in {out / 'results.jsonl'}", file=sys.stderr)
        return 1
    paths = write_report(records, out, header=_header(runs, params.source), plot=not ns.no_plot)
    for mode in ("lockstep", "graph"):
        rows = [a for a in aggregate(records) if a["mode"] == mode]
        if rows:
            print(f"\n[{mode}]\n{summary_table(rows)}")
    print("\n" + "  ".join(f"{k}: {v}" for k, v in paths.items()), flush=True)
    return 0


def nav_main(argv: Optional[Sequence[str]] = None) -> int:
    """``morobot eval nav``."""
    return run_with("morobot eval nav", add_arguments, run, argv)


def fdm_main(argv: Optional[Sequence[str]] = None) -> int:
    """``morobot eval fdm`` (:mod:`morobot.fdm.evaluation.evaluate`)."""
    from morobot.fdm.evaluation.evaluate import main

    return main(argv)


def korr_main(argv: Optional[Sequence[str]] = None) -> int:
    """``morobot eval korr`` (:mod:`morobot.korr.evaluate`)."""
    from morobot.korr.cli import eval_args, eval_run

    return run_with("morobot eval korr", eval_args, eval_run, argv)


def feasibility_main(argv: Optional[Sequence[str]] = None) -> int:
    """``morobot eval feasibility`` (:mod:`morobot.evaluation.feasibility_replay`)."""
    return run_with("morobot eval feasibility", add_feasibility_arguments, run_feasibility, argv)


# ------------------------------------------------------------------------- eval feasibility
def add_feasibility_arguments(parser: argparse.ArgumentParser) -> None:
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


def run_feasibility(ns: argparse.Namespace) -> int:
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
    atomic_write_text(out / "results.json", json.dumps(data, indent=2, default=str))
    print(table)
    print(f"wrote {out / 'summary.md'} and {out / 'results.json'} ({wall:.0f} s)")
    return 0


