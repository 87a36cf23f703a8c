"""Left-right mirror augmentation of FDM samples (morobot.fdm.data.dataset.mirror_batch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from morobot.fdm.data.dataset import DataSpec, FDMDataset, mirror_batch
from morobot.fdm.heightscan import ScanConfig, sample_heights
from morobot.fdm.se2 import integrate
from morobot.fdm.data.synthetic import write_synthetic_dataset

SCAN = ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.5, y_max=1.5, resolution=0.2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    write_synthetic_dataset(root, worlds_per_kind=1, samples_per_world=20, seed=3, spec=DataSpec(scan=SCAN))
    return FDMDataset(root)


def test_mirror_flips_the_lateral_components_of_selected_samples(dataset):
    batch = dataset.batch(np.arange(8))
    mask = torch.tensor([True, False] * 4)
    out = mirror_batch(batch, mask, SCAN)
    for key in ("history", "commands", "poses", "scan", "failed"):
        torch.testing.assert_close(out[key][~mask], batch[key][~mask])
    h, h0 = out["history"][mask], batch["history"][mask]
    torch.testing.assert_close(h[..., [0, 3, 6, 8]], h0[..., [0, 3, 6, 8]])
    torch.testing.assert_close(h[..., [1, 2, 4, 5, 7]], -h0[..., [1, 2, 4, 5, 7]])
    torch.testing.assert_close(out["commands"][mask][..., 0], batch["commands"][mask][..., 0])
    torch.testing.assert_close(out["commands"][mask][..., 1:], -batch["commands"][mask][..., 1:])
    torch.testing.assert_close(out["poses"][mask][..., 1:], -batch["poses"][mask][..., 1:])
    torch.testing.assert_close(out["scan"][mask], batch["scan"][mask].flip(-1))
    torch.testing.assert_close(out["failed"], batch["failed"])
    twice = mirror_batch(out, mask, SCAN)
    for key in ("history", "commands", "poses", "scan"):
        torch.testing.assert_close(twice[key], batch[key])
    assert batch["commands"] is not out["commands"]  # the input is not modified in place


def test_mirrored_commands_integrate_to_mirrored_poses():
    """Consistency with SE(2): reflecting the commands reflects the integrated path."""
    gen = torch.Generator().manual_seed(0)
    cmds = torch.rand(16, 10, 3, generator=gen, dtype=torch.float64) * 2 - 1
    sign = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)
    poses = integrate(cmds, 0.5)
    torch.testing.assert_close(integrate(cmds * sign, 0.5), poses * sign)


def test_scan_of_the_mirrored_world_is_the_flipped_scan():
    rng = np.random.default_rng(0)
    heights = rng.normal(size=(61, 61)).astype(np.float32) * 0.2
    origin, res = (-3.0, -3.0), 0.1  # symmetric about y = 0: column j <-> 60 - j
    pose = np.array([0.3, 0.4, 0.5])
    scan = sample_heights(heights, origin, res, pose, 0.0, SCAN)
    mirrored = sample_heights(heights[:, ::-1].copy(), origin, res, pose * [1, -1, -1], 0.0, SCAN)
    np.testing.assert_allclose(mirrored, scan[:, ::-1], atol=1e-5)


def test_the_simulated_robot_is_left_right_symmetric():
    """The assumption behind the augmentation, checked on the simulator the data comes from."""
    from morobot.sim.anymal import AnymalSim
    from morobot.sim.worlds import make_world

    world = make_world("flat", 0)
    finals = []
    for cmd in ((0.6, 0.25, 0.4), (0.6, -0.25, -0.4)):
        sim = AnymalSim(world)
        sim.reset(pose=(0.0, 0.0, 0.0))
        for _ in range(20):
            sim.set_command(cmd)
            state = sim.advance(0.1)
        finals.append(np.asarray(state.pose, dtype=float))
    assert np.linalg.norm(finals[0][:2]) > 0.8
    np.testing.assert_allclose(finals[1], finals[0] * [1, -1, -1], atol=5e-3)


def test_mirror_rejects_bad_masks_and_asymmetric_scans(dataset):
    batch = dataset.batch(np.arange(4))
    with pytest.raises(ValueError, match="mask"):
        mirror_batch(batch, torch.ones(3, dtype=torch.bool), SCAN)
    skewed = ScanConfig(x_min=-1.0, x_max=3.0, y_min=-1.4, y_max=1.6, resolution=0.2)
    with pytest.raises(ValueError, match="symmetric"):
        mirror_batch(batch, torch.ones(4, dtype=torch.bool), skewed)
    no_scan = {k: v for k, v in batch.items() if k != "scan"}
    out = mirror_batch(no_scan, torch.ones(4, dtype=torch.bool), skewed)  # no scan: nothing to flip
    assert "scan" not in out
