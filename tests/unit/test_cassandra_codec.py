"""Golden bytes of KairosDB's Cassandra formats (spec §6.3-6.5) and the codec's error paths."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from kairos.errors import CodecError
from kairos.storage.cassandra import _codec_reference as ref
from kairos.storage.cassandra import codec as c
from kairos.storage.cassandra.codec import (
    DEFAULT_ROW_WIDTH,
    LEGACY,
    LEGACY_TYPE,
    LONG_TYPE,
    MILLISECONDS,
    SECONDS,
    RowKey,
)

W = DEFAULT_ROW_WIDTH
LMAX = 2**63 - 1
LMIN = -(2**63)

# The worked example of §6.4.
TS = 1700000000123
ROW = 1698278400000
KEY_HEX = (
    "6370752e6c6f6164 00 0000018b6947e000 00 0b 6b6169726f735f6c6f6e67 "
    "64633d613d3a623a686f73743d736572766572313a"
).replace(" ", "")


def i64(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# --------------------------------------------------------------------------- rows and columns


def test_worked_example_row_time_and_columns():
    assert c.row_time(TS, W) == ROW
    assert c.column(TS, ROW, MILLISECONDS) == 1721600123 == 0x669D887B
    assert c.column(TS, ROW, LEGACY) == 0xCD3B10F6
    assert c.encode_columns(i64([TS]), ROW, MILLISECONDS) == [bytes.fromhex("669d887b")]
    assert c.encode_columns(i64([TS]), ROW, LEGACY) == [bytes.fromhex("cd3b10f6")]
    assert c.decode_columns([bytes.fromhex("669d887b")], ROW, MILLISECONDS).tolist() == [TS]
    assert c.decode_columns([bytes.fromhex("cd3b10f6")], ROW, LEGACY).tolist() == [TS]


@pytest.mark.parametrize(
    ("ts", "row"),
    [
        (0, 0),
        (W - 1, 0),
        (W, W),
        (-1, -2),
        (-5, -10),
        (-(W - 1), -2 * (W - 1)),
        (-W, -W),
        (-W - 1, -W - 2),
        (LMAX, LMAX - LMAX % W),
        # Math.abs(Long.MIN_VALUE) is negative, so is its remainder: the row is above ts.
        (LMIN, LMIN + (2**63) % W),
        # ts - (|ts| mod W) passes Long.MIN_VALUE and wraps to a large positive row.
        (LMIN + 1, LMIN + 1 - (LMAX % W) + 2**64),
    ],
)
def test_row_time_negative_and_extreme_timestamps(ts, row):
    assert c.row_time(ts, W) == row
    assert c.row_times(i64([ts]), W).tolist() == [row]
    assert ref.row_time_ref(ts, W) == row


def test_row_times_vectorised_and_empty():
    ts = i64([TS, -1, 0, -5])
    assert c.row_times(ts, W).tolist() == [ROW, -2, 0, -10]
    assert c.row_times(i64([]), W).dtype == np.int64
    with pytest.raises(CodecError, match="row_width"):
        c.row_times(ts, 0)
    with pytest.raises(CodecError, match="int64"):
        c.row_times(np.array([1.5]), W)


def test_row_width_millis():
    assert c.row_width_millis(W, MILLISECONDS) == W
    assert c.row_width_millis(W, LEGACY) == W
    assert c.row_width_millis(1814400, SECONDS) == 1814400000
    with pytest.raises(CodecError, match="row_time_unit"):
        c.row_width_millis(W, "HOURS")


def test_seconds_mode_rows_are_w_ms_wide_and_columns_truncate():
    w = 1814400  # the SECONDS default: rows are 1814400 *ms* wide (Java quirk)
    rt = c.row_time(TS, w)
    assert rt == TS - TS % w
    assert c.column(TS, rt, SECONDS) == (TS - rt) // 1000
    assert c.column(rt + 1999, rt, SECONDS) == 1
    # Java's long division truncates toward zero: -1999 ms is column 0xffffffff (-1).
    assert c.column(rt - 1999, rt, SECONDS) == 0xFFFFFFFF
    assert c.decode_columns([b"\x00\x00\x00\x01"], rt, SECONDS).tolist() == [rt + 1000]
    # The column is read back as a signed Java int.
    assert c.decode_columns([b"\xff\xff\xff\xff"], rt, SECONDS).tolist() == [rt - 1000]
    got = c.encode_columns(i64([rt, rt + 999, rt + 1000, rt + 1814399]), rt, SECONDS)
    assert got == [struct.pack(">I", x) for x in (0, 0, 1, 1814)]


def test_legacy_columns_shift_and_read_unsigned():
    assert c.column(ROW + 2**30, ROW, LEGACY) == 0x80000000
    assert c.decode_columns([b"\x80\x00\x00\x00"], ROW, LEGACY).tolist() == [ROW + 2**30]
    # The low (type) bit is ignored when reading the timestamp.
    assert c.decode_columns([b"\x80\x00\x00\x01"], ROW, LEGACY).tolist() == [ROW + 2**30]
    # MILLISECONDS reads the column as a signed int, like RowSpec.getColumnTimestamp.
    assert c.decode_columns([b"\x80\x00\x00\x00"], ROW, MILLISECONDS).tolist() == [ROW - 2**31]


def test_encode_columns_with_a_row_time_per_point():
    ts = i64([TS, -1, 5])
    rows = c.row_times(ts, W)
    assert c.encode_columns(ts, rows, MILLISECONDS) == [
        bytes.fromhex("669d887b"),
        b"\x00\x00\x00\x01",
        b"\x00\x00\x00\x05",
    ]
    with pytest.raises(CodecError, match="2 elements for 3"):
        c.encode_columns(ts, rows[:2], MILLISECONDS)


def test_decode_columns_rejects_a_wrong_size():
    with pytest.raises(CodecError, match="column 1 has 3 bytes"):
        c.decode_columns([b"\x00" * 4, b"\x00" * 3, b"\x00" * 5], 0, MILLISECONDS)


@pytest.mark.parametrize(
    ("start", "end", "unit", "first", "last"),
    [
        # Whole row: from 0 to col(rowTime + W) + 1.
        (ROW - 10, ROW + 10 * W, MILLISECONDS, 0, W + 1),
        (LMIN, LMAX, MILLISECONDS, 0, W + 1),
        # Inside the row.
        (TS, TS + 5, MILLISECONDS, 1721600123, 1721600129),
        # The + 1 also takes in the legacy double bit of the last millisecond.
        (TS, TS, LEGACY, 0xCD3B10F6, 0xCD3B10F7),
        # A legacy whole row: (W << 1) + 1 as an unsigned int.
        (ROW, LMAX, LEGACY, 0, ((W << 1) + 1) & 0xFFFFFFFF),
        # SECONDS clamps to rowTime + W * 1000 ms, i.e. column W.
        (ROW, LMAX, SECONDS, 0, W + 1),
        (ROW + 1500, ROW + 2500, SECONDS, 1, 3),
    ],
)
def test_column_range(start, end, unit, first, last):
    got = c.column_range(start, end, ROW, W, unit)
    assert got == (struct.pack(">I", first), struct.pack(">I", last))
    assert ref.column_range_ref(start, end, ROW, W, unit) == got


# --------------------------------------------------------------------------- row keys


def test_worked_example_row_key():
    key = c.encode_row_key("cpu.load", ROW, LONG_TYPE, {"host": "server1", "dc": "a:b"})
    assert key.hex() == KEY_HEX
    assert c.decode_row_key(key) == RowKey(
        "cpu.load", ROW, LONG_TYPE, (("dc", "a:b"), ("host", "server1"))
    )


def test_legacy_row_key_has_no_type_section():
    key = c.encode_row_key("cpu.load", ROW, LEGACY_TYPE, {"host": "server1"})
    assert key == b"cpu.load\x00" + struct.pack(">q", ROW) + b"host=server1:"
    assert c.decode_row_key(key) == RowKey("cpu.load", ROW, LEGACY_TYPE, (("host", "server1"),))


def test_row_key_with_negative_row_time_and_no_tags():
    key = c.encode_row_key("m", -2, "kairos_double", {})
    assert key == b"m\x00" + b"\xff" * 7 + b"\xfe" + b"\x00\x0dkairos_double"
    assert c.decode_row_key(key) == RowKey("m", -2, "kairos_double", ())


def test_histogram_row_key_type():
    key = c.encode_row_key("h", 0, c.HISTOGRAM_TYPE, {"a": "b"})
    assert key == b"h\x00" + b"\x00" * 8 + b"\x00\x10kairos_histogram" + b"a=b:"
    assert c.decode_row_key(key).data_type == "kairos_histogram"


def test_row_key_errors():
    with pytest.raises(CodecError, match="too short"):
        c.decode_row_key(b"cpu\x00\x00\x00")
    with pytest.raises(CodecError, match="too short"):
        c.decode_row_key(b"no-nul-at-all")
    with pytest.raises(CodecError, match="truncated"):
        c.decode_row_key(b"m\x00" + b"\x00" * 8 + b"\x00\x0bkairos")
    with pytest.raises(CodecError, match="U\\+0000"):
        c.encode_row_key("a\x00b", 0, LONG_TYPE, {})
    with pytest.raises(CodecError, match="127"):
        c.encode_row_key("m", 0, "t" * 128, {})


def test_row_key_index_range():
    first, last = c.row_key_index_range("cpu", ROW - 5, TS, W)
    assert first == b"cpu\x00" + struct.pack(">q", ROW - W) + b"\x00\x00"
    assert last == b"cpu\x00" + struct.pack(">q", ROW) + b"\xff\x00"
    # Every key of the metric in those rows sorts inside the range (blobs compare unsigned,
    # which is why KairosDB splits a range that crosses 0 in two).
    for rt in (ROW - W, ROW):
        for t in (LEGACY_TYPE, LONG_TYPE):
            assert first < c.encode_row_key("cpu", rt, t, {"a": "b"}) < last
    assert (
        c.row_key_index_range("cpu", -1, -1, W)[0]
        == b"cpu\x00" + struct.pack(">q", -2) + b"\x00\x00"
    )


@pytest.mark.parametrize(
    ("tags", "text"),
    [
        ({"dc": "a:b", "host": "server1"}, "dc=a=:b:host=server1:"),
        ({"k:e=y": "v"}, "k::e:=y=v:"),
        ({"k": "v=a:l"}, "k=v==a=:l:"),
        ({":": "="}, "::===:"),
        ({"=": ":"}, ":===::"),
        ({"": ""}, "=:"),
        ({}, ""),
    ],
)
def test_tag_string_escaping_both_ways(tags, text):
    assert c.tag_string(tags) == text
    assert c.parse_tag_string(text) == tuple(sorted(tags.items()))
    assert ref.tag_string_ref(tags) == text
    assert ref.parse_tag_string_ref(text) == tuple(sorted(tags.items()))


def test_parse_tag_string_like_kairosdb():
    # A trailing pair without its ':' is dropped; a later duplicate key wins.
    assert c.parse_tag_string("a=1:b=2") == (("a", "1"),)
    assert c.parse_tag_string("a=1:a=2:") == (("a", "2"),)
    assert c.parse_tag_string("b=1:a=2:") == (("a", "2"), ("b", "1"))


def test_tags_sort_in_java_utf16_order():
    # U+1F600 is the surrogate pair D83D DE00, which sorts before U+FFFD in UTF-16.
    tags = {"\ufffd": "x", "\U0001f600": "y", "a": "z"}
    assert [k for k, _ in c.java_sorted_tags(tags)] == ["a", "\U0001f600", "\ufffd"]
    assert c.tag_string(tags) == "a=z:\U0001f600=y:\ufffd=x:"
    key = c.encode_row_key("m", 0, LONG_TYPE, tags)
    assert c.decode_row_key(key).tags == (("a", "z"), ("\U0001f600", "y"), ("\ufffd", "x"))


def test_java_sorted_tags_accepts_pairs():
    assert c.java_sorted_tags([("b", "1"), ("a", "2"), ("b", "3")]) == (("a", "2"), ("b", "3"))


# --------------------------------------------------------------------------- values


LONG_EXAMPLES = [
    (0, "00"),
    (1, "02"),
    (-1, "01"),
    (123, "f601"),
    (-123, "f501"),
    (300, "d804"),
    (LMAX, "feffffffffffffffff01"),
    (LMIN, "ffffffffffffffffff01"),
]


@pytest.mark.parametrize(("value", "hexed"), LONG_EXAMPLES)
def test_long_examples(value, hexed):
    assert c.encode_long(value).hex() == hexed
    assert ref.encode_long_ref(value).hex() == hexed


def test_longs_bulk():
    values = i64([v for v, _ in LONG_EXAMPLES])
    encoded = c.encode_longs(values)
    assert [b.hex() for b in encoded] == [h for _, h in LONG_EXAMPLES]
    assert c.decode_longs(encoded).tolist() == values.tolist()
    assert c.decode_longs([]).dtype == np.int64
    assert c.encode_longs(i64([])) == []


def test_decode_longs_like_util_unpack_long():
    # Non-canonical varints, bits past 64 and trailing bytes are all accepted by Java.
    assert c.decode_longs([b"\x80\x00", b"\x02\xff", b"\xff" * 9 + b"\x7f"]).tolist() == [
        0,
        1,
        LMIN,
    ]
    with pytest.raises(CodecError, match="long value 1 ends inside"):
        c.decode_longs([b"\x00", b"\x80"])
    with pytest.raises(CodecError, match="long value 0"):
        c.decode_longs([b""])
    with pytest.raises(CodecError, match="longer than 10"):
        c.decode_longs([b"\xff" * 10 + b"\x01"])


def test_double_examples():
    assert c.encode_double(13.2).hex() == "402a666666666666"
    assert c.encode_doubles(np.array([13.2, -0.0]))[1] == b"\x80" + b"\x00" * 7
    assert c.decode_doubles([bytes.fromhex("402a666666666666")]).tolist() == [13.2]
    nan = bytes.fromhex("7ff0000000000bad")
    back = c.decode_doubles([nan, nan + b"trailing"])
    assert all(struct.pack(">d", x) == nan for x in back)
    assert c.encode_doubles(back) == [nan, nan]
    with pytest.raises(CodecError, match="double value 0 is shorter"):
        c.decode_doubles([b"\x00" * 7])
    with pytest.raises(CodecError, match="float64"):
        c.encode_doubles(np.array([1], dtype=np.int64))


@pytest.mark.parametrize(
    ("text", "hexed"),
    [
        ("", "0000"),
        ("abc", "0003616263"),
        ("\x00", "0002c080"),
        ("é", "0002c3a9"),
        ("€", "0003e282ac"),
        ("\U0001f600", "0006eda0bdedb880"),
        ("a\x00\U00010000", "0009" + "61" + "c080" + "eda080edb080"),
        ("\ud800", "0003eda080"),  # a lone surrogate survives
    ],
)
def test_modified_utf8_examples(text, hexed):
    assert c.encode_string(text).hex() == hexed
    assert ref.encode_string_ref(text).hex() == hexed
    assert c.decode_string(bytes.fromhex(hexed)) == text
    assert ref.decode_string_ref(bytes.fromhex(hexed)) == text


def test_decode_string_like_readutf():
    # Overlong forms (raw NUL, 2-byte 'A', 3-byte 'A') are accepted; trailing bytes ignored.
    assert c.decode_strings([b"\x00\x01\x00", b"\x00\x02\xc1\x81", b"\x00\x03\xe0\x81\x81"]) == [
        "\x00",
        "A",
        "A",
    ]
    assert c.decode_string(b"\x00\x01ab") == "a"
    # A leading U+FEFF is a character, not a byte-order mark.
    assert c.decode_string(b"\x00\x03\xef\xbb\xbf") == "\ufeff"
    for bad in [b"", b"\x00", b"\x00\x02a", b"\x00\x01\x80", b"\x00\x04\xf0\x9f\x98\x80"]:
        with pytest.raises(CodecError, match="string value 0"):
            c.decode_string(bad)
        with pytest.raises(ValueError):
            ref.decode_string_ref(bad)


def test_encode_string_length_limit():
    assert len(c.encode_string("a" * 65535)) == 65537
    with pytest.raises(CodecError, match="65536 bytes"):
        c.encode_string("a" * 65536)
    with pytest.raises(ValueError, match="65535"):
        c.encode_string("\x00" * 32768)
    with pytest.raises(ValueError):
        ref.encode_string_ref("é" * 32768)


def test_legacy_values():
    cols = [
        struct.pack(">I", 10 << 1),  # long 0: empty value
        struct.pack(">I", (11 << 1)),  # long 300, leading zero bytes stripped
        struct.pack(">I", (12 << 1)),  # long -1: all 8 bytes
        struct.pack(">I", (13 << 1) | 1),  # 0x01 flag: 4-byte float
        struct.pack(">I", (14 << 1) | 1),  # any other flag: 8-byte double
    ]
    values = [
        b"",
        b"\x01\x2c",
        b"\xff" * 8,
        b"\x01" + struct.pack(">f", 1.5),
        b"\x02" + bytes.fromhex("402a666666666666"),
    ]
    ts, is_double, longs, doubles = c.decode_legacy(cols, values, ROW)
    assert ts.tolist() == [ROW + 10, ROW + 11, ROW + 12, ROW + 13, ROW + 14]
    assert is_double.dtype == bool
    assert is_double.tolist() == [False, False, False, True, True]
    assert longs.tolist() == [0, 300, -1, 0, 0]
    assert doubles.tolist() == [0.0, 0.0, 0.0, 1.5, 13.2]
    got = ref.decode_legacy_ref(cols, values, ROW)
    assert [a.tolist() for a in got] == [a.tolist() for a in (ts, is_double, longs, doubles)]


def test_legacy_value_errors():
    col = struct.pack(">I", 1)
    with pytest.raises(CodecError, match="legacy double value 0"):
        c.decode_legacy([col], [b""], 0)
    with pytest.raises(CodecError, match="legacy double value 0"):
        c.decode_legacy([col], [b"\x01\x00\x00"], 0)
    with pytest.raises(CodecError, match="2 legacy columns for 1"):
        c.decode_legacy([col, col], [b""], 0)
    with pytest.raises(CodecError, match="column 0 has 2 bytes"):
        c.decode_legacy([b"\x00\x01"], [b""], 0)


def test_legacy_float_nan_and_infinity():
    col = struct.pack(">I", 1)
    _, _, _, d = c.decode_legacy([col, col], [b"\x01\x7f\x80\x00\x00", b"\x01\x7f\xc0\x00\x00"], 0)
    assert d[0] == math.inf
    assert math.isnan(d[1])


def test_lone_surrogates_in_keys_are_written_as_question_marks_like_java():
    key = c.encode_row_key("m\ud800", 0, LONG_TYPE, {"k": "\udc00"})
    assert key.startswith(b"m?\x00")
    assert key.endswith(b"k=?:")
