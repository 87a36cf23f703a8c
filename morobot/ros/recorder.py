"""The recording node of ``morobot record-demo``: subscribes to the demonstration topics and writes
every message, serialized, into a :class:`morobot.recording.DemoBag` (rclpy lives here, the bag
logic in :mod:`morobot.recording`)."""

from __future__ import annotations

import math
import signal
import threading
import time
from typing import Any, Optional

from morobot.recording import DemoBag, DemoSummary, recorder_topics


#: What ``morobot demo --record`` writes: the navigation graph's topics except the raw clouds.
NAVIGATION_TOPICS = {
    "/odom": "nav_msgs/msg/Odometry", "/cmd_vel": "geometry_msgs/msg/TwistStamped", "/plan": "nav_msgs/msg/Path",
    "/goal_pose": "geometry_msgs/msg/PoseStamped", "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
    "/navigate/status": "action_msgs/msg/GoalStatus", "/elevation_map": "sensor_msgs/msg/PointCloud2",
    "/joint_states": "sensor_msgs/msg/JointState",
}


def _rclpy_type(msgtype: str):
    import importlib

    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def make_recorder_node(bag: DemoBag, context=None, use_sim_time: bool = False, name: str = "demo_recorder"):
    """An rclpy node that writes every message of ``bag.topics`` (serialized) into ``bag``."""
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from morobot.ros import qos

    node = Node(name, context=context,
                parameter_overrides=[Parameter("use_sim_time", Parameter.Type.BOOL, use_sim_time)])
    for topic, msgtype in bag.topics.items():
        def callback(data, topic=topic):
            bag.write(topic, node.get_clock().now().nanoseconds, data)

        node.create_subscription(_rclpy_type(msgtype), topic, callback, qos.STATE, raw=True)
    return node


def record(out, duration: Optional[float] = None, storage: str = "mcap", joint_states: bool = False,
           use_sim_time: bool = False, stop: Optional[threading.Event] = None,
           ready: Optional[threading.Event] = None, topics: Optional[dict] = None) -> DemoSummary:
    """Record until ``duration`` (wall seconds) elapses, ``stop`` is set, or Ctrl-C / SIGTERM.

    Runs in its own rclpy context, so it can share a process with other ROS code. Signals are
    handled only when called from the main thread. ``topics`` (topic → rosbags type) replaces the
    demonstration topics, e.g. :data:`NAVIGATION_TOPICS` for a whole navigation run.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be > 0 s, got {duration}")
    bag = DemoBag(out, topics if topics is not None else recorder_topics(joint_states), storage)
    context = rclpy.Context()
    main_thread = threading.current_thread() is threading.main_thread()
    interrupted = threading.Event()  # set by Ctrl-C / SIGTERM: the loop ends between spins, never mid-write
    old_handlers: dict[int, Any] = {}
    try:
        rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
        if main_thread:
            for sig in (signal.SIGINT, signal.SIGTERM):
                old_handlers[sig] = signal.signal(sig, lambda signum, frame: interrupted.set())
        node = make_recorder_node(bag, context=context, use_sim_time=use_sim_time)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        if ready is not None:
            ready.set()
        deadline = time.monotonic() + duration if duration else math.inf
        while (time.monotonic() < deadline and not interrupted.is_set()
               and not (stop is not None and stop.is_set())):
            executor.spin_once(timeout_sec=0.05)
        executor.remove_node(node)
        node.destroy_node()
        executor.shutdown()
    except BaseException:
        bag.abort()
        raise
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        rclpy.try_shutdown(context=context)
    return bag.close()
