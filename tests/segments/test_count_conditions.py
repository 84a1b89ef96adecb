"""Order and event counts against a threshold ("at least 2 orders in 30 days", "never checked in"):
compiled as a per-member probe that stops at the k-th row, selecting the same members as counting."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from siyu.commerce.models import Order
from siyu.events.models import Event
from siyu.members.models import Member
from siyu.segments.compiler import compile_rule
from siyu.segments.rules import parse_rule
from tests.factories import make_channel, make_member

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 4, 0, tzinfo=dt.UTC)
INSIDE, OUTSIDE = NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=40)


@pytest.fixture
def members():
    """Members named by their counted orders and check-ins in the last 30 days (0 to 3); each also
    has an order and a check-in from 40 days ago and an uncounted order in the window, which
    count for nothing."""
    channel = make_channel("pos-1")
    by_count, n = {}, 0
    for count in range(4):
        member = make_member(code=f"M{count}")
        by_count[count] = member.pk
        for at, counted in [(INSIDE, True)] * count + [(OUTSIDE, True), (INSIDE, False)]:
            n += 1
            Order.objects.create(channel=channel, external_id=f"O{n}", member=member, is_counted=counted,
                                 paid_amount=Decimal(10), ordered_at=at + dt.timedelta(minutes=n))
        for k, at in enumerate([INSIDE] * count + [OUTSIDE]):
            Event.objects.create(member=member, kind="check_in", occurred_at=at + dt.timedelta(minutes=k),
                                 idempotency_key=f"{member.code}-{k}")
    return by_count


def _counts_selected(members, rule) -> list[int]:
    pks = set(Member.objects.filter(compile_rule(parse_rule(rule), now=NOW)).values_list("pk", flat=True))
    return sorted(count for count, pk in members.items() if pk in pks)


def _orders(op, value):
    return {"orders": {"window": {"last_days": 30}}, "measure": "count", "op": op, "value": value}


def _check_ins(op, value):
    return {"events": {"kind": "check_in", "window": {"last_days": 30}}, "op": op, "value": value}


CASES = [("gte", 2, [2, 3]), ("gt", 1, [2, 3]), ("gte", 1, [1, 2, 3]), ("gte", 3, [3]), ("gte", 4, []),
         ("gte", 0, [0, 1, 2, 3]), ("lt", 2, [0, 1]), ("lte", 2, [0, 1, 2]), ("lt", 1, [0]), ("lt", 0, []),
         ("eq", 0, [0]), ("ne", 0, [1, 2, 3]), ("eq", 2, [2]), ("ne", 2, [0, 1, 3]), ("between", [1, 2], [1, 2])]


@pytest.mark.parametrize(("op", "value", "expected"), CASES)
def test_order_count_selects_the_members_with_that_many_counted_orders_in_the_window(members, op, value, expected):
    assert _counts_selected(members, _orders(op, value)) == expected


@pytest.mark.parametrize(("op", "value", "expected"), CASES)
def test_event_count_selects_the_members_with_that_many_events_in_the_window(members, op, value, expected):
    assert _counts_selected(members, _check_ins(op, value)) == expected


def test_negated_and_combined_thresholds_keep_members_without_rows(members):
    rule = {"any": [{"not": _orders("gte", 1)}, {"all": [_orders("gte", 3), _check_ins("lt", 4)]}]}
    assert _counts_selected(members, rule) == [0, 3]


def test_at_least_k_orders_probes_the_members_rows_instead_of_grouping_them(members):
    with CaptureQueriesContext(connection) as captured:
        assert _counts_selected(members, _orders("gte", 2)) == [2, 3]
    sql = captured.captured_queries[-1]["sql"].upper()
    assert "GROUP BY" not in sql
    assert "EXISTS" in sql and "OFFSET 1" in sql


def test_id_set_conditions_under_all_are_intersected_before_members_are_looked_up(members):
    rule = {"all": [_orders("gte", 1), _check_ins("gte", 1), {"not": _orders("gte", 3)}]}
    with CaptureQueriesContext(connection) as captured:
        assert _counts_selected(members, rule) == [1, 2]
    assert "INTERSECT" in captured.captured_queries[-1]["sql"].upper()
