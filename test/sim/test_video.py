"""MP4 of a recorded run (morobot.sim.video), for the rigid and the legged robot."""

import cv2
import numpy as np
import pytest

from morobot.sim.legged import DEFAULT_POSE
from morobot.sim.video import render_run
from morobot.sim.worlds import load_world


@pytest.mark.parametrize("legged", [False, True])
def test_renders_one_frame_per_twentieth_of_a_second(tmp_path, legged):
    t = np.arange(0.0, 1.0, 0.02)
    states = np.column_stack([t, -3 + 0.8 * t, 0 * t, 0.5 + 0 * t, np.ones_like(t), 0 * t, 0 * t, 0 * t])
    joints = np.column_stack([t, np.tile(DEFAULT_POSE, (len(t), 1))]) if legged else None
    out = render_run(load_world("flat_small"), states, tmp_path / "run.mp4", joints=joints, size=(160, 120))
    video = cv2.VideoCapture(str(out))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    ok, frame = video.read()
    assert ok and frame.shape == (120, 160, 3) and frame.std() > 5.0  # not a blank image
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_rejects_malformed_states(tmp_path):
    with pytest.raises(ValueError):
        render_run(load_world("flat_small"), np.zeros((3, 5)), tmp_path / "x.mp4")
