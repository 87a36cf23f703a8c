"""Pure PointCloud2 decoding (morobot.pointcloud), shared by the nodes and the bag converter."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from morobot.pointcloud import cloud_xyz


def _cloud(points, dtype=">f8", extra=4, rows=1, data=None):
    pts = np.asarray(points, dtype=np.float64)
    item = np.dtype(dtype).itemsize
    step = 3 * item + extra  # a padding field after x, y, z
    buf = np.zeros((len(pts), step), np.uint8)
    for i in range(3):
        buf[:, i * item:(i + 1) * item] = pts[:, i].astype(dtype).view(np.uint8).reshape(len(pts), item)
    code = {"f4": 7, "f8": 8}[np.dtype(dtype).str[1:]]
    fields = [NS(name=n, offset=i * item, datatype=code) for i, n in enumerate("xyz")]
    cols = len(pts) // rows
    return NS(fields=fields, height=rows, width=cols, point_step=step, row_step=cols * step,
              is_bigendian=np.dtype(dtype).byteorder == ">", data=buf.tobytes() if data is None else data(buf))


@pytest.mark.parametrize("dtype", [">f8", "<f4"])
@pytest.mark.parametrize("wrap", [bytes, lambda b: list(b.reshape(-1)), lambda b: b.reshape(-1)])
def test_round_trip_any_layout_and_buffer(dtype, wrap):
    pts = [[1.0, -2.0, 0.5], [np.nan, 0.0, 0.0], [3.25, 4.0, -1.0], [0.0, 0.0, 2.0]]
    msg = _cloud(pts, dtype, rows=2, data=lambda b: wrap(b.tobytes()) if wrap is bytes else wrap(b))
    out = cloud_xyz(msg)
    np.testing.assert_array_equal(out, np.asarray(pts)[[0, 2, 3]])
    assert cloud_xyz(msg, keep_invalid=True).shape == (4, 3)


def test_malformed_clouds_rejected():
    good = _cloud([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="lacks fields"):
        cloud_xyz(NS(**{**vars(good), "fields": good.fields[:2]}))
    with pytest.raises(ValueError, match="unsupported datatype"):
        cloud_xyz(NS(**{**vars(good), "fields": [NS(name=f.name, offset=f.offset, datatype=99) for f in good.fields]}))
    with pytest.raises(ValueError, match="bytes"):
        cloud_xyz(NS(**{**vars(good), "data": good.data[:-1]}))
    with pytest.raises(ValueError, match="layout"):
        cloud_xyz(NS(**{**vars(good), "row_step": 1}))
    assert cloud_xyz(NS(**{**vars(good), "width": 0})).shape == (0, 3)
