#!/usr/bin/env bash
# One-time set-up on a bare Debian/Ubuntu machine without ROS: system libraries, a virtual environment,
# CPU torch, the PyPI ROS 2 wheels and morobot itself (editable). Idempotent: re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
APT_PKGS="libusb-1.0-0 libosmesa6 libgl1 libglib2.0-0 cmake g++ python3-dev"  # cmake..: tf2_msgs

missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

stamp="$VENV/.morobot-setup"
if [ -f "$stamp" ] && [ "$stamp" -nt setup.py ] && [ "$stamp" -nt scripts/setup.sh ] \
   && [ "$stamp" -nt scripts/build_interfaces.sh ] && [ "$stamp" -nt scripts/constraints.txt ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
# CPU build from the local wheel cache; a bare `torch` would pull GBs of CUDA.
$PIP install -q -c scripts/constraints.txt "torch==2.13.0"
# the versions the project's figures were made with (see the file)
$PIP install -q -c scripts/constraints.txt -e ".[ros,dev]"
VENV="$VENV" bash scripts/build_interfaces.sh
# the feasibility checker's compiled kernels (numba caches them next to the code): about 40 s once, so the
# first checker a node or a test builds afterwards takes a second
"$VENV/bin/python" -c "from morobot.feasibility import FeasibilityChecker as C, FeasibilityConfig as F
for arm in ('panda', 'ur5'): C(F(robot=arm))"
touch "$stamp"
echo "[setup] ready: $VENV"
