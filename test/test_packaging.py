"""The distro build path: `colcon build` installs an ament_python package that `ros2 run/launch` can use."""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def test_package_xml_format3_with_runtime_deps():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.attrib["format"] == "3"
    assert root.findtext("name") == "morobot"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    for key in ("rclpy", "geometry_msgs", "nav_msgs", "sensor_msgs", "trajectory_msgs", "diagnostic_msgs",
                "visualization_msgs", "rosgraph_msgs", "launch", "launch_ros", "pinocchio",
                "example-robot-data", "python3-numpy", "python3-torch", "python3-opencv"):
        assert key in deps, key


def test_colcon_build_installs_share_and_executables(tmp_path):
    # colcon comes with the [dev] extra, next to this interpreter
    colcon = shutil.which("colcon", path=os.path.dirname(sys.executable)) or shutil.which("colcon")
    assert colcon, "colcon not found: pip install -e .[dev]"
    proc = subprocess.run(
        [colcon, "--log-base", "log", "build", "--base-paths", str(ROOT), "--build-base", "build",
         "--install-base", "install", "--packages-select", "morobot"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix = tmp_path / "install" / "morobot"
    share = prefix / "share" / "morobot"
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "morobot").is_file()
    assert (share / "package.xml").is_file()
    assert (share / "launch" / "navigate.launch.py").is_file()
    assert (share / "config" / "navigate.yaml").is_file()
    assert sorted(p.name for p in (share / "config" / "worlds").glob("*.yaml"))
    for exe in ("mujoco_sim", "elevation_mapper", "mppi_planner", "morobot"):
        assert os.access(prefix / "lib" / "morobot" / exe, os.X_OK), exe
