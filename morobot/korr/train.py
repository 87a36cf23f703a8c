"""Train KORR for one or both tasks: demos -> BC base -> Koopman model -> residual policies (PPO).

    python -m morobot.korr.train --task all --stage all --seed 0 --out models/korr
    morobot train korr --task push --stage residual --variants korr --residual-steps 250000 --shaping 1.0

Every stage reads its inputs from and writes its outputs to ``OUT/TASK/``:

=========  ==================================================================================
demos      ``demos.npz`` (+ ``demos.json``): ``--demos`` successful noisy-expert episodes
bc         ``bc.pt`` base policy, ``bc_loss.png``
koopman    ``koopman_data.npz`` (base-policy roll-outs), ``koopman.pt``, ``koopman_loss.png``
           (``--latent-sweep 16,32,64,128``: held-out multi-step error per latent size)
residual   ``residual_{variant}.pt`` per variant, ``residual_curves.png`` (training success of all
           variants), ``residual_{variant}_diag.png`` (success, critic explained variance, value
           loss, policy std, batch return, KL; rewritten at every resume snapshot)
=========  ==================================================================================

plus ``train_log.json`` (timings, losses, curves). The residual stage writes
``residual_{variant}.resume.pt`` every few PPO updates and continues from it when restarted
(``--no-resume`` starts over); finished stages are skipped unless ``--force``.

Length: the stages of the one ``morobot train korr`` command (demos, BC, Koopman, residuals) with their shared resume and logging.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from morobot.korr import checkpoint as ckpt
from morobot.korr.tasks import ACT_DIM, OBS_DIM, TASKS
from morobot.korr.sim import SimSettings

STAGES = ("demos", "bc", "koopman", "residual")


@dataclass
class TrainArgs:
    """Command-line arguments of ``train korr`` (one field per ``--flag``).

    The residual defaults are 250 k env steps, potential-based shaping weight 1, gamma 0.99, GAE
    lambda 0.9, linearly annealed learning rates, no curriculum; they are the same for every
    variant. The shipped checkpoints' full command is in docs/korr.md (round 4); the KORR
    defaults ``--koopman-training joint --no-latent-norm`` are theirs (round 6 tried the others).
    """

    task: str = "all"
    stage: str = "all"
    variants: str = "mlp,korr,korr_nokoop"
    seed: int = 0
    out: str = "models/korr"
    demos: int = 50
    demo_noise: float = 0.1
    bc_epochs: int = 150
    koopman_episodes: int = 48
    koopman_steps: int = 1500
    latent_dim: int = 64
    latent_sweep: str = ""
    horizon: int = 8
    residual_steps: int = 250000
    n_envs: int = 16
    randomness: str = "med"
    perturbation: str = "high"
    alpha: float = 0.1
    alpha_gripper: float | None = None
    init_log_std: float = -0.7
    shaping: float = 1.0
    insert_potential: str = "via"
    curriculum_steps: int = 0
    curriculum_start: float = 0.5
    anneal_lr: bool = True
    ent_coef: float = 0.0
    gamma: float = 0.99
    gae_lambda: float = 0.9
    ppo_steps: int = 32
    ppo_epochs: int = 8
    minibatch_size: int = 200
    actor_lr: float = 3e-4
    target_kl: float = 0.05
    bc_coef: float = 0.0
    bc_coef_final: float | None = None
    bc_gripper: bool = False
    bc_buffer: int = 0
    koopman_training: str = "joint"
    model_lr: float = 1e-3
    model_steps: int = 8
    latent_norm: bool = False
    resume_every: int = 10
    threads: int = 1
    resume: bool = True
    force: bool = False
    progress: bool = True


HELP = {
    "task": "push, insert or all",
    "stage": "demos, bc, koopman, residual or all",
    "variants": "residual variants to train (comma-separated: mlp, korr, korr_nokoop)",
    "seed": "seed of every stage",
    "out": "output directory (per task sub-directories)",
    "demos": "successful scripted demonstrations per task",
    "demo_noise": "DART action noise std while recording demos (normalised units)",
    "bc_epochs": "behaviour-cloning epochs",
    "koopman_episodes": "noisy base-policy episodes added to the demos for the Koopman fit",
    "koopman_steps": "Koopman pre-training gradient steps",
    "latent_dim": "Koopman latent size",
    "latent_sweep": "comma-separated latent sizes to compare (held-out error) before the fit",
    "horizon": "Koopman multi-step loss horizon",
    "residual_steps": "PPO environment steps per residual variant",
    "n_envs": "parallel environments for PPO",
    "randomness": "initial-state randomness while training residuals (low, med, high)",
    "perturbation": "perturbation level while training residuals (none, low, high)",
    "alpha": "residual bound: a = a_base + alpha * tanh(u)",
    "alpha_gripper": "residual bound on the gripper action dimension (default: --alpha)",
    "init_log_std": "initial log std of the residual's pre-squash action u",
    "shaping": "weight of the potential-based shaping reward (0: sparse success reward only)",
    "insert_potential": ("insert shaping potential: via (over the fixture walls), xy (no credit for lowering), "
                         "via_wide (round-3 pilot A) or height (round 2)"),
    "curriculum_steps": "env steps over which the perturbation ramps up to --perturbation (0: none)",
    "curriculum_start": "perturbation factor (push probability and noise) at the start of the ramp",
    "anneal_lr": "decay the PPO learning rates linearly to 0 over --residual-steps",
    "ent_coef": "PPO entropy bonus",
    "gamma": "PPO discount (also the shaping discount)",
    "gae_lambda": "PPO GAE lambda",
    "ppo_steps": "PPO roll-out steps per env per update (batch = n_envs x ppo_steps)",
    "ppo_epochs": "PPO epochs per update",
    "minibatch_size": "PPO minibatch size",
    "actor_lr": "PPO actor learning rate (critic: 5e-3)",
    "target_kl": "PPO early stop: skip the remaining epochs of an update once its mean KL exceeds this (0: never)",
    "bc_coef": ("weight of the expert-guidance loss: MSE between the residual's tanh(mean) and "
                "clip((a_expert - a_base) / alpha, -1, 1), the scripted expert queried on the visited states (0: off)"),
    "bc_coef_final": "if given, the expert-guidance weight goes linearly from --bc-coef to this value over the run",
    "bc_buffer": ("expert-guidance data aggregation: fit the loss on states sampled from the last N labelled "
                  "states of the run (0: on the current roll-out only)"),
    "bc_gripper": "include the gripper dimension in the expert-guidance loss (default: motion dimensions only)",
    "koopman_training": ("KORR only: 'prediction' (the actor reads the predicted latent without gradient; the "
                         "Koopman model keeps training on the roll-outs by its prediction losses only) or 'joint' "
                         "(rounds 1-5: one-step Koopman loss in the PPO loss, actor gradients into the model)"),
    "model_lr": "learning rate of the online Koopman updates (--koopman-training prediction)",
    "model_steps": "Koopman gradient steps per PPO update (--koopman-training prediction)",
    "latent_norm": ("KORR only: standardise the predicted latent before the actor, with statistics of the "
                    "Koopman pre-training data (demos + base-policy roll-outs)"),
    "resume_every": "PPO updates between resume snapshots",
    "threads": "torch CPU threads",
    "resume": "continue interrupted residual runs from their snapshots",
    "force": "redo stages whose outputs exist",
    "progress": "show progress bars",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one ``--flag`` per :class:`TrainArgs` field (booleans get ``--no-flag`` too)."""
    for f in fields(TrainArgs):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                                help=HELP[f.name])
        else:
            typ = {"int": int, "float": float, "float | None": float, "str": str}.get(str(f.type), str)
            parser.add_argument(flag, dest=f.name, type=typ, default=f.default, help=HELP[f.name])


def args_from_namespace(ns: argparse.Namespace) -> TrainArgs:
    return TrainArgs(**{f.name: getattr(ns, f.name) for f in fields(TrainArgs)})


# --------------------------------------------------------------------------------- helpers
class _Log:
    """``OUT/TASK/train_log.json``: per-stage records, rewritten atomically after each stage."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {}

    def put(self, key: str, value) -> None:
        self.data[key] = value
        ckpt.atomic_write_json(self.path, self.data)


class _Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def as_dict(self) -> dict:
        return {"wall_s": round(self.wall, 1), "cpu_s": round(self.cpu, 1)}


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True, file=sys.stderr)


def _plot(path: Path, series: dict[str, tuple], title: str, xlabel: str, ylabel: str, logy: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, (x, y) in series.items():
        ax.plot(x, y, label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    ckpt.atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)


def success_curve(finished: list, window: int | None = None, points: int = 60) -> tuple[list, list]:
    """Success rate of the episodes that ended within the last ``window`` env steps.

    ``window`` defaults to 1/40 of the run (at least 2000 steps).
    """
    if not finished:
        return [], []
    steps = np.array([f[0] for f in finished])
    if window is None:
        window = max(2000, int(steps.max()) // 40)
    succ = np.array([f[1] for f in finished])
    xs = np.linspace(max(window, steps.min()), steps.max(), points)
    ys = [float(succ[(steps > x - window) & (steps <= x)].mean()) if np.any((steps > x - window) & (steps <= x))
          else float("nan") for x in xs]
    return xs.tolist(), ys


# ---------------------------------------------------------------------------------- stages
def stage_demos(args: TrainArgs, task: str, out: Path, log: _Log) -> None:
    from morobot.korr.bc import collect_demos

    path = out / "demos.npz"
    if path.is_file() and not args.force:
        return
    with _Timer() as t, _bar(args.demos, f"{task} demos", args.progress) as bar:
        data, stats = collect_demos(task, args.demos, seed=args.seed, noise=args.demo_noise,
                                    progress=lambda n: bar.update(1))
    ckpt.atomic_write(path, lambda fh: np.savez_compressed(fh, **{k: getattr(data, k) for k in data.__dataclass_fields__}))
    record = {**stats, "transitions": len(data.obs), "seed": args.seed, **t.as_dict()}
    ckpt.atomic_write_json(out / "demos.json", record)
    log.put("demos", record)


def stage_bc(args: TrainArgs, task: str, out: Path, log: _Log) -> None:
    from morobot.korr.bc import DemoData, train_bc

    path = out / "bc.pt"
    if path.is_file() and not args.force:
        return
    data = DemoData.load(out / "demos.npz")
    with _Timer() as t, _bar(args.bc_epochs, f"{task} bc", args.progress) as bar:
        policy, losses = train_bc(data, epochs=args.bc_epochs, seed=args.seed,
                                  progress=lambda e, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4f}")))
    record = {"epochs": args.bc_epochs, "loss_first": losses[0], "loss_last": losses[-1], **t.as_dict()}
    ckpt.save_bc(path, policy, task, SimSettings().control_dt, {"seed": args.seed, "metrics": record})
    _plot(out / "bc_loss.png", {"bc": (list(range(len(losses))), losses)}, f"{task}: BC loss", "epoch", "MSE", True)
    log.put("bc", {**record, "losses": losses})


def _base_fn(policy):
    def act(obs):
        with torch.no_grad():
            return policy(torch.as_tensor(obs, dtype=torch.float32)).numpy()
    return act


def koopman_windows(data, horizon: int):
    from morobot.korr.koopman import make_windows

    return make_windows(data.obs, data.action, data.next_obs, data.last, horizon)


def latent_sweep(train_data, held_out, normalizer, sizes: list[int], steps: int, horizon: int,
                 seed: int) -> dict:
    """Held-out multi-step (20-step) state-prediction error of Koopman models per latent size."""
    from morobot.korr.koopman import KoopmanConfig, KoopmanModel, fit_koopman, rollout_error

    s, a, m = koopman_windows(train_data, horizon)
    hs, ha, hm = koopman_windows(held_out, 20)
    with torch.no_grad():
        hs_n = normalizer(torch.as_tensor(hs)).numpy()
    result = {}
    for size in sizes:
        torch.manual_seed(seed)
        model = KoopmanModel(KoopmanConfig(OBS_DIM, ACT_DIM, size, horizon=horizon))
        fit_koopman(model, s, a, m, normalize=normalizer, steps=steps, seed=seed)

        def predict(s0, acts, model=model):
            with torch.no_grad():
                return model.rollout(torch.as_tensor(s0), torch.as_tensor(acts)).numpy()

        err = rollout_error(predict, hs_n, ha, hm)
        result[str(size)] = {"h1": float(err[0]), "h5": float(err[4]), "h10": float(err[9]), "h20": float(err[19]),
                             "mean": float(err.mean())}
    return result


def stage_koopman(args: TrainArgs, task: str, out: Path, log: _Log) -> None:
    from morobot.korr.bc import DemoData, collect_rollouts, concat
    from morobot.korr.koopman import KoopmanConfig, KoopmanModel, fit_koopman

    path = out / "koopman.pt"
    if path.is_file() and not args.force and not args.latent_sweep:
        return
    base, _ = ckpt.load_bc(out / "bc.pt")
    demos = DemoData.load(out / "demos.npz")
    data_path = out / "koopman_data.npz"
    with _Timer() as t_data:
        if data_path.is_file() and not args.force:
            rollouts = DemoData.load(data_path)
        else:
            rollouts = collect_rollouts(task, _base_fn(base), args.koopman_episodes, seed=args.seed + 1,
                                        randomness=args.randomness, perturbation=args.perturbation,
                                        n_envs=args.n_envs)
            ckpt.atomic_write(data_path, lambda fh: np.savez_compressed(
                fh, **{k: getattr(rollouts, k) for k in rollouts.__dataclass_fields__}))
    data = concat(demos, rollouts)
    record: dict = {"data": {"demo_transitions": len(demos.obs), "rollout_transitions": len(rollouts.obs),
                             **t_data.as_dict()}}
    if args.latent_sweep:
        sizes = [int(v) for v in args.latent_sweep.split(",") if v.strip()]
        held = collect_rollouts(task, _base_fn(base), 16, seed=args.seed + 991, randomness=args.randomness,
                                perturbation=args.perturbation, n_envs=args.n_envs)
        with _Timer() as t_sweep:
            record["latent_sweep"] = latent_sweep(data, held, base.normalizer, sizes, max(args.koopman_steps // 2, 1),
                                                  args.horizon, args.seed)
        record["latent_sweep_time"] = t_sweep.as_dict()
        log.put("koopman_latent_sweep", record["latent_sweep"])
        if path.is_file() and not args.force:
            return
    torch.manual_seed(args.seed)
    model = KoopmanModel(KoopmanConfig(OBS_DIM, ACT_DIM, args.latent_dim, horizon=args.horizon))
    s, a, m = koopman_windows(data, args.horizon)
    with _Timer() as t, _bar(args.koopman_steps, f"{task} koopman", args.progress) as bar:
        history = fit_koopman(model, s, a, m, normalize=base.normalizer, steps=args.koopman_steps, seed=args.seed,
                              progress=lambda i, h: (bar.update(1), bar.set_postfix(loss=f"{h['total']:.3f}")
                                                     if i % 50 == 0 else None))
    last = {k: float(np.mean([h[k] for h in history[-50:]])) for k in history[-1]}
    record.update({"steps": args.koopman_steps, "latent_dim": args.latent_dim, "final": last, **t.as_dict()})
    ckpt.save_koopman(path, model, task, {"seed": args.seed, "metrics": record})
    xs = list(range(len(history)))
    _plot(out / "koopman_loss.png", {k: (xs, [h[k] for h in history]) for k in ("one_step", "multi_step", "state", "recon")},
          f"{task}: Koopman losses", "step", "loss", True)
    log.put("koopman", record)


def make_agent(variant: str, base, koopman, alpha: float, init_log_std: float = -0.7,
               alpha_gripper: float | None = None, koopman_training: str = "joint",
               latent_norm: bool = False, latent_obs=None):
    """A residual agent; with ``latent_norm`` (``korr``), ``latent_obs`` (raw observations, e.g.
    the Koopman training data) fixes the latent standardisation."""
    from morobot.korr.residual import ResidualAgent, ResidualConfig

    koop = copy.deepcopy(koopman) if variant != "mlp" else None
    agent = ResidualAgent(ResidualConfig(variant, OBS_DIM, ACT_DIM, alpha=alpha, alpha_gripper=alpha_gripper,
                                         init_log_std=init_log_std, koopman_training=koopman_training,
                                         latent_norm=latent_norm), copy.deepcopy(base), koop)
    if variant == "korr" and latent_norm:
        if latent_obs is None:
            raise ValueError("latent_norm needs the observations to standardise the latent over")
        agent.set_latent_normalization(latent_obs)
    return agent


def ppo_config(args: TrainArgs):
    """The PPO settings of a residual run (identical for every variant)."""
    from morobot.korr.ppo import PPOConfig

    return PPOConfig(anneal_lr=args.anneal_lr, ent_coef=args.ent_coef, gamma=args.gamma, gae_lambda=args.gae_lambda,
                     n_steps=args.ppo_steps, epochs=args.ppo_epochs, minibatch_size=args.minibatch_size,
                     actor_lr=args.actor_lr, target_kl=args.target_kl, bc_coef=args.bc_coef,
                     bc_coef_final=args.bc_coef_final, bc_gripper=args.bc_gripper, bc_buffer=args.bc_buffer,
                     model_lr=args.model_lr, model_steps=args.model_steps)


DIAG_KEYS = ("explained_var", "v_loss", "log_std", "return_mean", "kl", "aux_loss", "bc_loss", "model_loss")


def plot_diagnostics(path: Path, task: str, variant: str, finished: list, history: list[dict]) -> None:
    """Training success plus PPO diagnostics (critic explained variance, losses, std) of one run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(13, 9))
    xs, ys = success_curve(finished)
    axes[0, 0].plot(xs, ys)
    axes[0, 0].set_title("training success (stochastic)")
    steps = [h["step"] for h in history]
    for ax, key in zip(axes.flat[1:], DIAG_KEYS):
        ax.plot(steps, [h.get(key, float("nan")) for h in history])
        ax.set_title(key)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.set_xlabel("env steps")
    fig.suptitle(f"{task}: residual {variant}")
    fig.tight_layout()
    ckpt.atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=80))
    plt.close(fig)


def stage_residual(args: TrainArgs, task: str, out: Path, log: _Log) -> None:
    from morobot.korr.ppo import PPO
    from morobot.korr.rollout import EpisodeStats
    from morobot.korr.runner import train_ppo
    from morobot.korr.residual import VARIANTS
    from morobot.korr.tasks import PERTURBATIONS, KorrVecEnv, curriculum_factor, scale_perturbation

    base, _ = ckpt.load_bc(out / "bc.pt")
    koopman, _ = ckpt.load_koopman(out / "koopman.pt")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; expected {VARIANTS}")
    curves = log.data.get("residual", {})
    latent_obs = None
    if args.latent_norm and "korr" in variants:  # the Koopman model's own training data
        from morobot.korr.bc import DemoData

        found = [out / name for name in ("demos.npz", "koopman_data.npz") if (out / name).is_file()]
        if not found:
            raise ValueError(f"--latent-norm needs the Koopman data (demos.npz, koopman_data.npz) in {out}")
        latent_obs = np.concatenate([DemoData.load(path).obs for path in found])
    for variant in variants:
        path = out / f"residual_{variant}.pt"
        resume_path = out / f"residual_{variant}.resume.pt"
        if path.is_file() and not args.force:
            continue
        torch.manual_seed(args.seed)
        agent = make_agent(variant, base, koopman, args.alpha, args.init_log_std, args.alpha_gripper,
                           args.koopman_training, args.latent_norm, latent_obs)
        cfg = ppo_config(args)
        ppo = PPO(agent, cfg)
        target_pert = PERTURBATIONS[args.perturbation]

        def perturbation_at(step: int):
            factor = curriculum_factor(step, args.curriculum_steps, args.curriculum_start)
            return target_pert if factor >= 1.0 else scale_perturbation(target_pert, factor)

        env = KorrVecEnv(task, args.n_envs, args.randomness, perturbation_at(0), seed=args.seed + 100,
                         shaping=args.shaping, shaping_gamma=cfg.gamma, insert_potential=args.insert_potential)
        stats = EpisodeStats(args.n_envs)
        start, spent = 0, {"wall_s": 0.0, "cpu_s": 0.0}
        state = ckpt.load_resume(resume_path) if args.resume and not args.force else None
        if state is not None:
            try:
                ppo.load_state_dict(state["ppo"])
                start = int(state["step"])
                stats.finished = [tuple(f) for f in state["finished"]]
                env._episode = int(state["episodes"])
                spent = dict(state["spent"])
                torch.set_rng_state(state["torch_rng"])
            except (KeyError, RuntimeError, ValueError, TypeError):
                agent = make_agent(variant, base, koopman, args.alpha, args.init_log_std, args.alpha_gripper,
                           args.koopman_training, args.latent_norm, latent_obs)
                ppo = PPO(agent, cfg)
                start, stats, spent = 0, EpisodeStats(args.n_envs), {"wall_s": 0.0, "cpu_s": 0.0}
        env.perturbation = perturbation_at(start)
        updates = [0]
        history: list[dict] = list(state.get("history", [])) if state is not None and start else []
        diag_path = out / f"residual_{variant}_diag.png"
        t_wall, t_cpu = time.perf_counter(), time.process_time()

        def elapsed() -> dict:
            return {"wall_s": round(spent["wall_s"] + time.perf_counter() - t_wall, 1),
                    "cpu_s": round(spent["cpu_s"] + time.process_time() - t_cpu, 1)}

        with _bar(args.residual_steps, f"{task} {variant}", args.progress) as bar:
            bar.update(start)

            def callback(step, info, st):
                bar.update(step - bar.n)
                recent = [f[1] for f in st.finished[-100:]]
                bar.set_postfix(success=f"{np.mean(recent):.2f}" if recent else "-", kl=f"{info['kl']:.3f}")
                env.perturbation = perturbation_at(step)  # curriculum (no-op without one)
                history.append({"step": step, **{k: round(v, 5) for k, v in info.items()}})
                updates[0] += 1
                if updates[0] % args.resume_every == 0 and step < args.residual_steps:
                    ckpt.save_resume(resume_path, {
                        "ppo": ppo.state_dict(), "step": step, "finished": [list(f) for f in st.finished],
                        "episodes": env._episode, "spent": elapsed(), "torch_rng": torch.get_rng_state(),
                        "history": history})
                    plot_diagnostics(diag_path, task, variant, st.finished, history)
                    if not args.progress:
                        recent = [f[1] for f in st.finished[-200:]]
                        print(f"[korr] {task} {variant} step {step}/{args.residual_steps} "
                              f"success(last 200 eps) {np.mean(recent) if recent else float('nan'):.3f} "
                              f"explained_var {info['explained_var']:.2f} bc_loss {info.get('bc_loss', 0.0):.4f} "
                              f"{elapsed()['wall_s']:.0f} s",
                              file=sys.stderr, flush=True)
                return False

            train_ppo(env, ppo, args.residual_steps, seed=args.seed + start, start_step=start,
                      callback=callback, stats=stats)
        env.close()
        timing = elapsed()
        xs, ys = success_curve(stats.finished)
        recent = [f[1] for f in stats.finished[-200:]]
        first = [f[1] for f in stats.finished[:200]]
        plot_diagnostics(diag_path, task, variant, stats.finished, history)
        tail = history[-20:]
        record = {"steps": args.residual_steps, "episodes": len(stats.finished),
                  "train_success_first200": float(np.mean(first)) if first else None,
                  "train_success_last200": float(np.mean(recent)) if recent else None,
                  "explained_var_last20": float(np.mean([h["explained_var"] for h in tail])) if tail else None,
                  "randomness": args.randomness, "perturbation": args.perturbation, "alpha": args.alpha,
                  "alpha_gripper": agent.config.bounds()[-1], "insert_potential": args.insert_potential,
                  "init_log_std": args.init_log_std, "shaping": args.shaping,
                  "curriculum_steps": args.curriculum_steps, "curriculum_start": args.curriculum_start,
                  "bc_coef": args.bc_coef, "bc_coef_final": args.bc_coef_final, "bc_gripper": args.bc_gripper,
                  "bc_buffer": args.bc_buffer, "koopman_training": agent.config.koopman_training,
                  "latent_norm": agent.config.latent_norm,
                  "model_lr": args.model_lr, "model_steps": args.model_steps,
                  "bc_loss_last20": float(np.mean([h.get("bc_loss", 0.0) for h in tail])) if tail else None,
                  "ppo": cfg.to_dict(), **timing}
        ckpt.save_agent(path, agent.eval(), task, SimSettings().control_dt, {"seed": args.seed, "metrics": record})
        if resume_path.is_file():
            resume_path.unlink()
        curves[variant] = {**record, "curve": {"step": xs, "success": ys},
                           "updates": history[-1] if history else {},
                           "history": [{k: h[k] for k in ("step", *DIAG_KEYS) if k in h} for h in history[::5]]}
        log.put("residual", curves)
    series = {v: (c["curve"]["step"], c["curve"]["success"]) for v, c in curves.items() if c.get("curve")}
    if series:
        _plot(out / "residual_curves.png", series, f"{task}: training success (stochastic, window 1/40 of the run)",
              "environment steps", "success rate")


# ------------------------------------------------------------------------------------ main
def run(args: TrainArgs) -> int:
    torch.set_num_threads(max(1, args.threads))
    tasks = list(TASKS) if args.task == "all" else [args.task]
    stages = list(STAGES) if args.stage == "all" else [args.stage]
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected {TASKS} or all")
    for stage in stages:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected {STAGES} or all")
    if not args.bc_coef >= 0 or (args.bc_coef_final is not None and not args.bc_coef_final >= 0):
        raise ValueError("--bc-coef and --bc-coef-final must be >= 0")
    if args.bc_buffer < 0:
        raise ValueError("--bc-buffer must be >= 0")
    from morobot.korr.residual import KOOPMAN_TRAINING

    if args.koopman_training not in KOOPMAN_TRAINING:
        raise ValueError(f"--koopman-training must be one of {KOOPMAN_TRAINING}")
    if args.model_steps < 0 or not args.model_lr > 0:
        raise ValueError("--model-steps must be >= 0 and --model-lr > 0")
    if not args.target_kl >= 0:
        raise ValueError("--target-kl must be >= 0")
    if not args.alpha > 0 or (args.alpha_gripper is not None and not args.alpha_gripper > 0):
        raise ValueError("--alpha and --alpha-gripper must be > 0")
    funcs = {"demos": stage_demos, "bc": stage_bc, "koopman": stage_koopman, "residual": stage_residual}
    for task in tasks:
        out = Path(args.out) / task
        out.mkdir(parents=True, exist_ok=True)
        log = _Log(out / "train_log.json")
        log.put("args", {f.name: getattr(args, f.name) for f in fields(TrainArgs)})
        for stage in stages:
            t0 = time.perf_counter()
            funcs[stage](args, task, out, log)
            if args.progress:
                print(f"[korr] {task} {stage}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="korr-train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    ns = parser.parse_args(argv)
    try:
        return run(args_from_namespace(ns))
    except (ValueError, FileNotFoundError, ckpt.CheckpointError) as exc:
        print(f"korr train: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
