"""Planning-time benchmark: ``python -m morobot.fdm.evaluation.benchmark [--checkpoint X] [-k 2048]``.

Times one planning cycle of :class:`~morobot.fdm.dynamics.FDMDynamics`: scan sampling from a
height map plus ``encode`` (once per cycle), and ``predict`` for ``K`` samples of ``T`` steps
(every MPPI iteration). Reports the minimum and median over repetitions; on a shared machine
the minimum is the better estimate of the cost, the median of what a busy machine delivers.
``cpu_*`` is the process CPU time per cycle; with ``--threads 1`` it is insensitive to other
load on the machine and bounds the single-core wall time of an idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np
import torch

from morobot.fdm.dynamics import FDMDynamics
from morobot.fdm.history import stationary_history
from morobot.fdm.model import FDMConfig, PerceptiveFDM
from morobot.planning.interface import HeightMap, NavState


def benchmark(
    dynamics: FDMDynamics, samples: int = 2048, steps: Optional[int] = None, repeats: int = 30, warmup: int = 3
) -> dict[str, Any]:
    """Times encode (with scan sampling) and predict.

    Args:
        dynamics: the dynamics wrapper to time.
        samples: ``K``.
        steps: ``T`` (the model's horizon when None).
        repeats: timed repetitions.
        warmup: untimed repetitions first.

    Returns:
        Milliseconds: ``encode_min``, ``encode_median``, ``predict_min``, ``predict_median``,
        ``total_min``, ``total_median``, ``cpu_min``, ``cpu_median`` (process CPU time per cycle),
        plus ``threads``, ``samples``, ``steps``.
    """
    if samples < 1 or repeats < 1:
        raise ValueError("samples and repeats must be >= 1")
    cfg = dynamics.config
    steps = steps or cfg.horizon
    rng = np.random.default_rng(0)
    hmap = HeightMap(torch.from_numpy(rng.normal(0.0, 0.05, (80, 80)).astype(np.float32)), (-4.0, -4.0), 0.1)
    history = stationary_history([0.5, 0.0, 0.0], [0.0, 0.0, -1.0], cfg.history_length)
    commands = torch.from_numpy(rng.uniform(-1, 1, (samples, steps, 3)).astype(np.float32))
    enc, pred, total, cpu = [], [], [], []
    for i in range(warmup + repeats):
        # a new stamp each cycle defeats the context cache, as a new planning cycle does
        state = NavState(pose=np.array([0.0, 0.0, 0.3]), z=0.5, history=history, stamp=float(i))
        c0 = time.process_time()
        t0 = time.perf_counter()
        dynamics.encode(state, hmap)
        t1 = time.perf_counter()
        dynamics.rollout(state, commands, hmap)
        t2 = time.perf_counter()
        c2 = time.process_time()
        if i >= warmup:
            cpu.append(c2 - c0)
            enc.append(t1 - t0)
            pred.append(t2 - t1)
            total.append(t2 - t0)
    ms = lambda xs, f: round(1e3 * f(xs), 2)  # noqa: E731
    return {
        "threads": torch.get_num_threads(),
        "samples": samples,
        "steps": steps,
        "ensemble_size": cfg.ensemble_size,
        "encode_min": ms(enc, min),
        "encode_median": ms(enc, statistics.median),
        "predict_min": ms(pred, min),
        "predict_median": ms(pred, statistics.median),
        "total_min": ms(total, min),
        "total_median": ms(total, statistics.median),
        "cpu_min": ms(cpu, min),
        "cpu_median": ms(cpu, statistics.median),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; prints the timings as JSON."""
    p = argparse.ArgumentParser(prog="python -m morobot.fdm.evaluation.benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="time this checkpoint (default: an untrained default-config model)")
    p.add_argument("-k", "--samples", type=int, default=2048)
    p.add_argument("-t", "--steps", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=30)
    ns = p.parse_args(argv)
    try:
        if ns.checkpoint:
            dyn = FDMDynamics.from_checkpoint(ns.checkpoint, num_threads=ns.threads)
        else:
            dyn = FDMDynamics(PerceptiveFDM(FDMConfig()), num_threads=ns.threads)
        result = benchmark(dyn, ns.samples, ns.steps, ns.repeats)
    except ValueError as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
