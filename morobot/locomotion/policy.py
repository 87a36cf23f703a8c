"""Run a trained locomotion policy: ``policy.pt`` + ``policy.json`` from ``morobot train locomotion``.

The actor is rsl-rl's ``MLPModel`` rebuilt from the sidecar and loaded with
``torch.load(..., weights_only=True)``; :meth:`LocomotionPolicy.act` returns the deterministic
(mean) action. The observation is built by :mod:`morobot.locomotion.observation`, as in training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from morobot.locomotion.observation import NUM_ACTIONS, OBS_DIM


class PolicyError(ValueError):
    """A policy file that is missing, corrupt, or of another format or observation layout."""


class LocomotionPolicy:
    """A trained locomotion policy on the CPU.

    Args:
        path: ``policy.pt``; its sidecar ``policy.json`` must lie next to it.

    Raises:
        PolicyError: missing or unreadable files, or an incompatible layout.
    """

    def __init__(self, path: str | Path) -> None:
        from rsl_rl.models import MLPModel
        from tensordict import TensorDict

        from morobot.locomotion.train import POLICY_FORMAT, POLICY_VERSION

        self.path = Path(path)
        sidecar = self.path.with_suffix(".json")
        try:
            self.meta = json.loads(sidecar.read_text(encoding="utf-8"))
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except FileNotFoundError as exc:
            raise PolicyError(f"locomotion policy not found: {exc.filename}") from None
        except Exception as exc:  # noqa: BLE001 - corrupt or hostile file: one clear error, nothing executed
            raise PolicyError(f"cannot read locomotion policy {self.path}: {str(exc).splitlines()[0]}") from None
        if self.meta.get("format") != POLICY_FORMAT or self.meta.get("format_version") != POLICY_VERSION:
            raise PolicyError(f"{sidecar} is not a {POLICY_FORMAT} v{POLICY_VERSION} sidecar")
        if self.meta.get("obs_dim") != OBS_DIM or self.meta.get("num_actions") != NUM_ACTIONS:
            raise PolicyError(f"{self.path}: observation/action layout {self.meta.get('obs_dim')}/"
                              f"{self.meta.get('num_actions')} differs from this code's {OBS_DIM}/{NUM_ACTIONS}")
        model_cfg = {k: v for k, v in self.meta["model"].items() if k != "class_name"}
        dummy = TensorDict({"policy": torch.zeros(1, OBS_DIM)}, batch_size=[1])
        self.model = MLPModel(dummy, {"actor": ["policy"]}, "actor", NUM_ACTIONS, **model_cfg)
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise PolicyError(f"{self.path} does not match its sidecar's model: {exc}") from None
        self.model.eval()
        self._mlp = self.model.as_jit()  # a plain module over the concatenated observation (no TensorDict)
        self._mlp.eval()

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions ``[N, 12]`` for observations ``[N, OBS_DIM]`` (deterministic)."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(-1, OBS_DIM)
        with torch.inference_mode():
            out = self._mlp(x)  # the actor's deterministic path: normaliser, MLP, mean of the distribution
        return out.numpy().astype(np.float64)
