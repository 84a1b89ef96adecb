"""Order ingestion: idempotency, updates, rejections, stats and rollback."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.db import DatabaseError
from django.db.models import ProtectedError

from siyu.commerce.models import (
    DailySales,
    MemberChannelStats,
    MemberMonth,
    MemberStats,
    Order,
    OrderLine,
    Product,
    Refund,
)
from siyu.commerce.services import record_orders
from siyu.core.models import IngestRejection
from siyu.members.merge import merge_members
from siyu.members.models import Member
from siyu.members.services import upsert_members
from tests.factories import make_product, make_staff

pytestmark = pytest.mark.django_db


def _order(**fields):
    row = {"channel": "pos-sh-01", "external_id": "A1", "phone": "13800138030", "paid_amount": "300.00",
           "ordered_at": "2026-05-01 15:30:00",
           "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "100.00"},
                     {"sku": "SKU-2", "name": "袜子", "quantity": 1, "amount": "100.00"}]}
    row.update(fields)
    return row


@pytest.fixture
def member(pos):
    make_product("SKU-1")
    upsert_members(rows=[{"phone": "13800138030", "name": "周敏"}], source="test")
    return Member.objects.get()


def test_an_order_lands_with_lines_store_and_member_stats(member, pos):
    result = record_orders(rows=[_order()], source="test")

    assert result.created == 1
    order = Order.objects.get()
    assert (order.member_id, order.store_id, order.item_count, order.is_counted) == (member.pk, pos.store_id, 3, True)
    lines = list(OrderLine.objects.order_by("line_no").values_list("line_no", "sku", "quantity", "amount"))
    assert lines == [(1, "SKU-1", 2, Decimal("200.00")), (2, "SKU-2", 1, Decimal("100.00"))]
    assert OrderLine.objects.get(sku="SKU-1").product.sku == "SKU-1"
    stats = MemberStats.objects.get(member=member)
    assert (stats.order_count, stats.item_count, stats.total_paid) == (1, 3, Decimal("300.00"))
    assert MemberChannelStats.objects.get(member=member, channel=pos).order_count == 1


def test_a_product_with_order_lines_cannot_be_deleted(member):
    record_orders(rows=[_order()], source="test")
    product = Product.objects.get(sku="SKU-1")

    with pytest.raises(ProtectedError):
        product.delete()

    assert OrderLine.objects.get(sku="SKU-1").product_id == product.pk


def test_resending_an_order_batch_creates_nothing(member):
    record_orders(rows=[_order(), _order(external_id="A2")], source="test")

    result = record_orders(rows=[_order(), _order(external_id="A2")], source="test")

    assert (result.created, result.updated, result.duplicates) == (0, 0, 2)
    assert (Order.objects.count(), OrderLine.objects.count()) == (2, 4)
    assert MemberStats.objects.get(member=member).total_paid == Decimal("600.00")


def test_a_status_change_updates_the_order_and_the_stats(member):
    record_orders(rows=[_order(status="pending")], source="test")
    assert not MemberStats.objects.filter(member=member, order_count__gt=0).exists()  # no row means zeros

    result = record_orders(rows=[_order(status="completed")], source="test")

    assert result.updated == 1
    assert MemberStats.objects.get(member=member).order_count == 1
    record_orders(rows=[_order(status="closed")], source="test")
    assert MemberStats.objects.get(member=member).total_paid == Decimal("0.00")


def test_refunds_are_added_once_and_reduce_the_net_paid(member):
    record_orders(rows=[_order(refunds=[{"external_id": "RF1", "amount": "100.00"}])], source="test")

    again = record_orders(rows=[_order(refunds=[{"external_id": "RF1", "amount": "100.00"},
                                                {"external_id": "RF2", "amount": "50.00"}])], source="test")

    assert again.updated == 1
    assert Refund.objects.count() == 2
    assert Order.objects.get().refunded_amount == Decimal("150.00")
    stats = MemberStats.objects.get(member=member)
    assert (stats.total_paid, stats.total_refunded) == (Decimal("150.00"), Decimal("150.00"))


@pytest.mark.parametrize(("fields", "field", "code"), [
    ({"channel": None}, "channel", "missing"),
    ({"external_id": ""}, "external_id", "missing"),
    ({"paid_amount": None}, "paid_amount", "missing"),
    ({"paid_amount": "-5"}, "paid_amount", "negative_amount"),
    ({"paid_amount": "abc"}, "paid_amount", "invalid_amount"),
    ({"ordered_at": "2026-02-30 10:00"}, "ordered_at", "invalid_datetime"),
    ({"channel": "unknown-shop"}, "channel", "unknown_channel"),
    ({"store": "nowhere"}, "store", "unknown_store"),
    ({"guide": "nobody"}, "guide", "unknown_guide"),
    ({"member_code": "NOPE"}, "member_code", "unknown_member"),
    ({"phone": "138****0000"}, "phone", "invalid_phone"),
    ({"status": "lost"}, "status", "invalid_choice"),
    ({"lines": [{"sku": "X", "quantity": 0}]}, "lines[0].quantity", "out_of_range"),
    ({"lines": [{"sku": "X", "amount": "-1"}]}, "lines[0].amount", "negative_amount"),
    ({"refunds": [{"amount": "301"}]}, "refunds", "refund_exceeds_paid"),
])
def test_a_bad_order_row_is_rejected_with_its_reason_and_the_rest_lands(member, fields, field, code):
    bad = _order(**{"external_id": "BAD", **fields})
    result = record_orders(rows=[_order(external_id="GOOD"), bad], source="api:pos")

    assert result.created == 1
    assert [(r.row, r.field, r.code) for r in result.rejected] == [(2, field, code)]
    assert Order.objects.get().external_id == "GOOD"
    kept = IngestRejection.objects.get()
    assert (kept.entity, kept.row, kept.code, kept.raw) == ("order", 2, code, bad)


def test_an_order_given_twice_with_different_data_in_one_batch_is_rejected(member):
    result = record_orders(rows=[_order(), _order(paid_amount="1.00")], source="test")

    assert [(r.row, r.code) for r in result.rejected] == [(2, "conflicting_duplicate")]
    assert Order.objects.get().paid_amount == Decimal("300.00")


def test_guide_and_store_of_an_order_are_recorded(member, pos):
    guide = make_staff("g-77", store=pos.store)

    record_orders(rows=[_order(guide="g-77")], source="test")

    assert Order.objects.get().guide_id == guide.pk


def test_an_unexpected_error_rolls_back_the_whole_batch(member):
    with mock.patch("siyu.commerce.services.refresh_member_stats", side_effect=DatabaseError("boom")), \
            pytest.raises(DatabaseError):
        record_orders(rows=[_order(), _order(external_id="A2", paid_amount="-1")], source="test")

    assert not Order.objects.exists()
    assert not IngestRejection.objects.exists()


def test_result_ids_line_up_with_the_rows_sent(member):
    result = record_orders(rows=[_order(), _order(external_id="A2", paid_amount="-1"), _order(external_id="A3"),
                                 _order()], source="test")

    first, third = Order.objects.get(external_id="A1").pk, Order.objects.get(external_id="A3").pk
    assert result.ids == [first, None, third, first]


def test_new_orders_in_later_batches_add_to_the_kept_totals(member, tmall):
    record_orders(rows=[_order(external_id="B1", ordered_at="2026-05-10 10:00")], source="test")
    record_orders(rows=[_order(external_id="B2", ordered_at="2026-04-01 09:00", status="pending"),
                        _order(external_id="B3", channel="tmall", ordered_at="2026-03-01 09:00", paid_amount="50.00",
                               lines=[], item_count=1, refunds=[{"amount": "20.00"}])], source="test")
    record_orders(rows=[_order(external_id="B4", ordered_at="2026-06-01 09:00")], source="test")

    stats = MemberStats.objects.get(member=member)
    assert (stats.order_count, stats.item_count, stats.total_paid, stats.total_refunded) == (
        3, 7, Decimal("630.00"), Decimal("20.00"))
    assert (stats.first_order_at.isoformat(), stats.last_order_at.isoformat()) == (
        "2026-03-01T01:00:00+00:00", "2026-06-01T01:00:00+00:00")
    by_channel = dict(MemberChannelStats.objects.filter(member=member).values_list("channel__code", "total_paid"))
    assert by_channel == {"pos-sh-01": Decimal("600.00"), "tmall": Decimal("30.00")}


def test_a_merge_adds_the_merged_members_months_to_the_survivors(member):
    """Both members bought in May (and the merged one in June too): the survivor ends with one
    May of both their orders, the June moves over, and the daily sales do not move."""
    upsert_members(rows=[{"phone": "13900139000", "name": "周敏（旧号）"}], source="test")
    other = Member.objects.exclude(pk=member.pk).get()
    record_orders(rows=[_order(), _order(external_id="A2", phone="13900139000", paid_amount="50.00", lines=[]),
                        _order(external_id="A3", phone="13900139000", paid_amount="20.00", lines=[],
                               ordered_at="2026-06-02 10:00:00")], source="test")
    daily = sorted(DailySales.objects.values_list("day", "orders", "member_orders", "amount"))

    merge_members(survivor_id=member.pk, merged_id=other.pk, actor="test")

    months = sorted(MemberMonth.objects.values_list("member_id", "month", "orders", "amount"))
    assert months == [(member.pk, dt.date(2026, 5, 1), 2, Decimal("350.00")),
                      (member.pk, dt.date(2026, 6, 1), 1, Decimal("20.00"))]
    assert sorted(DailySales.objects.values_list("day", "orders", "member_orders", "amount")) == daily


def test_a_stream_of_batches_records_what_one_call_per_batch_records(member, pos, monkeypatch):
    """``record_order_batches``: each batch lands as ``record_orders`` would land it, rows numbered
    across batches; on PostgreSQL the next batch is parsed while the kept totals of the one before
    are written (seen from another connection)."""
    from django.db import connection

    from siyu.commerce import services

    seen = []
    parse = services._parse_order

    def watched_parse(row, raw):
        if row == 3 and connection.vendor == "postgresql":  # the second batch's first row
            import psycopg

            with psycopg.connect(**connection.get_connection_params()) as other:
                seen.extend(other.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s",
                                          [connection.connection.info.backend_pid]).fetchall())
        return parse(row, raw)

    monkeypatch.setattr(services, "_parse_order", watched_parse)
    batches = [[_order(external_id="A1"), _order(external_id="A2", paid_amount="-1")],
               [_order(external_id="A3", ordered_at="2026-05-02 10:00"), _order(external_id="A1")],
               [_order(external_id="A4", ordered_at="2026-05-03 10:00")]]

    results = list(services.record_order_batches(batches=batches, source="test"))

    assert [(r.created, r.duplicates, [(x.row, x.code) for x in r.rejected]) for r in results] == [
        (1, 0, [(2, "negative_amount")]), (1, 1, []), (1, 0, [])]
    assert [r.ids for r in results][1] == list(Order.objects.filter(external_id__in=["A3", "A1"])
                                                .order_by("-external_id").values_list("pk", flat=True))
    stats = MemberStats.objects.get(member=member)
    assert (stats.order_count, stats.total_paid) == (3, Decimal("900.00"))
    assert MemberMonth.objects.get(member=member).orders == 3
    assert list(IngestRejection.objects.values_list("row", "field")) == [(2, "paid_amount")]
    if connection.vendor == "postgresql":
        assert len(seen) == 1 and seen[0][0] == "active" and "commerce_memberstats" in seen[0][1]
