"""The ``elevation_mapper`` node's parameters, each defined once (default, range, description), and
the mapper configuration they give (:func:`elevation_config`), for the node and for data collection."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional

from morobot.mapping.body import BODY_BOX, check_box
from morobot.mapping.elevation import ElevationMapConfig
from morobot.params import param


@dataclass(frozen=True)
class MapperParams:
    """``elevation_mapper``: point clouds fused into a robot-centric height grid."""

    size_x: float = param(12.0, "map extent along odom x (m), centred on the robot", 1.0, 50.0)
    size_y: float = param(12.0, "map extent along odom y (m), centred on the robot", 1.0, 50.0)
    resolution: float = param(0.1, "cell size (m)", 0.02, 1.0)
    max_age: float = param(20.0, "a cell not observed for this long (s) becomes unknown", 0.1, 600.0)
    voxel_size: float = param(0.05, "voxel downsampling of incoming clouds (m, 0 = off)", 0.0, 1.0)
    publish_rate: float = param(5.0, "map publishing rate (Hz)", 0.5, 50.0)
    odom_frame: str = param("odom", "world-fixed frame of the map and odometry")
    base_frame: str = param("base", "robot body frame of incoming clouds")
    max_odom_lag: float = param(0.2, "largest cloud/odometry stamp difference accepted (s)", 0.0, 2.0)
    points_timeout: float = param(1.0, "no cloud for this long (s, node clock): the map is not published (the "
                                  "planner then stops on a stale map) and an error is logged", 0.1, 30.0,
                                  tighten="down")
    max_points: int = param(200000, "clouds with more points are randomly downsampled to this many before "
                            "mapping; a message over ten times that many 48-byte points is dropped undecoded "
                            "(bounded cost per cloud)", 1000, 10000000)
    max_cloud_rate: float = param(20.0, "clouds arriving faster than this (Hz, node clock) are skipped (bounded "
                                  "cost per second)", 0.5, 1000.0)
    body_filter: bool = param(True, "drop the points of the robot's own legs and body (those inside body_box) before "
                              "mapping: depth cameras see the swinging feet, which would be mapped as obstacles "
                              "next to the robot")
    body_box: tuple = param(BODY_BOX, "the box holding the robot's legs and body, in the base frame: x_min, x_max, "
                            "y_min, y_max, z_min, z_max (m). The default holds the leg points the simulated ANYmal "
                            "C's four depth cameras see while walking, all but feet on the ground (docs/planner.md), "
                            "and stops a few cm above the ground it stands on, so the ground under the robot is "
                            "still mapped")

    @staticmethod
    def cross_check(p: dict) -> Optional[str]:
        """Checks across parameters (reason or None)."""
        try:
            check_box(p["body_box"])
        except ValueError as exc:
            return str(exc)
        return None


#: The scalar mapper parameters that are :class:`ElevationMapConfig` fields (the rest keep its defaults;
#: ``body_box`` goes in with ``body_filter``).
SHARED = tuple(f.name for f in fields(ElevationMapConfig)
               if f.name in {g.name for g in fields(MapperParams)} and f.name != "body_box")


def elevation_config(p: Mapping[str, Any]) -> ElevationMapConfig:
    """The :class:`ElevationMapConfig` of a mapper parameter set (the fields :data:`SHARED` by name).

    Raises:
        KeyError: a parameter of :data:`SHARED`, ``body_filter`` or ``body_box`` is missing from ``p``.
        ValueError: invalid values (see :class:`ElevationMapConfig`).
    """
    box = tuple(float(v) for v in p["body_box"]) if p["body_filter"] else None
    return ElevationMapConfig(**{name: float(p[name]) for name in SHARED}, body_box=box)
