"""Decoding ``sensor_msgs/PointCloud2`` data without ROS: shared by the nodes and the bag converter.

Works on anything with the message's attributes (``fields``, ``height``, ``width``,
``point_step``, ``row_step``, ``is_bigendian``, ``data``): rclpy messages and the ones `rosbags`
deserialises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: ``sensor_msgs/PointField`` datatype constants → numpy types.
FIELD_DTYPES = {1: np.int8, 2: np.uint8, 3: np.int16, 4: np.uint16, 5: np.int32, 6: np.uint32, 7: np.float32,
                8: np.float64}


def _bytes(data: Any) -> np.ndarray:
    if isinstance(data, (bytes, bytearray, memoryview)) or hasattr(data, "buffer_info"):  # array.array too
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8).reshape(-1)


def cloud_xyz(msg: Any, keep_invalid: bool = False) -> np.ndarray:
    """x, y, z of a PointCloud2 as ``[N, 3]`` float64 (any field layout holding x, y and z).

    Args:
        msg: the cloud.
        keep_invalid: keep NaN/Inf points (organized clouds); dropped by default.

    Raises:
        ValueError: missing fields, an unsupported datatype, a bad layout or too little data.
    """
    fields = {f.name: f for f in msg.fields}
    missing = [n for n in "xyz" if n not in fields]
    if missing:
        raise ValueError(f"point cloud lacks fields {missing}")
    rows, cols, step, row_step = int(msg.height), int(msg.width), int(msg.point_step), int(msg.row_step)
    if rows * cols == 0:
        return np.zeros((0, 3))
    order = ">" if msg.is_bigendian else "<"
    formats = []
    for n in "xyz":
        if fields[n].datatype not in FIELD_DTYPES:
            raise ValueError(f"point cloud field {n} has unsupported datatype {fields[n].datatype}")
        formats.append(np.dtype(FIELD_DTYPES[fields[n].datatype]).newbyteorder(order))
    if step <= 0 or row_step < cols * step:
        raise ValueError(f"point cloud has a bad layout (point_step {step}, row_step {row_step})")
    if any(fields[n].offset + formats[i].itemsize > step for i, n in enumerate("xyz")):
        raise ValueError("point cloud field lies outside the point step")
    data = _bytes(msg.data)
    if data.size < rows * row_step:
        raise ValueError(f"point cloud holds {data.size} bytes, expected {rows * row_step}")
    dtype = np.dtype({"names": list("xyz"), "formats": formats,
                      "offsets": [int(fields[n].offset) for n in "xyz"], "itemsize": step})
    raw = np.ascontiguousarray(data[: rows * row_step].reshape(rows, row_step)[:, : cols * step])
    pts = raw.reshape(-1).view(dtype)
    out = np.stack([pts[n].astype(np.float64) for n in "xyz"], axis=-1)
    return out if keep_invalid else out[np.all(np.isfinite(out), axis=1)]
