#!/usr/bin/env bash
# Builds the standard interfaces the PyPI ROS 2 wheels lack (tf2_msgs/TFMessage) from their definitions
# (interfaces/) into the virtual environment, with the rosidl wheels. Idempotent: nothing to do when
# `import tf2_msgs.msg` works (also on a ROS install). Needs cmake and a C/C++ compiler.
#
#   scripts/build_interfaces.sh                 # tf2_msgs into $VENV (set-up does this)
#   scripts/build_interfaces.sh SRC PREFIX      # any interface package SRC into PREFIX (tests)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(cd "${VENV:-.venv}" && pwd)

build_one() {  # SRC PREFIX
  local src=$1 prefix=$2 build
  build=$(mktemp -d)
  export AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
  echo "[setup] building $(basename "$src") from its definition ($src)"
  cmake -S "$src" -B "$build" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"$build/configure.log" 2>&1 \
    || { tail -30 "$build/configure.log"; rm -rf "$build"; return 1; }
  cmake --build "$build" -j 2 >"$build/build.log" 2>&1 || { tail -30 "$build/build.log"; rm -rf "$build"; return 1; }
  cmake --install "$build" >/dev/null
  rm -rf "$build"
}

if [ $# -eq 2 ]; then
  build_one "$1" "$2"
  exit 0
fi
if "$VENV/bin/python" -c "import tf2_msgs.msg" 2>/dev/null; then
  exit 0
fi
build_one interfaces/tf2_msgs "$VENV"
"$VENV/bin/python" -c "import tf2_msgs.msg"
