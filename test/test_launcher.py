"""`morobot launch navigate` starts the graph as processes on DDS; Ctrl-C stops them all cleanly."""

import os
import signal
import subprocess
import sys
import time

import pytest
from nav_msgs.msg import Odometry
from sensor_msgs.msg import PointCloud2

from morobot.ros import qos

from rosutil import RosHarness

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_launch_navigate_then_ctrl_c(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "morobot.cli", "launch", "navigate", "world:=flat_small"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    h = RosHarness()
    try:
        io = h.node("launch_probe")
        seen = {"odom": 0, "map": 0}
        io.create_subscription(Odometry, "/odom", lambda m: seen.__setitem__("odom", seen["odom"] + 1), qos.STATE)
        io.create_subscription(PointCloud2, "/elevation_map", lambda m: seen.__setitem__("map", seen["map"] + 1),
                               qos.STATE)
        assert h.spin_until(lambda: seen["odom"] > 10 and seen["map"] > 1, 60.0), seen
        # Graph discovery can lag behind the first messages: wait for the names too.
        want = {"mujoco_sim", "elevation_mapper", "mppi_planner"}
        names = lambda: {n for n, _ns in io.get_node_names_and_namespaces()}  # noqa: E731
        assert h.spin_until(lambda: want <= names(), 30.0), names()
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 3
    finally:
        h.close()
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopped: {'mujoco_sim': 0, 'elevation_mapper': 0, 'mppi_planner': 0}" in out, out
    # nothing left behind
    time.sleep(0.5)
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read(), pid


def test_bad_launch_arguments_fail_clearly():
    out = subprocess.run([sys.executable, "-m", "morobot.cli", "launch", "navigate", "wrld:=x"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown launch arguments" in out.stderr


@pytest.mark.ros
@pytest.mark.parametrize("how", ["sighup", "kill9"])
def test_nodes_end_with_the_launcher(tmp_path, how):
    """Closing the terminal (SIGHUP) stops the graph cleanly; kill -9 of the launcher takes its nodes along."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "morobot.cli", "launch", "navigate", "use_sim:=false",
                             "use_sim_time:=false"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        children = []
        while time.monotonic() < deadline and len(children) < 2:
            out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            children = [int(c) for c in out]
            time.sleep(0.2)
        assert len(children) >= 2, "the launcher did not start its nodes"
        time.sleep(2.0)
        proc.send_signal(signal.SIGHUP if how == "sighup" else signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        alive = children
        while time.monotonic() < deadline and alive:
            alive = [c for c in alive if os.path.exists(f"/proc/{c}") and
                     open(f"/proc/{c}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
            time.sleep(0.2)
        assert not alive, f"nodes outlived the launcher ({how}): {alive}"
        if how == "sighup":
            assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
