"""elevation_mapper: /points + /odom → /elevation_map (robot-centric height grid, NaN = unknown).

Clouds in the ``odom`` frame are used as they are; clouds in the base frame are moved into ``odom``
with the odometry closest in time (within ``max_odom_lag``). A cloud in any other frame is moved
through /tf and /tf_static (:mod:`morobot.ros.tf`): into the base frame when the sensor hangs under it
(a mount on /tf_static), then with the odometry; otherwise straight into ``odom`` at the cloud's
stamp. A cloud no transform reaches, or with no odometry close enough, is dropped with a throttled
warning that names the frames the tree knows.

The published map is stamped with the time of the newest cloud in it, so a map built from old
clouds looks old to the planner. When no cloud has arrived for ``points_timeout`` seconds (node
clock) the map is not published at all and an error says so: the planner then stops on a stale map
instead of driving on a map that only looks fresh. Clouds above ``max_points`` points are randomly
downsampled first and at most ``max_cloud_rate`` clouds a second are mapped, so neither one huge
cloud nor a flood of them can block the mapper or starve the planner of CPU. Parameters:
:class:`morobot.mapping.params.MapperParams`.
"""

from __future__ import annotations

import collections
import math
import time

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import PointCloud2

from morobot.mapping.elevation import ElevationMapper, transform_points
from morobot.mapping.params import MapperParams, elevation_config
from morobot.params import specs
from morobot.ros import qos
from morobot.ros.logthrottle import KeyedThrottle
from morobot.ros.conversions import (MessageError, heightmap_to_pointcloud2, odometry_to_state,
                                     pointcloud2_to_xyz, stamp_to_sec)
from morobot.frames import apply
from morobot.ros.params import declare
from morobot.ros.runner import spin_node
from morobot.ros.tf import TfListener

PARAMS = specs(MapperParams)
#: Bytes a point may take (x, y, z float32 and room for intensity, ring, time, padding): a message over
#: ten times ``max_points`` such points is dropped before decoding, so ``max_points`` bounds that cost too.
BYTES_PER_POINT = 48


class ElevationMapperNode(Node):
    def __init__(self, **kwargs):
        super().__init__("elevation_mapper", **kwargs)
        self.p = declare(self, PARAMS, on_change=self._reconfigure, cross_check=MapperParams.cross_check)
        self._odom = collections.deque(maxlen=400)
        self._build_mapper()
        self._map_pub = self.create_publisher(PointCloud2, "elevation_map", qos.STATE)
        self.create_subscription(Odometry, "odom", self._on_odom, qos.STATE)
        # serialized: a cloud over max_cloud_rate is dropped before the cost of deserializing it
        self.create_subscription(PointCloud2, "points", self._on_points, qos.SENSOR_LATEST, raw=True)
        self._timer = self.create_timer(1.0 / self.p["publish_rate"], self._publish)
        self._integrate_ms = 0.0
        self._cloud_stamp = None  # stamp of the newest integrated cloud
        self._cloud_arrival = -math.inf  # node-clock time it arrived
        self._rng = np.random.default_rng(0)
        self._warn = KeyedThrottle(self.get_logger().warning)  # every kind of bad input leaves a line
        self._tf = TfListener(self, max_lag=max(self.p["max_odom_lag"], 1e-3))

    def _build_mapper(self) -> None:
        self.mapper = ElevationMapper(elevation_config(self.p))

    def _reconfigure(self, values: dict) -> None:
        self.p = values
        self._build_mapper()
        self._timer.cancel()
        self._timer = self.create_timer(1.0 / values["publish_rate"], self._publish)

    def _on_odom(self, msg: Odometry) -> None:
        try:
            self._odom.append(odometry_to_state(msg))
        except MessageError as exc:
            self._warn(f"dropping odometry: {exc}")

    def _odom_at(self, stamp: float):
        if not self._odom:
            return None
        best = min(self._odom, key=lambda o: abs(o.stamp - stamp))
        return best if abs(best.stamp - stamp) <= self.p["max_odom_lag"] else None

    def _on_points(self, data: bytes) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        if self._cloud_arrival <= now < self._cloud_arrival + 1.0 / self.p["max_cloud_rate"]:
            return  # bounded cost: at most max_cloud_rate clouds a second are mapped
        if len(data) > 10 * BYTES_PER_POINT * self.p["max_points"]:  # not even decoded
            self._warn(f"dropping a point cloud of {len(data) / 1e6:.1f} MB undecoded: over ten times what "
                       f"max_points {self.p['max_points']} points hold ({BYTES_PER_POINT} bytes each)", key="too large")
            return
        try:
            msg = deserialize_message(data, PointCloud2)
        except Exception as exc:  # noqa: BLE001 - a malformed message: one line, the node goes on
            self._warn(f"dropping undecodable point cloud: {exc}")
            return
        try:
            pts = pointcloud2_to_xyz(msg)
        except MessageError as exc:
            self._warn(f"dropping malformed point cloud: {exc}")
            return
        if len(pts) > self.p["max_points"]:
            self._warn(f"point cloud of {len(pts)} points downsampled to max_points {self.p['max_points']}",
                       key="downsampled")
            pts = pts[self._rng.choice(len(pts), self.p["max_points"], replace=False)]
        stamp = stamp_to_sec(msg.header.stamp)
        odom = self._odom_at(stamp)
        if odom is None:
            self._warn("dropping point cloud: no odometry within max_odom_lag of its stamp")
            return
        frame = msg.header.frame_id.lstrip("/")
        if frame == self.p["base_frame"]:
            pts = transform_points(pts, odom.position, odom.quaternion)
        elif frame != self.p["odom_frame"]:
            try:
                pts = self._through_tf(pts, frame, stamp, odom)
            except LookupError as exc:
                self._warn(f"dropping point cloud in frame '{frame}': {exc}", key=f"frame {frame}")
                return
        t0 = time.perf_counter()
        self.mapper.integrate(pts, odom.position[:2], stamp, base_pose=(odom.position, odom.quaternion))
        self._integrate_ms = 1e3 * (time.perf_counter() - t0)
        self._cloud_stamp = stamp if self._cloud_stamp is None else max(self._cloud_stamp, stamp)
        self._cloud_arrival = now

    def _through_tf(self, pts: np.ndarray, frame: str, stamp: float, odom) -> np.ndarray:
        """Cloud points in ``frame`` moved into odom via /tf (raises LookupError when no transform reaches)."""
        tree = self._tf.tree
        try:  # a sensor mounted on the robot: its static chain to the base, then the odometry
            return transform_points(apply(tree.lookup(self.p["base_frame"], frame, stamp), pts), odom.position,
                                    odom.quaternion)
        except LookupError:
            return apply(tree.lookup(self.p["odom_frame"], frame, stamp), pts)

    def _publish(self) -> None:
        if not self._odom:
            return
        quiet = self.get_clock().now().nanoseconds * 1e-9 - self._cloud_arrival
        if quiet > self.p["points_timeout"]:
            if self._cloud_stamp is not None:
                self.get_logger().error(f"no point cloud for {quiet:.1f} s (points_timeout "
                                        f"{self.p['points_timeout']} s): elevation map not published",
                                        throttle_duration_sec=5.0)
            return
        odom = self._odom[-1]
        hmap = self.mapper.height_map(odom.position[:2], odom.stamp)
        hmap.stamp = min(odom.stamp, self._cloud_stamp)
        self._map_pub.publish(heightmap_to_pointcloud2(hmap, self.p["odom_frame"]))


def main(args=None) -> int:
    return spin_node(ElevationMapperNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
