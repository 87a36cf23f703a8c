# The two commands of the README; both set up a bare machine first (scripts/setup.sh is idempotent).
VENV ?= .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= osmesa
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup demo test test-fast bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/morobot demo

test: setup
	$(BIN)/python -m pytest test -q -ra

test-fast: setup
	$(BIN)/python -m pytest test -q -ra -m "not slow"

bench: setup
	$(BIN)/python bench/bench_mppi.py --quick

clean:
	rm -rf build install log out .pytest_cache
