"""``morobot train locomotion``: PPO (rsl-rl-lib) for the articulated ANYmal on curriculum terrain.

The runner is ours (progress bar, CSV log and PNG curves, atomic resumable checkpoints, the
exported policy); the algorithm and its rollout storage are rsl-rl's ``PPO`` with ``MLPModel``
actor and critic, as legged_gym trains ANYmal. Environments run in worker processes
(:class:`morobot.locomotion.vec_env.ProcessVecEnv`).

Outputs in ``--out``:

* ``latest.pt`` — everything to resume (PPO state, iteration, curriculum levels, RNG), written to a
  temporary name and renamed after every ``--save-every`` iterations and at the end, also when
  ``--max-hours`` runs out or on Ctrl-C / SIGTERM;
* ``log.csv`` — one row per iteration (reward, episode length, terrain level, fall fraction, the
  reward terms, steps, seconds), appended and flushed as it goes; ``training.png`` — the curves;
* ``policy.pt`` + ``policy.json`` — the actor for the robot (state dict loaded with
  ``weights_only=True`` by :mod:`morobot.locomotion.policy`; the sidecar holds the model and
  observation layout, seed, command line, iterations and the last figures).

Resume a stopped run with the same command plus ``--resume``. A run can be stretched over several
sessions: ``--max-hours`` ends it cleanly with a checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shlex
import shutil
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from morobot.fileio import atomic_save_figure, atomic_torch_save, atomic_write_json, atomic_write_text
from morobot.locomotion.env import REWARD_SCALES, TRACKS
from morobot.locomotion.observation import HEIGHT_POINTS, NUM_ACTIONS, OBS_DIM

#: Per-iteration columns from the environments (curriculum levels per track, reward terms per second).
LOG_COLUMNS = [f"level_{t}" for t in TRACKS] + [f"rew_{k}" for k in REWARD_SCALES]
POLICY_FORMAT = "morobot-locomotion-policy"
POLICY_VERSION = 1


@dataclass
class TrainConfig:
    """Settings of one training run (the defaults train the shipped policy)."""

    out_dir: str
    num_envs: int = 256
    workers: int = 2
    steps_per_env: int = 24
    iterations: int = 3000
    seed: int = 0
    actor_hidden: tuple = (256, 128, 64)
    critic_hidden: tuple = (256, 128, 64)
    learning_rate: float = 1e-3
    entropy_coef: float = 0.005
    init_std: float = 1.0
    save_every: int = 20
    max_hours: float = 0.0
    threads: int = 1
    progress: bool = True
    env: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.num_envs < 1 or self.workers < 0 or self.steps_per_env < 1 or self.iterations < 1:
            raise ValueError("num_envs, steps_per_env and iterations must be >= 1, workers >= 0")
        if self.workers and self.num_envs < self.workers:
            raise ValueError("num_envs must be at least workers")
        if not (math.isfinite(self.max_hours) and self.max_hours >= 0):
            raise ValueError("max_hours must be >= 0")


def rsl_config(cfg: TrainConfig) -> dict[str, Any]:
    """The rsl-rl configuration (legged_gym's PPO settings for ANYmal, smaller networks)."""
    def model(hidden, distribution):
        out = {"class_name": "MLPModel", "hidden_dims": list(hidden), "activation": "elu",
               "obs_normalization": False}
        if distribution:
            out["distribution_cfg"] = {"class_name": "GaussianDistribution", "init_std": cfg.init_std}
        return out

    return {
        "algorithm": {"class_name": "PPO", "num_learning_epochs": 5, "num_mini_batches": 4, "clip_param": 0.2,
                      "gamma": 0.99, "lam": 0.95, "value_loss_coef": 1.0, "entropy_coef": cfg.entropy_coef,
                      "learning_rate": cfg.learning_rate, "max_grad_norm": 1.0, "schedule": "adaptive",
                      "desired_kl": 0.01, "use_clipped_value_loss": True},
        "actor": model(cfg.actor_hidden, True),
        "critic": model(cfg.critic_hidden, False),
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "num_steps_per_env": cfg.steps_per_env,
        "multi_gpu": None,
    }


def export_policy(alg, cfg: TrainConfig, out: Path, iteration: int, steps: int, figures: dict,
                  command: str) -> Path:
    """Write ``policy.pt`` (the actor's state dict) and ``policy.json`` next to it."""
    actor = alg.get_policy()
    state = {k: v.detach().cpu().clone() for k, v in actor.state_dict().items()}
    atomic_torch_save(state, out / "policy.pt")
    sidecar = {
        "format": POLICY_FORMAT, "format_version": POLICY_VERSION,
        "model": {"class_name": "MLPModel", **{k: v for k, v in rsl_config(cfg)["actor"].items() if k != "class_name"}},
        "obs_dim": OBS_DIM, "height_points": HEIGHT_POINTS, "num_actions": NUM_ACTIONS,
        "seed": cfg.seed, "iterations": iteration, "env_steps": steps, "command": command,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items() if k != "out_dir"},
        "figures": figures,
    }
    atomic_write_json(out / "policy.json", sidecar)
    return out / "policy.pt"


def plot_log(log_csv: Path, png: Path) -> None:
    """The training curves of ``log.csv`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    def column(key: str) -> np.ndarray:
        return np.array([float(r[key]) if r.get(key) not in (None, "", "nan") else np.nan for r in rows])

    steps = column("env_steps") / 1e6
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.5))
    for ax, key, label in zip(axes, ("mean_reward", "mean_episode_length", "terrain_level", "fall_fraction"),
                              ("mean episode reward", "mean episode length (steps)", "mean terrain level",
                               "falls per ended episode")):
        ax.plot(steps, column(key))
        ax.set_title(label)
    window = 50  # iterations: a track's level is the mean over the few environments playing it
    for track in TRACKS:
        vals = column(f"level_{track}")
        if np.isfinite(vals).sum() >= window:
            kernel = np.ones(window) / window
            filled = np.convolve(np.nan_to_num(vals), kernel, "same") / np.maximum(
                np.convolve(np.isfinite(vals).astype(float), kernel, "same"), 1e-9)
            axes[4].plot(steps, np.where(np.isfinite(vals), filled, np.nan), label=track)
    if axes[4].lines:
        axes[4].legend(fontsize=7)
    axes[4].set_title(f"level per curriculum track ({window}-iteration mean)")
    for ax in axes:
        ax.set_xlabel("environment steps (M)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_save_figure(fig, png, dpi=90)
    plt.close(fig)


def _continue_log(log_csv: Path, fields: list[str]) -> list[str]:
    """Make ``log_csv`` ready to take rows of ``fields``; returns its columns.

    A new log gets the header. A log continued from an earlier run whose columns differ (e.g. one
    level column per terrain before the curriculum had tracks) is rewritten, atomically, with the
    old columns followed by the new ones; old rows keep their values, with new columns left empty.
    """
    old: list[str] = []
    rows: list[dict] = []
    if log_csv.exists():
        with open(log_csv, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            old = list(reader.fieldnames or [])
            if old and set(fields) <= set(old):
                return old
            rows = list(reader)
    merged = old + [f for f in fields if f not in old]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=merged, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(log_csv, buf.getvalue())
    return merged


class _Stop:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, *_: Any) -> None:
        self.requested = True


def train(cfg: TrainConfig, resume: bool = False, command: str = "", resume_from: str = "") -> dict[str, Any]:
    """Run (or resume) training; returns the last iteration's figures.

    Args:
        resume: continue from ``out_dir/latest.pt``.
        resume_from: continue from this training state instead (e.g. the shipped
            ``models/locomotion/anymal_c_train_state.pt``, or another run's ``latest.pt``) in a new
            ``out_dir``; its log (``anymal_c_log.csv``, or the run's ``log.csv``), if one lies next to it, is
            continued too.
    """
    from rsl_rl.algorithms import PPO
    from tqdm import tqdm

    from morobot.locomotion.vec_env import ProcessVecEnv

    cfg.validate()
    out = Path(cfg.out_dir)
    latest = out / "latest.pt"
    if latest.exists() and not resume:
        raise ValueError(f"{out} holds a run; pass --resume to continue it or choose another --out")
    if resume and not latest.exists():
        raise ValueError(f"nothing to resume: {latest} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    if resume_from:
        state = Path(resume_from)
        if not state.is_file():
            raise ValueError(f"nothing to resume from: {state} does not exist")
        if resume:
            raise ValueError("--resume and --resume-from exclude each other")
        shutil.copyfile(state, latest)
        suffix = "_train_state.pt"  # a shipped state's log is <robot>_log.csv; a run directory's latest.pt, log.csv
        log = state.with_name(state.name[:-len(suffix)] + "_log.csv" if state.name.endswith(suffix) else "log.csv")
        if log.is_file() and not (out / "log.csv").exists():
            shutil.copyfile(log, out / "log.csv")
        resume = True
    torch.set_num_threads(max(1, int(cfg.threads)))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    checkpoint = torch.load(latest, weights_only=True) if resume else None
    env_seed = cfg.seed + (int(checkpoint["iteration"]) if checkpoint else 0)
    env = ProcessVecEnv(cfg.num_envs, cfg.workers, env_seed, cfg.env)
    stop = _Stop()
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    log_csv = out / "log.csv"
    try:
        rl_cfg = rsl_config(cfg)
        obs = env.get_observations()
        alg = PPO.construct_algorithm(obs, env, rl_cfg, "cpu")
        it, steps, seconds = 0, 0, 0.0
        if checkpoint is not None:
            alg.load(checkpoint["ppo"], None, strict=True)
            it, steps, seconds = int(checkpoint["iteration"]), int(checkpoint["env_steps"]), float(checkpoint["seconds"])
            env.set_levels(checkpoint["levels"].numpy())
            command = command or checkpoint.get("command", "")
            torch.set_rng_state(checkpoint["torch_rng"])
        alg.train_mode()
        rewards_buf: deque = deque(maxlen=200)
        lengths_buf: deque = deque(maxlen=200)
        falls_buf: deque = deque(maxlen=200)
        ep_reward = torch.zeros(cfg.num_envs)
        ep_length = torch.zeros(cfg.num_envs)
        fields = None
        deadline = time.monotonic() + cfg.max_hours * 3600.0 if cfg.max_hours > 0 else math.inf
        bar = tqdm(total=cfg.iterations, initial=it, desc="train locomotion", unit="it", disable=not cfg.progress)
        figures: dict[str, Any] = {}
        obs = env.get_observations()

        def save() -> None:
            atomic_torch_save({"ppo": alg.save(), "iteration": it, "env_steps": steps, "seconds": seconds,
                                "levels": torch.from_numpy(env.track_levels.astype(np.float64)),
                                "torch_rng": torch.get_rng_state(), "config": json.dumps(asdict(cfg)),
                                "command": command}, latest)
            export_policy(alg, cfg, out, it, steps, figures, command)

        while it < cfg.iterations and not stop.requested and time.monotonic() < deadline:
            t0 = time.monotonic()
            logs: dict[str, list] = {}
            with torch.inference_mode():
                for _ in range(cfg.steps_per_env):
                    actions = alg.act(obs)
                    obs, rewards, dones, extras = env.step(actions)
                    alg.process_env_step(obs, rewards, dones, extras)
                    ep_reward += rewards
                    ep_length += 1
                    ended = dones.bool()
                    if ended.any():
                        rewards_buf.extend(ep_reward[ended].tolist())
                        lengths_buf.extend(ep_length[ended].tolist())
                        falls_buf.extend((~extras["time_outs"][ended]).float().tolist())
                        ep_reward[ended] = 0.0
                        ep_length[ended] = 0.0
                    for k, v in extras["log"].items():
                        logs.setdefault(k, []).append(v)
                alg.compute_returns(obs)
            losses = alg.update()
            it += 1
            steps += cfg.num_envs * cfg.steps_per_env
            seconds += time.monotonic() - t0
            figures = {
                "iteration": it, "env_steps": steps, "seconds": round(seconds, 1),
                "mean_reward": float(np.mean(rewards_buf)) if rewards_buf else math.nan,
                "mean_episode_length": float(np.mean(lengths_buf)) if lengths_buf else math.nan,
                "fall_fraction": float(np.mean(falls_buf)) if falls_buf else math.nan,
                "terrain_level": float(np.mean(logs.get("/terrain_level", [math.nan]))),
                "action_std": float(alg.get_policy().output_std.detach().mean()),
                **{f"loss_{k}": float(v) for k, v in losses.items()},
                **{k.strip("/"): float(np.mean(v)) for k, v in logs.items() if k != "/terrain_level"},
            }
            if fields is None:
                fields = list(figures)[:8] + [k for k in figures if k.startswith("loss_")] + LOG_COLUMNS
                fields = _continue_log(log_csv, fields)
                fh = open(log_csv, "a", newline="", encoding="utf-8")
                writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            writer.writerow({k: figures.get(k, "") for k in fields})
            fh.flush()
            bar.update(1)
            bar.set_postfix(reward=f"{figures['mean_reward']:.2f}", level=f"{figures['terrain_level']:.2f}",
                            falls=f"{figures['fall_fraction']:.2f}", sps=f"{cfg.num_envs * cfg.steps_per_env / (time.monotonic() - t0):.0f}")
            if it % cfg.save_every == 0:
                save()
                plot_log(log_csv, out / "training.png")
        save()
        bar.close()
        if fields is not None:
            fh.close()
            plot_log(log_csv, out / "training.png")
        return figures
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        env.close()


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[TrainConfig, bool, str]:
    d = TrainConfig(out_dir="")
    p = argparse.ArgumentParser(prog="morobot train locomotion", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="run directory (checkpoints, log, policy)")
    p.add_argument("--num-envs", type=int, default=d.num_envs, help="parallel environments")
    p.add_argument("--workers", type=int, default=d.workers, help="environment worker processes (0: in process)")
    p.add_argument("--steps-per-env", type=int, default=d.steps_per_env, help="rollout length per iteration")
    p.add_argument("--iterations", type=int, default=d.iterations, help="total PPO iterations")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--entropy-coef", type=float, default=d.entropy_coef)
    p.add_argument("--save-every", type=int, default=d.save_every, help="iterations between checkpoints")
    p.add_argument("--max-hours", type=float, default=d.max_hours, help="stop cleanly after this long (0: no limit)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads of the trainer")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="EnvConfig override (JSON value), e.g. --env 'terrain_weights=[1,0,0,0,0]'")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--resume-from", default="", metavar="STATE",
                   help="continue from this training state (e.g. models/locomotion/anymal_c_train_state.pt) in --out")
    p.add_argument("--no-progress", action="store_true")
    ns = p.parse_args(argv)
    env: dict[str, Any] = {}
    for item in ns.env:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--env takes KEY=VALUE, got {item!r}")
        try:
            env[key] = json.loads(value)
        except ValueError:
            env[key] = value
        if isinstance(env[key], list):
            env[key] = tuple(tuple(v) if isinstance(v, list) else v for v in env[key])
    cfg = TrainConfig(out_dir=ns.out, num_envs=ns.num_envs, workers=ns.workers, steps_per_env=ns.steps_per_env,
                      iterations=ns.iterations, seed=ns.seed, learning_rate=ns.learning_rate,
                      entropy_coef=ns.entropy_coef, save_every=ns.save_every, max_hours=ns.max_hours,
                      threads=ns.threads, progress=not ns.no_progress, env=env)
    return cfg, ns.resume, ns.resume_from


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg, resume, resume_from = parse_args(argv)
        figures = train(cfg, resume, command="morobot train locomotion " + shlex.join(argv), resume_from=resume_from)
    except (ValueError, TypeError) as exc:
        print(f"morobot train locomotion: {exc}", file=sys.stderr)
        return 2
    print(f"[train locomotion] iteration {figures.get('iteration')}: reward {figures.get('mean_reward', math.nan):.2f}, "
          f"terrain level {figures.get('terrain_level', math.nan):.2f}, falls {figures.get('fall_fraction', math.nan):.2f}; "
          f"policy in {Path(cfg.out_dir) / 'policy.pt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
