"""The learned FDM behind the planner's :class:`~morobot.planning.interface.DynamicsModel` seam.

Per planning cycle the history and the height scan are encoded once; all ``K`` command
sequences are then rolled out from that one context. Repeated ``rollout`` calls with the same
state and height map contents (e.g. several MPPI iterations in one cycle) reuse the cached
context.

Inputs taken from :class:`~morobot.planning.interface.NavState`:

* ``history``: ``[history_length, history_dim]`` rows built with :class:`~morobot.fdm.history.ProprioHistory`
  in the checkpoint's feature set (``base``: commanded twist, measured twist, gravity in base; the
  legged sets add joint states and targets). When it is None a ``base`` model gets a stationary
  history (the robot tracking its current twist); a legged one refuses.
* ``pose``, ``z``: where the height scan is taken (``z`` is the base height in odom).

A missing height map gives an all-unknown scan (the model was trained with unknown cells).

With ``compile=True`` the batched rollout (predictor, pose integration, ensemble aggregation) runs
through ``torch.compile`` (TorchInductor, which fuses the GRU's element-wise gate arithmetic into
generated C++ on CPU): about a third less time per 2048 x 10 planning cycle (``bench/bench_fdm.py``).
Each batch shape is compiled once, which takes seconds to a minute (:meth:`FDMDynamics.warm_up` does it
ahead of time; later starts reuse TorchInductor's on-disk cache) and needs a C++ compiler; where
compiling fails the model runs eagerly and :attr:`FDMDynamics.compile_error` says why.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from morobot.fdm.checkpoint import load_checkpoint
from morobot.fdm.heightscan import scan_from_heightmap
from morobot.fdm.history import stationary_history
from morobot.fdm.model import FDMPrediction, PerceptiveFDM
from morobot.planning.interface import HeightMap, NavState, Rollout


class FDMDynamics:
    """Batched learned dynamics for the MPPI planner.

    Args:
        model: a trained :class:`PerceptiveFDM` (normalisation included).
        device: torch device to run on.
        num_threads: if given, ``torch.set_num_threads`` is called with it (process-wide).
        meta: checkpoint metadata, kept for introspection.
        compile: run rollouts through ``torch.compile`` (see the module docstring).
    """

    def __init__(
        self,
        model: PerceptiveFDM,
        device: str | torch.device = "cpu",
        num_threads: Optional[int] = None,
        meta: Optional[dict[str, Any]] = None,
        compile: bool = False,
    ) -> None:
        if not isinstance(model, PerceptiveFDM):
            raise ValueError(f"model must be a PerceptiveFDM, got {type(model).__name__}")
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f"num_threads must be >= 1, got {num_threads}")
            torch.set_num_threads(int(num_threads))
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = model.config
        self.meta = meta or {}
        self._cache_key: Optional[tuple] = None
        self._context: Optional[torch.Tensor] = None
        self._compiled: Optional[Callable[..., FDMPrediction]] = None
        self.compile_error: Optional[str] = None
        """Why ``compile=True`` fell back to eager execution (None: it did not)."""
        if compile:
            self._compiled = torch.compile(self.model.predict, dynamic=False)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | torch.device = "cpu", num_threads: Optional[int] = None,
        compile: bool = False, members: int = 0,
    ) -> "FDMDynamics":
        """Loads a checkpoint with strict validation.

        Args:
            members: use at most the first ``members`` predictors of the checkpoint's ensemble
                (:meth:`PerceptiveFDM.with_members`: faster rollouts, a coarser spread); 0 = all.

        Raises:
            CheckpointError: if the checkpoint is missing, corrupt or inconsistent.
            ValueError: ``members`` is negative or not an integer.
        """
        if isinstance(members, bool) or not isinstance(members, int) or members < 0:
            raise ValueError(f"members must be an integer >= 0 (0 = all), got {members!r}")
        model, meta = load_checkpoint(path, map_location=device)
        if members:
            model = model.with_members(min(members, model.config.ensemble_size))
        return cls(model, device=device, num_threads=num_threads, meta=meta, compile=compile)

    @property
    def compiled(self) -> bool:
        """True while rollouts run through ``torch.compile`` (requested and not failed)."""
        return self._compiled is not None

    def _predict(self, context: torch.Tensor, commands: torch.Tensor, start: torch.Tensor) -> FDMPrediction:
        if self._compiled is not None:
            try:
                return self._compiled(context, commands, start)
            except Exception as exc:  # no C++ compiler, an unsupported op, ...: run eagerly from now on
                self._compiled = None
                first_line = (str(exc).strip().splitlines() or [""])[0]
                self.compile_error = f"{type(exc).__name__}: {first_line}"
        return self.model.predict(context, commands, start)

    def warm_up(self, num_samples: int, horizon: int) -> float:
        """Runs one rollout of ``num_samples`` x ``horizon`` zero commands (compiles that shape where requested).

        Returns:
            Its wall time (s): the compilation time on the first call with ``compile=True``.
        """
        # the tensors as :meth:`rollout` passes them: the commands and the start are ordinary tensors, the
        # context comes from :meth:`encode` under inference mode. An ordinary context would compile a graph
        # whose guards (the tensor's dispatch keys) the real calls fail, and the first control cycle would
        # compile again (about a second).
        commands = torch.zeros(int(num_samples), int(horizon), 3, device=self.device)
        start = torch.zeros(3, device=self.device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            context = torch.zeros(1, self.config.context_dim, device=self.device)
            self._predict(context, commands, start)
        return time.perf_counter() - t0

    @property
    def dt(self) -> float:
        """Duration of one command step (s)."""
        return float(self.config.dt)

    @property
    def horizon(self) -> int:
        """Number of steps the model was trained to predict."""
        return int(self.config.horizon)

    def _history(self, state: NavState) -> np.ndarray:
        cfg = self.config
        if state.history is None:
            if cfg.history_features != "base":
                raise ValueError(f"a {cfg.history_features!r} FDM needs a measured history (joint states)")
            return stationary_history(state.twist, state.gravity_b, cfg.history_length)
        hist = np.asarray(state.history, dtype=np.float32)
        if hist.shape != (cfg.history_length, cfg.history_dim):
            raise ValueError(
                f"state.history must be [{cfg.history_length}, {cfg.history_dim}] "
                f"(rows every {cfg.history_dt} s, see morobot.fdm.history), got {hist.shape}"
            )
        if not np.all(np.isfinite(hist)):
            raise ValueError("state.history must be finite")
        return hist

    def _key(self, state: NavState, hist: np.ndarray, hmap: Optional[HeightMap]) -> tuple:
        pose = np.asarray(state.pose, dtype=np.float64)
        map_key = None
        if hmap is not None and self.config.use_scan:
            heights = hmap.heights
            heights = heights.detach().cpu().numpy() if hasattr(heights, "detach") else np.asarray(heights)
            digest = hashlib.blake2b(np.ascontiguousarray(heights).tobytes(), digest_size=16).digest()
            map_key = (digest, heights.shape, float(hmap.resolution), tuple(float(v) for v in hmap.origin))
        return (pose.tobytes(), float(state.z), float(state.stamp), hist.tobytes(), map_key)

    def encode(self, state: NavState, hmap: Optional[HeightMap]) -> torch.Tensor:
        """Context for one planning cycle (cached for identical state and map).

        Returns:
            ``[1, context_dim]`` context.
        """
        pose = np.asarray(state.pose, dtype=np.float64).reshape(-1)
        if pose.shape != (3,) or not np.all(np.isfinite(pose)):
            raise ValueError(f"state.pose must be a finite (x, y, yaw), got {state.pose!r}")
        if not np.isfinite(state.z):
            raise ValueError(f"state.z must be finite, got {state.z}")
        hist = self._history(state)
        key = self._key(state, hist, hmap)
        if key == self._cache_key and self._context is not None:
            return self._context
        history = torch.from_numpy(hist).unsqueeze(0).to(self.device)
        scan = None
        if self.config.use_scan:
            scan_np = scan_from_heightmap(hmap, pose, float(state.z), self.config.scan)
            scan = torch.from_numpy(scan_np).unsqueeze(0).to(self.device)
        with torch.inference_mode():
            context = self.model.encode(history, scan)
        self._cache_key, self._context = key, context
        return context

    def rollout(self, state: NavState, commands: torch.Tensor, hmap: Optional[HeightMap]) -> Rollout:
        """Predicts poses, risk and uncertainty for ``[K, T, 3]`` commands.

        Args:
            state: current navigation state (pose, base height, history).
            commands: ``[K, T, 3]`` body-twist commands; step ``t`` holds for :attr:`dt`.
            hmap: robot-centric elevation map, or None.

        Returns:
            :class:`Rollout` with ``poses [K, T, 3]`` in odom, ``risk [K, T]`` = probability of
            having failed by the end of each step (non-decreasing in ``t``) and ``uncertainty
            [K, T]`` = ensemble position spread (m), or None for a single-member model; ``model_risk`` is
            ``risk`` (the model's own failure probability, which the cost's ``failure_weight`` reads). Tensors
            are on the device and dtype of ``commands``.

        Raises:
            ValueError: on malformed commands or state.
        """
        if not isinstance(commands, torch.Tensor):
            raise ValueError(f"commands must be a torch.Tensor, got {type(commands).__name__}")
        if commands.dim() != 3 or commands.shape[-1] != 3 or commands.shape[0] < 1 or commands.shape[1] < 1:
            raise ValueError(f"commands must be [K, T, 3] with K, T >= 1, got {tuple(commands.shape)}")
        if not torch.isfinite(commands).all():
            raise ValueError("commands must be finite")
        context = self.encode(state, hmap)
        start = torch.as_tensor(np.asarray(state.pose, dtype=np.float32), device=self.device)
        with torch.inference_mode():
            pred = self._predict(context, commands.to(self.device, torch.float32), start)
        out_dtype = commands.dtype if commands.is_floating_point() else torch.float32
        uncertainty = None
        if self.config.ensemble_size > 1:
            uncertainty = pred.uncertainty.to(commands.device, out_dtype)
        risk = pred.collision.to(commands.device, out_dtype)
        return Rollout(poses=pred.poses.to(commands.device, out_dtype), risk=risk, uncertainty=uncertainty,
                       model_risk=risk)
