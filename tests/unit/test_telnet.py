"""The telnet and Graphite line protocols (spec §5.1), tested without sockets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kairos.config import load
from kairos.errors import ConfigError
from kairos.ingest._values import double_bits
from kairos.ingest.graphite import GraphiteSession, parse_graphite_line
from kairos.ingest.telnet import (
    LineError,
    LineFramer,
    TelnetSession,
    parse_java_double,
    parse_line,
    parse_strict_long,
    split_words,
    version_reply,
)
from kairos.model.batch import DOUBLE, LONG, STRING, Batch


def points(batch: Batch | None) -> list[tuple]:
    """(metric, tags, kind, ts, value, ttl) per point; doubles as floats, strings as str."""
    if batch is None:
        return []
    out = []
    for sid, ts, v in zip(batch.series, batch.ts, batch.values, strict=True):
        kind = int(batch.kinds[sid])
        if kind == STRING:
            val = batch.objects[int(v)]
        elif kind == DOUBLE:
            val = ("d", float(np.int64(v).view(np.float64)))
        else:
            val = int(v)
        out.append(
            (batch.metrics[sid], dict(batch.tags[sid]), kind, int(ts), val, int(batch.ttls[sid]))
        )
    return out


def feed(data: bytes, version: str = "KairosDB 1.3.2-kairos.0.1.0"):
    s = TelnetSession(version)
    return s.feed(data)


def one(line: str):
    return parse_line(split_words(line))


def err(line: str) -> str:
    with pytest.raises(LineError) as ei:
        one(line)
    return str(ei.value)


# --- framing ---------------------------------------------------------------------------------


def test_framing_lf_crlf_and_partial_reads() -> None:
    f = LineFramer()
    assert f.feed(b"a\nb\r\nc") == [b"a", b"b"]
    assert f.feed(b"d\r") == []
    assert f.feed(b"\ne\n") == [b"cd", b"e"]


def test_long_lines_are_dropped_and_counted_not_fatal() -> None:
    f = LineFramer(1024)
    ok = b"x" * 1024
    assert f.feed(ok + b"\r\n") == [ok]
    assert f.feed(b"y" * 1025 + b"\nafter\n") == [b"after"]
    assert f.dropped == 1
    # a long line arriving in many reads is dropped once
    for _ in range(10):
        assert f.feed(b"z" * 500) == []
    assert f.feed(b"zz\nnext\n") == [b"next"]
    assert f.dropped == 2


def test_session_counts_dropped_and_keeps_going() -> None:
    s = TelnetSession("KairosDB x")
    r = s.feed(b"put m 1 1 a=b " + b"x" * 2000 + b"\nput m 2 2 a=b\n")
    assert r.dropped == 1
    assert [p[3] for p in points(r.batch)] == [2000]


# --- word splitting --------------------------------------------------------------------------


def test_split_runs_of_whitespace_and_controls() -> None:
    # collectd write_tsdb sends a double space before its host tags
    assert split_words("put cpu.load 1500000000 1.5 fqdn=h  env=p") == [
        "put", "cpu.load", "1500000000", "1.5", "fqdn=h", "env=p",
    ]  # fmt: skip
    assert split_words("\tput\x01m\x00 1  2 ") == ["put", "m", "1", "2"]
    assert split_words("a\xa0b") == ["a\xa0b"]  # NBSP (> U+0020) is not a separator
    assert split_words("   ") == []


def test_quoted_tokens() -> None:
    assert split_words('put "my metric" 1 2 "host=a b"') == [
        "put",
        "my metric",
        "1",
        "2",
        "host=a b",
    ]
    assert split_words('a "x"y" z') == ["a", 'x"y', "z"]
    assert split_words('a ""') == ["a", ""]
    assert split_words('a b"c d"') == ["a", 'b"c', 'd"']  # a quote inside a word is literal
    assert split_words('a "open end') == ["a", '"open', "end"]  # unterminated: ordinary words


# --- put / putm / puts -----------------------------------------------------------------------


def test_put_seconds_and_milliseconds_boundary() -> None:
    assert one("put m 2999999999 1 a=b").ts == 2999999999000
    assert one("put m 3000000000 1 a=b").ts == 3000000000
    assert one("put m 0 1 a=b").ts == 0
    assert one("put m -5 1 a=b").ts == -5000
    assert one("putm m 5 1 a=b").ts == 5
    assert one("putm m -5 1 a=b").ts == -5
    assert one("puts m 5 x a=b").ts == 5


def test_timestamp_is_a_strict_signed_long() -> None:
    for bad in ("+5", "1e3", "1.5", "abc", "9223372036854775808", ""):
        with pytest.raises(LineError):
            parse_strict_long(bad)
    assert parse_strict_long("-9223372036854775808") == -(1 << 63)
    assert err("put m +5 1 a=b") == 'For input string: "+5"'


def test_values_long_double_string() -> None:
    p = one("put m 1 42 a=b")
    assert (p.kind, p.value) == (LONG, 42)
    p = one("put m 1 -42 a=b")
    assert (p.kind, p.value) == (LONG, -42)
    p = one("put m 1 1.5 a=b")
    assert (p.kind, p.value) == (DOUBLE, double_bits(1.5))
    p = one("puts m 1 hello a=b")
    assert (p.kind, p.value) == (STRING, "hello")
    p = one("puts m 1 1.5 a=b")
    assert (p.kind, p.value) == (STRING, "1.5")
    for bad in ("1e5", "NaN", "+5", "0x10", "1_000", "Infinity", "\u0661"):
        with pytest.raises(LineError):
            one(f"put m 1 {bad} a=b")


def test_java_double_parse() -> None:
    assert parse_java_double("1.5e3") == 1500.0
    assert parse_java_double(".5") == 0.5
    assert parse_java_double("5.") == 5.0
    assert parse_java_double("+1.5") == 1.5
    assert parse_java_double("1.5d") == 1.5
    assert parse_java_double("1.5F") == 1.5
    assert parse_java_double("0x1.8p1") == 3.0
    assert math.isinf(parse_java_double("1.0e999"))
    for bad in ("1.5.5", "1._5", "inf.", "1.5e", "0x1.8", ".", "1.5 x", "\u0661.5"):
        with pytest.raises(LineError):
            parse_java_double(bad)


def test_tags() -> None:
    assert one("put m 1 1 b=2 a=1").tags == (("a", "1"), ("b", "2"))
    assert one("put m 1 1 a=b=c").tags == (("a", "b"),)
    assert one("put m 1 1").tags == (("add", "tag"),)
    p = one("put m 1 1 kairos_opt.ttl=60")
    assert (p.tags, p.ttl) == ((("add", "tag"),), 60)
    p = one("put m 1 1 kairos_opt.ttl=60 host=a")
    assert (p.tags, p.ttl) == ((("host", "a"),), 60)


def test_tag_errors() -> None:
    assert err("put m 1 1 a=b fum") == "tag[1] must be in the format 'name=value'."
    assert err("put m 1 1 fum=") == "tag[0] must be in the format 'name=value'."
    assert err("put m 1 1 =") == "tag[0] must be in the format 'name=value'."
    assert err("put m 1 1 =v") == "tag[0].name may not be empty."
    assert err("put m 1 1 a==v") == "tag[0].value may not be empty."
    assert err("put m 1 1 kairos_opt.ttl=x") == "tag[kairos_opt.ttl] must be a number"
    assert "duplicate" in err("put m 1 1 a=1 a=2")


def test_metric_name_and_arity_errors() -> None:
    assert err('put "" 1 1 a=b') == "metricName may not be empty."
    assert "expected" in err("put m 1")


def test_iso_8859_1_mojibake() -> None:
    r = feed("put café 1 1 hôst=é\n".encode())
    ((metric, tags, *_),) = points(r.batch)
    assert metric == "cafÃ©"
    assert tags == {"h\u00c3\u00b4st": "\u00c3\u00a9"}


# --- sessions --------------------------------------------------------------------------------


def test_one_batch_per_read_and_bad_lines_do_not_stop_the_stream() -> None:
    r = feed(
        b"put m 1500000000 1 host=a\r\n"
        b"put m bad 1 host=a\n"
        b"putm m 1500000000001 2.5 host=a\n"
        b"puts s 7 hi host=a\n"
        b"frobnicate 1 2\n"
        b"\n"
        b"put m 1500000002 3 host=a\n"
    )
    assert r.n_points == 4
    assert points(r.batch) == [
        ("m", {"host": "a"}, LONG, 1500000000000, 1, 0),
        ("m", {"host": "a"}, DOUBLE, 1500000000001, ("d", 2.5), 0),
        ("s", {"host": "a"}, STRING, 7, "hi", 0),
        ("m", {"host": "a"}, LONG, 1500000002000, 3, 0),
    ]
    assert len(r.errors) == 1 and "bad" in r.errors[0]
    assert r.warnings == ["unknown command 'frobnicate'"]
    assert r.replies == []


def test_version_command() -> None:
    r = feed(b"version\n")
    assert r.replies == [b"KairosDB 1.3.2-kairos.0.1.0\n"]
    assert r.batch is None
    assert version_reply("1.2.3") == b"KairosDB 1.2.3\n"
    assert feed(b"Version\n").replies == []  # commands are case-sensitive


def test_empty_read() -> None:
    r = feed(b"put m 1 1")  # no newline yet
    assert r.batch is None and r.errors == []


# --- graphite --------------------------------------------------------------------------------


def test_graphite_lines() -> None:
    s = GraphiteSession()
    r = s.feed(b"servers.web1.cpu 1.5 1500000000\nservers.web1.mem 42 1500000001\r\nbad line\n")
    assert points(r.batch) == [
        ("servers.web1.cpu", {"add": "tag"}, DOUBLE, 1500000000000, ("d", 1.5), 0),
        ("servers.web1.mem", {"add": "tag"}, LONG, 1500000001000, 42, 0),
    ]
    assert len(r.errors) == 1
    assert parse_graphite_line(["a", "1", "1.5"]).ts == 1500
    with pytest.raises(LineError):
        parse_graphite_line(["a", "x", "1"])


# --- config ----------------------------------------------------------------------------------


def test_config_ports() -> None:
    cfg = load(env={})
    assert (cfg.telnet_port, cfg.graphite_port) == (4242, 2003)
    cfg = load(env={"KAIROSDB_TELNET_PORT": "0", "KAIROSDB_GRAPHITE_PORT": "2004"})
    assert (cfg.telnet_port, cfg.graphite_port) == (0, 2004)
    with pytest.raises(ConfigError):
        load(env={"KAIROSDB_TELNET_PORT": "70000"})
    with pytest.raises(ConfigError):
        load(env={"KAIROSDB_GRAPHITE_PORT": "-1"})
