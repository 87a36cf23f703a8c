"""FDM in the ROS graph: the monitor on real topics, checkpoint refusal, and the planner with
``dynamics:=fdm`` closing the loop in sim."""

import json
import math
from types import SimpleNamespace

import pytest
import torch
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry, Path
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Float32

from morobot import paths
from morobot.planning.interface import HeightMap
from morobot.ros import qos
from morobot.ros.conversions import heightmap_to_pointcloud2, make_cmd_vel, make_odometry

from rosutil import RosHarness

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("which, features", [("default", "legged_actions"), ("legged", "legged_actions"),
                                             ("rigid", "base")])
def test_shipped_checkpoints_exist_with_sidecar(which, features):
    ckpt = getattr(paths, f"{which}_fdm_checkpoint")()
    assert ckpt.is_file() and ckpt.with_suffix(".json").is_file()
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    assert "seed" in meta and "data_hash" in meta
    assert meta["config"].get("history_features", "base") == features  # older sidecars: FDMConfig's default


@pytest.mark.parametrize("content", [None, b"not a checkpoint"])
def test_monitor_refuses_missing_or_corrupt_checkpoint(tmp_path, content):
    from morobot.nodes.fdm_monitor import FdmMonitorNode

    path = tmp_path / "model.pt"
    if content is not None:
        path.write_bytes(content)
    h = RosHarness()
    try:
        with pytest.raises(ValueError):
            FdmMonitorNode(parameter_overrides=[Parameter("fdm_checkpoint", Parameter.Type.STRING, str(path))])
    finally:
        h.close()


def test_monitor_predicts_the_executed_command():
    from morobot.nodes.fdm_monitor import FdmMonitorNode

    h = RosHarness()
    try:
        mon = h.add(FdmMonitorNode(parameter_overrides=[Parameter("rate", Parameter.Type.DOUBLE, 10.0)]))
        io = h.node("monitor_io")
        rec = {"path": [], "risk": []}
        io.create_subscription(Path, "/fdm/predicted_path", lambda m: rec["path"].append(m), qos.STATE)
        io.create_subscription(Float32, "/fdm/collision_risk", lambda m: rec["risk"].append(m.data), qos.STATE)
        odom = io.create_publisher(Odometry, "/odom", qos.STATE)
        emap = io.create_publisher(PointCloud2, "/elevation_map", qos.STATE)
        cmd = io.create_publisher(TwistStamped, "/cmd_vel", qos.STATE)

        def feed():
            t = io.get_clock().now().nanoseconds * 1e-9
            odom.publish(make_odometry([0, 0, 0.55], [1, 0, 0, 0], [0.6, 0, 0], [0, 0, 0], t))
            emap.publish(heightmap_to_pointcloud2(HeightMap(torch.zeros(60, 60), (-3.0, -3.0), 0.1, t)))
            cmd.publish(make_cmd_vel([0.6, 0.0, 0.0], True))

        # no odometry yet: unknown is unsafe
        assert h.spin_until(lambda: rec["risk"], 15.0)
        assert rec["risk"][0] == 1.0
        assert h.spin_until(lambda: len(rec["path"]) >= 3, 30.0, feed)
        poses = rec["path"][-1].poses
        assert len(poses) == mon.fdm.config.horizon
        end = poses[-1].pose.position
        # 0.6 m/s straight ahead on flat ground for the whole horizon
        assert end.x == pytest.approx(0.6 * mon.fdm.dt * len(poses), rel=0.35)
        assert abs(end.y) < 0.5
        assert 0.0 <= rec["risk"][-1] < 0.5 and math.isfinite(rec["risk"][-1])
    finally:
        h.close()


@pytest.mark.slow
def test_fdm_planner_reaches_goal_in_sim(tmp_path):
    from morobot.demo import main as demo_main

    ns = SimpleNamespace(world="flat_small", out=str(tmp_path), timeout=60.0, rate=1.0, dynamics="fdm",
                         fdm_checkpoint="", params_file="", locomotion="abstract")  # the FDM's robot
    rc = demo_main(ns)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert rc == 0 and summary["reached"], summary
    log = (tmp_path / "logs" / "mppi_planner.log").read_text()
    assert f"dynamics 'fdm' from {paths.rigid_fdm_checkpoint()}" in log  # the graph's choice for the rigid body


def test_legged_fdm_planner_reaches_goal_in_sim(tmp_path):
    """The walking robot under the shipped legged FDM (what an empty checkpoint means), through the ROS graph: the
    planner reads the joint states and joint targets the simulator publishes."""
    from morobot.demo import main as demo_main

    ns = SimpleNamespace(world="flat_small", out=str(tmp_path), timeout=90.0, rate=1.0, dynamics="fdm",
                         fdm_checkpoint="", params_file="", locomotion="learned")
    rc = demo_main(ns)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert rc == 0 and summary["reached"], summary
    log = (tmp_path / "logs" / "mppi_planner.log").read_text()
    assert f"dynamics 'fdm' from {paths.legged_fdm_checkpoint()}" in log and "no joint" not in log
