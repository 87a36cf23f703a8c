"""Samples that share a start: one moment of one run, driven on with different commands.

``morobot collect-nav --branch-leads`` records such samples (counterfactual branches). They answer the
question a planner asks (which command, from here?), and both the command-ranking metric of
``morobot eval fdm`` and the ranking loss of ``morobot train fdm --rank-weight`` are built on them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def start_groups(data: Any) -> np.ndarray:
    """Per sample, the id of its start: samples of one world with the same start pose, base height and history.

    Args:
        data: an :class:`~morobot.fdm.data.dataset.FDMDataset` (``arrays``, ``world_index``, ``len``).

    Returns:
        ``[N]`` int64 ids, numbered in order of first appearance; samples without a branch have an id of
        their own.
    """
    ids = np.empty(len(data), dtype=np.int64)
    seen: dict[tuple, int] = {}
    hist, pose, z = data.arrays["history"], data.arrays["start_pose"], data.arrays["start_z"]
    for i in range(len(data)):
        # a digest, not the bytes themselves, keeps the keys small on large data sets
        digest = hashlib.blake2b(pose[i].tobytes() + z[i].tobytes() + hist[i].tobytes(), digest_size=16).digest()
        ids[i] = seen.setdefault((int(data.world_index[i]), digest), len(seen))
    return ids


def outcome_pairs(failed: Any, groups: Any) -> np.ndarray:
    """Every pair of samples with one start of which exactly one failed.

    Args:
        failed: ``[N]`` outcome per sample (e.g. the failure flag at the horizon's end).
        groups: ``[N]`` start ids (:func:`start_groups`).

    Returns:
        ``[P, 2]`` int64 sample indices, the failing sample first; ``P = 0`` on data without branches.

    Raises:
        ValueError: if ``failed`` and ``groups`` differ in size.
    """
    y = np.asarray(failed).reshape(-1).astype(bool)
    g = np.asarray(groups).reshape(-1)
    if y.shape != g.shape:
        raise ValueError(f"failed and groups must have the same size, got {y.size} and {g.size}")
    # only starts with both a failure and a success hold pairs
    _, inverse = np.unique(g, return_inverse=True)
    fails, sizes = np.bincount(inverse, weights=y), np.bincount(inverse)
    mixed = np.flatnonzero(((fails > 0) & (fails < sizes))[inverse])
    order = mixed[np.argsort(g[mixed], kind="stable")]
    bounds = np.flatnonzero(np.r_[True, g[order][1:] != g[order][:-1], True])
    pairs = [np.zeros((0, 2), dtype=np.int64)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        idx = order[a:b]
        bad, good = idx[y[idx]], idx[~y[idx]]
        pairs.append(np.stack(np.meshgrid(bad, good, indexing="ij"), axis=-1).reshape(-1, 2))
    return np.concatenate(pairs).astype(np.int64)
