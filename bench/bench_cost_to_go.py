"""Cost-to-go field build time, and the MPPI cycle with and without it.

The maps are robot-centric windows of the ``cluttered`` world's true elevation (boxes included)
around (-3, 1), known within 5 m of the robot (the depth range) and NaN beyond, at 0.1 m. The
risk map is computed once per map beforehand (the kinematic model caches it, and MPPI's rollouts
need it anyway); each repeat builds the field for a new goal so the field cache never hits.

Times are CPU time (``time.process_time``) per call, median over the repeats, so they measure
one core's work even when other jobs share the machine; wall time is printed alongside.

Usage:
    python bench/bench_cost_to_go.py            # ~15 s
    python bench/bench_cost_to_go.py --quick    # fewer repeats
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import scipy
import torch

from morobot.planning.cost import NavigationCost
from morobot.planning.cost_to_go import CostToGo, CostToGoConfig
from morobot.planning.interface import HeightMap, NavState
from morobot.planning.kinematic import KinematicModel
from morobot.planning.mppi import MPPI, MPPIConfig
from morobot.sim.worlds import load_world

CENTRE = (-3.0, 1.0)
SENSING_RANGE = 5.0
CASES = ((8.0, 16, 1), (8.0, 8, 1), (10.0, 16, 1), (12.0, 16, 1), (12.0, 8, 1), (12.0, 16, 2))


def window(world, size: float, res: float = 0.1) -> HeightMap:
    n = int(round(size / res))
    origin = (CENTRE[0] - res * (n // 2), CENTRE[1] - res * (n // 2))
    gx, gy = np.meshgrid(origin[0] + res * np.arange(n), origin[1] + res * np.arange(n), indexing="ij")
    heights = world.elevation_at(gx, gy)
    heights[np.hypot(gx - CENTRE[0], gy - CENTRE[1]) > SENSING_RANGE] = np.nan
    return HeightMap(torch.tensor(heights, dtype=torch.float32), origin, res)


def measure(fn, repeats: int) -> tuple[float, float]:
    """Median CPU and wall milliseconds of ``fn()``."""
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return 1e3 * statistics.median(cpu), 1e3 * statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    torch.set_num_threads(args.threads)
    world = load_world("cluttered")
    print(f"torch {torch.__version__}, scipy {scipy.__version__}, {args.threads} thread(s), "
          f"{platform.machine()}, {repeats} repeats")
    print("| map | cells | connectivity | downsample | field CPU ms | field wall ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for size, connectivity, downsample in CASES:
        hmap = window(world, size)
        model = KinematicModel()
        model.risk_map(hmap)
        ctg = CostToGo(model, CostToGoConfig(connectivity=connectivity, downsample=downsample))
        goals = iter(np.linspace(6.0, 8.0, repeats + 1))
        ctg.build(hmap, (next(goals), 0.0, 0.0))  # builds the grid graph once
        cpu, wall = measure(lambda: ctg.build(hmap, (next(goals), 0.0, 0.0)), repeats)
        rows, cols = hmap.shape
        print(f"| {size:.0f} x {size:.0f} m | {rows} x {cols} | {connectivity} | {downsample} | {cpu:.1f} | {wall:.1f} |")

    hmap = window(world, 8.0)
    print("\n| MPPI cycle (1024 x 10, 80 x 80 map) | CPU ms | wall ms |")
    print("|---|---:|---:|")
    for label, with_ctg in (("Euclidean goal distance", False), ("cost-to-go, rebuilt every cycle", True)):
        model = KinematicModel()
        cost = NavigationCost(cost_to_go=CostToGo(model) if with_ctg else None)
        planner = MPPI(model, cost, MPPIConfig(num_samples=1024, seed=0))
        state = NavState(pose=np.array([CENTRE[0], CENTRE[1], 0.0]))
        goals = iter(np.linspace(6.0, 8.0, repeats + 3))

        def cycle() -> None:
            planner.plan(state, hmap, (next(goals), 0.0, 0.0))  # a new goal: the field is rebuilt

        for _ in range(2):
            cycle()
        cpu, wall = measure(cycle, repeats)
        print(f"| {label} | {cpu:.1f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
