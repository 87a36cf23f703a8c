"""QoS profiles used across the graph."""

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

#: Sensor streams (/points, /camera/image_raw): best effort, keep last few.
SENSOR = qos_profile_sensor_data

#: A sensor stream of which only the newest message matters (the mapper's /points): best effort,
#: keep the last one, so a flood is dropped in the middleware instead of queueing in the node.
SENSOR_LATEST = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                           durability=DurabilityPolicy.VOLATILE)

#: State and command streams (/odom, /cmd_vel, /joint_states, /elevation_map): reliable, shallow.
STATE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.VOLATILE)

#: Goals and other latched inputs: late joiners receive the last one.
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: /clock: reliable, keep the latest.
CLOCK = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.VOLATILE)
