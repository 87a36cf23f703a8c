"""Real-time factor of the simulated ANYmal: physics alone, with the depth sensor, and the lock-step loop.

Three measurements per world (scenario 0 of each terrain mix of the navigation benchmark, plus a
flat world):

* **physics**: ``AnymalSim.advance`` in 0.02 s steps (MuJoCo at 0.005 s plus the 50 Hz locomotion
  update), driving a 2 m-radius circle (``(0.6, 0, 0.3)``) from the world's start; no sensor;
* **+ depth 10 Hz**: the same, plus one ``depth_points`` scan (2 cameras, 2880 rays) every 0.1 s;
* **lock-step loop**: :class:`morobot.evaluation.nav.LockstepRunner` with the kinematic planner
  on the scenario (sim + depth 10 Hz + ``transform_points`` + elevation mapping 10 Hz / map 5 Hz
  + MPPI 10 Hz, parameters from ``config/navigate.yaml``) until the goal, a fall, stuck or the
  budget; the real-time factor is the loop's sim time over its wall time (world and model building
  excluded), with the wall-time share of each phase.

The real-time factor is sim seconds per wall second (higher is faster). Everything runs in one
process with ``--threads`` torch threads.

Usage:
    python bench/bench_sim.py                 # 20 s of sim per physics measurement, ~2 min
    python bench/bench_sim.py --quick         # 5 s, flat and rough only
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time

import mujoco
import numpy as np
import torch

from morobot.evaluation.nav import LockstepRunner, NavParams, PlannerSpec
from morobot.evaluation.scenarios import TERRAIN_MIXES, custom_scenario, make_scenario
from morobot.sim.anymal import AnymalSim


def _drive(sim: AnymalSim, duration: float, depth_every: int) -> tuple[float, float, float, int]:
    """Drive a circle for ``duration`` sim seconds; returns (sim s, wall s, wall s in scans, scans)."""
    sim.reset()
    steps = int(round(duration / 0.02))
    scans = 0
    scan_wall = 0.0
    t0 = time.perf_counter()
    for k in range(steps):
        if k % 5 == 0:
            sim.set_command((0.6, 0.0, 0.3))
        sim.advance(0.02)
        if depth_every and k % depth_every == 0:
            s0 = time.perf_counter()
            sim.depth_points()
            scan_wall += time.perf_counter() - s0
            scans += 1
    return sim.time, time.perf_counter() - t0, scan_wall, scans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="sim seconds per physics measurement")
    parser.add_argument("--mixes", nargs="+", default=["flat", *TERRAIN_MIXES],
                        choices=["flat", *TERRAIN_MIXES], help="worlds to measure")
    parser.add_argument("--budget", type=float, default=60.0, help="lock-step scenario budget (s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--quick", action="store_true", help="5 s of sim, flat and rough only")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 5.0
        args.mixes = ["flat", "rough"]
    torch.set_num_threads(args.threads)
    params = NavParams.load()
    runner = LockstepRunner(PlannerSpec("kinematic"), params)

    rows = []
    for mix in args.mixes:
        if mix == "flat":
            scenario = custom_scenario("flat", (-4.5, 0.0, 0.0), (4.5, 0.0, 0.0), size=16.0, budget=args.budget,
                                       name="flat-9m")
        else:
            scenario = make_scenario(mix, 0, budget=args.budget)
        sim = AnymalSim(scenario.world())
        _drive(sim, 1.0, 0)  # warm-up
        sim_s, wall_s, _, _ = _drive(sim, args.duration, 0)
        rtf_physics = sim_s / wall_s
        sim_s, wall_d, scan_wall, scans = _drive(sim, args.duration, 5)
        rtf_depth = sim_s / wall_d
        scan_ms = 1e3 * scan_wall / max(scans, 1)
        rec = runner.run(scenario)
        phases = rec["phase_s"]
        loop = rec["loop_wall_s"]
        share = " / ".join(f"{100 * phases[p] / loop:.0f}" for p in ("physics", "depth", "mapping", "planning"))
        rows.append(f"| {scenario.id} | {rtf_physics:.1f}× | {rtf_depth:.1f}× ({scan_ms:.1f} ms/scan) "
                    f"| {rec['loop_sim_s'] / loop:.1f}× | {share} | {rec['mean_cycle_ms']:.1f} ms "
                    f"| {rec['outcome']} after {rec['sim_time']:.1f} s |")
        print(rows[-1], file=sys.stderr, flush=True)

    print(f"Command: `{shlex.join(['python', 'bench/bench_sim.py', *(argv if argv is not None else sys.argv[1:])])}`")
    load = os.getloadavg()[0]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores (load average {load:.1f} at the end), "
          f"{torch.get_num_threads()} torch thread(s), "
          f"mujoco {mujoco.__version__}, torch {torch.__version__}, numpy {np.__version__}; "
          f"physics measured over {args.duration:.0f} s of sim.")
    print()
    print("| world | physics (no sensor) | + depth 10 Hz | lock-step loop | loop wall share % physics / depth / "
          "mapping / planning | MPPI cycle | lock-step run |")
    print("|---|---:|---:|---:|---|---:|---|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
