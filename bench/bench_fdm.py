"""FDM speed: planning cycle, data collection and training throughput, with same-run baselines.

Three measurements, each against a baseline timed in the same process and run:

1. **Planning cycle** with the learned FDM (the planner's default checkpoint ``models/fdm/fdm_legged.pt``
   via :meth:`FDMDynamics.from_checkpoint`), ``K`` samples of ``T`` steps (default 2048 x 10),
   scored with the same :class:`~morobot.planning.cost.NavigationCost` (Euclidean goal distance)
   on a 12 x 12 m height map (gentle bumps, a 0.6 m box, an unknown patch):

   * ``morobot``: :class:`~morobot.planning.mppi.MPPI` over :class:`FDMDynamics`; history and
     height scan are encoded once per cycle and the context is broadcast over the samples;
   * ``compiled``: the same as ``morobot`` (same seed, identical noise) with ``FDMDynamics(compile=True)``:
     the rollouts (the samples and the final one of the mean) run through ``torch.compile``
     (TorchInductor), compiled before timing (the compile time is printed); its plan costs equal
     ``morobot``'s up to float rounding;
   * ``re-encode``: the same MPPI (same seed, hence identical noise) over
     :class:`PerSampleFDMDynamics`, which repeats the history and the scan ``K`` times and runs the
     encoders on the batch every rollout (the reference implementation's way); everything else
     (scan sampling once from the map, predictor, cost) is the same, so its plan costs equal
     ``morobot``'s up to float rounding (the ``max |Δ cost|`` line checks it);
   * ``pytorch_mppi``: ``pytorch_mppi.MPPI`` (white noise, its own update) driving the same model
     one step at a time through :class:`StepwiseFDM`: the per-step dynamics callable advances the
     ensemble predictor's GRU one step; the per-sample state tensor carries the mean pose, risk,
     uncertainty, every member's pose, accumulated hazard and hidden state. The encoders run
     once per cycle (as in ``morobot``) and their constant contributions (initial hidden state,
     context gate bias) are computed once per cycle; a terminal cost evaluates the same
     ``NavigationCost`` on the stored states. ``stepwise vs batched`` checks that stepping gives
     the batched model's poses and risk.

   With ``--members N`` every planner runs the checkpoint's first ``N`` ensemble members (the planner
   parameter ``fdm_members``) and one more planner, ``morobot, all members``, runs ``morobot`` with the
   whole ensemble in the same cycles (same seed), so the saving is a same-run ratio.

   With ``--device cuda`` the planning section runs every planner on the GPU (model, samples, noise,
   cost; the scan is sampled on the CPU as in the node); the timers synchronise the GPU before they
   stop, so a cycle's wall time includes its kernels, and MPPI's rollout timer (the model part) waits
   for the model's kernels. ``--samples`` takes several sizes (one row each).

   Every cycle uses a new state stamp (so no context is reused across cycles), the planners are
   warm-started and called interleaved (rotating order), in one process, with the same torch
   thread count; 1 and 2 threads are measured in turn. Wall time (``perf_counter``) and process
   CPU time (``process_time``, all threads) are reported, median and minimum. Plan cost: each
   planner's final command sequence scored with the same model and cost. Target: <= 20 ms per
   cycle on 2 cores (issue 16; the rigid robot's issue asked for 50 ms).

2. **Collection throughput** of :func:`morobot.fdm.data.collect.collect` with one worker (in process,
   small run, written to a temporary directory) against the raw physics of :class:`AnymalSim`
   on the same worlds for the same simulated time and number of episodes (reset at random free
   starts, the same kind of random command stream re-sent every 0.05 s, ``advance(0.05)``,
   border check only). Sim time = 0.5 s command steps x 0.5 s; MuJoCo steps at 0.005 s.

3. **Training throughput**: one FDM training step as in :mod:`morobot.fdm.training.train` (forward,
   ``fdm_loss`` with Poisson bootstrap weights, backward, gradient clip, AdamW) at the default
   configuration (ensemble 4) and batch size (2048) on synthetic tensors of the data's shapes,
   with and without the scan branch; data loading is not included.

Usage:
    python bench/bench_fdm.py              # default mode: 5 min at load 4-5 on the shared 2-core machine
    python bench/bench_fdm.py --quick      # fewer repeats, one small world: under 2 min
    python bench/bench_fdm.py --sections plan --threads 2 --samples 1024
    python bench/bench_fdm.py --sections plan --checkpoint models/fdm/fdm_legged.pt --members 2
    python bench/bench_fdm.py --sections plan --checkpoint models/fdm/fdm_legged.pt --members 2 \
        --device cuda --threads 2 --samples 2048 4096 8192 16384        # on a GPU machine

Recorded figures, with the command, date and load average: docs/fdm.md ("Speed").
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pytorch_mppi
import torch
from torch.nn import functional as F

from morobot.fdm import se2
from morobot.fdm.dynamics import FDMDynamics
from morobot.fdm.heightscan import SCAN_CHANNELS, scan_from_heightmap
from morobot.fdm.history import stationary_history
from morobot.fdm.training.loss import LossWeights, fdm_loss
from morobot.fdm.model import FDMConfig, FDMPrediction, MemberOutput, PerceptiveFDM
from morobot.planning.cost import NavigationCost
from morobot.planning.interface import HeightMap, NavState, Rollout
from morobot.planning.mppi import MPPI, MPPIConfig

GOAL = (3.0, 1.0, 0.0)
PLANNERS = ("morobot", "compiled", "re-encode", "pytorch_mppi")
ALL_MEMBERS = "morobot, all members"
TARGET_MS = 20.0
GRAPHED = "compiled, CUDA graphs"


@dataclass
class BenchArgs:
    """Benchmark settings (see ``--help``)."""

    sections: list[str] = field(default_factory=lambda: ["plan", "collect", "train"])
    checkpoint: Optional[str] = None
    members: int = 0
    samples: list[int] = field(default_factory=lambda: [2048])
    horizon: int = 10
    device: str = "cpu"
    threads: list[int] = field(default_factory=lambda: [1, 2])
    repeats: int = 8
    warmup: int = 2
    collect_kinds: list[str] = field(default_factory=lambda: ["rough", "cluttered"])
    collect_samples: int = 300
    collect_repeats: int = 1
    train_batch: int = 2048
    train_repeats: int = 2
    train_warmup: int = 1
    seed: int = 0
    json: Optional[str] = None


def parse_args(argv: Optional[Sequence[str]] = None) -> BenchArgs:
    d = BenchArgs()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", nargs="+", choices=["plan", "collect", "train"], default=d.sections)
    p.add_argument("--checkpoint", help="FDM checkpoint (default: the planner's, models/fdm/fdm_legged.pt)")
    p.add_argument("--members", type=int, default=d.members,
                   help="plan with the checkpoint's first N ensemble members (fdm_members; 0 = all); the whole "
                        "ensemble is timed in the same cycles as a further planner")
    p.add_argument("--samples", type=int, nargs="+", default=d.samples, help="MPPI samples K (one table row each)")
    p.add_argument("--horizon", type=int, default=d.horizon, help="MPPI steps T")
    p.add_argument("--threads", type=int, nargs="+", default=d.threads, help="torch thread counts")
    p.add_argument("--device", default=d.device,
                   help="torch device of the planning section: cpu, cuda or cuda:N (timers synchronise the GPU)")
    p.add_argument("--repeats", type=int, default=d.repeats, help="timed planning cycles per planner")
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--collect-kinds", nargs="+", default=d.collect_kinds, help="one world of each kind")
    p.add_argument("--collect-samples", type=int, default=d.collect_samples, help="samples per world")
    p.add_argument("--collect-repeats", type=int, default=d.collect_repeats)
    p.add_argument("--train-batch", type=int, default=d.train_batch)
    p.add_argument("--train-repeats", type=int, default=d.train_repeats)
    p.add_argument("--train-warmup", type=int, default=d.train_warmup)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", help="also write all results to this JSON file")
    p.add_argument("--quick", action="store_true",
                   help="3 planning cycles, no warm-up; one rough world of 80 samples; 1 training step, no warm-up")
    ns = p.parse_args(argv)
    if ns.quick:
        ns.repeats, ns.warmup = 3, 0
        ns.collect_kinds, ns.collect_samples, ns.collect_repeats = ["rough"], 80, 1
        ns.train_repeats, ns.train_warmup = 1, 0
    if min(ns.repeats, min(ns.samples) - 1, ns.horizon, ns.collect_samples, ns.collect_repeats, ns.train_batch,
           ns.train_repeats, *ns.threads) < 1 or ns.warmup < 0 or ns.train_warmup < 0:
        p.error("counts must be >= 1 (samples >= 2), warm-ups >= 0")
    if not ns.device.startswith("cpu") and not torch.cuda.is_available():
        p.error(f"device {ns.device!r}: this machine has no CUDA GPU")
    kw = {k: v for k, v in vars(ns).items() if k != "quick"}
    return BenchArgs(**kw)


# ----------------------------------------------------------------------------- common
def load_average() -> str:
    """The 1/5/15-minute load averages as text."""
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def sync() -> None:
    """Waits for queued GPU work (a no-op without CUDA), so that a timer stops after the work it times."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(wall s, process CPU s, result)`` of one call (GPU work included: :func:`sync` before and after)."""
    sync()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, time.process_time() - c0, out


def load_dynamics(checkpoint: Optional[str] = None, members: int = 0, device: str = "cpu") -> FDMDynamics:
    """The shipped FDM (or ``checkpoint``) on ``device`` as planner dynamics, first ``members`` members (0 = all)."""
    if checkpoint is None:
        from morobot.paths import default_fdm_checkpoint

        checkpoint = str(default_fdm_checkpoint())
    return FDMDynamics.from_checkpoint(checkpoint, members=members, device=device)


def make_scene(seed: int = 0, dyn: Optional[FDMDynamics] = None) -> tuple[HeightMap, NavState]:
    """12 x 12 m map at 0.1 m around the robot (bumps, a 0.6 m box ahead, an unknown patch) and a state.

    The map is as large as the planner node's (``config/navigate.yaml``) so the whole scan is covered.
    A legged model's joint columns are its training mean (a robot standing as the data's average).
    """
    rng = np.random.default_rng(seed)
    n, res, origin = 120, 0.1, (-6.0, -6.0)
    gx, gy = np.meshgrid(origin[0] + res * np.arange(n), origin[1] + res * np.arange(n), indexing="ij")
    heights = 0.05 * np.sin(1.3 * gx + rng.uniform(0, 6)) * np.cos(0.9 * gy + rng.uniform(0, 6))
    heights[(np.abs(gx - 1.5) < 0.3) & (np.abs(gy - 0.4) < 0.4)] = 0.6
    heights[(gx > 3.0) & (gx < 4.0) & (gy < -1.0)] = np.nan
    hmap = HeightMap(torch.tensor(heights, dtype=torch.float32), origin, res)
    history = stationary_history([0.3, 0.0, 0.0], [0.0, 0.0, -1.0], 10)
    if dyn is not None and dyn.config.history_dim > history.shape[1]:
        extra = dyn.model.history_mean[history.shape[1]:].cpu().numpy().astype(np.float32)
        history = np.concatenate((history, np.tile(extra, (len(history), 1))), axis=1)
    state = NavState(pose=np.array([0.0, 0.0, 0.1]), twist=np.array([0.3, 0.0, 0.0]), z=0.55, history=history)
    return hmap, state


def cycle_state(state: NavState, i: int) -> NavState:
    """``state`` with stamp ``i``: a new planning cycle (defeats FDMDynamics' context cache)."""
    return NavState(pose=state.pose, twist=state.twist, z=state.z, gravity_b=state.gravity_b,
                    history=state.history, stamp=float(i))


# ----------------------------------------------------------------------------- planners
class GraphedFDMDynamics(FDMDynamics):
    """:class:`FDMDynamics` whose rollouts run through ``torch.compile(mode="reduce-overhead")`` (CUDA graphs).

    A bench-only variant for the GPU: a replayed graph launches the predictor's kernels in one call. A
    graph's outputs live in memory the next replay reuses, so each prediction is cloned.
    """

    def __init__(self, model: PerceptiveFDM, device: str | torch.device) -> None:
        super().__init__(model, device=device)
        graphed = torch.compile(self.model.predict, mode="reduce-overhead", dynamic=False)

        def predict(context: torch.Tensor, commands: torch.Tensor, start: torch.Tensor) -> FDMPrediction:
            out = graphed(context, commands, start)
            members = MemberOutput(*(t.clone() for t in out.members))
            return FDMPrediction(out.poses.clone(), out.collision.clone(), out.uncertainty.clone(), members)

        self._compiled = predict


class SyncedDynamics:
    """``dynamics`` whose rollout waits for its GPU work, so that MPPI's rollout timer covers the model's kernels."""

    def __init__(self, dynamics: Any) -> None:
        self.inner = dynamics

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def rollout(self, state: NavState, commands: torch.Tensor, hmap: Optional[HeightMap]) -> Rollout:
        sync()
        out = self.inner.rollout(state, commands, hmap)
        sync()
        return out


class PerSampleFDMDynamics:
    """The FDM with the reference implementation's encoding: history and scan encoded per sample.

    The scan is sampled once from the map (as in :class:`FDMDynamics`); the history and the scan
    tensors are then repeated ``K`` times and both encoders run on the batch at every rollout
    (no caching), giving a ``[K, context]`` context for the predictor.
    """

    def __init__(self, dynamics: FDMDynamics) -> None:
        self.inner = dynamics
        self.model = dynamics.model
        self.config = dynamics.config
        self.dt = dynamics.dt

    def rollout(self, state: NavState, commands: torch.Tensor, hmap: Optional[HeightMap]) -> Rollout:
        cfg, k = self.config, commands.shape[0]
        hist = np.asarray(state.history if state.history is not None else
                          stationary_history(state.twist, state.gravity_b, cfg.history_length), dtype=np.float32)
        dev = self.inner.device
        history = torch.from_numpy(hist).to(dev)[None].repeat(k, 1, 1)
        scan = None
        if cfg.use_scan:
            one = scan_from_heightmap(hmap, np.asarray(state.pose, dtype=np.float64), float(state.z), cfg.scan)
            scan = torch.from_numpy(one).to(dev)[None].repeat(k, 1, 1, 1)
        start = torch.as_tensor(np.asarray(state.pose, dtype=np.float32), device=dev)
        with torch.inference_mode():
            context = self.model.encode(history, scan)  # [K, context_dim]
            pred = self.model.predict(context, commands.to(dev, torch.float32), start)
        unc = pred.uncertainty.clone() if cfg.ensemble_size > 1 else None
        return Rollout(poses=pred.poses.clone(), risk=pred.collision.clone(), uncertainty=unc)


class StepwiseFDM:
    """``pytorch_mppi.MPPI`` driving the FDM one step at a time.

    State per sample (``nx = 5 + 4 E + E H``): ``[0:3]`` ensemble-mean pose in odom, ``[3]`` risk
    (mean member P(failed by t)), ``[4]`` uncertainty (RMS member position spread), then each
    member's pose relative to the start (``3 E``), its accumulated hazard (``E``) and its GRU hidden
    state (``E H``); for a model whose poses stop at its predicted failures (``stop_at_failure``)
    also each member's running sum of ``P(first failure at s) (x, y, cos yaw, sin yaw)_s`` (``4 E``),
    from which a step gives the same expected pose as :func:`~morobot.fdm.model.stop_at_failure`.
    :meth:`begin_cycle` encodes history and scan once and returns the initial state (hidden state
    ``tanh(W_h0 c)``); the context's gate bias is held for the cycle. The step is the exact per-step
    computation of :class:`~morobot.fdm.modules.EnsemblePredictor` plus the SE(2) integration and
    aggregation of :meth:`PerceptiveFDM.predict`.
    """

    def __init__(self, dynamics: FDMDynamics, cost: NavigationCost, cfg: MPPIConfig,
                 goal: Sequence[float] = GOAL) -> None:
        self.dyn, self.cost, self.goal = dynamics, cost, tuple(goal)
        self.model = dynamics.model
        pred = self.model.predictor
        self.e, self.h = pred.members, pred.hidden
        self.stop = bool(self.model.config.stop_at_failure)
        self.nx = 5 + 4 * self.e + self.e * self.h + (4 * self.e if self.stop else 0)
        self.dt = float(self.model.config.dt)
        self.model_seconds = 0.0
        self.device = dev = dynamics.device
        sigma = torch.tensor(cfg.sigma, dtype=torch.float32, device=dev)
        self.controller = pytorch_mppi.MPPI(
            self.dynamics,
            self.running_cost,
            nx=self.nx,
            noise_sigma=torch.diag(sigma * sigma),
            num_samples=cfg.num_samples,
            horizon=cfg.horizon,
            device=dev,
            lambda_=cfg.temperature,
            u_min=torch.tensor(cfg.u_min, dtype=torch.float32, device=dev),
            u_max=torch.tensor(cfg.u_max, dtype=torch.float32, device=dev),
            u_init=torch.zeros(3, device=dev),
            U_init=torch.zeros(cfg.horizon, 3, device=dev),
            terminal_state_cost=self.terminal_cost,
            sample_null_action=True,
        )

    @torch.inference_mode()
    def begin_cycle(self, state: NavState, hmap: Optional[HeightMap]) -> torch.Tensor:
        """Encodes once and returns the ``[nx]`` initial state."""
        p, e, hid = self.model.predictor, self.e, self.h
        context = self.dyn.encode(state, hmap)  # [1, C], once per cycle
        ctx = context.unsqueeze(0).expand(e, 1, context.shape[1])
        h0 = torch.tanh(torch.baddbmm(p.b_h0.unsqueeze(1), ctx, p.w_h0))  # [E, 1, H]
        g_ctx = torch.baddbmm(p.b_ctx.unsqueeze(1), ctx, p.w_ctx)  # [E, 1, 3H]
        two = 2 * hid
        self._w_rz = torch.cat((p.w_cmd[..., :two], p.w_hh[..., :two]), dim=1)
        self._b_rz = g_ctx[..., :two] + p.b_hh[..., :two].unsqueeze(1)
        self._w_in, self._w_hn = p.w_cmd[..., two:].contiguous(), p.w_hh[..., two:].contiguous()
        self._b_in, self._b_hn = g_ctx[..., two:], p.b_hh[..., two:].unsqueeze(1)
        self._b_out = p.b_out.unsqueeze(1)
        self._start = torch.as_tensor(np.asarray(state.pose, dtype=np.float32), device=self.device)
        x0 = torch.zeros(self.nx, device=self.device)
        x0[:3] = self._start
        x0[5 + 4 * e:5 + 4 * e + e * hid] = h0.reshape(-1)
        return x0

    def dynamics(self, state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One FDM step for ``[K, nx]`` states and ``[K, 3]`` commands."""
        sync()
        t0 = time.perf_counter()
        model, p = self.model, self.model.predictor
        e, hid, k = self.e, self.h, state.shape[0]
        o_pose, o_haz, o_h, o_acc = 5, 5 + 3 * e, 5 + 4 * e, 5 + 4 * e + e * hid
        h = state[:, o_h:o_acc].reshape(k, e, hid).transpose(0, 1)  # [E, K, H]
        scale = model.command_scale
        x = F.elu(p.command(u / scale))
        x = x.unsqueeze(0).expand(e, k, x.shape[-1])
        r, z = torch.sigmoid(torch.baddbmm(self._b_rz, torch.cat((x, h), dim=-1), self._w_rz)).chunk(2, dim=-1)
        n = torch.tanh(torch.addcmul(torch.baddbmm(self._b_in, x, self._w_in), r,
                                     torch.baddbmm(self._b_hn, h, self._w_hn)))
        h = torch.lerp(n, h, z)
        out = torch.baddbmm(self._b_out, h, p.w_out)  # [E, K, 4]
        local = se2.exp_twist(u.unsqueeze(0) + out[..., :3] * scale, self.dt)  # [E, K, 3]
        mp = state[:, o_pose:o_haz].reshape(k, e, 3).transpose(0, 1)  # member poses, start frame
        c, s = torch.cos(mp[..., 2]), torch.sin(mp[..., 2])
        mx = mp[..., 0] + c * local[..., 0] - s * local[..., 1]
        my = mp[..., 1] + s * local[..., 0] + c * local[..., 1]
        myaw = mp[..., 2] + local[..., 2]
        haz_before = state[:, o_haz:o_h].transpose(0, 1)
        haz = haz_before + F.softplus(out[..., 3])  # [E, K]
        failed = -torch.expm1(-haz)
        risk = failed.mean(dim=0)
        extra = []
        sx, sy, syaw = mx, my, myaw
        if self.stop:  # the expected pose under the members' failure times
            parts = torch.stack((mx, my, torch.cos(myaw), torch.sin(myaw)), dim=-1)  # [E, K, 4]
            first = failed + torch.expm1(-haz_before)  # P(failed by t) - P(failed by t - 1)
            acc = state[:, o_acc:].reshape(k, e, 4).transpose(0, 1) + first.unsqueeze(-1) * parts
            mixed = acc + (1.0 - failed).unsqueeze(-1) * parts
            sx, sy, syaw = mixed[..., 0], mixed[..., 1], torch.atan2(mixed[..., 3], mixed[..., 2])
            extra = [acc.transpose(0, 1).reshape(k, 4 * e)]
        xy = torch.stack((sx, sy), dim=-1)
        mean_xy = xy.mean(dim=0)
        mean_yaw = torch.atan2(torch.sin(syaw).mean(dim=0), torch.cos(syaw).mean(dim=0))
        unc = (xy - mean_xy).square().sum(dim=-1).mean(dim=0).sqrt()
        pose = se2.compose(self._start, torch.cat((mean_xy, mean_yaw[:, None]), dim=-1))
        members = torch.stack((mx, my, myaw), dim=-1).transpose(0, 1).reshape(k, 3 * e)
        nxt = torch.cat((pose, risk[:, None], unc[:, None], members, haz.t(), h.transpose(0, 1).reshape(k, e * hid),
                         *extra), dim=1)
        sync()
        self.model_seconds += time.perf_counter() - t0
        return nxt

    @staticmethod
    def running_cost(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.zeros(state.shape[0], dtype=state.dtype, device=state.device)

    def terminal_cost(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        rollout = Rollout(poses=states[0, :, :, :3], risk=states[0, :, :, 3], uncertainty=states[0, :, :, 4])
        return self.cost(rollout, actions[0], self.goal)

    def plan(self, state: NavState, hmap: Optional[HeightMap]) -> np.ndarray:
        """One planning cycle; returns the ``[T, 3]`` command sequence."""
        with torch.inference_mode():
            t0 = time.perf_counter()
            x0 = self.begin_cycle(state, hmap)
            self.model_seconds += time.perf_counter() - t0
            self.controller.command(x0)
            return self.controller.get_action_sequence().cpu().numpy().astype(np.float64)

    @torch.inference_mode()
    def rollout_stepwise(self, state: NavState, hmap: Optional[HeightMap], commands: torch.Tensor) -> Rollout:
        """Steps ``[K, T, 3]`` commands through :meth:`dynamics` (for checking against the batched model)."""
        commands = commands.to(self.device)
        x = self.begin_cycle(state, hmap).expand(commands.shape[0], -1)
        steps = []
        for t in range(commands.shape[1]):
            x = self.dynamics(x, commands[:, t])
            steps.append(x[:, :5])
        s = torch.stack(steps, dim=1)
        return Rollout(poses=s[..., :3], risk=s[..., 3], uncertainty=s[..., 4])


def make_planners(dyn: FDMDynamics, samples: int, horizon: int, seed: int = 0,
                  full: Optional[PerceptiveFDM] = None) -> dict[str, Callable]:
    """The planners as ``plan(state, hmap) -> (commands [T, 3], model seconds)`` callables.

    ``morobot`` and ``re-encode`` use separate :class:`MPPI` objects with the same seed (identical
    noise) and, like ``pytorch_mppi``, their own :class:`FDMDynamics` view of the same model (so no
    planner reuses another's cached context). With ``full`` (the whole ensemble of which ``dyn`` runs
    some members) one more planner, :data:`ALL_MEMBERS`, is ``morobot`` over ``full``.
    """
    dev = dyn.device
    # every compiled view compiles the same ``predict`` once per shape and mode; past the recompile limit (8)
    # dynamo would run later sizes eagerly without a word
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    cfg = MPPIConfig(num_samples=samples, horizon=horizon, dt=dyn.dt, seed=seed, device=str(dev))
    compiled_dyn = FDMDynamics(dyn.model, device=dev, compile=True)
    compile_seconds = sum(compiled_dyn.warm_up(k, horizon) for k in (samples, 1))  # samples, final rollout
    if compiled_dyn.compile_error:
        raise RuntimeError(f"torch.compile failed: {compiled_dyn.compile_error}")
    torch.manual_seed(seed)  # pytorch_mppi samples from the global generator
    theirs = StepwiseFDM(FDMDynamics(dyn.model, device=dev), NavigationCost(), cfg)

    def mppi_plan(dynamics: Any) -> Callable:
        """MPPI over ``dynamics`` (on a GPU its rollout timer waits for the model's kernels)."""
        mppi = MPPI(SyncedDynamics(dynamics) if dev.type == "cuda" else dynamics, NavigationCost(), cfg)

        def plan(state: NavState, hmap: HeightMap) -> tuple[np.ndarray, float]:
            res = mppi.plan(state, hmap, GOAL)
            return res.commands, res.timings["rollout"]
        plan.mppi = mppi  # type: ignore[attr-defined]
        return plan

    def stepwise_plan(state: NavState, hmap: HeightMap) -> tuple[np.ndarray, float]:
        theirs.model_seconds = 0.0
        commands = theirs.plan(state, hmap)
        return commands, theirs.model_seconds

    stepwise_plan.adapter = theirs  # type: ignore[attr-defined]
    compiled_plan = mppi_plan(compiled_dyn)
    compiled_plan.compile_seconds = compile_seconds  # type: ignore[attr-defined]
    planners = {"morobot": mppi_plan(FDMDynamics(dyn.model, device=dev)), "compiled": compiled_plan,
                "re-encode": mppi_plan(PerSampleFDMDynamics(FDMDynamics(dyn.model, device=dev))),
                "pytorch_mppi": stepwise_plan}
    if full is not None:
        planners[ALL_MEMBERS] = mppi_plan(FDMDynamics(full, device=dev))
    if dev.type == "cuda":
        graphed = GraphedFDMDynamics(dyn.model, dev)
        for k in (samples, 1):
            graphed.warm_up(k, horizon)
        if graphed.compile_error:  # it would run eagerly: no row rather than a mislabelled one
            print(f"  {GRAPHED}: left out ({graphed.compile_error})", file=sys.stderr, flush=True)
        else:
            planners[GRAPHED] = mppi_plan(graphed)
    return planners


def plan_cost(dyn: FDMDynamics, state: NavState, hmap: HeightMap, commands: np.ndarray) -> float:
    """Cost of one command sequence under the (broadcast) FDM and the navigation cost."""
    cmd = torch.as_tensor(np.asarray(commands), dtype=torch.float32, device=dyn.device)[None]
    return float(NavigationCost()(dyn.rollout(state, cmd, hmap), cmd, GOAL)[0])


def encoding_gap(dyn: FDMDynamics, state: NavState, hmap: HeightMap, samples: int, horizon: int,
                 seed: int = 0) -> float:
    """Max |cost difference| between broadcast and per-sample encoding for the same random commands."""
    gen = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(MPPIConfig().u_min), torch.tensor(MPPIConfig().u_max)
    cmd = (lo + (hi - lo) * torch.rand(samples, horizon, 3, generator=gen)).to(dyn.device)
    cost = NavigationCost()
    a = cost(FDMDynamics(dyn.model, device=dyn.device).rollout(state, cmd, hmap), cmd, GOAL)
    b = cost(PerSampleFDMDynamics(dyn).rollout(state, cmd, hmap), cmd, GOAL)
    return float((a - b).abs().max())


def stepwise_gap(dyn: FDMDynamics, state: NavState, hmap: HeightMap, samples: int, horizon: int,
                 seed: int = 0) -> dict[str, float]:
    """Max |difference| of poses, risk and uncertainty between :class:`StepwiseFDM` and ``dyn.rollout``."""
    gen = torch.Generator().manual_seed(seed)
    cmd = (torch.rand(samples, horizon, 3, generator=gen) * 2.0 - 1.0).to(dyn.device)
    cfg = MPPIConfig(num_samples=max(samples, 2), horizon=horizon, dt=dyn.dt, device=str(dyn.device))
    step = StepwiseFDM(FDMDynamics(dyn.model, device=dyn.device), NavigationCost(), cfg).rollout_stepwise(
        state, hmap, cmd)
    ref = FDMDynamics(dyn.model, device=dyn.device).rollout(state, cmd, hmap)
    dyaw = se2.wrap_angle(step.poses[..., 2] - ref.poses[..., 2])
    return {
        "position": float((step.poses[..., :2] - ref.poses[..., :2]).abs().max()),
        "yaw": float(dyaw.abs().max()),
        "risk": float((step.risk - ref.risk).abs().max()),
        # a single member has no spread: the model reports none, the stepwise rollout zeros
        "uncertainty": float((step.uncertainty - (0.0 if ref.uncertainty is None else ref.uncertainty)).abs().max()),
    }


def bench_planning(dyn: FDMDynamics, samples: int, horizon: int, repeats: int, warmup: int,
                   seed: int = 0, full: Optional[PerceptiveFDM] = None) -> dict[str, Any]:
    """Interleaved planning cycles of the planners (:func:`make_planners`) at the current torch thread count.

    Returns:
        Per planner: ``wall_median``, ``wall_min``, ``cpu_median``, ``cpu_min``, ``model_median``
        (ms), ``plan_cost`` (last cycle) and ``commands`` (last cycle); plus ``planners`` (their names),
        ``max_cost_gap`` between ``morobot`` and ``re-encode`` plan costs over all cycles, and ``threads``.
    """
    hmap, base = make_scene(seed, dyn)
    planners = make_planners(dyn, samples, horizon, seed, full)
    names = tuple(planners)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    model: dict[str, list[float]] = {n: [] for n in names}
    last: dict[str, np.ndarray] = {}
    costs: dict[str, float] = {}
    gap = compiled_gap = 0.0
    for i in range(warmup + repeats):
        state = cycle_state(base, i)
        turn = i % len(names)
        order = names[turn:] + names[:turn]
        for name in order:
            w, c, (commands, model_s) = timed(lambda: planners[name](state, hmap))
            last[name] = commands
            if i >= warmup:
                wall[name].append(w)
                cpu[name].append(c)
                model[name].append(model_s)
        costs = {n: plan_cost(dyn, state, hmap, last[n]) for n in names}
        gap = max(gap, abs(costs["morobot"] - costs["re-encode"]))
        for n in ("compiled", GRAPHED):
            if n in costs:
                compiled_gap = max(compiled_gap, abs(costs["morobot"] - costs[n]))
    ms = lambda xs, f: 1e3 * f(xs)  # noqa: E731
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "samples": samples, "horizon": horizon,
                           "device": str(dyn.device),
                           "planners": names, "members": dyn.config.ensemble_size,
                           "repeats": repeats, "max_cost_gap": gap, "max_compiled_gap": compiled_gap,
                           "compile_seconds": planners["compiled"].compile_seconds}
    for n in names:
        out[n] = {
            "wall_median": ms(wall[n], statistics.median), "wall_min": ms(wall[n], min),
            "cpu_median": ms(cpu[n], statistics.median), "cpu_min": ms(cpu[n], min),
            "model_median": ms(model[n], statistics.median),
            "plan_cost": costs[n], "commands": last[n],
        }
    return out


# ----------------------------------------------------------------------------- collection
def physics_only(kind: str, world_seed: int, cfg: Any, steps: int, episodes: int, seed: int) -> dict[str, float]:
    """Raw AnymalSim physics on the collector's world: ``steps`` 0.5 s steps over ``episodes`` resets.

    Returns wall/CPU seconds of building world and simulator (``build_*``) and of driving (``drive_*``),
    and the simulated seconds.
    """
    from morobot.fdm.data.collect import free_starts
    from morobot.fdm.data.commands import sample_command_sequences
    from morobot.sim.anymal import AnymalSim
    from morobot.sim.worlds import make_world

    def build() -> tuple[Any, Any]:
        world = make_world(kind, world_seed, size=cfg.world_size)
        return world, AnymalSim(world)

    bw, bc, (world, sim) = timed(build)
    rng = np.random.default_rng([seed, world_seed, 1])
    starts = free_starts(world, cfg)
    sub = int(round(cfg.dt / cfg.history_dt))
    per_episode = max(1, math.ceil(steps / max(episodes, 1)))
    x0, x1, y0, y1 = world.extent

    def drive() -> float:
        remaining, sim_s = steps, 0.0
        while remaining > 0:
            xy = starts[rng.integers(len(starts))]
            sim.reset((xy[0], xy[1], rng.uniform(-math.pi, math.pi)))
            n = min(per_episode, remaining)
            stream = sample_command_sequences(rng, math.ceil(n / cfg.horizon), cfg.horizon, cfg.dt,
                                              cfg.limits).reshape(-1, 3)
            done = 0
            for k in range(n):
                for _ in range(sub):
                    sim.set_command(stream[k])
                    state = sim.advance(cfg.history_dt)
                done += 1
                x, y = state.position[:2]
                if min(x - x0, x1 - x, y - y0, y1 - y) < cfg.edge_margin:
                    break
            remaining -= done
            sim_s += done * cfg.dt
        return sim_s

    dw, dc, sim_s = timed(drive)
    return {"build_wall": bw, "build_cpu": bc, "drive_wall": dw, "drive_cpu": dc, "sim_s": sim_s}


def bench_collection(kinds: Sequence[str], samples_per_world: int, repeats: int = 1, seed: int = 0,
                     world_size: tuple[float, float] = (20.0, 20.0)) -> dict[str, Any]:
    """Collector (1 worker, in process) vs raw physics on the same worlds, ``repeats`` interleaved runs."""
    from morobot.fdm.data.collect import CollectConfig, _tasks, collect

    rows: dict[str, list[dict[str, float]]] = {"collector": [], "physics": []}
    for _ in range(repeats):
        tmp = Path(tempfile.mkdtemp(prefix="bench_fdm_collect_"))
        try:
            cfg = CollectConfig(out_dir=str(tmp / "data"), kinds=tuple(kinds), worlds_per_kind=1,
                                samples_per_world=samples_per_world, workers=1, seed=seed,
                                world_size=tuple(world_size), progress=False)
            w, c, manifest = timed(lambda: collect(cfg))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        shards = {s["world_id"]: s for s in manifest["shards"]}
        steps = sum(s["stats"]["steps"] for s in shards.values())
        episodes = sum(s["stats"]["episodes"] for s in shards.values())
        rows["collector"].append({"wall": w, "cpu": c, "sim_s": steps * cfg.dt, "samples": manifest["total_samples"],
                                  "steps": steps, "episodes": episodes})
        phys = {"build_wall": 0.0, "build_cpu": 0.0, "drive_wall": 0.0, "drive_cpu": 0.0, "sim_s": 0.0}
        for kind, world_seed in _tasks(cfg):
            st = shards.get(f"{kind}-{world_seed:05d}", {"stats": {"steps": 0, "episodes": 0}})["stats"]
            if st["steps"]:
                r = physics_only(kind, world_seed, cfg, st["steps"], st["episodes"], seed)
                for key in phys:
                    phys[key] += r[key]
        rows["physics"].append(phys)
    med = lambda key, name: statistics.median(r[key] for r in rows[name])  # noqa: E731
    col = {k: med(k, "collector") for k in rows["collector"][0]}
    phy = {k: med(k, "physics") for k in rows["physics"][0]}
    return {"kinds": list(kinds), "samples_per_world": samples_per_world, "repeats": repeats,
            "collector": col, "physics": phy}


# ----------------------------------------------------------------------------- training
def make_train_batch(config: FDMConfig, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Synthetic tensors with the shapes (and plausible ranges) of :class:`FDMDataset` batches."""
    g = torch.Generator().manual_seed(seed)
    lim = torch.tensor(config.command_limits)
    commands = (torch.rand(batch, config.horizon, 3, generator=g) * 2 - 1) * lim
    poses = se2.integrate(commands * 0.8, config.dt)
    fail_step = torch.randint(0, config.horizon, (batch, 1), generator=g)
    fails = torch.rand(batch, 1, generator=g) < 0.1
    failed = (fails & (torch.arange(config.horizon)[None] >= fail_step)).float()
    out = {
        "history": torch.randn(batch, config.history_length, config.history_dim, generator=g),
        "commands": commands,
        "poses": poses,
        "failed": failed,
    }
    if config.use_scan:
        height = 0.1 * torch.randn(batch, 1, *config.scan.shape, generator=g)
        valid = (torch.rand(batch, 1, *config.scan.shape, generator=g) > 0.05).float()
        out["scan"] = torch.cat((height * valid, valid), dim=1)
        assert out["scan"].shape[1] == SCAN_CHANNELS
    return out


def make_train_step(config: FDMConfig, batch: int, seed: int = 0,
                    lr: float = 3e-3, weight_decay: float = 1e-4, grad_clip: float = 1.0) -> Callable[[], float]:
    """One training step of :func:`morobot.fdm.training.train.train` on a fixed synthetic batch; returns the loss."""
    torch.manual_seed(seed)
    model = PerceptiveFDM(config)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    b = make_train_batch(config, batch, seed)
    weights = LossWeights()

    def step() -> float:
        out = model(b["history"], b.get("scan"), b["commands"])
        sample_w = None
        if config.ensemble_size > 1:
            sample_w = torch.poisson(torch.ones(config.ensemble_size, batch), generator=gen)
        loss, _ = fdm_loss(out, b["poses"], b["failed"], weights, sample_w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        return float(loss.detach())

    return step


def default_train_config(no_scan: bool) -> FDMConfig:
    """The model :mod:`morobot.fdm.training.train` builds with its default arguments on the default data spec."""
    from morobot.fdm.data.dataset import DataSpec
    from morobot.fdm.training.train import TrainArgs, build_config

    return build_config(DataSpec(), TrainArgs(data_dir="", out_dir="", no_scan=no_scan))


def bench_training(batch: int, repeats: int, warmup: int, seed: int = 0,
                   configs: Optional[dict[str, FDMConfig]] = None) -> dict[str, Any]:
    """Interleaved training steps (scan / no scan) at the current thread count; ms per step and samples/s."""
    configs = configs or {"FDM": default_train_config(False), "FDM without scan": default_train_config(True)}
    steps = {name: make_train_step(cfg, batch, seed) for name, cfg in configs.items()}
    wall: dict[str, list[float]] = {n: [] for n in steps}
    cpu: dict[str, list[float]] = {n: [] for n in steps}
    losses: dict[str, float] = {}
    for i in range(warmup + repeats):
        for name, fn in steps.items():
            w, c, loss = timed(fn)
            losses[name] = loss
            if i >= warmup:
                wall[name].append(w)
                cpu[name].append(c)
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "batch": batch, "repeats": repeats}
    for n in steps:
        wm = statistics.median(wall[n])
        out[n] = {"wall_median": 1e3 * wm, "wall_min": 1e3 * min(wall[n]),
                  "cpu_median": 1e3 * statistics.median(cpu[n]),
                  "samples_per_s": batch / wm, "samples_per_s_best": batch / min(wall[n]),
                  "loss": losses[n]}
    return out


# ----------------------------------------------------------------------------- main
def _print_planning(results: list[dict[str, Any]]) -> None:
    ks = ", ".join(sorted({str(r["samples"]) for r in results}, key=int))
    print(f"\n### Planning cycle, {ks} samples x {results[0]['horizon']} steps on {results[0]['device']}, "
          f"{results[0]['repeats']} interleaved cycles per planner, {results[0]['members']} ensemble members\n")
    print("| threads | samples | planner | wall median (ms) | wall min (ms) | CPU median / min (ms) "
          f"| model part median (ms) | wall vs morobot | <= {TARGET_MS:.0f} ms | plan cost |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---|---:|")
    for r in results:
        base = r["morobot"]["wall_median"]
        for n in r["planners"]:
            x = r[n]
            ok = "yes" if x["wall_median"] <= TARGET_MS else ("min only" if x["wall_min"] <= TARGET_MS else "no")
            print(f"| {r['threads']} | {r['samples']} | {n} | {x['wall_median']:.1f} | {x['wall_min']:.1f} "
                  f"| {x['cpu_median']:.1f} / {x['cpu_min']:.1f} | {x['model_median']:.1f} "
                  f"| {x['wall_median'] / base:.1f}x | {ok} | {x['plan_cost']:.1f} |")
    tag = lambda r: f"{r['threads']} thr, {r['samples']}"  # noqa: E731
    gaps = ", ".join(f"{r['max_cost_gap']:.2g} ({tag(r)})" for r in results)
    print(f"\nmax |plan cost morobot - re-encode| over all cycles (identical noise): {gaps}")
    gaps = ", ".join(f"{r['max_compiled_gap']:.2g} ({tag(r)})" for r in results)
    print(f"max |plan cost morobot - compiled (either)| over all cycles (identical noise): {gaps}; compiling took "
          + ", ".join(f"{r['compile_seconds']:.1f} s ({tag(r)})" for r in results))


def _print_collection(r: dict[str, Any]) -> None:
    c, p = r["collector"], r["physics"]
    print(f"\n### Collection, 1 worker, one world of each of {', '.join(r['kinds'])} (20 x 20 m), "
          f"{r['samples_per_world']} samples per world, median of {r['repeats']} run(s)\n")
    print("| run | sim time (s) | wall (s) | CPU (s) | real-time factor | MuJoCo steps/s | samples/s "
          "| wall / CPU vs physics |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    sim_s = p["sim_s"]
    phys_rows = [
        ("AnymalSim physics only", p["drive_wall"], p["drive_cpu"], None),
        ("physics + world/sim build", p["drive_wall"] + p["build_wall"], p["drive_cpu"] + p["build_cpu"], None),
        ("collector (`collect`, 1 worker)", c["wall"], c["cpu"], c["samples"]),
    ]
    for name, wall, cpu, samples in phys_rows:
        s = c["sim_s"] if samples is not None else sim_s
        sps = f"{samples / wall:.1f}" if samples is not None else ""
        print(f"| {name} | {s:.0f} | {wall:.1f} | {cpu:.1f} | {s / wall:.1f}x | {s / 0.005 / wall:,.0f} | {sps} "
              f"| {wall / p['drive_wall'] * sim_s / s:.2f}x / {cpu / p['drive_cpu'] * sim_s / s:.2f}x |")
    print(f"\ncollector: {c['samples']} samples from {c['steps']} command steps in {c['episodes']} episodes")


def _print_training(results: list[dict[str, Any]]) -> None:
    print(f"\n### Training step (forward + loss + backward + clip + AdamW), batch {results[0]['batch']}, "
          f"{results[0]['repeats']} interleaved steps per model\n")
    print("| threads | model | wall median (ms/step) | wall min | CPU median | samples/s (median) "
          "| vs FDM, same threads |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        names = [k for k in r if isinstance(r[k], dict)]
        base = r[names[0]]["samples_per_s"]
        for n in names:
            x = r[n]
            print(f"| {r['threads']} | {n} | {x['wall_median']:.0f} | {x['wall_min']:.0f} | {x['cpu_median']:.0f} "
                  f"| {x['samples_per_s']:.0f} | {x['samples_per_s'] / base:.1f}x |")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    cmd = shlex.join(["python", "bench/bench_fdm.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"Command: `{cmd}`  ({time.strftime('%Y-%m-%d %H:%M %Z')})")
    print(f"Machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"load average {load_average()} at start; python {platform.python_version()}, torch {torch.__version__}, "
          f"pytorch_mppi {importlib.metadata.version('pytorch-mppi')}, numpy {np.__version__}")
    if args.device != "cpu":
        print(f"Device: {args.device}, {torch.cuda.get_device_name(torch.device(args.device))}, "
              f"CUDA {torch.version.cuda}")
    results: dict[str, Any] = {"command": cmd, "args": asdict(args), "load_start": os.getloadavg()}
    t_all = time.perf_counter()
    if "plan" in args.sections:
        dyn, full = load_dynamics(args.checkpoint, device=args.device), None
        if args.members and args.members < dyn.config.ensemble_size:  # N of N (or more): nothing to compare
            full, dyn = dyn.model, FDMDynamics(dyn.model.with_members(args.members), device=args.device)
        hmap, state = make_scene(args.seed, dyn)
        checks = {"encoding_cost_gap": encoding_gap(dyn, state, hmap, 256, args.horizon, args.seed),
                  "stepwise_gap": stepwise_gap(dyn, state, hmap, 256, args.horizon, args.seed)}
        print(f"checks (256 random sequences): max |cost broadcast - per-sample encoding| "
              f"{checks['encoding_cost_gap']:.2g}; stepwise vs batched max |Δ| "
              + ", ".join(f"{k} {v:.2g}" for k, v in checks["stepwise_gap"].items()))
        plan = []
        for n in args.threads:
            torch.set_num_threads(n)
            for k in args.samples:
                plan.append(bench_planning(dyn, k, args.horizon, args.repeats, args.warmup, args.seed, full))
                print(f"  planning, {n} thread(s), {k} samples done, load average {load_average()}",
                      file=sys.stderr, flush=True)
        _print_planning(plan)
        for r in plan:
            for n in r["planners"]:
                r[n]["commands"] = np.asarray(r[n]["commands"]).round(4).tolist()
        results["planning"] = {"checks": checks, "results": plan}
    if "collect" in args.sections:
        torch.set_num_threads(1)
        coll = bench_collection(args.collect_kinds, args.collect_samples, args.collect_repeats, args.seed)
        print(f"  collection done, load average {load_average()}", file=sys.stderr, flush=True)
        _print_collection(coll)
        results["collection"] = coll
    if "train" in args.sections:
        train = []
        for n in args.threads:
            torch.set_num_threads(n)
            train.append(bench_training(args.train_batch, args.train_repeats, args.train_warmup, args.seed))
            print(f"  training, {n} thread(s) done, load average {load_average()}", file=sys.stderr, flush=True)
        _print_training(train)
        results["training"] = train
    results["load_end"] = os.getloadavg()
    results["seconds"] = time.perf_counter() - t_all
    print(f"\nLoad average at the end {load_average()}; torch threads per table; total {results['seconds']:.0f} s.")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
