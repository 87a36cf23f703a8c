"""Interface packages that are no PyPI wheel (nav2_msgs, control_msgs), built for a test from a stand-in
definition in test/nodes/data with scripts/build_interfaces.sh, and the environment of a subprocess
that imports them."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parents[1]


def build(package: str, prefix: Path) -> Path:
    """Build test/nodes/data/<package> into ``prefix``; returns ``prefix``."""
    out = subprocess.run(["bash", str(ROOT / "scripts" / "build_interfaces.sh"),
                          str(ROOT / "test" / "nodes" / "data" / package), str(prefix)],
                         capture_output=True, text=True, timeout=600, env=dict(os.environ, VENV=str(VENV)))
    assert out.returncode == 0, out.stdout + out.stderr
    return prefix


def run(script: str, prefix: Path, timeout: float = 180.0) -> subprocess.CompletedProcess:
    """Run test/nodes/<script> with the package in ``prefix`` importable."""
    site = next((prefix / "lib").glob("python3*/site-packages"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT), env.get("PYTHONPATH", "")])
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(prefix / "lib"), env.get("LD_LIBRARY_PATH", "")])
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([str(prefix), str(VENV)])
    return subprocess.run([sys.executable, str(ROOT / "test" / "nodes" / script)], capture_output=True, text=True,
                          timeout=timeout, env=env)
