"""What the alignment term costs in a planning cycle: MPPI with the term off (baseline) and on.

Both planners are the kinematic MPPI with the geodesic cost-to-go over the same synthetic map
(a wall between start and goal), the same seed and settings; only ``alignment_weight`` differs.
Prints the median cycle time and its cost part for each, and the ratio on / off.

    python bench/bench_alignment.py [--samples 1024] [--repeats 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass

import numpy as np
import torch

from morobot.planning.cost import NavigationCost, NavigationCostConfig
from morobot.planning.cost_to_go import CostToGo
from morobot.planning.interface import HeightMap, NavState
from morobot.planning.kinematic import KinematicModel
from morobot.planning.mppi import MPPI, MPPIConfig

GOAL = (3.0, 0.5, 0.0)


@dataclass
class BenchArgs:
    """Benchmark settings (see ``--help``)."""

    samples: int = 1024
    horizon: int = 10
    repeats: int = 30
    warmup: int = 3
    threads: int = 1
    weight: float = 20.0


def parse_args() -> BenchArgs:
    d = BenchArgs()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=d.samples)
    p.add_argument("--horizon", type=int, default=d.horizon)
    p.add_argument("--repeats", type=int, default=d.repeats)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--weight", type=float, default=d.weight, help="alignment_weight of the 'on' planner")
    ns = p.parse_args()
    if ns.samples < 2 or ns.horizon < 1 or ns.repeats < 1 or ns.warmup < 0 or ns.threads < 1 or ns.weight <= 0:
        p.error("samples >= 2, horizon, repeats and threads >= 1, warmup >= 0, weight > 0")
    return BenchArgs(ns.samples, ns.horizon, ns.repeats, ns.warmup, ns.threads, ns.weight)


def wall_map() -> HeightMap:
    """8 x 8 m map, 0.1 m cells, a 1 m tall wall across the straight line to the goal."""
    h = np.zeros((80, 80))
    h[30:40, 20:60] = 1.0
    return HeightMap(torch.tensor(h, dtype=torch.float32), (-4.0, -4.0), 0.1)


def time_planner(args: BenchArgs, weight: float, hmap: HeightMap) -> tuple[float, float]:
    """Median (total, cost) seconds per ``plan`` call."""
    model = KinematicModel()
    cost = NavigationCost(NavigationCostConfig(alignment_weight=weight), cost_to_go=CostToGo(model))
    planner = MPPI(model, cost, MPPIConfig(num_samples=args.samples, horizon=args.horizon, seed=0))
    state = NavState(pose=np.array([-3.0, 0.0, 0.0]))
    for _ in range(args.warmup):
        planner.plan(state, hmap, GOAL)
    total, part = [], []
    for _ in range(args.repeats):
        result = planner.plan(state, hmap, GOAL)
        total.append(result.timings["total"])
        part.append(result.timings["cost"])
    return statistics.median(total), statistics.median(part)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    hmap = wall_map()
    off = time_planner(args, 0.0, hmap)
    on = time_planner(args, args.weight, hmap)
    print(f"kinematic MPPI, {args.samples} samples x {args.horizon} steps, cost-to-go, {args.threads} thread(s), "
          f"median of {args.repeats}")
    for name, (t, c) in (("alignment off (baseline)", off), (f"alignment {args.weight:g}", on)):
        print(f"  {name:26s} cycle {1e3 * t:7.2f} ms   cost part {1e3 * c:6.2f} ms")
    print(f"  ratio on / off: cycle {on[0] / off[0]:.2f}x, cost part {on[1] / off[1]:.2f}x")


if __name__ == "__main__":
    main()
