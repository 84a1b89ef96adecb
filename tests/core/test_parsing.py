"""Money and time parsing used by every entry point."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu.core.money import to_money
from siyu.core.rows import RowError, RowReader, parse_moment


@pytest.mark.parametrize(("raw", "expected"), [
    ("1,299.00", Decimal("1299.00")), ("¥12", Decimal("12.00")), ("CNY 3.5", Decimal("3.50")),
    (" 7 ", Decimal("7.00")), (0.1, Decimal("0.10")), (5, Decimal("5.00")), ("2.345", Decimal("2.35")),
])
def test_amounts_parse_to_cents(raw, expected):
    assert to_money(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "1e40", True, ""])
def test_non_amounts_are_refused(raw):
    with pytest.raises(ValueError):
        to_money(raw)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_any_decimal_either_parses_to_cents_or_is_refused_cleanly(value):
    try:
        amount = to_money(str(value))
    except ValueError:
        return
    assert amount == amount.quantize(Decimal("0.01"))


@pytest.mark.parametrize(("raw", "utc"), [
    ("2026-06-01 08:00:00", "2026-06-01T00:00:00+00:00"),
    ("2026/06/01 08:00", "2026-06-01T00:00:00+00:00"),
    ("2026年6月1日 08:00:00", "2026-06-01T00:00:00+00:00"),
    ("2026-06-01T08:00:00+08:00", "2026-06-01T00:00:00+00:00"),
    ("2026-06-01T00:00:00Z", "2026-06-01T00:00:00+00:00"),
    ("20260601080000", "2026-06-01T00:00:00+00:00"),
    ("2026-06-01", "2026-05-31T16:00:00+00:00"),
])
def test_naive_times_are_business_zone_wall_time(raw, utc):
    assert parse_moment(raw).astimezone(dt.UTC).isoformat() == utc


@pytest.mark.parametrize("raw", ["2026-02-30 10:00", "soon", "1800-01-01", "99999999999999"])
def test_bad_times_are_refused(raw):
    assert parse_moment(raw) is None


def test_a_row_error_names_the_field_and_reason():
    with pytest.raises(RowError) as caught:
        RowReader({"paid_amount": "-3"}).money("paid_amount")

    assert (caught.value.field, caught.value.code) == ("paid_amount", "negative_amount")
