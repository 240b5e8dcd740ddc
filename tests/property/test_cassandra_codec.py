"""The Cassandra codec agrees with its plain reference and round-trips bit for bit."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kairos.storage.cassandra import _codec_reference as ref
from kairos.storage.cassandra import codec as c

prop = settings(deadline=None, max_examples=300)

LMIN, LMAX = -(2**63), 2**63 - 1
UNITS = st.sampled_from([c.MILLISECONDS, c.SECONDS, c.LEGACY])
EXTREMES = [LMIN, LMIN + 1, -1, 0, 1, LMAX - 1, LMAX, 2**31, -(2**31), 2**32]
INT64 = st.one_of(
    st.integers(LMIN, LMAX),
    st.sampled_from(EXTREMES),
    st.integers(-(10**13), 10**13),
    st.integers(-10_000, 10_000),
)
WIDTH = st.one_of(
    st.sampled_from([1, 1000, 1814400, c.DEFAULT_ROW_WIDTH, 2**31 - 1, 2**31, LMAX]),
    st.integers(1, LMAX),
    st.integers(1, 10**10),
)
BLOB = st.binary(max_size=14)
# Text with ':'/'=' and the characters where UTF-16 and code-point order differ.
TAG_TEXT = st.text(
    st.one_of(st.sampled_from(":=a\x00\ufffd\U0001f600\U00010000é"), st.characters()), max_size=8
)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)


def i64(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def outcome(fn, *args):
    """The result, or the fact that it raised ValueError."""
    try:
        return fn(*args)
    except ValueError:
        return "ValueError"


def arrays_equal(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return all(x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------- rows and columns


@prop
@given(st.lists(INT64, max_size=30), WIDTH)
def test_row_times_match_reference(ts, width):
    got = c.row_times(i64(ts), width)
    assert got.tolist() == ref.row_times_ref(i64(ts), width).tolist()
    assert got.tolist() == [c.row_time(t, width) for t in ts]


@prop
@given(st.lists(st.tuples(INT64, INT64), max_size=30), UNITS)
def test_encode_columns_match_reference(pairs, unit):
    ts = i64([t for t, _ in pairs])
    rows = i64([r for _, r in pairs])
    got = c.encode_columns(ts, rows, unit)
    assert got == ref.encode_columns_ref(ts.tolist(), rows.tolist(), unit)
    assert got == [struct.pack(">I", c.column(int(t), int(r), unit)) for t, r in pairs]


@prop
@given(st.lists(INT64, max_size=30), INT64, UNITS)
def test_encode_columns_with_one_row_time(ts, row, unit):
    assert c.encode_columns(i64(ts), row, unit) == ref.encode_columns_ref(ts, row, unit)


@prop
@given(st.lists(st.binary(min_size=4, max_size=4), max_size=30), INT64, UNITS)
def test_decode_columns_match_reference(cols, row, unit):
    got = c.decode_columns(cols, row, unit)
    assert got.tolist() == ref.decode_columns_ref(cols, row, unit).tolist()


@prop
@given(st.data(), WIDTH, UNITS)
def test_columns_round_trip_inside_a_row(data, width, unit):
    """Every timestamp of a row reads back from its column (seconds: to the second)."""
    # Column offsets must fit a signed Java int (the default widths do).
    width = min(width, 2**30 - 1)
    ts = data.draw(st.lists(INT64, max_size=20))
    rows = [c.row_time(t, width) for t in ts]
    # Offsets are >= 0 and < 2 * width except around the Long.MIN_VALUE wrap.
    keep = [(t, r) for t, r in zip(ts, rows, strict=True) if 0 <= t - r < 2 * width]
    for t, r in keep:
        (col,) = c.encode_columns(i64([t]), r, unit)
        back = int(c.decode_columns([col], r, unit)[0])
        assert back == (r + (t - r) // 1000 * 1000 if unit == c.SECONDS else t)


@prop
@given(INT64, INT64, INT64, WIDTH, UNITS)
def test_column_range_matches_reference(start, end, row, width, unit):
    got = c.column_range(start, end, row, width, unit)
    assert got == ref.column_range_ref(start, end, row, width, unit)
    assert all(len(b) == 4 for b in got)


@prop
@given(WIDTH)
def test_row_width_millis_matches_reference(width):
    for unit in (c.MILLISECONDS, c.SECONDS, c.LEGACY):
        assert c.row_width_millis(width, unit) == ref.row_width_millis_ref(width, unit)


# --------------------------------------------------------------------------- row keys


TAGS = st.dictionaries(TAG_TEXT, TAG_TEXT, max_size=5)


@prop
@given(TAGS)
def test_tag_string_matches_reference_and_parses_back(tags):
    s = c.tag_string(tags)
    assert s == ref.tag_string_ref(tags)
    assert c.parse_tag_string(s) == ref.java_sorted_tags_ref(tags) == c.java_sorted_tags(tags)


@prop
@given(st.text(st.sampled_from(":=ab\U0001f600"), max_size=20))
def test_parse_tag_string_matches_reference_on_any_text(s):
    assert c.parse_tag_string(s) == ref.parse_tag_string_ref(s)


@prop
@given(st.dictionaries(st.text(max_size=4), st.text(max_size=2), max_size=8))
def test_java_order_is_utf16_code_unit_order(tags):
    keys = [k for k, _ in c.java_sorted_tags(tags)]
    units = [k.encode("utf-16-be", "surrogatepass") for k in keys]
    assert units == sorted(units)


METRIC = st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=20)
DATA_TYPE = st.one_of(
    st.sampled_from([c.LONG_TYPE, c.DOUBLE_TYPE, c.STRING_TYPE, c.HISTOGRAM_TYPE, c.LEGACY_TYPE]),
    st.text(st.characters(codec="ascii"), max_size=20),
)


@prop
@given(METRIC, INT64, DATA_TYPE, TAGS)
def test_row_key_round_trips_and_matches_reference(metric, row, data_type, tags):
    key = c.encode_row_key(metric, row, data_type, tags)
    assert key == ref.encode_row_key_ref(metric, row, data_type, tags)
    if data_type == c.LEGACY_TYPE and c.tag_string(tags).startswith("\x00"):
        return  # a legacy key whose tag string starts with U+0000 reads as a type section
    got = c.decode_row_key(key)
    assert (got.metric, got.row_time, got.data_type, got.tags) == ref.decode_row_key_ref(key)
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in metric + c.tag_string(tags)):
        return  # Java's UTF-8 encoder writes a lone surrogate as '?'
    assert got == c.RowKey(metric, row, data_type, c.java_sorted_tags(tags))


@prop
@given(st.binary(max_size=40))
def test_decode_row_key_matches_reference_on_any_bytes(key):
    got = outcome(c.decode_row_key, key)
    want = outcome(ref.decode_row_key_ref, key)
    if want == "ValueError":
        assert got == want
    else:
        assert (got.metric, got.row_time, got.data_type, got.tags) == want


# --------------------------------------------------------------------------- values


@prop
@given(st.lists(INT64, max_size=40))
def test_longs_match_reference_and_round_trip(values):
    encoded = c.encode_longs(i64(values))
    assert encoded == ref.encode_longs_ref(values) == [c.encode_long(v) for v in values]
    assert c.decode_longs(encoded).tolist() == values


@prop
@given(st.lists(BLOB, max_size=10))
def test_decode_longs_matches_reference_on_any_bytes(blobs):
    got = outcome(c.decode_longs, blobs)
    want = outcome(ref.decode_longs_ref, blobs)
    assert got == want if isinstance(want, str) else got.tolist() == want.tolist()


DOUBLE_BITS = st.one_of(
    st.integers(0, 2**64 - 1),
    st.sampled_from(
        [
            0x7FF0000000000000,  # +inf
            0xFFF0000000000000,  # -inf
            0x8000000000000000,  # -0.0
            0x7FF8000000000000,  # quiet NaN
            0x7FF0000000000001,  # signalling NaN
            0xFFFFFFFFFFFFFFFF,  # negative NaN, full payload
            0x0000000000000001,  # smallest subnormal
        ]
    ),
)


@prop
@given(st.lists(DOUBLE_BITS, max_size=40))
def test_doubles_round_trip_bit_for_bit(bits):
    values = np.array(bits, dtype=np.uint64).view(np.float64)
    encoded = c.encode_doubles(values)
    assert encoded == ref.encode_doubles_ref(values) == [struct.pack(">Q", b) for b in bits]
    back = c.decode_doubles(encoded)
    assert back.view(np.uint64).tolist() == bits
    assert ref.decode_doubles_ref(encoded).view(np.uint64).tolist() == bits


@prop
@given(st.lists(BLOB, max_size=10))
def test_decode_doubles_matches_reference_on_any_bytes(blobs):
    got = outcome(c.decode_doubles, blobs)
    want = outcome(ref.decode_doubles_ref, blobs)
    assert got == want if isinstance(want, str) else got.tobytes() == want.tobytes()


def utf16(s: str) -> bytes:
    return s.encode("utf-16-le", "surrogatepass")


@prop
@given(st.lists(ANY_TEXT, max_size=10))
def test_strings_match_reference_and_round_trip(texts):
    encoded = [c.encode_string(s) for s in texts]
    assert encoded == [ref.encode_string_ref(s) for s in texts]
    # Compared as UTF-16, a Java String: a lone high then a lone low surrogate become a pair.
    back = c.decode_strings(encoded)
    assert [utf16(s) for s in back] == [utf16(s) for s in texts]
    assert back == ref.decode_strings_ref(encoded)
    for s in texts:
        assert b"\x00" not in c.encode_string(s)[2:]


MUTF8_PIECE = st.one_of(
    st.binary(max_size=3),
    st.sampled_from([b"\xc0\x80", b"\xed\xa0\xbd", b"\xed\xb8\x80", b"\xe2\x82\xac", b"\xc3"]),
)


@prop
@given(st.lists(st.tuples(st.lists(MUTF8_PIECE, max_size=6), st.integers(-2, 2)), max_size=8))
def test_decode_strings_matches_reference_on_any_bytes(items):
    blobs = []
    for pieces, slack in items:
        body = b"".join(pieces)
        blobs.append(struct.pack(">H", max(0, len(body) + slack)) + body)
    got = outcome(c.decode_strings, blobs)
    want = outcome(ref.decode_strings_ref, blobs)
    assert got == want


LEGACY_CELL = st.tuples(
    st.binary(min_size=4, max_size=4),
    st.one_of(
        st.binary(max_size=10),
        st.binary(min_size=4, max_size=4).map(lambda b: b"\x01" + b),
        st.binary(min_size=8, max_size=8).map(lambda b: b"\x02" + b),
    ),
)


@prop
@given(st.lists(LEGACY_CELL, max_size=10), INT64)
def test_decode_legacy_matches_reference(cells, row):
    cols = [col for col, _ in cells]
    values = [v for _, v in cells]
    got = outcome(c.decode_legacy, cols, values, row)
    want = outcome(ref.decode_legacy_ref, cols, values, row)
    assert arrays_equal(got, want)
