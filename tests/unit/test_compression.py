"""gzip of responses: ordinary gzip members, whatever compressor makes them."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import pytest

from kairos.app.compression import EXECUTOR_SIZE, accepts_gzip, gzip_bytes


@pytest.mark.parametrize("size", [0, 1, 32, 1000, EXECUTOR_SIZE + 1, 3_000_000])
def test_gzip_bytes_is_one_gzip_member_that_zlib_reads(size: int) -> None:
    rng = np.random.default_rng(size)
    body = b",".join(b"[%d,%.2f]" % (t, v) for t, v in enumerate(rng.normal(50, 5, size // 12)))
    body = body[:size].ljust(size, b" ")
    out = gzip_bytes(body)
    assert out[:3] == b"\x1f\x8b\x08" and out[4:8] == b"\0\0\0\0"  # deflate, mtime 0
    assert gzip.decompress(out) == body
    assert zlib.decompress(out, 31) == body
    if size > 1000:
        assert len(out) < len(body) / 2


def test_accepts_gzip() -> None:
    assert accepts_gzip("gzip, deflate") and accepts_gzip("deflate, GZIP;q=0.5")
    assert not accepts_gzip("gzip;q=0") and not accepts_gzip("identity") and not accepts_gzip(None)
