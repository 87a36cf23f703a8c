"""KORR policy step latency: what one ``KorrPolicy.act`` call costs on one CPU core.

Usage::

    python bench/bench_korr.py                      # both tasks, 4 checkpoints each (~1 min)
    python bench/bench_korr.py --quick              # smoke run
    python bench/bench_korr.py --json out.json

For each task the script records the inputs of one closed-loop episode in the MuJoCo Panda scene
(joint positions and velocities, block pose; the KORR checkpoint drives), then replays the same
inputs through every checkpoint: the base policy alone (``bc.pt``, the baseline), base + MLP
residual, base + KORR residual, and KORR without the Koopman conditioning. It reports the median,
90th percentile and maximum wall time of a step, the ratio of each median to the baseline's
median in the same run, and the network's share (the torch forward pass alone, timed on the same
observations). The issue's target is a median of at most 2 ms per step.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from morobot.korr.policy import KorrPolicy  # noqa: E402
from morobot.korr.tasks import TASKS  # noqa: E402
from morobot.paths import models_dir  # noqa: E402
from morobot.sim.panda import READY_POSE, PandaSim  # noqa: E402

TARGET_MS = 2.0
# checkpoint file, label; the first is the baseline the ratios refer to
CHECKPOINTS = (("bc.pt", "base (BC)"), ("residual_mlp.pt", "base + MLP residual"),
               ("residual_korr.pt", "base + KORR residual"), ("residual_korr_nokoop.pt", "KORR w/o Koopman"))


def record_inputs(checkpoint: Path, steps: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Inputs of one closed-loop episode from the READY pose: ``(q (9,), qd (9,), block pose (7,))``."""
    policy = KorrPolicy(checkpoint)
    inputs = []
    with PandaSim() as sim:
        sim.reset(q=READY_POSE)
        policy.reset()
        for _ in range(steps):
            js, pose = sim.joint_state(), sim.object_pose()
            block = np.concatenate([pose.position, pose.quaternion])
            inputs.append((js.positions.copy(), js.velocities.copy(), block))
            cmd = policy.act(js.positions, js.velocities, block)
            sim.set_joint_command(cmd.positions, cmd.velocities, cmd.gripper)
            sim.advance(policy.control_dt)
    return inputs


def time_policy(checkpoint: Path, inputs, repeats: int) -> dict:
    """Step times (ms) of ``act`` over ``repeats`` replays of ``inputs``, and of its network alone."""
    policy = KorrPolicy(checkpoint)
    steps, observations = [], []
    for r in range(repeats + 1):                      # replay 0 warms up and is not counted
        policy.reset()
        for q, qd, block in inputs:
            start = time.perf_counter()
            policy.act(q, qd, block)
            if r:
                steps.append((time.perf_counter() - start) * 1e3)
            elif len(observations) < len(inputs):
                observations.append(policy.last_observation.copy())
    net = []
    with torch.inference_mode():
        for r in range(repeats + 1):
            for obs in observations:
                start = time.perf_counter()
                policy._net(torch.as_tensor(obs, dtype=torch.float32)[None])
                if r:
                    net.append((time.perf_counter() - start) * 1e3)
    steps_a, net_a = np.asarray(steps), np.asarray(net)
    return {"variant": policy.variant, "steps": int(steps_a.size), "median_ms": float(np.median(steps_a)),
            "p90_ms": float(np.percentile(steps_a, 90)), "max_ms": float(steps_a.max()),
            "network_median_ms": float(np.median(net_a))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--ckpt-dir", default=str(models_dir() / "korr"),
                        help="directory with TASK/{bc,residual_*}.pt (default: the shipped checkpoints)")
    parser.add_argument("--steps", type=int, default=80, help="control steps in the recorded episode")
    parser.add_argument("--repeats", type=int, default=5, help="timed replays of the episode per checkpoint")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 15, 1
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be >= 1")
    torch.set_num_threads(1)
    report: dict = {"threads": 1, "steps": args.steps, "repeats": args.repeats, "target_ms": TARGET_MS, "tasks": {}}
    for task in args.tasks:
        folder = Path(args.ckpt_dir) / task
        missing = [name for name, _ in CHECKPOINTS if not (folder / name).is_file()]
        if missing:
            print(f"error: {folder} lacks {missing}", file=sys.stderr)
            return 2
        inputs = record_inputs(folder / "residual_korr.pt", args.steps)
        rows = {name: time_policy(folder / name, inputs, args.repeats) for name, _ in CHECKPOINTS}
        base = rows[CHECKPOINTS[0][0]]["median_ms"]
        print(f"\n{task}: {len(inputs)} recorded steps x {args.repeats} replays, 1 thread")
        print(f"{'checkpoint':<24} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} {'network ms':>11} "
              f"{'ratio to base':>14}")
        for name, label in CHECKPOINTS:
            row = rows[name]
            row["ratio_to_base"] = row["median_ms"] / base
            print(f"{label:<24} {row['median_ms']:>10.3f} {row['p90_ms']:>8.3f} {row['max_ms']:>8.3f} "
                  f"{row['network_median_ms']:>11.3f} {row['ratio_to_base']:>14.2f}")
        worst = max(row["median_ms"] for row in rows.values())
        print(f"target median <= {TARGET_MS:.0f} ms per step: {'met' if worst <= TARGET_MS else 'NOT met'} "
              f"(slowest median {worst:.3f} ms)")
        report["tasks"][task] = rows
    if args.json:
        path = Path(args.json)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
