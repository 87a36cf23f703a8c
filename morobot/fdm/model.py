"""The perceptive forward-dynamics model: configuration, encoder/predictor split, outputs.

``encode`` runs the history GRU and the scan CNN once per planning cycle; ``predict`` rolls
``K`` command sequences forward from that one context (broadcast, never copied ``K`` times).
Per step each ensemble member predicts a correction added to the commanded twist and a
collision hazard; twists are integrated exactly in SE(2) and hazards accumulate into a
monotone collision probability ``P(failed by the end of step t)``. With ``stop_at_failure`` the
poses are the expected pose under the model's own failure times (:func:`stop_at_failure`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

import torch
from torch import nn
from torch.nn import functional as F

from morobot.fdm import se2
from morobot.fdm.heightscan import SCAN_CHANNELS, ScanConfig
from morobot.fdm.history import HISTORY_DIM, feature_names
from morobot.fdm.modules import EnsemblePredictor, HistoryEncoder, ScanEncoder


@dataclass
class FDMConfig:
    """Architecture and time base of :class:`PerceptiveFDM`.

    Attributes:
        history_length: history rows (oldest first).
        history_dt: spacing of the history rows (s).
        history_dim: features per history row (see :mod:`morobot.fdm.history`).
        history_features: their feature set, ``base`` or ``legged`` (which inputs the run time feeds).
        history_hidden: width of the history GRU.
        history_layers: layers of the history GRU.
        use_scan: False removes the scan CNN (the "no perception" ablation).
        scan: geometry of the height scan.
        cnn_channels: output channels of the scan convolutions.
        cnn_kernels: kernel sizes of the scan convolutions.
        cnn_strides: strides of the scan convolutions.
        scan_features: width of the scan feature vector.
        context_dim: width of the fused context.
        command_hidden: width of the per-step command embedding.
        predictor_hidden: GRU width of each predictor member.
        ensemble_size: number of predictor members (uncertainty = their spread).
        horizon: trained prediction steps.
        dt: duration of one prediction step (s).
        command_limits: ``(vx, vy, wz)`` magnitudes used to normalise commands and corrections.
        stop_at_failure: the predicted poses stop where the model predicts a failure: each member's
            path becomes the expected pose under its own failure-time distribution
            (:func:`stop_at_failure`), as the data's poses are held from the first failure on.
            A setting of the outputs, not of the weights: a checkpoint trained without it can be
            evaluated with it (``morobot eval fdm --stop-at-failure``); ``morobot train fdm
            --stop-at-failure output|train`` stores it, fitting the path as it is or as stopped.
    """

    history_length: int = 10
    history_dt: float = 0.05
    history_dim: int = HISTORY_DIM
    history_features: str = "base"
    history_hidden: int = 64
    history_layers: int = 2
    use_scan: bool = True
    scan: ScanConfig = field(default_factory=ScanConfig)
    cnn_channels: tuple[int, ...] = (16, 32, 64, 128)
    cnn_kernels: tuple[int, ...] = (7, 3, 3, 3)
    cnn_strides: tuple[int, ...] = (1, 2, 2, 2)
    scan_features: int = 128
    context_dim: int = 128
    command_hidden: int = 16
    predictor_hidden: int = 32
    ensemble_size: int = 4
    horizon: int = 10
    dt: float = 0.5
    command_limits: tuple[float, float, float] = (1.0, 0.5, 1.0)
    stop_at_failure: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.scan, dict):
            self.scan = ScanConfig(**self.scan)
        for name in ("cnn_channels", "cnn_kernels", "cnn_strides", "command_limits"):
            setattr(self, name, tuple(getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        """Raises ValueError on an inconsistent configuration."""
        positive_ints = (
            "history_length",
            "history_dim",
            "history_hidden",
            "history_layers",
            "scan_features",
            "context_dim",
            "command_hidden",
            "predictor_hidden",
            "ensemble_size",
            "horizon",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"FDMConfig.{name} must be a positive integer, got {value!r}")
        for name in ("history_dt", "dt"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"FDMConfig.{name} must be positive, got {getattr(self, name)!r}")
        if not (len(self.cnn_channels) == len(self.cnn_kernels) == len(self.cnn_strides) >= 1):
            raise ValueError("FDMConfig cnn_channels, cnn_kernels and cnn_strides must have equal, non-zero length")
        if any(int(v) < 1 for v in (*self.cnn_channels, *self.cnn_kernels, *self.cnn_strides)):
            raise ValueError("FDMConfig CNN channels, kernels and strides must be positive")
        if len(self.command_limits) != 3 or any(not v > 0.0 for v in self.command_limits):
            raise ValueError(f"FDMConfig.command_limits must be 3 positive values, got {self.command_limits}")
        for name in ("use_scan", "stop_at_failure"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"FDMConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if len(feature_names(self.history_features)) != self.history_dim:
            raise ValueError(f"FDMConfig.history_dim {self.history_dim} does not fit the {self.history_features!r} "
                             f"history features ({len(feature_names(self.history_features))})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ScanConfig):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FDMConfig":
        """Builds a config from :meth:`to_dict` output; unknown or missing keys raise ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"FDMConfig data must be a dict, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        # checkpoints from before the legged history and before stop_at_failure
        data = {"history_features": "base", "stop_at_failure": False, **data}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown or missing:
            raise ValueError(f"FDMConfig keys do not match: unknown {unknown}, missing {missing}")
        scan = data["scan"]
        if not isinstance(scan, dict):
            raise ValueError("FDMConfig.scan must be a dict")
        try:
            return cls(**{**data, "scan": ScanConfig(**scan)})
        except TypeError as exc:
            raise ValueError(f"bad FDMConfig: {exc}") from exc


class MemberOutput(NamedTuple):
    """Per-member outputs in the start frame of each sample.

    Attributes:
        twists: ``[E, K, T, 3]`` predicted body twists (command + correction).
        poses: ``[E, K, T, 3]`` integrated poses relative to the start pose (stopped at the predicted
            failures with ``stop_at_failure``).
        hazard_logits: ``[E, K, T]`` per-step collision hazard logits.
    """

    twists: torch.Tensor
    poses: torch.Tensor
    hazard_logits: torch.Tensor


class FDMPrediction(NamedTuple):
    """Ensemble-aggregated prediction.

    Attributes:
        poses: ``[K, T, 3]`` mean poses (in odom when a start pose was given, else relative).
        collision: ``[K, T]`` mean probability of having failed by the end of each step.
        uncertainty: ``[K, T]`` RMS distance of the members' positions from the mean (m);
            zeros for a single-member model.
        members: the raw per-member outputs.
    """

    poses: torch.Tensor
    collision: torch.Tensor
    uncertainty: torch.Tensor
    members: MemberOutput


def collision_probability(hazard_logits: torch.Tensor) -> torch.Tensor:
    """Cumulative failure probability from per-step hazard logits (along the last dim).

    ``P_t = 1 - prod_{s<=t} (1 - sigmoid(l_s))``, computed in log space.
    """
    return -torch.expm1(-torch.cumsum(F.softplus(hazard_logits), dim=-1))


def stop_at_failure(poses: torch.Tensor, hazard_logits: torch.Tensor) -> torch.Tensor:
    """The expected pose at each step when the robot stays where it first fails.

    With ``F_s`` the probability of having failed by the end of step ``s`` (:func:`collision_probability`),
    the pose at step ``t`` is ``sum_{s<=t} (F_s - F_{s-1}) pose_s + (1 - F_t) pose_t``: the pose of the
    step of the first failure, or of step ``t`` if none came by then. Positions mix linearly, headings
    through their unit vectors.

    Args:
        poses: ``[..., T, 3]`` poses ``(x, y, yaw)`` relative to the start.
        hazard_logits: ``[..., T]`` per-step hazard logits of the same rollouts.

    Returns:
        ``[..., T, 3]`` poses.
    """
    failed = collision_probability(hazard_logits)
    first = torch.diff(failed, dim=-1, prepend=torch.zeros_like(failed[..., :1])).unsqueeze(-1)
    survive = (1.0 - failed).unsqueeze(-1)
    yaw = poses[..., 2:3]
    parts = torch.cat((poses[..., :2], torch.cos(yaw), torch.sin(yaw)), dim=-1)
    mixed = torch.cumsum(first * parts, dim=-2) + survive * parts
    return torch.cat((mixed[..., :2], torch.atan2(mixed[..., 3:4], mixed[..., 2:3])), dim=-1)


class PerceptiveFDM(nn.Module):
    """Learned perceptive forward-dynamics model with an ensemble of predictors.

    Args:
        config: the architecture; see :class:`FDMConfig`.
    """

    def __init__(self, config: FDMConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.register_buffer("history_mean", torch.zeros(config.history_dim))
        self.register_buffer("history_std", torch.ones(config.history_dim))
        self.register_buffer("scan_mean", torch.zeros(1))
        self.register_buffer("scan_std", torch.ones(1))
        self.register_buffer("command_scale", torch.tensor(config.command_limits, dtype=torch.float32))
        self.history_encoder = HistoryEncoder(config.history_dim, config.history_hidden, config.history_layers)
        features = self.history_encoder.out_dim
        self.scan_encoder: Optional[ScanEncoder] = None
        if config.use_scan:
            self.scan_encoder = ScanEncoder(
                SCAN_CHANNELS,
                config.scan.shape,
                config.cnn_channels,
                config.cnn_kernels,
                config.cnn_strides,
                config.scan_features,
            )
            features += self.scan_encoder.out_dim
        self.fuse = nn.Sequential(nn.Linear(features, config.context_dim), nn.ELU())
        self.predictor = EnsemblePredictor(
            config.context_dim, 3, config.command_hidden, config.predictor_hidden, config.ensemble_size
        )

    def with_members(self, members: int) -> "PerceptiveFDM":
        """The model with only the first ``members`` predictors of its ensemble.

        The encoders, the normalisation and the kept members' weights are the same, so each kept
        member predicts exactly as before; the mean and the spread are taken over fewer members.
        A rollout costs about ``members / ensemble_size`` of the predictor's time
        (``bench/bench_fdm.py --members``; the accuracy: ``morobot eval fdm --members``).

        Args:
            members: ``1 <= members <= config.ensemble_size``; one member has no spread (zero
                uncertainty).

        Returns:
            A new model on the same device (this one when ``members`` is the whole ensemble).

        Raises:
            ValueError: ``members`` is out of range.
        """
        total = self.config.ensemble_size
        if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= total:
            raise ValueError(f"members must be an integer in [1, {total}], got {members!r}")
        if members == total:
            return self
        out = PerceptiveFDM(dataclasses.replace(self.config, ensemble_size=members))
        sliced = {f"predictor.{name}" for name in EnsemblePredictor.MEMBER_PARAMETERS}
        out.load_state_dict({k: v[:members] if k in sliced else v for k, v in self.state_dict().items()}, strict=True)
        return out.to(self.history_mean.device).train(self.training)

    def with_stop_at_failure(self, on: bool = True) -> "PerceptiveFDM":
        """The model with :attr:`FDMConfig.stop_at_failure` set to ``on`` and the same weights.

        Returns:
            A new model on the same device (this one when the setting is already ``on``).
        """
        if not isinstance(on, bool):
            raise ValueError(f"on must be a bool, got {on!r}")
        if self.config.stop_at_failure == on:
            return self
        out = PerceptiveFDM(dataclasses.replace(self.config, stop_at_failure=on))
        out.load_state_dict(self.state_dict(), strict=True)
        return out.to(self.history_mean.device).train(self.training)

    def set_normalization(
        self, history_mean: Any, history_std: Any, scan_mean: float = 0.0, scan_std: float = 1.0
    ) -> None:
        """Stores input statistics (they travel in the state dict).

        Args:
            history_mean: ``[history_dim]`` per-feature mean.
            history_std: ``[history_dim]`` per-feature standard deviation (floored at 1e-3).
            scan_mean: mean of known relative scan heights (m).
            scan_std: their standard deviation (m, floored at 1e-3).
        """
        mean = torch.as_tensor(history_mean, dtype=torch.float32).reshape(-1)
        std = torch.as_tensor(history_std, dtype=torch.float32).reshape(-1)
        if mean.numel() != self.config.history_dim or std.numel() != self.config.history_dim:
            raise ValueError(f"history statistics must have {self.config.history_dim} values")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("history statistics must be finite")
        scan_stats = torch.tensor([scan_mean, scan_std], dtype=torch.float32)
        if not torch.isfinite(scan_stats).all():
            raise ValueError("scan statistics must be finite")
        self.history_mean.copy_(mean)
        self.history_std.copy_(std.clamp_min(1e-3))
        self.scan_mean.fill_(float(scan_mean))
        self.scan_std.fill_(max(float(scan_std), 1e-3))

    def _check_inputs(self, history: torch.Tensor, scan: Optional[torch.Tensor]) -> None:
        cfg = self.config
        if history.dim() != 3 or history.shape[1:] != (cfg.history_length, cfg.history_dim):
            raise ValueError(
                f"history must be [B, {cfg.history_length}, {cfg.history_dim}], got {tuple(history.shape)}"
            )
        if not cfg.use_scan:
            return
        if scan is None:
            raise ValueError("this model uses the height scan; pass scan [B, 2, rows, cols]")
        expected = (SCAN_CHANNELS, *cfg.scan.shape)
        if scan.dim() != 4 or tuple(scan.shape[1:]) != expected or scan.shape[0] != history.shape[0]:
            raise ValueError(f"scan must be [B, {expected[0]}, {expected[1]}, {expected[2]}], got {tuple(scan.shape)}")

    def encode(self, history: torch.Tensor, scan: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Encodes history and scan into the context (once per planning cycle).

        Args:
            history: ``[B, history_length, history_dim]`` raw history (see :mod:`~morobot.fdm.history`).
            scan: ``[B, 2, rows, cols]`` scan channels (relative height, validity); ignored
                (may be None) for a model built with ``use_scan=False``.

        Returns:
            ``[B, context_dim]`` context.
        """
        self._check_inputs(history, scan)
        feats = [self.history_encoder((history - self.history_mean) / self.history_std)]
        if self.scan_encoder is not None:
            assert scan is not None
            valid = scan[:, 1:2]
            height = torch.where(valid > 0.5, (scan[:, 0:1] - self.scan_mean) / self.scan_std, 0.0)
            feats.append(self.scan_encoder(torch.cat((height, valid), dim=1)))
        return self.fuse(torch.cat(feats, dim=-1))

    def forward_members(self, context: torch.Tensor, commands: torch.Tensor,
                        stop: Optional[bool] = None) -> MemberOutput:
        """Per-member rollout in each sample's start frame.

        Args:
            context: ``[1, context_dim]`` (shared by all samples) or ``[K, context_dim]``.
            commands: ``[K, T, 3]`` body-twist commands (m/s, rad/s).
            stop: stop the poses at the predicted failures (:func:`stop_at_failure`, the failure
                probabilities as weights without gradient); None: as the config says.

        Returns:
            :class:`MemberOutput`.
        """
        if commands.dim() != 3 or commands.shape[-1] != 3 or commands.shape[0] < 1 or commands.shape[1] < 1:
            raise ValueError(f"commands must be [K, T, 3] with K, T >= 1, got {tuple(commands.shape)}")
        if context.dim() != 2 or context.shape[1] != self.config.context_dim:
            raise ValueError(f"context must be [B, {self.config.context_dim}], got {tuple(context.shape)}")
        raw = self.predictor(context, commands / self.command_scale)
        twists = commands.unsqueeze(0) + raw[..., :3] * self.command_scale
        poses = se2.integrate(twists, self.config.dt)
        if stop is None:
            stop = self.config.stop_at_failure
        if stop:
            poses = stop_at_failure(poses, raw[..., 3].detach())  # the hazards learn from the failures only
        return MemberOutput(twists, poses, raw[..., 3])

    def forward(self, history: torch.Tensor, scan: Optional[torch.Tensor], commands: torch.Tensor,
                stop: Optional[bool] = None) -> MemberOutput:
        """Training path: one context per sample, ``[B, ...]`` inputs, ``[B, T, 3]`` commands (``stop``: as in
        :meth:`forward_members`)."""
        return self.forward_members(self.encode(history, scan), commands, stop)

    def predict(
        self, context: torch.Tensor, commands: torch.Tensor, start_pose: Optional[torch.Tensor] = None
    ) -> FDMPrediction:
        """Ensemble-aggregated rollout of ``K`` command sequences.

        Args:
            context: ``[1, context_dim]`` from :meth:`encode` (broadcast over samples) or ``[K, context_dim]``.
            commands: ``[K, T, 3]`` commands.
            start_pose: optional ``[3]`` or ``[K, 3]`` start pose in odom; poses are returned
                relative to the start when omitted.

        Returns:
            :class:`FDMPrediction`.
        """
        members = self.forward_members(context, commands)
        xy = members.poses[..., :2]
        mean_xy = xy.mean(dim=0)
        yaw = members.poses[..., 2]
        mean_yaw = torch.atan2(torch.sin(yaw).mean(dim=0), torch.cos(yaw).mean(dim=0))
        poses = torch.cat((mean_xy, mean_yaw.unsqueeze(-1)), dim=-1)
        if start_pose is not None:
            start = start_pose.to(poses)
            if start.shape not in ((3,), (poses.shape[0], 3)):
                raise ValueError(f"start_pose must be [3] or [K, 3], got {tuple(start.shape)}")
            poses = se2.compose(start.reshape(-1, 1, 3), poses)
        uncertainty = (xy - mean_xy).square().sum(dim=-1).mean(dim=0).sqrt()
        collision = collision_probability(members.hazard_logits).mean(dim=0)
        return FDMPrediction(poses, collision, uncertainty, members)
