#!/usr/bin/env bash
# Builds the standard interfaces the PyPI ROS 2 wheels lack (tf2_msgs/TFMessage) from their definitions
# (interfaces/) into the virtual environment, with the rosidl wheels. Idempotent: nothing to do when
# `import tf2_msgs.msg` works (also on a ROS install). Needs cmake and a C/C++ compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(cd "${VENV:-.venv}" && pwd)
if "$VENV/bin/python" -c "import tf2_msgs.msg" 2>/dev/null; then
  exit 0
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
export AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
echo "[setup] building tf2_msgs from its definition (interfaces/tf2_msgs)"
cmake -S interfaces/tf2_msgs -B "$build" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
  -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"$build/configure.log" 2>&1 \
  || { tail -30 "$build/configure.log"; exit 1; }
cmake --build "$build" -j 2 >"$build/build.log" 2>&1 || { tail -30 "$build/build.log"; exit 1; }
cmake --install "$build" >/dev/null
"$VENV/bin/python" -c "import tf2_msgs.msg"
