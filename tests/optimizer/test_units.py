"""Unit parsing in job files (optimizer/units.py): counts, money and durations."""

from __future__ import annotations

import math

import pytest
from flopopt.optimizer.units import UnitError, parse_count, parse_hours, parse_money
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7B", 7e9),  # "a 7B model": B is billion, as papers write it
        ("175M", 175e6),
        ("2T", 2e12),
        ("1.5e12", 1.5e12),
        ("1_000", 1000.0),
        ("6.7B", 6.7e9),
        ("864k", 864e3),
        ("1.281M", 1.281e6),
        ("3G", 3e9),  # SI synonym of B
        (" 2T ", 2e12),
        (7, 7.0),
        (2.5e9, 2.5e9),
    ],
)
def test_parse_count(text: object, expected: float) -> None:
    assert parse_count(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$50k", 50_000.0),
        ("50k", 50_000.0),
        ("2.5M", 2.5e6),
        ("$2M", 2e6),
        ("$ 1_500", 1500.0),
        ("2.0e6", 2e6),
        ("10000 USD", 10_000.0),
        (2.0e6, 2e6),
        (300, 300.0),
    ],
)
def test_parse_money(text: object, expected: float) -> None:
    assert parse_money(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", 720.0),
        ("2w", 336.0),
        ("90min", 1.5),
        ("720h", 720.0),
        ("720", 720.0),
        ("3600s", 1.0),
        ("1y", 8760.0),
        ("1.5d", 36.0),
        (48, 48.0),
    ],
)
def test_parse_hours(text: object, expected: float) -> None:
    assert parse_hours(text) == pytest.approx(expected, rel=1e-12)


BAD_VALUES = [
    "7X",
    "abc",
    "",
    "   ",
    "7 B B",
    "B7",
    "1,000",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e400",  # overflows to inf
    True,
    False,
    float("nan"),
    float("inf"),
    -float("inf"),
    None,
    [7],
    {"value": 7},
]


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
@pytest.mark.parametrize("parse", [parse_count, parse_money, parse_hours])
def test_rejects(parse: object, value: object) -> None:
    with pytest.raises(UnitError):
        parse(value)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        (parse_hours, "2T"),  # a count is not a duration
        (parse_hours, "7B"),
        (parse_hours, "30 days"),  # only the short units: s, min, h, d, w, y
        (parse_hours, "1d2h"),
        (parse_count, "30d"),  # a duration is not a count
        (parse_count, "$50k"),  # money is not a count
        (parse_money, "90min"),
        (parse_money, "$5k$"),
    ],
)
def test_rejects_other_families_suffixes(parse: object, value: str) -> None:
    with pytest.raises(UnitError):
        parse(value)  # type: ignore[operator]


def test_error_message_shows_value_and_examples() -> None:
    with pytest.raises(UnitError, match=r"7B, 175M, 2T or 1\.5e12 \(got '7X'\)"):
        parse_count("7X")
    with pytest.raises(UnitError, match=r"\$50k"):
        parse_money("fifty")
    with pytest.raises(UnitError, match=r"30d"):
        parse_hours("a month")
    with pytest.raises(UnitError, match="boolean"):
        parse_count(True)


def _alias_bomb() -> list[object]:
    """What ``yaml.safe_load`` builds from a few hundred bytes of nested aliases: 10^8 items."""
    value: list[object] = ["x"] * 10
    for _ in range(7):
        value = [value] * 10
    return value


@pytest.mark.parametrize("parse", [parse_count, parse_money, parse_hours])
def test_message_for_huge_value_is_bounded(parse: object) -> None:
    # A plain repr() here took ~45 s and printed hundreds of MB before the message was bounded.
    with pytest.raises(UnitError) as info:
        parse(_alias_bomb())  # type: ignore[operator]
    assert len(str(info.value)) < 500
    with pytest.raises(UnitError) as info:
        parse("9" * 100_000 + "X")  # type: ignore[operator]
    assert len(str(info.value)) < 500


def test_unit_error_is_a_value_error() -> None:
    # pydantic turns ValueError raised in a BeforeValidator into a field error.
    assert issubclass(UnitError, ValueError)


finite_floats = st.floats(allow_nan=False, allow_infinity=False)


@given(finite_floats)
def test_plain_floats_round_trip(x: float) -> None:
    """A number, or its repr, parses back to exactly itself in every parser."""
    for parse in (parse_count, parse_money, parse_hours):
        assert parse(x) == x
        assert parse(repr(x)) == x


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_integers_round_trip(n: int) -> None:
    assert parse_count(n) == float(n)
    assert parse_count(str(n)) == float(n)
    assert parse_count(f"{n:_}") == float(n)  # underscore grouping, as in Python literals


@given(
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([("k", 1e3), ("M", 1e6), ("B", 1e9), ("T", 1e12)]),
)
def test_suffix_scales(x: float, suffix: tuple[str, float]) -> None:
    letter, scale = suffix
    assert parse_count(f"{x!r}{letter}") == float(repr(x)) * scale
    assert math.isfinite(parse_count(f"{x!r}{letter}"))
