"""Demonstration recordings as rosbag2 (no ROS needed): the bag being written, segments, recovery, summary.

The recording node itself is :mod:`morobot.ros.recorder`; ``morobot record-demo`` runs it.

Records ``/demo/ee_pose`` (geometry_msgs/PoseStamped), ``/feasibility/status``
(diagnostic_msgs/DiagnosticArray), ``/feasibility/haptic`` (std_msgs/Float32) and optionally
``/joint_states`` (sensor_msgs/JointState) into a rosbag2 (MCAP or sqlite3, metadata version 9)
written with ``rosbags``. Every message arrives serialized (``raw=True``), is deserialized with the
ROS 2 Kilted typestore of ``rosbags`` (which validates it against the Kilted definition and feeds the
summary) and re-serialized by it (CDR with zeroed padding, so bags are byte-reproducible). Bag
timestamps are the receive times on the recorder's clock (``use_sim_time`` follows ``/clock``).

The bag is written into a hidden temporary directory next to the output and renamed to the
output path only when recording ends cleanly (``--duration`` elapsed, Ctrl-C or SIGTERM), so a
path that exists is always a complete bag. Crash safety: the recording goes into one-second
segments (``segment_s``), each closed as a complete, readable bag when the next begins; on a clean
end they are merged into the output. After a kill -9 or a power cut the hidden
``.<name>.*.partial`` directory holds every finished segment, and ``morobot record-demo --recover
DIR --out BAG`` merges them into a bag that lacks at most the last ``segment_s`` seconds (its
summary says ``recovered``). The summary counts the demonstration frames, the checked frames and
the fraction the checker called infeasible (raw and debounced).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

#: Recorded topics and their types (rosbags names).
DEMO_TOPICS = {
    "/demo/ee_pose": "geometry_msgs/msg/PoseStamped",
    "/feasibility/status": "diagnostic_msgs/msg/DiagnosticArray",
    "/feasibility/haptic": "std_msgs/msg/Float32",
}
JOINT_STATES = ("/joint_states", "sensor_msgs/msg/JointState")
STATUS_NAME = "feasibility_checker"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


def typestore():
    """The ROS 2 Kilted message definitions of ``rosbags``."""
    return get_typestore(Stores.ROS2_KILTED)


@dataclass
class DemoSummary:
    """What a recording holds.

    Attributes:
        path: the bag directory.
        storage: ``mcap`` or ``sqlite3``.
        duration: receive time of the last message minus the first (s).
        counts: messages per topic.
        frames: demonstration frames (``/demo/ee_pose`` messages).
        checked: per-frame status messages (heartbeats excluded).
        infeasible: checked frames whose raw verdict was infeasible or rejected.
        debounced_infeasible: checked frames whose debounced (shown) level was infeasible.
        infeasible_ratio: ``infeasible / checked`` (NaN without checked frames).
        debounced_infeasible_ratio: ``debounced_infeasible / checked``.
        haptic_mean: mean ``/feasibility/haptic`` value (NaN without any).
        undecodable: messages that did not deserialize with the Kilted definitions (not written).
        recovered: the bag was rebuilt from the segments of a recording that did not end cleanly.
    """

    path: str
    storage: str
    duration: float = 0.0
    counts: dict = field(default_factory=dict)
    frames: int = 0
    checked: int = 0
    infeasible: int = 0
    debounced_infeasible: int = 0
    infeasible_ratio: float = math.nan
    debounced_infeasible_ratio: float = math.nan
    haptic_mean: float = math.nan
    undecodable: int = 0
    recovered: bool = False

    def line(self) -> str:
        """One human-readable line."""
        return (f"{self.path}: {self.frames} demo frames, {self.checked} checked, infeasible "
                f"{self.infeasible_ratio:.1%} raw / {self.debounced_infeasible_ratio:.1%} debounced, "
                f"{self.duration:.1f} s, counts {self.counts}")


def _status_values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


class DemoBag:
    """A rosbag2 being written (no ROS needed): temp directory, typestore round trip, summary.

    Args:
        out: final bag directory; must not exist.
        topics: topic -> message type (rosbags name).
        storage: ``mcap`` or ``sqlite3``.
        segment_s: length of the segments (s of message time) closed as complete bags as they go.
    """

    def __init__(self, out, topics: dict[str, str], storage: str = "mcap", segment_s: float = 1.0) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        self.out = Path(out).absolute()
        if self.out.exists():
            raise FileExistsError(f"output {self.out} exists; choose a new path")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.storage = storage
        self.ts = typestore()
        for topic, msgtype in topics.items():
            if msgtype not in self.ts.types:
                raise ValueError(f"{msgtype} ({topic}) is not in the rosbags Kilted typestore")
        if not (math.isfinite(segment_s) and segment_s > 0):
            raise ValueError(f"segment_s must be > 0, got {segment_s}")
        self.segment_ns = int(segment_s * 1e9)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".partial", dir=self.out.parent))
        (self._tmp / "parts").mkdir()
        self.topics = dict(topics)
        self._segments = 0
        self._segment_start: Optional[int] = None
        self._open_segment()
        self.summary = DemoSummary(path=str(self.out), storage=storage, counts={t: 0 for t in topics})
        self._haptic_sum = 0.0
        self._first = self._last = None
        self._lock = threading.Lock()
        self.closed = False

    def _open_segment(self) -> None:
        self.writer = Writer(self._tmp / "open", version=9, storage_plugin=STORAGES[self.storage])
        self.writer.open()
        self.connections = {t: self.writer.add_connection(t, m, typestore=self.ts) for t, m in self.topics.items()}
        self._segment_start = None

    def _close_segment(self) -> None:
        """Close the open segment (a complete bag) and keep it under ``parts/``."""
        self.writer.close()
        os.replace(self._tmp / "open", self._tmp / "parts" / f"{self._segments:06d}")
        self._segments += 1

    def write(self, topic: str, timestamp_ns: int, cdr: bytes) -> bool:
        """Deserialize (Kilted), re-serialize and write one message; False when it does not decode."""
        msgtype = self.topics[topic]
        try:
            msg = self.ts.deserialize_cdr(bytes(cdr), msgtype)
            data = self.ts.serialize_cdr(msg, msgtype)
        except Exception:  # noqa: BLE001 - any decoding error: count it, never write garbage
            self.summary.undecodable += 1
            return False
        with self._lock:
            if self.closed:
                return False
            if self._segment_start is not None and int(timestamp_ns) - self._segment_start >= self.segment_ns:
                self._close_segment()
                self._open_segment()
            if self._segment_start is None:
                self._segment_start = int(timestamp_ns)
            self.writer.write(self.connections[topic], int(timestamp_ns), data)
            self._account(topic, msg, int(timestamp_ns))
        return True

    def _account(self, topic: str, msg, timestamp_ns: int) -> None:
        s = self.summary
        s.counts[topic] += 1
        self._first = timestamp_ns if self._first is None else min(self._first, timestamp_ns)
        self._last = timestamp_ns if self._last is None else max(self._last, timestamp_ns)
        if topic == "/demo/ee_pose":
            s.frames += 1
        elif topic == "/feasibility/haptic":
            self._haptic_sum += float(msg.data)
        elif topic == "/feasibility/status":
            overall = next((st for st in msg.status if st.name == STATUS_NAME), None)
            if overall is None:
                return
            values = _status_values(overall)
            if values.get("heartbeat") == "true" or "verdict" not in values:
                return
            s.checked += 1
            s.infeasible += values["verdict"] in ("infeasible", "rejected")
            s.debounced_infeasible += values.get("debounced") == "infeasible"

    def close(self) -> DemoSummary:
        """Finish the bag and move it to ``out``; returns the summary."""
        with self._lock:
            if self.closed:
                return self.summary
            self.closed = True
            self._close_segment()
        merge_segments(sorted((self._tmp / "parts").iterdir()), self._tmp / "bag", self.storage, self.ts)
        os.replace(self._tmp / "bag", self.out)
        shutil.rmtree(self._tmp, ignore_errors=True)
        return self._finish()

    def _finish(self) -> DemoSummary:
        s = self.summary
        if s.checked:
            s.infeasible_ratio = s.infeasible / s.checked
            s.debounced_infeasible_ratio = s.debounced_infeasible / s.checked
        n_haptic = s.counts.get("/feasibility/haptic", 0)
        s.haptic_mean = self._haptic_sum / n_haptic if n_haptic else math.nan
        s.duration = (self._last - self._first) * 1e-9 if self._first is not None else 0.0
        return s

    def abort(self) -> None:
        """Drop the partial bag."""
        with self._lock:
            if not self.closed:
                self.closed = True
                with contextlib.suppress(Exception):  # dropping it anyway
                    self.writer.close()
        shutil.rmtree(self._tmp, ignore_errors=True)


def merge_segments(parts: list[Path], out: Path, storage: str, ts=None, account=None) -> int:
    """Write the messages of the segment bags ``parts`` (in order) into one bag ``out``.

    Args:
        account: called with ``(topic, message, timestamp_ns)`` for every message (summaries).

    Returns:
        The number of messages written.
    """
    ts = ts or typestore()
    writer = Writer(out, version=9, storage_plugin=STORAGES[storage])
    writer.open()
    conns: dict[tuple[str, str], Any] = {}
    n = 0
    try:
        for part in parts:
            with Reader(part) as reader:
                for conn, stamp, raw in reader.messages():
                    key = (conn.topic, conn.msgtype)
                    if key not in conns:
                        conns[key] = writer.add_connection(conn.topic, conn.msgtype, typestore=ts)
                    writer.write(conns[key], stamp, raw)
                    if account is not None:
                        account(conn.topic, ts.deserialize_cdr(raw, conn.msgtype), stamp)
                    n += 1
    finally:
        writer.close()
    return n


def recover(partial, out, storage: Optional[str] = None) -> DemoSummary:
    """Rebuild a bag from the finished segments of a recording that did not end cleanly.

    Args:
        partial: the hidden ``.<name>.*.partial`` directory the recording left.
        out: the bag directory to create (must not exist).
        storage: of the segments (default: as found).

    Raises:
        FileNotFoundError: ``partial`` holds no finished segment.
        FileExistsError: ``out`` exists.
    """
    partial, out = Path(partial), Path(out).absolute()
    parts = sorted(p for p in (partial / "parts").glob("[0-9]*") if p.is_dir()) if (partial / "parts").is_dir() else []
    if not parts:
        raise FileNotFoundError(f"{partial} holds no finished recording segment")
    if out.exists():
        raise FileExistsError(f"output {out} exists; choose a new path")
    if storage is None:
        storage = "sqlite3" if any(parts[0].glob("*.db3")) else "mcap"
    topics: dict[str, str] = {}
    for part in parts:
        with Reader(part) as reader:
            topics.update({c.topic: c.msgtype for c in reader.connections})
    bag = DemoBag.__new__(DemoBag)  # only its accounting: nothing is recorded
    bag.summary = DemoSummary(path=str(out), storage=storage, counts={t: 0 for t in topics}, recovered=True)
    bag._haptic_sum, bag._first, bag._last = 0.0, None, None
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        merge_segments(parts, tmp / "bag", storage, account=bag._account)
        os.replace(tmp / "bag", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return bag._finish()


def recorder_topics(joint_states: bool) -> dict[str, str]:
    topics = dict(DEMO_TOPICS)
    if joint_states:
        topics[JOINT_STATES[0]] = JOINT_STATES[1]
    return topics


def write_summary(summary: DemoSummary, path) -> None:
    """The summary as JSON (NaN as null)."""
    data = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(summary).items()}
    Path(path).write_text(json.dumps(data, indent=2), encoding="utf-8")
