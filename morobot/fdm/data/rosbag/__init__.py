"""Real-robot FDM data: rosbag2 recordings converted into the data format of :mod:`morobot.fdm.data.collect`.

``python -m morobot.fdm.data.rosbag.convert BAG [BAG ...] --out data/fdm_real`` (``morobot convert-bag ...``)

Reads, with the pure-Python ``rosbags`` package (no ROS install, no rclpy):

* ``/odom`` (nav_msgs/Odometry): pose in the odom frame, body twist in the base frame (as the
  simulator and ANYmal's state estimator publish it); gravity in the base frame follows from the
  orientation quaternion, ``R^T (0, 0, -1)``.
* ``/cmd_vel`` (geometry_msgs/Twist or TwistStamped): the last command is held and replaced by zero
  ``cmd_timeout`` (0.5 s) after it arrived, like the locomotion watchdog of the simulator.
* terrain, either ``/elevation_map`` (sensor_msgs/PointCloud2, the organized ``rows x cols`` grid of
  cell centres ``(x, y, height)`` in odom that the ``elevation_mapper`` node publishes, NaN height =
  unknown) or ``/points`` (PointCloud2 in the odom frame, in the base frame, or in a sensor frame
  with a given static sensor-to-base transform), fused into a height grid with the mapper's own
  :class:`morobot.mapping.elevation.ElevationMapper`, in message order, as the node does.

Everything is resampled onto the collector's time grid: a sample starts at every multiple of
``stride * dt`` (1 s) of the bag's clock; its history has ``history_length`` rows ``history_dt``
apart ending at the start (odometry interpolated linearly, the orientation by normalised
quaternion interpolation, the command held as it was just before each row time), assembled by the
same :class:`~morobot.fdm.history.ProprioHistory` the collector and the run-time nodes use; its
``horizon`` commands are the time averages of the held command over each ``dt`` step (exact
integrals of the piecewise-constant command, watchdog included); its poses are the odometry at the
end of each step, relative to the start pose; its scan is sampled from the newest terrain at or
before the start with :func:`morobot.fdm.heightscan.sample_heights` (relative to the start base
height, no augmentation). Windows are skipped, and counted per reason, when odometry has a gap
longer than ``max_odom_gap`` or ends (``odom_gap``), the window begins before the first command
message, so whether the robot was commanded is unknown (``no_command``), an odometry or command message in the window
holds NaN/Inf or an unnormalised quaternion (``nan``), the start lies inside a failure episode
(``in_failure``, as the collector starts no sample after a failure), the window crosses a segment
border (``segment_edge``), the robot idles (``idle``, only with ``skip_idle``), or no terrain
newer than ``max_terrain_age`` exists at the start (``stale_terrain``).

Failure labels are a heuristic (a real bag has no contact ground truth); the manifest says so
(``meta.labels == "heuristic"``) and records the parameters. A failure happens at the onset of

* **stuck**: commanded motion ``|v_cmd,xy| + yaw_lever |w_cmd,z| >= stuck_min_command`` while the
  measured motion (same measure on the odometry twist) stays below ``stuck_ratio`` times it,
  continuously over odometry messages for at least ``stuck_time`` — the real-data counterpart of
  the simulator's stuck flag, which also catches running into walls and unclimbable steps;
* **tilt**: the base z axis tilted more than ``tilt_deg`` from vertical (the simulator's fall
  criterion).

As in the collector, the flags of a sample are 1 from the step containing the onset, later poses
are frozen at the end of that step, and no sample starts inside an episode.

Output: one shard per bag (or per ``segment_seconds`` segment of a bag, so that
:func:`~morobot.fdm.data.dataset.split_worlds` can hold segments out) written atomically, and the
manifest rewritten after every bag, with the source bags, topics, message counts, skip counts and
the heuristic's parameters; ``--resume`` skips bags already converted. ``world_heights`` of a
shard is a mosaic of all terrain seen (latest observation per cell), for plots.
"""

from morobot.fdm.data.rosbag.convert import convert, main
from morobot.fdm.data.rosbag.options import ConversionError, ConvertOptions

__all__ = ["ConversionError", "ConvertOptions", "convert", "main"]
