"""Where morobot finds its data: its own share directory and the example-robot-data models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PKG_ROOT = Path(__file__).resolve().parent


def share_dir() -> Path:
    """The directory holding ``config/``, ``launch/`` and ``urdf/``.

    In a source checkout or ``pip install -e .`` that is the repository root; after ``colcon build``
    it is ``<install>/share/morobot`` (found through ament_index when available).
    """
    env = os.environ.get("MOROBOT_SHARE")
    if env:
        return Path(env)
    repo = _PKG_ROOT.parent
    if (repo / "config").is_dir() and (repo / "package.xml").is_file():
        return repo
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("morobot"))
    except Exception as exc:  # pragma: no cover - only on broken installs
        raise FileNotFoundError(
            "cannot find morobot's share directory (config/, launch/); set MOROBOT_SHARE"
        ) from exc


def config_path(name: str) -> Path:
    """Path of a file under ``config/``; raises FileNotFoundError with a clear message."""
    path = share_dir() / "config" / name
    if not path.exists():
        raise FileNotFoundError(f"morobot config file not found: {path}")
    return path


def robots_share_dir() -> Path:
    """The ``share`` directory of example-robot-data (use it as the URDF package directory).

    Searches ``MOROBOT_ROBOTS_SHARE``, the cmeel prefix of this Python, and a ROS install's
    ``AMENT_PREFIX_PATH``/``CMAKE_PREFIX_PATH``.
    """
    candidates: list[Path] = []
    env = os.environ.get("MOROBOT_ROBOTS_SHARE")
    if env:
        candidates.append(Path(env))
    for entry in sys.path:
        candidates.append(Path(entry) / "cmeel.prefix" / "share")
    for var in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
        for prefix in os.environ.get(var, "").split(os.pathsep):
            if prefix:
                candidates.append(Path(prefix) / "share")
    for cand in candidates:
        if (cand / "example-robot-data" / "robots").is_dir():
            return cand
    raise FileNotFoundError(
        "example-robot-data not found: `pip install example-robot-data` (or install "
        "ros-<distro>-example-robot-data) or set MOROBOT_ROBOTS_SHARE to its share/ directory"
    )


def robot_dir(description: str) -> Path:
    """Directory of one robot description, e.g. ``anymal_c_simple_description``."""
    path = robots_share_dir() / "example-robot-data" / "robots" / description
    if not path.is_dir():
        raise FileNotFoundError(f"robot description not found: {path}")
    return path


def anymal_urdf() -> Path:
    return robot_dir("anymal_c_simple_description") / "urdf" / "anymal.urdf"


def panda_urdf() -> Path:
    return robot_dir("panda_description") / "urdf" / "panda.urdf"


def panda_srdf() -> Path:
    return robot_dir("panda_description") / "srdf" / "panda.srdf"


def models_dir() -> Path:
    """Directory of the shipped checkpoints (``models/`` in the source tree, ``share/morobot/models``)."""
    return share_dir() / "models"


def default_fdm_checkpoint() -> Path:
    """The FDM an empty ``fdm_checkpoint`` means in the planner: the walking ANYmal's (:func:`legged_fdm_checkpoint`).

    ``morobot.graph`` names :func:`rigid_fdm_checkpoint` instead for the simulated rigid body
    (``locomotion:=abstract``).
    """
    return legged_fdm_checkpoint()


def legged_fdm_checkpoint() -> Path:
    """The shipped FDM checkpoint of the walking robot (its joints in the history; docs/fdm.md)."""
    return models_dir() / "fdm" / "fdm_legged.pt"


def rigid_fdm_checkpoint() -> Path:
    """The shipped FDM checkpoint of the rigid-body robot (base history only, so also the ``fdm_monitor``'s default;
    reproduced by the command in docs/fdm.md)."""
    return models_dir() / "fdm" / "fdm_default.pt"
