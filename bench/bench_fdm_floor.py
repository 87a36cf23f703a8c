"""How predictable the walking robot's 5 s outcomes are: a floor under any FDM's position error.

The FDM is scored on where the robot is 5 s after a start, given its history, the height scan and the
commands. If the simulated robot itself ends in different places from nearly the same state, no model can be
more accurate than that spread. This bench drives episodes as the data collection does (``morobot collect``:
a free random start, the same time-correlated random commands, one command per 0.5 s) and, at every second
step, copies the simulation twice: one copy as it is and one with the base moved by ``--offset`` (1 mm by
default, far below what the model can know of the state). Both copies run the next 10 commands. Reported
per world kind:

* ``apart``: the distance between the two copies' end positions, each in its own start frame (m);
* ``floor``: ``apart / sqrt(2)``, the mean error of the best predictor if the two ends were independent
  draws around a common mean (an estimate; a model knows the state far less well than 1 mm, so its
  own floor is higher);
* ``constant velocity``: the error of perfect command tracking on the same samples (the offline target's
  baseline), and ``floor / constant velocity``: the smallest error ratio any model could reach.

    python bench/bench_fdm_floor.py [--kinds flat rough ...] [--worlds 3] [--steps 30] [--offset 0.001] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import math
from typing import Any, Sequence

import numpy as np
import torch

from morobot.fdm import se2
from morobot.fdm.data.collect import CollectConfig, free_starts
from morobot.fdm.data.commands import sample_command_sequences
from morobot.locomotion.sim import LeggedAnymalSim
from morobot.sim.worlds import KINDS, make_world

HORIZON = 10  # steps per sample, the FDM's
DT = 0.5  # s per step
STRIDE = 2  # a sample every second step, as collected


def relative(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``end``'s ``(x, y)`` in the frame of pose ``start`` ``(x, y, yaw)`` (:func:`morobot.fdm.se2.relative`)."""
    pair = torch.as_tensor(np.stack((start, end)), dtype=torch.float64)
    return se2.relative(pair[0], pair[1])[:2].numpy()


def branch(sim: LeggedAnymalSim, commands: np.ndarray, offset: float) -> tuple[np.ndarray, bool]:
    """Runs ``commands`` on a copy of ``sim`` with the base moved ``offset`` m along world x.

    Returns:
        The end position in the copy's start frame, and whether it fell or got stuck.
    """
    twin = copy.deepcopy(sim)
    if offset:
        twin.data.qpos[0] += offset
    start = twin.state().pose.copy()
    failed = False
    for command in commands:
        twin.set_command(command, stamp=twin.time)
        state = twin.advance(DT)
        failed |= bool(state.fallen or state.stuck)
    return relative(start, twin.state().pose), failed


def episode(sim: LeggedAnymalSim, world: Any, rng: np.random.Generator, steps: int,
            offset: float) -> list[dict[str, Any]]:
    """One episode from a random free start; per sample both copies' ends, their failures and the commands."""
    starts = free_starts(world, CollectConfig(out_dir=""))
    xy = starts[rng.integers(len(starts))]
    sim.reset((xy[0], xy[1], rng.uniform(-math.pi, math.pi)))
    chunks = math.ceil((steps + HORIZON) / HORIZON)
    stream = sample_command_sequences(rng, chunks, HORIZON, DT).reshape(-1, 3)
    out = []
    for k in range(steps):
        if k >= STRIDE and k % STRIDE == 0:
            commands = stream[k:k + HORIZON]
            a, fail_a = branch(sim, commands, 0.0)
            b, fail_b = branch(sim, commands, offset)
            out.append({"a": a, "b": b, "failed": (fail_a, fail_b), "commands": commands})
        sim.set_command(stream[k], stamp=sim.time)
        state = sim.advance(DT)
        if state.fallen or state.stuck:
            break
    return out


def summarise(samples: Sequence[dict[str, Any]]) -> dict[str, float]:
    """``apart``, ``floor``, ``constant_velocity`` (means, m), ``ratio`` and failure counts of the samples."""
    a = np.stack([s["a"] for s in samples])
    b = np.stack([s["b"] for s in samples])
    cmd = torch.from_numpy(np.stack([s["commands"] for s in samples])).double()
    cv = se2.integrate(cmd, DT)[:, -1, :2].numpy()
    apart = np.linalg.norm(a - b, axis=-1)
    cv_err = np.linalg.norm(cv - a, axis=-1)
    fails = np.array([s["failed"] for s in samples])
    return {
        "samples": len(samples),
        "apart": float(apart.mean()),
        "apart_median": float(np.median(apart)),
        "apart_p90": float(np.percentile(apart, 90)),
        "floor": float(apart.mean() / math.sqrt(2.0)),
        "constant_velocity": float(cv_err.mean()),
        "ratio": float(apart.mean() / math.sqrt(2.0) / max(cv_err.mean(), 1e-9)),
        "failed": int(fails[:, 0].sum()),
        "outcome_differs": int((fails[:, 0] != fails[:, 1]).sum()),
    }


def measure(kinds: Sequence[str], worlds: int, steps: int, offset: float, seed: int) -> dict[str, list[dict]]:
    """Samples per kind (world seeds ``90000 + 1000 * seed + i``; below seed 10 none that a collection uses)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[dict]] = {}
    for kind in kinds:
        out[kind] = []
        for i in range(worlds):
            world = make_world(kind, 90_000 + 1000 * seed + i, size=(20.0, 20.0))
            out[kind] += episode(LeggedAnymalSim(world), world, rng, steps, offset)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--worlds", type=int, default=3, help="worlds per kind (one episode each)")
    ap.add_argument("--steps", type=int, default=30, help="0.5 s steps per episode")
    ap.add_argument("--offset", type=float, default=0.001, help="base offset of the second copy (m)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.worlds < 1 or args.steps <= STRIDE or not (0.0 < args.offset < 0.1):
        ap.error("--worlds must be >= 1, --steps > 2 and --offset in (0, 0.1) m")
    torch.set_num_threads(1)
    results = measure(args.kinds, args.worlds, args.steps, args.offset, args.seed)
    print(f"same 5 s of commands from two copies {args.offset * 1000:g} mm apart; errors at 5 s (m)")
    print("| kind | samples | apart (mean / median / p90) | floor = apart / sqrt 2 | constant velocity | "
          "floor / constant velocity | failed | outcome differs |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    everything = []
    for kind, samples in list(results.items()) + [("all", None)]:
        if samples is None:
            samples = everything
        else:
            everything += samples
        if not samples:
            print(f"| {kind} | 0 | | | | | | |")
            continue
        r = summarise(samples)
        print(f"| {kind} | {r['samples']} | {r['apart']:.3f} / {r['apart_median']:.3f} / {r['apart_p90']:.3f} | "
              f"{r['floor']:.3f} | {r['constant_velocity']:.3f} | {r['ratio']:.2f} | {r['failed']} | "
              f"{r['outcome_differs']} |")


if __name__ == "__main__":
    main()
