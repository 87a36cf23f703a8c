"""bench/bench_fdm_floor.py: its parts on a real walking robot, and the script at its smallest size."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchload import load_bench
from morobot.locomotion.sim import LeggedAnymalSim
from morobot.sim.worlds import make_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def m():
    return load_bench("bench_fdm_floor")


def test_relative_is_the_start_frame(m):
    assert np.allclose(m.relative(np.array([1.0, 2.0, math.pi / 2]), np.array([1.0, 3.0, 0.0])), [1.0, 0.0])
    assert np.allclose(m.relative(np.array([0.0, 0.0, math.pi]), np.array([-2.0, 0.5, 0.0])), [2.0, -0.5])


def test_a_branch_runs_on_a_copy_and_repeats_exactly(m):
    sim = LeggedAnymalSim(make_world("flat", 0, size=(20.0, 20.0)))
    sim.reset((0.0, 0.0, 0.3))
    sim.set_command(np.array([0.5, 0.0, 0.0]), stamp=sim.time)
    sim.advance(1.0)
    before, t0 = sim.state().pose.copy(), sim.time
    commands = np.array([[0.6, 0.1, 0.2]] * 2)
    a, fail_a = m.branch(sim, commands, 0.0)
    b, fail_b = m.branch(sim, commands, 0.0)
    assert sim.time == t0 and np.array_equal(sim.state().pose, before)  # the original did not move
    assert np.array_equal(a, b) and not fail_a and not fail_b  # a copy of one state repeats it bit for bit
    assert 0.3 < a[0] < 0.9 and abs(a[1]) < 0.3  # 1 s forward at about 0.6 m/s, in the start frame
    shifted, _ = m.branch(sim, commands, 0.001)
    assert np.linalg.norm(shifted - a) < 0.1  # 1 s after a 1 mm shift: close, whether bit-identical or not


def test_summarise_scores_the_pairs_against_perfect_tracking(m):
    cmd = np.tile([1.0, 0.0, 0.0], (m.HORIZON, 1))  # 5 s straight at 1 m/s: perfect tracking ends at x = 5
    samples = [{"a": np.array([5.0, 0.0]), "b": np.array([5.0, 0.3]), "failed": (False, False), "commands": cmd},
               {"a": np.array([4.0, 0.0]), "b": np.array([4.0, 0.1]), "failed": (True, False), "commands": cmd}]
    r = m.summarise(samples)
    assert r["samples"] == 2 and r["apart"] == pytest.approx(0.2) and r["floor"] == pytest.approx(0.2 / math.sqrt(2))
    assert r["constant_velocity"] == pytest.approx(0.5)  # 0 and 1 m off
    assert r["ratio"] == pytest.approx(0.2 / math.sqrt(2) / 0.5)
    assert (r["failed"], r["outcome_differs"]) == (1, 1)


def test_bench_runs_and_prints_its_table():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_fdm_floor.py"), "--kinds", "flat", "--worlds",
                          "1", "--steps", "4"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| flat |") or line.startswith("| all |")]
    assert len(rows) == 2 and "| 1 |" in rows[0]  # one sample: step 2 of 4
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_fdm_floor.py"), "--offset", "0"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--offset" in bad.stderr
