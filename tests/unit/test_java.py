"""Java's rules as ``kairos.model.java`` states them once for every layer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kairos.model.java import (
    LONG_MAX,
    LONG_MIN,
    UNIT_MS,
    gson_token,
    java_key,
    java_long,
    java_sorted,
    java_sorted_tags,
)


@given(st.integers(-(2**80), 2**80))
def test_java_long_wraps_like_a_java_long(x: int) -> None:
    v = java_long(x)
    assert LONG_MIN <= v <= LONG_MAX
    assert (v - x) % 2**64 == 0


def test_java_long_edges() -> None:
    assert java_long(LONG_MAX + 1) == LONG_MIN
    assert java_long(LONG_MIN - 1) == LONG_MAX
    assert java_long(-1) == -1


def test_gson_tokens() -> None:
    assert [gson_token(v) for v in (None, True, 1, 1.5, "s", [], {})] == [
        "NULL",
        "BOOLEAN",
        "NUMBER",
        "NUMBER",
        "STRING",
        "BEGIN_ARRAY",
        "BEGIN_OBJECT",
    ]


def test_java_string_order_is_utf16() -> None:
    # U+FF5E sorts after U+1F600 in UTF-16 code units (the emoji is a surrogate pair, 0xD83D).
    assert java_sorted(["\uff5e", "\U0001f600", "a"]) == ["a", "\U0001f600", "\uff5e"]
    assert sorted(["\uff5e", "\U0001f600"]) == ["\uff5e", "\U0001f600"]  # Python's differs
    assert java_key("a") < java_key("b")
    assert java_sorted_tags({"\uff5e": "1", "\U0001f600": "2"}) == (
        ("\U0001f600", "2"),
        ("\uff5e", "1"),
    )


def test_units() -> None:
    assert UNIT_MS["WEEKS"] == 7 * UNIT_MS["DAYS"] == 7 * 24 * UNIT_MS["HOURS"]
