"""Chunk codec of the embedded engine v2: golden bytes, costs, headers, ranges, corrupt input."""

from __future__ import annotations

import ctypes
import mmap

import numpy as np
import pytest

from kairos.storage.embedded import _chunks_reference as R
from kairos.storage.embedded.chunks import (
    DOUBLE_CHUNK,
    LONG_CHUNK,
    ChunkError,
    chunk_info,
    decode_chunk,
    decode_chunks,
    encode_chunk,
)

I64 = np.int64
F64 = np.float64

# ts 1000, 2000, 3000 (constant interval: no timestamp section); longs 1, 2, 4
GOLDEN_LONG = bytes.fromhex(
    "00"  # flags: long, LONG values, CONSTANT timestamps, k = 0
    "03"  # count
    "d00f"  # uvarint(zz(1000)) = uvarint(2000)
    "d00f"  # uvarint(3000 - 1000)
    "00"  # ts_len
    "02"  # uvarint(zz(1))
    "02"  # block of deltas 1, 2: uvarint(zz(lo = 1))
    "01"  # width 1
    "02"  # offsets 0, 1 packed LSB first: 0b10
)

# ts 0, 10, 25 (DOD); doubles 1.5, 1.25, 1.0 = (150, 125, 100) / 10**2
GOLDEN_DECIMAL = bytes.fromhex(
    "2b"  # flags: double | DECIMAL << 1 | DOD << 3 | 2 << 4
    "03"  # count
    "00"  # uvarint(zz(0))
    "19"  # uvarint(25 - 0)
    "03"  # ts_len
    "0a"  # first delta 10
    "8005"  # dod 5: '10' + 14-bit 5 = 0b10_00000000000101
    "00"  # no exceptions
    "ac02"  # uvarint(zz(150)) = uvarint(300)
    "31"  # block of deltas -25, -25: uvarint(zz(lo = -25)) = uvarint(49)
    "00"  # width 0: no bits
)

# ts 0, 1; doubles 0.1 + 0.2 twice: no k <= 9 makes 0.30000000000000004 decimal, so XOR
GOLDEN_XOR = bytes.fromhex(
    "05"  # flags: double | XOR << 1 | CONSTANT << 3
    "02"  # count
    "00"  # uvarint(zz(0))
    "01"  # uvarint(1 - 0)
    "00"  # ts_len
    "3fd3333333333334"  # the first value's 64 bits
    "00"  # '0' (same value), padded with zero bits
)

# ts 0..31 (constant interval); doubles 1.5 but -0.0 at index 3: DECIMAL with one exception
GOLDEN_PATCHED = bytes.fromhex(
    "13"  # flags: double | DECIMAL << 1 | CONSTANT << 3 | 1 << 4
    "20"  # count 32
    "00"  # uvarint(zz(0))
    "1f"  # uvarint(31 - 0)
    "00"  # ts_len
    "01"  # one exception (32 // 32 allowed)
    "03"  # at position 0 + 3
    "0000000000000080"  # -0.0, little-endian
    "1e"  # uvarint(zz(15)): 1.5 = 15 / 10**1
    "00"  # block of 31 deltas 0 (the exception's placeholder is its predecessor's 15): lo = 0
    "00"  # width 0
)

GOLDEN = [
    (GOLDEN_LONG, np.array([1000, 2000, 3000], I64), np.array([1, 2, 4], I64)),
    (GOLDEN_DECIMAL, np.array([0, 10, 25], I64), np.array([1.5, 1.25, 1.0], F64)),
    (GOLDEN_XOR, np.array([0, 1], I64), np.array([0.1 + 0.2, 0.1 + 0.2], F64)),
    (GOLDEN_PATCHED, np.arange(32, dtype=I64), np.array([1.5] * 3 + [-0.0] + [1.5] * 28, F64)),
]


@pytest.mark.parametrize(("golden", "ts", "values"), GOLDEN)
def test_golden_bytes(golden: bytes, ts: np.ndarray, values: np.ndarray) -> None:
    assert encode_chunk(ts, values) == golden
    assert R.encode_chunk(ts, values) == golden
    for decode in (decode_chunk, R.decode_chunk):
        dts, dvalues = decode(golden)
        assert dts.dtype == I64
        assert dvalues.dtype == values.dtype
        assert dts.tolist() == ts.tolist()
        assert dvalues.view(I64).tolist() == values.view(I64).tolist()


def test_chunk_info() -> None:
    assert chunk_info(GOLDEN_LONG) == (3, LONG_CHUNK, 1000, 3000)
    assert chunk_info(GOLDEN_DECIMAL) == (3, DOUBLE_CHUNK, 0, 25)
    assert chunk_info(memoryview(GOLDEN_XOR)) == (2, DOUBLE_CHUNK, 0, 1)
    assert chunk_info(encode_chunk(np.array([-(2**63)], I64), np.array([7], I64))) == (
        1,
        LONG_CHUNK,
        -(2**63),
        -(2**63),
    )


def test_chunk_info_reads_the_header_only() -> None:
    # the header of a constant-interval chunk is its first 7 bytes; the values are not read
    assert chunk_info(GOLDEN_LONG[:7]) == (3, LONG_CHUNK, 1000, 3000)
    garbage = GOLDEN_LONG[:7] + b"\xff" * 5
    assert chunk_info(garbage) == (3, LONG_CHUNK, 1000, 3000)
    with pytest.raises(ChunkError):
        decode_chunk(garbage)


def test_constant_interval_costs_no_timestamp_bits() -> None:
    n = 100_000
    ts = 1_700_000_000_000 + 10_000 * np.arange(n, dtype=I64)
    values = np.full(n, 42.5)
    regular = encode_chunk(ts, values)
    # header (1 + 3 + 6 + 5 + 1 bytes) + no exceptions + the first value (425 / 10) + 2 bytes a
    # block of 128 width-0 deltas
    assert len(regular) == 16 + 1 + 2 + 2 * ((n - 1 + 127) // 128)
    jittered = ts.copy()
    jittered[n // 2] += 3  # two dods of +-3: 16 bits each, every other point 1 bit
    assert len(encode_chunk(jittered, values)) - len(regular) == pytest.approx(n / 8, abs=16)


def test_two_decimal_gauge_costs_under_one_and_a_half_bytes_a_point() -> None:
    rng = np.random.default_rng(7)
    n = 120_000
    ts = 1_700_000_000_000 + 10_000 * np.arange(n, dtype=I64)
    values = np.round(50 + np.cumsum(rng.normal(0, 0.5, n)), 2)
    size = sum(len(encode_chunk(ts[i : i + 120], values[i : i + 120])) for i in range(0, n, 120))
    assert size / n < 1.5


def _series_chunks(kind=I64):
    ts = np.arange(0, 1000, 10, dtype=I64)  # 100 points, 0..990
    values = (np.arange(100) * 3).astype(kind)
    bufs = [encode_chunk(ts[i : i + 25], values[i : i + 25]) for i in range(0, 100, 25)]
    return ts, values, bufs


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 990), (-(2**63), 2**63 - 1), (15, 515), (250, 490), (240, 250), (995, 2000), (-5, -1)],
)
def test_decode_chunks_filters_the_range(start: int, end: int) -> None:
    ts, values, bufs = _series_chunks()
    got_ts, got_values = decode_chunks(bufs, start, end)
    keep = (ts >= start) & (ts <= end)
    assert got_ts.tolist() == ts[keep].tolist()
    assert got_values.dtype == I64
    assert got_values.tolist() == values[keep].tolist()
    mv_ts, mv_values = decode_chunks([memoryview(b) for b in bufs], start, end)
    assert mv_ts.tolist() == got_ts.tolist()
    assert mv_values.tolist() == got_values.tolist()


def test_decode_chunks_edge_cases() -> None:
    ts, values = decode_chunks([], 0, 10)
    assert (ts.dtype, ts.shape, values.dtype, values.shape) == (I64, (0,), F64, (0,))
    _, dvalues, dbufs = _series_chunks(F64)
    assert decode_chunks(dbufs, 0, 30)[1].tolist() == dvalues[:4].tolist()
    _, _, lbufs = _series_chunks()
    with pytest.raises(ChunkError, match="mix longs and doubles"):
        decode_chunks([lbufs[0], dbufs[1]], 0, 1000)
    with pytest.raises(ChunkError, match="chunk 1: truncated chunk"):
        decode_chunks([lbufs[0], lbufs[1][:-1]], 0, 1000)
    with pytest.raises(ChunkError, match="chunk 1: truncated chunk"):
        decode_chunks([lbufs[0], b""], 0, 1000)


@pytest.mark.parametrize(("golden", "ts", "values"), GOLDEN)
def test_every_truncation_raises(golden: bytes, ts: np.ndarray, values: np.ndarray) -> None:
    for i in range(len(golden)):
        with pytest.raises(ChunkError):
            decode_chunk(golden[:i])
        with pytest.raises(ChunkError):
            decode_chunks([golden[:i]], -(2**63), 2**63 - 1)


@pytest.mark.parametrize(
    ("buf", "message"),
    [
        (b"", "truncated chunk"),
        (b"\x06" + GOLDEN_LONG[1:], "corrupt chunk header"),  # value encoding 3
        (b"\x10" + GOLDEN_LONG[1:], "corrupt chunk header"),  # k on a long chunk
        (b"\xa3" + GOLDEN_DECIMAL[1:], "corrupt chunk header"),  # k = 10
        (b"\x00\x00" + GOLDEN_LONG[2:], "corrupt chunk header"),  # count 0
        (b"\x00\xff\xff\xff\xff\x0f" + GOLDEN_LONG[2:], "corrupt chunk header"),  # count 2**32-1
        (b"\x00\xff" * 6, "truncated chunk"),
        (b"\x00" + b"\xff" * 10 + b"\x7f", "truncated chunk"),  # a varint past 64 bits
        (GOLDEN_LONG + b"\x00", "trailing bytes after the chunk"),
        (GOLDEN_LONG[:4] + b"\xd1" + GOLDEN_LONG[5:], "corrupt chunk timestamps"),  # span 2001
        (GOLDEN_DECIMAL[:3] + b"\x1a" + GOLDEN_DECIMAL[4:], "corrupt chunk timestamps"),
        (GOLDEN_LONG[:-2] + b"\x41\x02", "corrupt chunk values"),  # width 65
        (GOLDEN_XOR[:-1] + b"\x80", "corrupt chunk values"),  # '10' with no window yet
        (GOLDEN_PATCHED[:5] + b"\x02" + GOLDEN_PATCHED[6:], "corrupt chunk values"),  # 2 > 32 // 32
        (GOLDEN_PATCHED[:6] + b"\x20" + GOLDEN_PATCHED[7:], "corrupt chunk values"),  # position 32
    ],
)
def test_corrupt_input_raises_chunk_error(buf: bytes, message: str) -> None:
    with pytest.raises(ChunkError, match=message) as info:
        decode_chunk(buf)
    assert isinstance(info.value, ValueError)


def test_encode_validates_its_arguments() -> None:
    with pytest.raises(ChunkError, match="at least one point"):
        encode_chunk(np.zeros(0, I64), np.zeros(0, F64))
    with pytest.raises(ChunkError, match="not strictly ascending at index 2: 5"):
        encode_chunk(np.array([1, 5, 5], I64), np.zeros(3, F64))
    with pytest.raises(ChunkError, match="not strictly ascending at index 1"):
        encode_chunk(np.array([2, 1], I64), np.zeros(2, F64))
    with pytest.raises(ChunkError, match="timestamps must be int64"):
        encode_chunk(np.array([1, 2], np.int32), np.zeros(2, F64))
    with pytest.raises(ChunkError, match="values must be int64 or float64"):
        encode_chunk(np.array([1, 2], I64), np.zeros(2, np.float32))
    with pytest.raises(ChunkError, match="shapes"):
        encode_chunk(np.array([1, 2], I64), np.zeros(3, F64))


@pytest.fixture
def guarded():
    """A writable page followed by an inaccessible one: reading past a buffer that ends at the
    page boundary is a segmentation fault instead of a silent out-of-bounds read."""
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    mem = mmap.mmap(-1, 2 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    prot_none = 0
    assert libc.mprotect(base + page, page, prot_none) == 0, ctypes.get_errno()

    def place(buf: bytes) -> memoryview:
        mem[page - len(buf) : page] = buf
        return memoryview(mem)[page - len(buf) : page]

    yield place
    libc.mprotect(base + page, page, mmap.PROT_READ | mmap.PROT_WRITE)


def test_corrupt_chunks_never_read_past_the_buffer(guarded) -> None:
    rng = np.random.default_rng(11)
    n = 300
    ts = np.cumsum(rng.integers(1, 20_000, n)).astype(I64)
    sets = [
        np.cumsum(rng.integers(-(2**40), 2**40, n)).astype(I64),
        np.round(np.cumsum(rng.normal(0, 1, n)), 2),
        np.cumsum(rng.normal(0, 1, n)),
    ]
    for values in sets:
        chunk = encode_chunk(ts, values)
        for _ in range(300):
            buf = bytearray(chunk[: rng.integers(1, len(chunk) + 1)])
            for _ in range(rng.integers(0, 4)):
                buf[rng.integers(0, len(buf))] = rng.integers(0, 256)
            view = guarded(bytes(buf))
            try:
                decode_chunk(view)
                decode_chunks([view], -(2**63), 2**63 - 1)
            except ChunkError:
                pass
            finally:
                view.release()


def test_wide_loads_stop_before_the_end_of_the_chunk(guarded) -> None:
    # 130 longs: the first value, a block of 128 deltas, then a block of one delta (width 0)
    # that leaves 2 bytes after the first block. Its unpacking loads 8 bytes at a time and
    # must fall back to byte loads there, else it reads past the chunk into the guard page.
    rng = np.random.default_rng(5)
    values = np.concatenate(([0], np.cumsum(rng.integers(0, 30_000, 129)))).astype(I64)
    ts = np.arange(len(values), dtype=I64) * 1000
    chunk = encode_chunk(ts, values)
    view = guarded(chunk)
    try:
        assert decode_chunk(view)[1].tolist() == values.tolist()
    finally:
        view.release()


def test_a_few_nan_and_negative_zero_keep_the_decimal_encoding() -> None:
    rng = np.random.default_rng(3)
    n = 120
    ts = np.arange(n, dtype=I64) * 10_000
    values = np.round(np.cumsum(rng.normal(0, 0.5, n)), 2)
    decimal = len(encode_chunk(ts, values))
    values[[5, 77, 100]] = [
        np.nan,
        -0.0,
        np.frombuffer(b"\x01\x00\x00\x00\x00\x00\xf8\x7f", F64)[0],
    ]
    patched = encode_chunk(ts, values)
    assert patched[0] == 0x23  # double, DECIMAL, CONSTANT, k = 2
    assert len(patched) - decimal < 3 * 10
    assert decode_chunk(patched)[1].view(I64).tolist() == values.view(I64).tolist()
    values[110] = np.inf  # a fourth exception is one too many for 120 points: XOR
    assert encode_chunk(ts, values)[0] == 0x05


@pytest.mark.parametrize("k", [0, 2])
@pytest.mark.parametrize(
    "big", [2**51 - 1, 2**51, 2**51 + 1, 2**52 + 1, 2**53 - 1, -(2**51) - 1, -(2**52) - 3]
)
def test_decimal_values_around_two_to_the_51_decode_exactly(k: int, big: int) -> None:
    # A chunk's values under 2**51 are divided 4 at a time (AVX2, exact int-to-double by a
    # magic constant); with one at or past it the plain loop must take the whole chunk.
    values = np.array([(big if j % 3 else 7) / 10**k for j in range(40)], F64)
    ts = np.arange(len(values), dtype=I64)
    buf = encode_chunk(ts, values)
    assert buf[0] & 0x07 == 0x03  # doubles, DECIMAL
    got = decode_chunk(buf)[1]
    assert got.view(I64).tolist() == values.view(I64).tolist()
    assert got.view(I64).tolist() == R.decode_chunk(buf)[1].view(I64).tolist()
