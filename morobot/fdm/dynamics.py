"""The learned FDM behind the planner's :class:`~morobot.planning.interface.DynamicsModel` seam.

Per planning cycle the history and the height scan are encoded once; all ``K`` command
sequences are then rolled out from that one context. Repeated ``rollout`` calls with the same
state and height map contents (e.g. several MPPI iterations in one cycle) reuse the cached
context.

Inputs taken from :class:`~morobot.planning.interface.NavState`:

* ``history``: ``[history_length, 9]`` rows built with :class:`~morobot.fdm.history.ProprioHistory`
  (commanded twist, measured twist, gravity in base). When it is None a stationary history
  (the robot tracking its current twist) is used.
* ``pose``, ``z``: where the height scan is taken (``z`` is the base height in odom).

A missing height map gives an all-unknown scan (the model was trained with unknown cells).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from morobot.fdm.checkpoint import load_checkpoint
from morobot.fdm.heightscan import scan_from_heightmap
from morobot.fdm.history import stationary_history
from morobot.fdm.model import PerceptiveFDM
from morobot.planning.interface import HeightMap, NavState, Rollout


class FDMDynamics:
    """Batched learned dynamics for the MPPI planner.

    Args:
        model: a trained :class:`PerceptiveFDM` (normalisation included).
        device: torch device to run on.
        num_threads: if given, ``torch.set_num_threads`` is called with it (process-wide).
        meta: checkpoint metadata, kept for introspection.
    """

    def __init__(
        self,
        model: PerceptiveFDM,
        device: str | torch.device = "cpu",
        num_threads: Optional[int] = None,
        meta: Optional[dict[str, Any]] = None,
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

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | torch.device = "cpu", num_threads: Optional[int] = None
    ) -> "FDMDynamics":
        """Loads a checkpoint with strict validation.

        Raises:
            CheckpointError: if the checkpoint is missing, corrupt or inconsistent.
        """
        model, meta = load_checkpoint(path, map_location=device)
        return cls(model, device=device, num_threads=num_threads, meta=meta)

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
            [K, T]`` = ensemble position spread (m), or None for a single-member model. Tensors
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
            pred = self.model.predict(context, commands.to(self.device, torch.float32), start)
        out_dtype = commands.dtype if commands.is_floating_point() else torch.float32
        uncertainty = None
        if self.config.ensemble_size > 1:
            uncertainty = pred.uncertainty.to(commands.device, out_dtype)
        return Rollout(
            poses=pred.poses.to(commands.device, out_dtype),
            risk=pred.collision.to(commands.device, out_dtype),
            uncertainty=uncertainty,
        )
