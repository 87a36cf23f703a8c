"""Planner cycle time: morobot MPPI vs pytorch_mppi on the same dynamics and cost.

Both planners drive :class:`~morobot.planning.kinematic.KinematicModel` on a 60 x 60 height map
and score samples with :class:`~morobot.planning.cost.NavigationCost`:

* morobot's :class:`~morobot.planning.mppi.MPPI` rolls out the whole horizon in one batched call;
* ``pytorch_mppi.MPPI`` calls a per-step dynamics function ``T`` times (state ``(x, y, yaw,
  risk)``: the pose from ``KinematicModel.step_with_risk`` plus that step's risk), a zero running
  cost, and a terminal cost that evaluates the very same ``NavigationCost`` on the stored states.

Each cell of the table is the median wall time of one planning call, measured interleaved (one
call of each planner per repeat, all from the same start state, warm-started) in one process with
the same torch thread count. The plan cost column scores each planner's final command sequence
with the same model and cost (standing still costs about 81 here; 1000 or more means a step's
risk exceeds the threshold).

Usage:
    python bench/bench_mppi.py            # full grid, ~1 min
    python bench/bench_mppi.py --quick    # smaller grid and fewer repeats
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import pytorch_mppi
import torch

from morobot.planning.cost import NavigationCost
from morobot.planning.interface import HeightMap, NavState, Rollout
from morobot.planning.kinematic import KinematicModel
from morobot.planning.mppi import MPPI, MPPIConfig

GOAL = (2.5, 1.0, 0.0)


@dataclass
class BenchArgs:
    """Benchmark settings (see ``--help``)."""

    samples: list[int] = field(default_factory=lambda: [256, 1024, 2048])
    horizons: list[int] = field(default_factory=lambda: [10, 25, 50])
    repeats: int = 25
    warmup: int = 3
    threads: int = 1
    seed: int = 0


def parse_args() -> BenchArgs:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = BenchArgs()
    parser.add_argument("--samples", type=int, nargs="+", default=defaults.samples)
    parser.add_argument("--horizons", type=int, nargs="+", default=defaults.horizons)
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--quick", action="store_true", help="samples 256 2048, horizons 10 50, 5 repeats")
    ns = parser.parse_args()
    if ns.quick:
        ns.samples, ns.horizons, ns.repeats, ns.warmup = [256, 2048], [10, 50], 5, 1
    if ns.repeats < 1 or ns.warmup < 0 or ns.threads < 1:
        parser.error("repeats and threads must be >= 1, warmup >= 0")
    return BenchArgs(ns.samples, ns.horizons, ns.repeats, ns.warmup, ns.threads, ns.seed)


def make_height_map(seed: int) -> HeightMap:
    """60 x 60 cells at 0.1 m: gentle random bumps plus a 0.6 m box ahead of the robot."""
    rng = np.random.default_rng(seed)
    origin = (-3.0, -3.0)
    xs = origin[0] + 0.1 * np.arange(60)
    gx, gy = np.meshgrid(xs, origin[1] + 0.1 * np.arange(60), indexing="ij")
    heights = 0.05 * np.sin(1.3 * gx + rng.uniform(0, 6)) * np.cos(0.9 * gy + rng.uniform(0, 6))
    heights[(np.abs(gx - 1.2) < 0.3) & (np.abs(gy - 0.4) < 0.4)] = 0.6
    return HeightMap(torch.tensor(heights, dtype=torch.float32), origin, 0.1)


class PytorchMPPIAdapter:
    """Wraps KinematicModel + NavigationCost in the per-step form pytorch_mppi expects."""

    def __init__(self, model: KinematicModel, cost: NavigationCost, hmap: HeightMap, cfg: MPPIConfig) -> None:
        self.model, self.cost, self.hmap = model, cost, hmap
        sigma = torch.tensor(cfg.sigma, dtype=torch.float32)
        self.controller = pytorch_mppi.MPPI(
            self.dynamics,
            self.running_cost,
            nx=4,
            noise_sigma=torch.diag(sigma * sigma),
            num_samples=cfg.num_samples,
            horizon=cfg.horizon,
            lambda_=cfg.temperature,
            u_min=torch.tensor(cfg.u_min),
            u_max=torch.tensor(cfg.u_max),
            u_init=torch.zeros(3),
            U_init=torch.zeros(cfg.horizon, 3),
            terminal_state_cost=self.terminal_cost,
            sample_null_action=True,
        )

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        ends, risk = self.model.step_with_risk(state[:, :3], action, self.hmap)
        return torch.cat((ends, risk[:, None]), dim=1)

    @staticmethod
    def running_cost(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.zeros(state.shape[0], dtype=state.dtype)

    def terminal_cost(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        rollout = Rollout(poses=states[0, :, :, :3], risk=states[0, :, :, 3])
        return self.cost(rollout, actions[0], GOAL)

    def plan(self, pose: np.ndarray) -> None:
        self.controller.command(torch.tensor([*pose, 0.0], dtype=torch.float32))

    def sequence(self) -> torch.Tensor:
        return self.controller.get_action_sequence()


def plan_cost(model: KinematicModel, cost: NavigationCost, hmap: HeightMap, state: NavState, seq) -> float:
    commands = torch.as_tensor(np.asarray(seq), dtype=torch.float32)[None]
    return float(cost(model.rollout(state, commands, hmap), commands, GOAL)[0])


def bench_cell(args: BenchArgs, k: int, horizon: int, hmap: HeightMap) -> dict[str, float]:
    model, cost = KinematicModel(), NavigationCost()
    cfg = MPPIConfig(num_samples=k, horizon=horizon, seed=args.seed)
    ours = MPPI(model, cost, cfg)
    torch.manual_seed(args.seed)
    theirs = PytorchMPPIAdapter(KinematicModel(), NavigationCost(), hmap, cfg)
    state = NavState(pose=np.zeros(3))
    t_ours, t_theirs = [], []
    for i in range(args.warmup + args.repeats):
        t0 = time.perf_counter()
        result = ours.plan(state, hmap, GOAL)
        t1 = time.perf_counter()
        theirs.plan(state.pose)
        t2 = time.perf_counter()
        if i >= args.warmup:
            t_ours.append(t1 - t0)
            t_theirs.append(t2 - t1)
    return {
        "ours_ms": 1e3 * statistics.median(t_ours),
        "theirs_ms": 1e3 * statistics.median(t_theirs),
        "ours_cost": plan_cost(model, cost, hmap, state, result.commands),
        "theirs_cost": plan_cost(model, cost, hmap, state, theirs.sequence()),
    }


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    hmap = make_height_map(args.seed)
    print(
        f"torch {torch.__version__}, pytorch_mppi {importlib.metadata.version('pytorch-mppi')}, "
        f"{torch.get_num_threads()} torch threads, {platform.processor() or platform.machine()}, "
        f"{args.repeats} repeats after {args.warmup} warm-up, map 60x60 @ 0.1 m\n"
    )
    print("| samples | horizon | morobot MPPI (ms) | pytorch_mppi (ms) | speed-up | plan cost ours / theirs |")
    print("|---:|---:|---:|---:|---:|---:|")
    for k in args.samples:
        for horizon in args.horizons:
            r = bench_cell(args, k, horizon, hmap)
            print(
                f"| {k} | {horizon} | {r['ours_ms']:.1f} | {r['theirs_ms']:.1f} | "
                f"{r['theirs_ms'] / r['ours_ms']:.1f}x | {r['ours_cost']:.1f} / {r['theirs_cost']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
