"""Real-time factor of the legged ANYmal under its learned policy, against the abstract rigid-body robot.

Both simulators drive the same command (a 2 m-radius circle, ``(0.6, 0, 0.3)``) from the start of
the same world for ``--seconds`` of sim time in 0.02 s steps, with no sensor, on one thread:

* **abstract** (baseline): :class:`morobot.sim.anymal.AnymalSim`, one rigid body carried by the
  locomotion abstraction;
* **learned**: :class:`morobot.locomotion.sim.LeggedAnymalSim`, 12 PD-actuated joints, the policy
  (observation, MLP) every 20 ms and 4 physics steps of 5 ms.

Prints each real-time factor (sim s per wall s, higher is faster), the cost of one 20 ms control
tick, and the ratio learned / abstract measured in this run. The issue's target: learned >= 20 x
real time on one core.

    python bench/bench_legged.py [--world flat_small] [--seconds 20] [--policy PATH]
"""

from __future__ import annotations

import argparse
import time

import torch

from morobot.locomotion.sim import LeggedAnymalSim, LeggedSimConfig
from morobot.sim.anymal import AnymalSim
from morobot.sim.worlds import load_world

COMMAND = (0.6, 0.0, 0.3)


def real_time_factor(sim, seconds: float, step: float = 0.02) -> tuple[float, float]:
    """``(sim seconds per wall second, wall ms per step)`` of ``sim`` under :data:`COMMAND`."""
    n = int(round(seconds / step))
    t0 = time.perf_counter()
    for _ in range(n):
        sim.set_command(COMMAND)
        sim.advance(step)
    wall = time.perf_counter() - t0
    return seconds / wall, 1e3 * wall / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--world", default="flat_small")
    p.add_argument("--seconds", type=float, default=20.0, help="sim time per measurement")
    p.add_argument("--policy", default="", help="locomotion policy (default: the shipped one)")
    args = p.parse_args()
    torch.set_num_threads(1)
    world = load_world(args.world)
    abstract = AnymalSim(world)
    legged = LeggedAnymalSim(world, LeggedSimConfig(policy=args.policy))
    real_time_factor(abstract, 1.0)  # warm-up
    real_time_factor(legged, 1.0)
    abstract.reset()
    legged.reset()
    rtf_a, ms_a = real_time_factor(abstract, args.seconds)
    rtf_l, ms_l = real_time_factor(legged, args.seconds)
    print(f"world {args.world}, {args.seconds:g} s of sim time per simulator, 1 thread")
    print(f"abstract (baseline): {rtf_a:7.1f} x real time, {ms_a:.3f} ms per 20 ms tick")
    print(f"learned            : {rtf_l:7.1f} x real time, {ms_l:.3f} ms per 20 ms tick"
          f"{'  (fell)' if legged.state().fallen else ''}")
    print(f"ratio learned / abstract: {rtf_l / rtf_a:.2f}")


if __name__ == "__main__":
    main()
