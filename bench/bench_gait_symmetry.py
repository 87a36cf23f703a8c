"""Left-right symmetry of the shipped locomotion policy's gait on flat ground.

Mirror augmentation of FDM training data (``morobot train fdm --mirror-prob``) assumes that mirrored
commands (``vy`` and ``wz`` negated) move the robot along the mirrored path. For ``--sequences`` random
command sequences (``--steps`` steps of 0.5 s, a new command every 2.5 s, the FDM's command box) the robot
walks each sequence and its mirror from the same standing start; the score is the distance between the end
of the path and the mirrored end of the mirrored path, in the start frame. The same-run baseline is the
sensitivity to the gait's phase: the same sequence started 0.1 s later. A symmetric gait gives mirror
distances near the baseline.

    python bench/bench_gait_symmetry.py [--sequences 12] [--steps 10] [--seed 0]
"""

from __future__ import annotations

import argparse
from typing import Sequence

import numpy as np
import torch

from morobot.locomotion.sim import LeggedAnymalSim
from morobot.sim.worlds import make_world

STEP = 0.5  # s per command step, the FDM's
HOLD = 5  # steps per command
SETTLE = 1.0  # s standing before the sequence
MIRROR = np.array([1.0, -1.0, -1.0])


def walk(sim: LeggedAnymalSim, commands: np.ndarray, delay: float = 0.0) -> np.ndarray:
    """End position ``(x, y)`` in the start frame after ``commands`` (``[steps, 3]``) from a standing start."""
    sim.reset(pose=(0.0, 0.0, 0.0))
    while sim.time < SETTLE + delay - 1e-9:
        sim.set_command(np.zeros(3), stamp=sim.time)
        sim.advance(0.1)
    start = sim.state()
    c, s = np.cos(start.yaw), np.sin(start.yaw)
    for command in commands:
        sim.set_command(command, stamp=sim.time)
        sim.advance(STEP)
    d = sim.state().position[:2] - start.position[:2]
    return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])


def random_commands(rng: np.random.Generator, steps: int) -> np.ndarray:
    """``[steps, 3]`` commands, a new uniform draw from the FDM's command box every :data:`HOLD` steps."""
    n = -(-steps // HOLD)
    draws = np.column_stack([rng.uniform(-0.5, 1.0, n), rng.uniform(-0.5, 0.5, n), rng.uniform(-1.0, 1.0, n)])
    return np.repeat(draws, HOLD, axis=0)[:steps]


def measure(sequences: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Per sequence: ``mirror`` and ``phase`` distances (m) and the ``path`` end distance from the start (m)."""
    sim = LeggedAnymalSim(make_world("flat", 0, size=(40.0, 40.0)))
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {"mirror": [], "phase": [], "path": []}
    for _ in range(sequences):
        commands = random_commands(rng, steps)
        end = walk(sim, commands)
        mirrored = walk(sim, commands * MIRROR) * MIRROR[:2]
        later = walk(sim, commands, delay=0.1)
        out["mirror"].append(float(np.hypot(*(end - mirrored))))
        out["phase"].append(float(np.hypot(*(end - later))))
        out["path"].append(float(np.hypot(*end)))
    return {k: np.array(v) for k, v in out.items()}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=12)
    ap.add_argument("--steps", type=int, default=10, help="0.5 s command steps per sequence")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if min(args.sequences, args.steps) < 1:
        ap.error("--sequences and --steps must be >= 1")
    torch.set_num_threads(1)
    r = measure(args.sequences, args.steps, args.seed)
    print(f"{args.sequences} sequences of {args.steps * STEP:.1f} s, mean end distance from the start "
          f"{r['path'].mean():.2f} m")
    print(f"mirrored commands, end apart: mean {r['mirror'].mean():.3f} m, max {r['mirror'].max():.3f} m")
    print(f"same commands 0.1 s later (baseline): mean {r['phase'].mean():.3f} m, max {r['phase'].max():.3f} m")
    print(f"ratio mirror / baseline: {r['mirror'].mean() / max(r['phase'].mean(), 1e-9):.1f}x")


if __name__ == "__main__":
    main()
