"""Evaluate KORR checkpoints: task success per policy and perturbation level, Koopman prediction.

    python -m morobot.korr.evaluate --ckpt models/korr --episodes 100
    morobot eval korr --task push --perturbations none,high --level-episodes high=400

For every task and perturbation level (at ``--randomness``), each policy runs the same
``--episodes`` seeded episodes (seeds ``--seed + k``; ``--level-episodes high=400`` overrides the
count per level) with deterministic actions:

``base`` (BC), ``mlp`` (base + ResiP-style MLP residual), ``korr`` (base + KORR residual),
``korr_nokoop`` (KORR without the Koopman-predicted latent); ``expert`` (the scripted expert)
is added with ``--expert``.

Koopman prediction (``--koopman``): held-out noisy base-policy roll-outs at the training
condition; mean squared error (standardised observation units) of 1..H-step open-loop state
predictions for the pre-trained Koopman model, the KORR agent's jointly trained one, DMDc and
EDMDc (random Fourier features) fitted by least squares on the Koopman model's training data, and
the "nothing moves" prediction ``s_k = s_0`` as a floor.

Because every policy runs the same episodes, ``eval.md`` also gives each residual's success
difference to the base with a paired 95 % interval (per-episode outcomes are in ``eval.json``).

Writes ``OUT/eval.json`` and ``OUT/eval.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from morobot.korr import checkpoint as ckpt
from morobot.korr.tasks import TASKS, KorrVecEnv

POLICIES = ("base", "mlp", "korr", "korr_nokoop")


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def run_episodes(task: str, act, episodes: int, seed: int, randomness: str, perturbation: str,
                 n_envs: int = 25, backend: str = "fast") -> dict:
    """Success statistics of ``act(obs, env) -> actions`` over seeded episodes."""
    env = KorrVecEnv(task, min(n_envs, episodes), randomness, perturbation, seed=seed, backend=backend,
                     auto_reset=False)
    successes, lengths, outcomes = 0, [], ""
    done_eps = 0
    while done_eps < episodes:
        n = min(env.n_envs, episodes - done_eps)
        seeds = [seed + done_eps + i for i in range(env.n_envs)]
        obs = env.reset(seeds)
        env.done[n:] = True  # unused slots of the last batch
        succ = np.zeros(env.n_envs, bool)
        length = np.full(env.n_envs, env.spec.max_steps)
        for k in range(env.spec.max_steps):
            res = env.step(act(obs, env))
            obs = res.obs
            length[res.success] = k + 1
            succ |= res.success
            if env.done.all():
                break
        outcomes += "".join("1" if v else "0" for v in succ[:n])
        successes += int(succ[:n].sum())
        lengths += [int(v) for v, s in zip(length[:n], succ[:n]) if s]
        done_eps += n
    env.close()
    lo, hi = wilson(successes, episodes)
    return {"success": successes / episodes, "ci95": [lo, hi], "episodes": episodes,
            "mean_steps_success": float(np.mean(lengths)) if lengths else None, "outcomes": outcomes}


def paired_difference(a: str, b: str, z: float = 1.96) -> tuple[float, float, float]:
    """Success-rate difference ``a - b`` of two policies on the same seeded episodes, with a 95 %
    normal-approximation interval of the paired per-episode differences (outcome strings of 0/1)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired outcomes must be non-empty and of equal length")
    d = np.array([int(x) - int(y) for x, y in zip(a, b)], float)
    half = z * d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def torch_policy(fn):
    def act(obs, env):
        with torch.no_grad():
            return fn(torch.as_tensor(obs, dtype=torch.float32)).numpy()
    return act


def expert_policy(obs, env):
    return env.expert_actions()


def load_policies(task_dir: Path, names) -> dict:
    policies = {}
    for name in names:
        if name == "expert":
            policies[name] = expert_policy
        elif name == "base":
            path = task_dir / "bc.pt"
            if path.is_file():
                policies[name] = torch_policy(ckpt.load_bc(path)[0])
        else:
            path = task_dir / f"residual_{name}.pt"
            if path.is_file():
                policies[name] = torch_policy(ckpt.load_agent(path)[0].act_deterministic)
    return policies


def koopman_report(task: str, task_dir: Path, episodes: int, seed: int, horizon: int = 20) -> dict:
    """Open-loop multi-step prediction errors of the learned Koopman models vs DMDc / EDMDc."""
    from morobot.korr.bc import DemoData, collect_rollouts, concat
    from morobot.korr.koopman import DMDc, EDMDc, make_windows, rollout_error

    base, _ = ckpt.load_bc(task_dir / "bc.pt")
    koopman, _ = ckpt.load_koopman(task_dir / "koopman.pt")
    train = concat(DemoData.load(task_dir / "demos.npz"), DemoData.load(task_dir / "koopman_data.npz"))
    log = {}
    log_path = task_dir / "train_log.json"
    if log_path.is_file():
        import json

        log = json.loads(log_path.read_text()).get("args", {})
    held = collect_rollouts(task, lambda o: torch_policy(base)(o, None), episodes, seed=seed + 777,
                            randomness=log.get("randomness", "med"), perturbation=log.get("perturbation", "high"))
    norm = base.normalizer

    def n(x):
        with torch.no_grad():
            return norm(torch.as_tensor(x, dtype=torch.float32)).numpy().astype(np.float64)

    hs, ha, hm = make_windows(held.obs, held.action, held.next_obs, held.last, horizon)
    hs_n = n(hs.reshape(-1, hs.shape[-1])).reshape(hs.shape)
    x, u, x1 = n(train.obs), train.action.astype(np.float64), n(train.next_obs)

    def torch_rollout(model):
        def predict(s0, acts):
            with torch.no_grad():
                return model.rollout(torch.as_tensor(s0, dtype=torch.float32),
                                     torch.as_tensor(acts, dtype=torch.float32)).numpy()
        return predict

    models = {"koopman_pretrained": torch_rollout(koopman)}
    korr_path = task_dir / "residual_korr.pt"
    if korr_path.is_file():
        agent = ckpt.load_agent(korr_path)[0]  # key names how the residual run trained the model
        models[f"koopman_korr_{agent.config.koopman_training}"] = torch_rollout(agent.koopman)
    models["dmdc"] = DMDc().fit(x, u, x1).rollout
    models["edmdc_rff256"] = EDMDc(256).fit(x, u, x1).rollout
    models["zero_motion"] = lambda s0, acts: np.repeat(s0[:, None], acts.shape[1], 1)
    report = {"held_out_windows": int((hm.min(1) > 0).sum()), "train_transitions": len(train.obs),
              "horizon": horizon, "mse": {}}
    for name, predict in models.items():
        err = rollout_error(predict, hs_n, ha, hm)
        report["mse"][name] = {f"h{k}": float(err[k - 1]) for k in (1, 5, 10, 20) if k <= horizon}
        report["mse"][name]["mean"] = float(err.mean())
    return report


def markdown(results: dict) -> str:
    lines = []
    for task, res in results["tasks"].items():
        per = results.get("level_episodes") or {}
        counts = sorted(set(per.values()))
        if len(counts) > 1:
            how = "episodes per cell: " + ", ".join(f"{lv} {n}" for lv, n in per.items())
        else:
            how = f"{counts[0] if counts else results['episodes']} episodes per cell"
        lines.append(f"### {task} (randomness {results['randomness']}, {how}, seeds {results.get('seed', '?')}+k)\n")
        levels = list(res["success"].keys())
        names = sorted({p for lv in levels for p in res["success"][lv]}, key=lambda p: (list(POLICIES) + ["expert"]).index(p))
        lines.append("| policy | " + " | ".join(f"perturbation {lv}" for lv in levels) + " |")
        lines.append("|---" * (len(levels) + 1) + "|")
        for p in names:
            cells = []
            for lv in levels:
                r = res["success"][lv].get(p)
                cells.append("-" if r is None else f"{100 * r['success']:.0f} % [{100 * r['ci95'][0]:.0f}, {100 * r['ci95'][1]:.0f}]")
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
        diffs = []
        for p in names:
            if p in ("base", "expert"):
                continue
            cells = []
            for lv in levels:
                r, b = res["success"][lv].get(p), res["success"][lv].get("base")
                if r is None or b is None or not r.get("outcomes") or len(r["outcomes"]) != len(b["outcomes"]):
                    cells.append("-")
                    continue
                m, lo, hi = paired_difference(r["outcomes"], b["outcomes"])
                cells.append(f"{100 * m:+.1f} [{100 * lo:+.0f}, {100 * hi:+.0f}]")
            diffs.append(f"| {p} − base | " + " | ".join(cells) + " |")
        if diffs:
            lines.append("\nDifference to the base policy on the same episodes (points, paired 95 % interval):\n")
            lines.append("| policy | " + " | ".join(f"perturbation {lv}" for lv in levels) + " |")
            lines.append("|---" * (len(levels) + 1) + "|")
            lines.extend(diffs)
        if "koopman" in res:
            k = res["koopman"]
            hs = [h for h in ("h1", "h5", "h10", "h20") if h in next(iter(k["mse"].values()))]
            lines.append(f"\nKoopman open-loop prediction MSE (standardised state, {k['held_out_windows']} held-out windows):\n")
            lines.append("| model | " + " | ".join(hs) + " |")
            lines.append("|---" * (len(hs) + 1) + "|")
            for name, row in k["mse"].items():
                lines.append(f"| {name} | " + " | ".join(f"{row[h]:.3f}" for h in hs) + " |")
        lines.append("")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", default="models/korr", help="training output directory (per-task sub-directories)")
    parser.add_argument("--task", default="all", help="push, insert or all")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated: base, mlp, korr, korr_nokoop")
    parser.add_argument("--expert", action="store_true", help="also evaluate the scripted expert")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per task, level and policy")
    parser.add_argument("--level-episodes", default="",
                        help="per-level overrides of --episodes, e.g. high=400 (comma-separated LEVEL=N)")
    parser.add_argument("--seed", type=int, default=100000, help="first episode seed")
    parser.add_argument("--randomness", default="med", help="low, med or high")
    parser.add_argument("--perturbations", default="none,low,high", help="comma-separated levels")
    parser.add_argument("--backend", default="fast", choices=["fast", "pandasim"], help="simulator back-end")
    parser.add_argument("--koopman", action=argparse.BooleanOptionalAction, default=True,
                        help="Koopman multi-step prediction vs DMDc/EDMDc")
    parser.add_argument("--koopman-episodes", type=int, default=24, help="held-out episodes for the Koopman report")
    parser.add_argument("--out", default="", help="where eval.json / eval.md go (default: --ckpt)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def level_episodes(default: int, spec: str, levels: list[str]) -> dict[str, int]:
    """Episodes per perturbation level: ``default`` unless ``spec`` ("high=400,low=200") says otherwise."""
    out = {lv: default for lv in levels}
    for item in (v.strip() for v in (spec or "").split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in out or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"bad --level-episodes item {item!r} (want LEVEL=N for a level in {levels})")
        out[name.strip()] = int(value)
    return out


def run(ns: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, ns.threads))
    root = Path(ns.ckpt)
    tasks = list(TASKS) if ns.task == "all" else [ns.task]
    names = [p.strip() for p in ns.policies.split(",") if p.strip()] + (["expert"] if ns.expert else [])
    levels = [p.strip() for p in ns.perturbations.split(",") if p.strip()]
    episodes = level_episodes(ns.episodes, getattr(ns, "level_episodes", ""), levels)
    results = {"randomness": ns.randomness, "episodes": ns.episodes, "level_episodes": episodes, "seed": ns.seed,
               "backend": ns.backend, "tasks": {}}
    t0, c0 = time.perf_counter(), time.process_time()
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        policies = load_policies(root / task, names)
        if not policies:
            raise FileNotFoundError(f"no checkpoints under {root / task}")
        res: dict = {"success": {}}
        for level in levels:
            res["success"][level] = {}
            for name, act in policies.items():
                r = run_episodes(task, act, episodes[level], ns.seed, ns.randomness, level, backend=ns.backend)
                res["success"][level][name] = r
                print(f"[korr eval] {task:6s} perturbation={level:4s} {name:12s} success {100 * r['success']:5.1f} % "
                      f"[{100 * r['ci95'][0]:.0f}, {100 * r['ci95'][1]:.0f}]", file=sys.stderr, flush=True)
        if ns.koopman and (root / task / "koopman.pt").is_file():
            res["koopman"] = koopman_report(task, root / task, ns.koopman_episodes, ns.seed)
        results["tasks"][task] = res
    results["time"] = {"wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(time.process_time() - c0, 1)}
    out = Path(ns.out or ns.ckpt)
    ckpt.atomic_write_json(out / "eval.json", results)
    text = markdown(results)
    ckpt.atomic_write(out / "eval.md", lambda fh: fh.write(text.encode()))
    print(text)
    return 0


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="korr-evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    ns = parser.parse_args(argv)
    try:
        return run(ns)
    except (ValueError, FileNotFoundError, ckpt.CheckpointError) as exc:
        print(f"korr evaluate: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
