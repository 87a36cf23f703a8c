"""The proprioceptive history the FDM consumes, and the helper that maintains it.

One history row per ``dt`` (default 0.05 s), oldest first. Two feature sets; a checkpoint's config
says which it was trained on. ``base`` (9 features, any robot with odometry)::

    0..2  commanded body twist   (vx, vy, wz)  m/s, m/s, rad/s
    3..5  measured body twist    (vx, vy, wz)  m/s, m/s, rad/s
    6..8  gravity in the base frame, unit vector (x, y, z); (0, 0, -1) when level

``legged`` (48 features, the paper's proprioception for ANYmal) adds::

    9..11   the rest of the body twist: vz (m/s), wx, wy (rad/s)
    12..23  joint positions (rad), :data:`morobot.robots.ANYMAL_JOINTS` order
    24..35  joint velocities (rad/s)
    36..47  joint torques (N·m)

``legged_actions`` (84 features: the paper's full proprioception) adds the locomotion controller's
joint targets, which a robot publishes only if asked to (the simulator does, on ``joint_targets``)::

    48..59  joint-position errors: target - position (rad)
    60..71  the last action: joint position targets (rad)
    72..83  the action before it (rad)

Each set is a prefix of the next (``base`` < ``legged`` < ``legged_actions``), so data collected with
a richer set trains a model of a poorer one by dropping columns (:func:`feature_columns`).

The same :class:`ProprioHistory` is used by data collection and by the run-time node, so the
model sees identically built histories in training and deployment.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from morobot.robots import ANYMAL_JOINTS

#: Names of the base history features, in column order.
HISTORY_FEATURES = ("cmd_vx", "cmd_vy", "cmd_wz", "vx", "vy", "wz", "gravity_x", "gravity_y", "gravity_z")
#: Width of one base history row.
HISTORY_DIM = len(HISTORY_FEATURES)
#: The legged robot's extra columns, after the base ones.
LEGGED_EXTRA = (("vz", "wx", "wy") + tuple(f"q_{j}" for j in ANYMAL_JOINTS)
                + tuple(f"dq_{j}" for j in ANYMAL_JOINTS) + tuple(f"tau_{j}" for j in ANYMAL_JOINTS))
#: The columns the joint targets add to the ``legged`` set.
ACTION_EXTRA = (tuple(f"qerr_{j}" for j in ANYMAL_JOINTS) + tuple(f"a1_{j}" for j in ANYMAL_JOINTS)
                + tuple(f"a2_{j}" for j in ANYMAL_JOINTS))
#: The feature sets by name.
FEATURE_SETS = {"base": HISTORY_FEATURES, "legged": HISTORY_FEATURES + LEGGED_EXTRA,
                "legged_actions": HISTORY_FEATURES + LEGGED_EXTRA + ACTION_EXTRA}
#: Feature sets that need the 12 leg joints' states.
JOINT_FEATURES = ("legged", "legged_actions")


def feature_names(features: str) -> tuple[str, ...]:
    """The column names of a feature set; raises ValueError for an unknown one."""
    if features not in FEATURE_SETS:
        raise ValueError(f"unknown history features {features!r}; expected one of {sorted(FEATURE_SETS)}")
    return FEATURE_SETS[features]


def feature_columns(data_features: str, model_features: str) -> int:
    """How many leading columns of ``data_features`` rows make a ``model_features`` row.

    Raises:
        ValueError: the model's set is not a prefix of the data's (e.g. a ``legged`` model on ``base`` data).
    """
    data, model = feature_names(data_features), feature_names(model_features)
    if data[:len(model)] != model:
        raise ValueError(f"history features {model_features!r} cannot be made from {data_features!r} rows "
                         f"(they are not a prefix of them)")
    return len(model)


def legged_extra(linear_velocity: Any, angular_velocity: Any, q: Any, dq: Any, tau: Any) -> np.ndarray:
    """The ``legged`` set's extra columns from the body twist (base frame) and the 12 joints' state.

    Raises:
        ValueError: wrong sizes or non-finite values.
    """
    v, w = _vec3("linear_velocity", linear_velocity), _vec3("angular_velocity", angular_velocity)
    joints = [np.asarray(a, dtype=np.float64).reshape(-1) for a in (q, dq, tau)]
    n = len(ANYMAL_JOINTS)
    if any(j.shape != (n,) for j in joints):
        raise ValueError(f"joint positions, velocities and torques must have {n} values each, got "
                         f"{[j.shape[0] for j in joints]}")
    extra = np.concatenate([[v[2], w[0], w[1]], *joints])
    if not np.all(np.isfinite(extra)):
        raise ValueError("joint states must be finite")
    return extra


def action_extra(q: Any, target: Any, previous_target: Any) -> np.ndarray:
    """The ``legged_actions`` set's columns after the ``legged`` ones: ``target - q``, ``target``,
    ``previous_target`` (12 joints each, :data:`morobot.robots.ANYMAL_JOINTS` order).

    Raises:
        ValueError: wrong sizes or non-finite values.
    """
    n = len(ANYMAL_JOINTS)
    q, a1, a2 = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (q, target, previous_target))
    if any(v.shape != (n,) for v in (q, a1, a2)):
        raise ValueError(f"joint positions and targets must have {n} values each")
    out = np.concatenate((a1 - q, a1, a2))
    if not np.all(np.isfinite(out)):
        raise ValueError("joint targets must be finite")
    return out


def extra_columns(features: str, linear_velocity: Any, angular_velocity: Any, q: Any, dq: Any, tau: Any,
                  targets: Any = None) -> np.ndarray | None:
    """The columns a ``features`` row has after the base ones: None for ``base``; :func:`legged_extra`
    for ``legged``; that and :func:`action_extra` of ``targets`` (``(newest, previous)``) for
    ``legged_actions``. The one place that says which set takes what (collection, the converter and
    the planner all build their rows here)."""
    if features not in JOINT_FEATURES:
        feature_names(features)  # unknown sets raise
        return None
    cols = legged_extra(linear_velocity, angular_velocity, q, dq, tau)
    if features != "legged_actions":
        return cols
    if targets is None:
        raise ValueError("legged_actions rows need the joint targets (newest, previous)")
    return np.concatenate((cols, action_extra(q, *targets)))


def mirror_map(features: str) -> tuple[np.ndarray, np.ndarray]:
    """``(columns, signs)`` so that ``row[columns] * signs`` is the row of the left-right mirrored robot
    (reflection about its x-z plane): lateral velocity, yaw and roll rates and the lateral gravity
    component change sign; legged: left and right legs swap, hip abduction (HAA) changes sign."""
    names = feature_names(features)
    flips = {"cmd_vy", "cmd_wz", "vy", "wz", "gravity_y", "wx"}
    swap = {"L": "R", "R": "L"}
    columns, signs = [], []
    for name in names:
        source, sign = name, -1.0 if name in flips else 1.0
        for prefix in ("q_", "dq_", "tau_", "qerr_", "a1_", "a2_"):
            if name.startswith(prefix):
                joint = name[len(prefix):]
                source = prefix + swap[joint[0]] + joint[1:]
                sign = -1.0 if joint.endswith("HAA") else 1.0
        columns.append(names.index(source))
        signs.append(sign)
    return np.array(columns), np.array(signs)


def _vec3(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape != (3,):
        raise ValueError(f"{name} must have 3 elements, got shape {np.shape(value)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return arr


def history_row(cmd: Any, twist: Any, gravity: Any, extra: Any = None) -> np.ndarray:
    """One history row: the 9 base features, then ``extra`` (the legged set's, :func:`legged_extra`).

    Args:
        cmd: commanded body twist ``(vx, vy, wz)``.
        twist: measured body twist ``(vx, vy, wz)``.
        gravity: gravity direction in the base frame; normalised to unit length.
        extra: further columns, or None.

    Returns:
        ``[9]`` (or ``[9 + len(extra)]``) float64 row.

    Raises:
        ValueError: on wrong sizes, non-finite values or a zero gravity vector.
    """
    g = _vec3("gravity", gravity)
    norm = float(np.linalg.norm(g))
    if norm < 1e-6:
        raise ValueError("gravity must be a non-zero vector")
    row = np.concatenate((_vec3("cmd", cmd), _vec3("twist", twist), g / norm))
    return row if extra is None else np.concatenate((row, np.asarray(extra, dtype=np.float64).reshape(-1)))


def stationary_history(twist: Any, gravity: Any, length: int = 10) -> np.ndarray:
    """A history in which the robot has been tracking its current twist perfectly.

    Used when no history is available (e.g. right after start-up): the commanded twist equals
    the measured one for all ``length`` rows.

    Args:
        twist: measured body twist.
        gravity: gravity in the base frame.
        length: number of rows.

    Returns:
        ``[length, 9]`` float32 history.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    row = history_row(twist, twist, gravity)
    return np.tile(row.astype(np.float32), (length, 1))


class ProprioHistory:
    """Fixed-rate proprioceptive history built from irregularly timed samples.

    Samples are pushed as they arrive; :meth:`array` resamples them on a regular grid ending at
    the newest stamp (zero-order hold: each grid time takes the latest sample at or before it;
    grid times before the first sample repeat the first sample).

    Args:
        length: number of rows returned by :meth:`array`.
        dt: spacing of the rows (s).
        features: ``base``, ``legged`` or ``legged_actions`` (then every :meth:`push` carries the
            joints' ``extra``).
    """

    def __init__(self, length: int = 10, dt: float = 0.05, features: str = "base") -> None:
        if int(length) != length or length < 1:
            raise ValueError(f"length must be a positive integer, got {length}")
        if not dt > 0.0:
            raise ValueError(f"dt must be positive, got {dt}")
        self.length = int(length)
        self.dt = float(dt)
        self.features = features
        self.dim = len(feature_names(features))
        self._stamps: deque[float] = deque()
        self._rows: deque[np.ndarray] = deque()

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def span(self) -> float:
        """Time covered by the stored samples (s)."""
        return self._stamps[-1] - self._stamps[0] if self._stamps else 0.0

    @property
    def ready(self) -> bool:
        """True once the samples cover the whole window, so :meth:`array` holds no padding."""
        return bool(self._stamps) and self.span >= (self.length - 1) * self.dt - 1e-9

    def reset(self) -> None:
        """Forgets all samples (e.g. after a teleport or simulator reset)."""
        self._stamps.clear()
        self._rows.clear()

    def push(self, stamp: float, cmd: Any, twist: Any, gravity: Any, extra: Any = None) -> None:
        """Adds one sample.

        Args:
            stamp: time of the sample (s); must not be older than the previous sample (a sample
                with the same stamp replaces it).
            cmd: commanded body twist ``(vx, vy, wz)`` in effect at ``stamp``.
            twist: measured body twist ``(vx, vy, wz)``.
            gravity: gravity direction in the base frame.
            extra: ``legged``: :func:`legged_extra`; ``legged_actions``: that and :func:`action_extra`;
                ``base``: None.

        Raises:
            ValueError: on a stamp older than the newest stored one, malformed vectors, or ``extra``
                that does not fit the feature set.
        """
        stamp = float(stamp)
        if not np.isfinite(stamp):
            raise ValueError(f"stamp must be finite, got {stamp}")
        row = history_row(cmd, twist, gravity, extra)
        if row.shape != (self.dim,):
            raise ValueError(f"a {self.features!r} history row has {self.dim} features, got {row.shape[0]} "
                             f"({'joint states missing' if extra is None else 'extra of the wrong size'})")
        if self._stamps and stamp < self._stamps[-1]:
            raise ValueError(f"stamp {stamp} is older than the newest sample {self._stamps[-1]}")
        if self._stamps and stamp == self._stamps[-1]:
            self._rows[-1] = row
            return
        self._stamps.append(stamp)
        self._rows.append(row)
        horizon = (self.length - 1) * self.dt
        # Keep the newest sample at or before the oldest grid time, drop anything older.
        while len(self._stamps) >= 2 and self._stamps[1] <= stamp - horizon + 1e-9:
            self._stamps.popleft()
            self._rows.popleft()

    def array(self) -> np.ndarray:
        """The history resampled on the regular grid.

        Returns:
            ``[length, dim]`` float32, oldest row first.

        Raises:
            ValueError: if no sample has been pushed yet.
        """
        if not self._stamps:
            raise ValueError("ProprioHistory is empty: push at least one sample first")
        stamps = np.fromiter(self._stamps, dtype=np.float64, count=len(self._stamps))
        rows = np.stack(self._rows)
        grid = stamps[-1] - self.dt * np.arange(self.length - 1, -1, -1)
        idx = np.searchsorted(stamps, grid + 1e-9, side="right") - 1
        return rows[np.clip(idx, 0, len(stamps) - 1)].astype(np.float32)
