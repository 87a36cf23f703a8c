"""/tf and /tf_static on the wire: a listener that fills a :class:`morobot.frames.FrameTree` and a
publisher, both on ``tf2_msgs/TFMessage``.

On a ROS install ``tf2_msgs`` comes with the distribution; on the wheel-only path ``make`` builds it
from its definition with the rosidl wheels (``scripts/build_interfaces.sh``). Where it is missing
anyway, :data:`AVAILABLE` is false, the listener says so once and the nodes keep their frame rules
(clouds in ``base``/``odom``, goals in ``odom``). Topic names are relative (``tf``, ``tf_static``):
without a namespace they are ``/tf`` and ``/tf_static``; a namespaced robot keeps its own tree, as
Nav2's multi-robot launch files arrange by remapping.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from morobot.frames import FrameTree, transform
from morobot.ros.conversions import sec_to_stamp, stamp_to_sec

try:
    from tf2_msgs.msg import TFMessage
except ImportError:  # no tf2_msgs: the documented fallback
    TFMessage = None

AVAILABLE = TFMessage is not None
"""Whether ``tf2_msgs`` is importable here."""

#: /tf: reliable, a deep queue (many transforms per cycle), as tf2_ros uses.
TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
#: /tf_static: reliable and transient local, so late joiners receive every static transform.
TF_STATIC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


def to_matrix(msg: TransformStamped) -> np.ndarray:
    """4x4 ``T_parent_child`` of a TransformStamped; raises ValueError on non-finite or non-unit values."""
    t, q = msg.transform.translation, msg.transform.rotation
    return transform((float(t.x), float(t.y), float(t.z)), (float(q.w), float(q.x), float(q.y), float(q.z)))


def make_transform(parent: str, child: str, matrix: np.ndarray, stamp: float) -> TransformStamped:
    """A TransformStamped ``parent -> child`` from a 4x4 matrix (floats only: see the int pitfall)."""
    m = np.asarray(matrix, float)
    quat = _rotation_to_quaternion_wxyz(m[:3, :3])
    msg = TransformStamped()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = parent
    msg.child_frame_id = child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (float(v) for v in m[:3, 3])
    (msg.transform.rotation.w, msg.transform.rotation.x, msg.transform.rotation.y,
     msg.transform.rotation.z) = (float(v) for v in quat)
    return msg


def _rotation_to_quaternion_wxyz(r: np.ndarray) -> np.ndarray:
    trace = float(np.trace(r))
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
        q = [0.0, 0.0, 0.0, 0.0]
        q[0] = (r[k, j] - r[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (r[j, i] + r[i, j]) / s
        q[1 + k] = (r[k, i] + r[i, k]) / s
    q = np.asarray(q)
    return q / np.linalg.norm(q)


class TfListener:
    """Subscribes ``tf`` and ``tf_static`` and keeps ``tree`` up to date.

    Args:
        node: the node that owns the subscriptions.
        tree: the tree to fill (default: a new one with ``max_lag``).
        max_lag: see :class:`~morobot.frames.FrameTree`.
    """

    def __init__(self, node, tree: Optional[FrameTree] = None, max_lag: float = 0.2) -> None:
        self.node = node
        self.tree = tree or FrameTree(max_lag=max_lag)
        if not AVAILABLE:
            node.get_logger().warning("tf2_msgs is not installed: no /tf; clouds must be in the base or odom frame "
                                      "and goals in odom (docs/interfaces.md)")
            return
        node.create_subscription(TFMessage, "tf", lambda m: self._on(m, False), TF_QOS)
        node.create_subscription(TFMessage, "tf_static", lambda m: self._on(m, True), TF_STATIC_QOS)

    def _on(self, msg, static: bool) -> None:
        for t in msg.transforms:
            try:
                self.tree.set(t.header.frame_id, t.child_frame_id, to_matrix(t), stamp_to_sec(t.header.stamp), static)
            except ValueError as exc:
                self.node.get_logger().warning(f"ignoring a transform on /{'tf_static' if static else 'tf'}: {exc}",
                                               throttle_duration_sec=5.0)


class TfPublisher:
    """Publishes transforms on ``tf`` and (latched) on ``tf_static``; does nothing without tf2_msgs."""

    def __init__(self, node) -> None:
        self._pub = self._static_pub = None
        self._static: dict[str, TransformStamped] = {}
        if AVAILABLE:
            self._pub = node.create_publisher(TFMessage, "tf", TF_QOS)
            self._static_pub = node.create_publisher(TFMessage, "tf_static", TF_STATIC_QOS)

    def send(self, transforms: Iterable[TransformStamped]) -> None:
        if self._pub is not None:
            self._pub.publish(TFMessage(transforms=list(transforms)))

    def send_static(self, transforms: Iterable[TransformStamped]) -> None:
        """Static transforms; every call republishes all of them (tf_static keeps one message per publisher)."""
        if self._static_pub is None:
            return
        for t in transforms:
            self._static[t.child_frame_id] = t
        self._static_pub.publish(TFMessage(transforms=list(self._static.values())))
