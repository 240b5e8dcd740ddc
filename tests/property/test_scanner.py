"""The ingest fast path either bails or equals the general path (its reference), byte for byte.

Bodies are rendered by hand, not by ``json.dumps``, to control what KairosDB's type inference
sees: the literal text of every number, whitespace, key order and string escapes.
"""

from __future__ import annotations

import json
import math
import re
import struct

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kairos.ingest.fast import scan_status, try_fast_parse
from kairos.ingest.parser import parse_datapoints

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WS = st.sampled_from(["", "", "", "", " ", "\n", "\t", "\r\n  "])
I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.one_of(
    st.text(st.sampled_from('ab:=.-_ /é€😀"\\\n\x00\x7f\u2028\ufeff\U0010ffff'), max_size=6),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=6),
)


def _g(x: float) -> str:
    return f"{x:.17g}"


def _e(x: float) -> str:
    return f"{x:.6e}"


def _f2(x: float) -> str:
    return f"{x:.2f}"


def _fast_float(text: str) -> bool:
    # A literal the scanner converts: a dot, at most 63 characters, finite.
    return "." in text and len(text) <= 63 and math.isfinite(float(text))


def _dotted(text: str) -> str:
    # A float literal that keeps its dot (repr drops it for 1e+300).
    return text if "." in text or "e" not in text else text.replace("e", ".0e", 1)


FLOAT_TEXT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(repr).map(_dotted),
    st.floats(allow_nan=False, allow_infinity=False).map(_g),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(_e),
    st.floats(min_value=-1e6, max_value=1e6).map(_f2),
    st.integers(0, 2**64 - 1)
    .map(lambda b: repr(struct.unpack("<d", struct.pack("<Q", b))[0]))
    .filter(lambda t: "n" not in t),
    st.sampled_from(
        [
            "0.0",
            "-0.0",
            "1.0",
            "1.5E3",
            "1.5e+3",
            "2.5e-3",
            "100.00",
            "0.1",
            "-0.000",
            "9007199254740993.0",
            "1.7976931348623157e308",
            "1.8e308",
            "4.9e-324",
            "2.4e-324",
            "1e-400",
            "1.0e-400",
            "0.30000000000000004",
            "123456789012345678901234.5",
            "9.2e18",
            "-9.2e18",
            "9.1e18",
            "1" + "0" * 70 + ".5",
        ]
    ),
)
INT_TEXT = st.one_of(
    I64.map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            "1",
            "-1",
            str(2**63 - 1),
            str(-(2**63)),
            str(2**63),
            str(-(2**63) - 1),
            str(2**64),
            "1" * 25,
            "1E5",
            "1e5",
            "-2e3",
            "01",
            "+1",
            "1.",
            ".5",
            "1e",
            "--1",
        ]
    ),
)
NUMBER_TEXT = st.one_of(INT_TEXT, FLOAT_TEXT)
ODD_VALUE = st.sampled_from(["null", "true", '"12"', '"abc"', "[]", "[1]", '""'])


@st.composite
def json_string(draw: st.DrawFn, strategy: st.SearchStrategy[str] = TEXT) -> str:
    s = draw(strategy)
    style = draw(st.sampled_from(["raw", "raw", "raw", "ascii", "lone-surrogate"]))
    if style == "raw":
        return json.dumps(s, ensure_ascii=False)
    if style == "ascii":
        return json.dumps(s, ensure_ascii=True)
    return json.dumps(s, ensure_ascii=False)[:-1] + '\\ud800"'


def obj(draw: st.DrawFn, members: list[tuple[str, str]]) -> str:
    members = draw(st.permutations(members))
    parts = [f"{draw(WS)}{k}{draw(WS)}:{draw(WS)}{v}{draw(WS)}" for k, v in members]
    return "{" + ",".join(parts) + draw(WS) + "}"


@st.composite
def metric(draw: st.DrawFn, strict: bool) -> str:
    """One metric object; ``strict`` keeps it within the fast shape."""
    members: list[tuple[str, str]] = []
    if strict:
        name = draw(st.text(min_size=1, max_size=8).filter(lambda s: "\\" not in s))
        members.append(('"name"', json.dumps(name, ensure_ascii=False)))
        tag_keys = draw(st.lists(TEXT.filter(bool), min_size=1, max_size=3, unique=True))
        tag_items = [
            (json.dumps(k, ensure_ascii=False), draw(json_string(TEXT.filter(bool))))
            for k in tag_keys
        ]
        tag_items = [(k, v) for k, v in tag_items if "\\ud800" not in v] or [('"k"', '"v"')]
    else:
        if draw(st.integers(0, 9)):
            members.append(('"name"', draw(json_string())))
        tag_items = [
            (draw(json_string()), draw(json_string())) for _ in range(draw(st.integers(0, 3)))
        ]
        if draw(st.integers(0, 19)) == 0:
            tag_items.append(('"dup"', '"1"'))
            tag_items.append(('"dup"', '"2"'))
    if strict or draw(st.integers(0, 9)):
        members.append(('"tags"', obj(draw, tag_items)))
    mtype = draw(
        st.sampled_from(
            [None, None, None, "long", "double"] + ([] if strict else ["string", "bogus"])
        )
    )
    if mtype is not None:
        members.append(('"type"', f'"{mtype}"'))
    if draw(st.booleans()):
        members.append(
            (
                '"ttl"',
                draw(
                    st.integers(-(2**31), 2**31 - 1) if strict else st.integers(-(2**32), 2**32)
                ).__str__(),
            )
        )
    number = st.one_of(I64.map(str), FLOAT_TEXT.filter(_fast_float)) if strict else NUMBER_TEXT
    if strict and mtype == "long":
        number = st.one_of(I64.map(str), st.floats(-9e18, 9e18).map(repr).map(_dotted))
    value = number if strict else st.one_of(number, number, number, ODD_VALUE)
    if draw(st.integers(0, 3)) == 0:
        members.append(
            (
                draw(st.sampled_from(['"timestamp"', '"time"'])),
                draw(I64.map(str) if strict else INT_TEXT),
            )
        )
        members.append(('"value"', draw(value)))
    if not strict and draw(st.integers(0, 9)) == 0:
        members.append(
            (
                draw(
                    st.sampled_from(
                        ['"timestamp"', '"time"', '"value"', '"skip_validate"', '"other"']
                    )
                ),
                draw(INT_TEXT),
            )
        )
    if draw(st.integers(0, 5)):
        entries = []
        for _ in range(draw(st.integers(0, 6))):
            ts = draw(I64.map(str) if strict or draw(st.integers(0, 9)) else NUMBER_TEXT)
            entry = [ts, draw(value)]
            if not strict and draw(st.integers(0, 19)) == 0:
                entry = entry[: draw(st.integers(0, 1))] + (
                    ['"long"'] if draw(st.booleans()) else []
                )
            entries.append("[" + ",".join(f"{draw(WS)}{x}{draw(WS)}" for x in entry) + "]")
        members.append(
            ('"datapoints"', "[" + ",".join(f"{draw(WS)}{x}{draw(WS)}" for x in entries) + "]")
        )
    return obj(draw, members)


@st.composite
def body(draw: st.DrawFn, strict: bool = False) -> bytes:
    objs = draw(st.lists(metric(strict), max_size=4))
    if objs and draw(st.integers(0, 4)) == 0:
        text = objs[0]
    else:
        text = "[" + ",".join(f"{draw(WS)}{o}{draw(WS)}" for o in objs) + draw(WS) + "]"
    data = (draw(WS) + text + draw(WS)).encode("utf-8")
    if not strict and data and draw(st.integers(0, 5)) == 0:
        i = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["truncate", "insert", "delete", "trailing"]))
        if how == "truncate":
            data = data[:i]
        elif how == "insert":
            data = (
                data[:i]
                + draw(st.sampled_from([b",", b"]", b"}", b'"', b"\xff", b"\xc3", b"1", b"."]))
                + data[i:]
            )
        elif how == "delete":
            data = data[:i] + data[i + 1 :]
        else:
            data += draw(st.sampled_from([b"x", b",", b"[]", b"\x00"]))
    return data


def check(data: bytes) -> bool:
    """Assert the fast path agrees with the general path; True when it did not bail."""
    fast = try_fast_parse(data)
    general = parse_datapoints(data)
    if fast is None:
        return False
    assert general.errors == [], (data, scan_status(data))
    assert fast.errors == []
    assert fast.batch.equals(general.batch), (data, fast.batch, general.batch)
    return True


@SETTINGS
@given(body())
@example(b"[]")
@example(b" [ ] ")
@example(b'{"name":"m","tags":{"a":"b"}}')
@example(b'{"name":"m","tags":{"a":"b"},"datapoints":[[1,-0.0],[2,-0],[3,1.0],[4,1]]}')
@example(b'{"name":"m","tags":{"a":"b"},"type":"double","datapoints":[[1,9223372036854775807]]}')
@example(b'{"name":"m","tags":{"a":"b"},"type":"long","datapoints":[[1,-9.1e18],[2,2.9]]}')
def test_fast_bails_or_equals_general(data: bytes) -> None:
    check(data)


@SETTINGS
@given(body(strict=True))
def test_typical_bodies_take_the_fast_path(data: bytes) -> None:
    assert check(data), (data, scan_status(data))


_JSON_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_JSON_DOTTED = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+([eE][-+]?[0-9]+)?")


def _takes_fast_path(text: str, mtype: str | None) -> bool:
    """The scanner's number rules, restated: which literals it converts rather than bails on."""
    if _JSON_INT.fullmatch(text):
        return -(2**63) <= int(text) < 2**63
    if not _JSON_DOTTED.fullmatch(text) or len(text) > 63 or not math.isfinite(float(text)):
        return False
    return mtype != "long" or abs(float(text)) < 9.2e18


@SETTINGS
@given(
    st.lists(st.tuples(I64, NUMBER_TEXT), min_size=1, max_size=20),
    st.sampled_from([None, "long", "double"]),
)
def test_number_literals(points: list[tuple[int, str]], mtype: str | None) -> None:
    """Each literal is converted exactly as by the general path, or bails for a stated reason."""
    type_member = f',"type":"{mtype}"' if mtype else ""
    dps = ",".join(f"[{t},{v}]" for t, v in points)
    data = f'{{"name":"m","tags":{{"a":"b"}}{type_member},"datapoints":[{dps}]}}'.encode()
    assert check(data) == all(_takes_fast_path(v, mtype) for _, v in points)
