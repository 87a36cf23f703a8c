"""morobot record-demo: a synthetic demo stream (and the real checker in demo mode) recorded to a
rosbag2, read back with rosbags and compared value by value; Ctrl-C finalizes the bag."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.parameter import Parameter
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32

from morobot.ros import qos
from morobot.ros.conversions import make_joint_state, make_pose_stamped_quat, sec_to_stamp
from morobot.recording import DemoBag, recorder_topics, typestore
from morobot.ros.recorder import make_recorder_node, record

from rosutil import RosHarness

pytestmark = pytest.mark.ros

QUAT = np.array([0.0, 1.0, 0.0, 0.0])


def _status(verdict, debounced, heartbeat=False):
    values = [KeyValue(key="verdict", value=verdict), KeyValue(key="debounced", value=debounced),
              KeyValue(key="action", value="none")]
    if heartbeat:
        values.append(KeyValue(key="heartbeat", value="true"))
    level = {"ok": DiagnosticStatus.OK, "warning": DiagnosticStatus.WARN}.get(verdict, DiagnosticStatus.ERROR)
    return DiagnosticArray(status=[DiagnosticStatus(level=level, name="feasibility_checker", message=verdict,
                                                    values=values)])


def _read(path):
    ts = typestore()
    out = {}
    with Reader(path) as reader:
        for conn, stamp, raw in reader.messages():
            out.setdefault(conn.topic, []).append((stamp, ts.deserialize_cdr(raw, conn.msgtype), conn.msgtype))
    return out


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_records_synthetic_stream(tmp_path, storage):
    h = RosHarness()
    try:
        bag = DemoBag(tmp_path / "demo", recorder_topics(joint_states=True), storage)
        h.add(make_recorder_node(bag, name="recorder_under_test"))
        io = h.node("record_test_io")
        pubs = {"pose": io.create_publisher(PoseStamped, "/demo/ee_pose", qos.STATE),
                "status": io.create_publisher(DiagnosticArray, "/feasibility/status", qos.STATE),
                "haptic": io.create_publisher(Float32, "/feasibility/haptic", qos.STATE),
                "js": io.create_publisher(JointState, "/joint_states", qos.STATE)}
        assert h.spin_until(lambda: all(p.get_subscription_count() for p in pubs.values()), 10.0)
        verdicts = ["ok"] * 6 + ["warning"] * 2 + ["infeasible"] * 8 + ["rejected"] * 2 + ["ok"] * 2
        debounced = ["ok"] * 8 + ["ok"] * 4 + ["infeasible"] * 6 + ["infeasible", "ok"]
        positions = [np.array([0.3 + 0.01 * i, -0.1 + 0.003 * i, 0.4 + np.pi * 1e-4 * i]) for i in range(20)]
        haptics = [0.0 if d == "ok" else 1.0 for d in debounced]
        haptics[7] = 0.4
        for i in range(20):
            pubs["pose"].publish(make_pose_stamped_quat(positions[i], QUAT, 100.0 + 0.05 * i, "panda_link0"))
            pubs["status"].publish(_status(verdicts[i], debounced[i]))
            pubs["haptic"].publish(Float32(data=float(haptics[i])))
            if i % 2 == 0:
                pubs["js"].publish(make_joint_state(["a", "b"], [0.1 * i, -0.2], [0.0, 0.0], [0.0, 0.0], 100.0))
            h.spin_for(0.02)
        pubs["status"].publish(_status("ok", "ok", heartbeat=True))  # heartbeats are not frames
        total = 20 * 3 + 10 + 1
        assert h.spin_until(lambda: sum(bag.summary.counts.values()) >= total, 10.0)
        assert not (tmp_path / "demo").exists()  # still being written (hidden temp dir)
        summary = bag.close()
    finally:
        h.close()
    assert (tmp_path / "demo").is_dir() and sorted(os.listdir(tmp_path)) == ["demo"]  # no temp dir left
    assert summary.frames == 20 and summary.checked == 20 and summary.undecodable == 0
    assert summary.infeasible == 10 and summary.infeasible_ratio == pytest.approx(0.5)
    assert summary.debounced_infeasible == 7 and summary.debounced_infeasible_ratio == pytest.approx(0.35)
    assert summary.haptic_mean == pytest.approx(sum(np.float32(h) for h in haptics) / 20)
    assert summary.counts == {"/demo/ee_pose": 20, "/feasibility/status": 21, "/feasibility/haptic": 20,
                              "/joint_states": 10}
    data = _read(tmp_path / "demo")
    assert {t: len(v) for t, v in data.items()} == summary.counts
    poses = data["/demo/ee_pose"]
    assert poses[0][2] == "geometry_msgs/msg/PoseStamped"
    for i, (stamp, msg, _) in enumerate(poses):
        p = msg.pose.position
        assert [p.x, p.y, p.z] == positions[i].tolist()  # exact across the wire and the bag
        assert msg.header.frame_id == "panda_link0"
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (sec_to_stamp(100.0 + 0.05 * i).sec,
                                                                    sec_to_stamp(100.0 + 0.05 * i).nanosec)
    stamps = [s for s, _, _ in poses]
    assert stamps == sorted(stamps) and stamps[0] > 0
    assert [m.data for _, m, _ in data["/feasibility/haptic"]] == [float(np.float32(h)) for h in haptics]
    got = [{kv.key: kv.value for kv in m.status[0].values}["verdict"] for _, m, _ in data["/feasibility/status"]]
    assert got == verdicts + ["ok"]
    assert data["/feasibility/status"][8][1].status[0].level == 2  # ERROR (rclpy: bytes, rosbags: int)
    assert [m.position[0] for _, m, _ in data["/joint_states"]] == [0.1 * i for i in range(0, 20, 2)]


def test_refuses_existing_output_and_bad_storage(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError):
        DemoBag(tmp_path / "taken", recorder_topics(False))
    with pytest.raises(ValueError, match="storage"):
        DemoBag(tmp_path / "new", recorder_topics(False), storage="rosbag1")
    from morobot.cli import main

    assert main(["record-demo", "--out", str(tmp_path / "taken"), "--duration", "1"]) == 2


def test_records_checker_demo_stream(tmp_path):
    """The real checker in demo mode, recorded by ``record`` (own context, in a thread) for a fixed time."""
    from morobot.feasibility import FeasibilityChecker
    from morobot.nodes.feasibility_checker import FeasibilityCheckerNode

    h = RosHarness()
    result = {}
    ready, stop = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: result.update(summary=record(tmp_path / "bag", stop=stop, ready=ready)))
    try:
        node = h.add(FeasibilityCheckerNode(parameter_overrides=[
            Parameter("mode", Parameter.Type.STRING, "demo"),
            Parameter("debounce_frames", Parameter.Type.INTEGER, 2)]))
        io = h.node("record_demo_io")
        pose_pub = io.create_publisher(PoseStamped, "/demo/ee_pose", qos.STATE)
        worker.start()
        assert ready.wait(20.0)
        assert h.spin_until(lambda: pose_pub.get_subscription_count() >= 2
                            and node.count_subscribers("/feasibility/status") >= 1
                            and node.count_subscribers("/feasibility/haptic") >= 1, 10.0)
        import pinocchio as pin

        tcp = FeasibilityChecker().robot.ee_placement(node.checker.robot.ready_pose)
        quat = pin.Quaternion(tcp.rotation)
        wxyz = [quat.w, quat.x, quat.y, quat.z]
        for i in range(12):  # 8 reachable frames, then 4 out of reach
            position = tcp.translation + [0.0, 0.002 * i, 0.0] if i < 8 else np.array([1.6, 0.0, 0.4])
            pose_pub.publish(make_pose_stamped_quat(position, wxyz, 0.0, "panda_link0"))
            h.spin_for(0.05)
        h.spin_for(0.5)
    finally:
        stop.set()
        worker.join(30.0)
        h.close()
    summary = result["summary"]
    assert summary.frames == 12 and summary.checked == 12
    assert summary.infeasible == 4 and summary.debounced_infeasible == 3  # 2-frame debounce
    data = _read(tmp_path / "bag")
    assert [m.data for _, m, _ in data["/feasibility/haptic"]] == [0.0] * 9 + [1.0] * 3
    ik = [next(s for s in m.status if s.name.endswith("/ik")) for _, m, _ in data["/feasibility/status"]
          if len(m.status) > 1]
    assert all("IK solved" in s.message for s in ik[:8]) and all("unreachable" in s.message for s in ik[8:])


def test_cli_stops_cleanly_on_ctrl_c(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "ctrl_c"
    proc = subprocess.Popen([sys.executable, "-m", "morobot.cli", "record-demo", "--out", str(out),
                             "--storage", "sqlite3", "--summary-json", str(tmp_path / "s.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    h = RosHarness()
    try:
        io = h.node("record_cli_io")
        pub = io.create_publisher(Float32, "/feasibility/haptic", qos.STATE)
        assert h.spin_until(lambda: pub.get_subscription_count() > 0, 30.0)
        for i in range(5):
            pub.publish(Float32(data=0.25 * i))
            h.spin_for(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        h.close()
    assert proc.returncode == 0, output
    assert "0 demo frames" in output
    data = _read(out)
    assert [m.data for _, m, _ in data["/feasibility/haptic"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    import json

    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["counts"]["/feasibility/haptic"] == 5 and saved["infeasible_ratio"] is None


def test_a_killed_recording_keeps_all_but_the_last_second(tmp_path):
    """kill -9 during a recording: the finished one-second segments rebuild a readable bag."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "morobot.cli", "record-demo", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    h = RosHarness()
    sent = 0
    try:
        io = h.node("record_kill_io")
        pub = io.create_publisher(Float32, "/feasibility/haptic", qos.STATE)
        assert h.spin_until(lambda: pub.get_subscription_count() > 0, 30.0)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:  # 4 s at 20 Hz
            pub.publish(Float32(data=float(sent)))
            sent += 1
            h.spin_for(0.05)
        proc.kill()  # SIGKILL: no handler runs
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        h.close()
    assert not out.exists()  # a killed recording never looks complete
    partial = [p for p in tmp_path.iterdir() if p.name.startswith(".killed.") and p.name.endswith(".partial")]
    assert len(partial) == 1
    recovered = tmp_path / "recovered"
    result = subprocess.run([sys.executable, "-m", "morobot.cli", "record-demo", "--recover", str(partial[0]),
                             "--out", str(recovered), "--summary-json", str(tmp_path / "r.json")],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    values = [m.data for _, m, _ in _read(recovered)["/feasibility/haptic"]]
    print(f"\n[fault] record-demo kill -9 after {sent} messages in 4 s: {len(values)} recovered")
    assert values == [float(i) for i in range(len(values))]  # in order, none missing before the cut
    assert len(values) >= sent - 20 - 5  # at most the last second (20 Hz) lost, plus delivery slack
    import json

    assert json.loads((tmp_path / "r.json").read_text())["recovered"] is True
