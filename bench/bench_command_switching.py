"""Falls of a locomotion policy (the shipped one unless ``--policy``) on flat ground under fast-changing
commands, with and without the planner's acceleration limit (``accel_limit``,
:func:`morobot.navigation.controller.limit_change`).

The policy was trained on commands that change every 10 s; a planner's command can swing between its bounds
within a few tenths of a second. Two command streams, each sent at 10 Hz (the planner's rate) for ``--seconds``
of sim time per episode, start headings spread over the episodes:

* **flips**: 1 m/s forward, -0.45 m/s sideways, the yaw rate flipping between +1 and -1 rad/s every 0.3 s;
* **corners**: every 0.5 s a new random corner of the command box (vx -0.5, 0.5 or 1; vy +-0.5; wz +-1).

Each stream runs raw (the baseline) and through ``limit_change`` with ``--accel`` in the same run; prints the
falls per stream and setting, for each policy given (``--policy`` repeated: several policies, same streams).

    python bench/bench_command_switching.py [--episodes 16] [--seconds 12] [--accel 1.5 1.5 2.0] [--seed 0] \
        [--policy models/locomotion/anymal_c_policy.pt --policy runs/.../policy.pt]
"""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

import numpy as np
import torch

from morobot.locomotion.sim import LeggedAnymalSim, LeggedSimConfig
from morobot.navigation.controller import limit_change
from morobot.sim.worlds import make_world

PERIOD = 0.1  # s, the planner's control period


def flips(t: float, rng: np.random.Generator, last: np.ndarray) -> np.ndarray:
    """The yaw rate flips sign every 0.3 s while walking forwards and sideways."""
    return np.array([1.0, -0.45, 1.0 if int(t / 0.3) % 2 == 0 else -1.0])


def corners(t: float, rng: np.random.Generator, last: np.ndarray) -> np.ndarray:
    """A random corner of the command box every 0.5 s."""
    if round(t / PERIOD) % 5 != 0:
        return last
    return np.array([rng.choice([-0.5, 0.5, 1.0]), rng.choice([-0.5, 0.5]), rng.choice([-1.0, 1.0])])


def falls(sim: LeggedAnymalSim, stream: Callable, accel: Sequence[float], episodes: int, seconds: float,
          seed: int) -> int:
    """Episodes of ``stream`` (through the acceleration limit ``accel``; zeros: raw) that ended in a fall."""
    rng = np.random.default_rng(seed)
    fell = 0
    for ep in range(episodes):
        sim.reset(pose=(0.0, 0.0, 2.0 * np.pi * ep / episodes))
        wanted = sent = np.zeros(3)
        while sim.time < seconds - 1e-9:
            wanted = stream(sim.time, rng, wanted)
            sent = limit_change(wanted, sent, PERIOD, accel)
            sim.set_command(sent, stamp=sim.time)
            if sim.advance(PERIOD).fallen:
                fell += 1
                break
    return fell


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--accel", type=float, nargs=3, default=(1.5, 1.5, 2.0), help="vx, vy, wz (m/s², rad/s²)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", action="append", default=[], help="policy file (repeatable; default: the shipped one)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for policy in args.policy or [""]:
        sim = LeggedAnymalSim(make_world("flat", 0, size=(40.0, 40.0)), LeggedSimConfig(policy=policy))
        print(f"policy {policy or 'shipped'}:", flush=True)
        for name, stream in (("flips", flips), ("corners", corners)):
            raw = falls(sim, stream, (0.0, 0.0, 0.0), args.episodes, args.seconds, args.seed)
            limited = falls(sim, stream, args.accel, args.episodes, args.seconds, args.seed)
            print(f"  {name:8s} falls: raw {raw}/{args.episodes}, accel_limit {list(args.accel)} "
                  f"{limited}/{args.episodes}", flush=True)


if __name__ == "__main__":
    main()
