"""The ledger's set-based writes: one update for many accounts or lots, and what a batch writes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from siyu.commerce.services import record_orders
from siyu.core.db import update_rows
from siyu.loyalty.ledger import spend_points, verify_ledger
from siyu.loyalty.models import PointsAccount, PointsAllocation, PointsEntry, PointsLot
from tests.factories import make_member
from tests.loyalty.conftest import NOW, balance, buy, order_row

pytestmark = pytest.mark.django_db


def accounts(program, n: int) -> list[PointsAccount]:
    return [PointsAccount.objects.create(program=program, member=make_member(), balance=10 * i) for i in range(n)]


def test_update_rows_moves_each_row_by_its_own_delta_in_one_statement(program):
    made = accounts(program, 3)
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    with CaptureQueriesContext(connection) as queries:
        updated = update_rows(PointsAccount, ["balance", "debt"], [(made[0].pk, 5, 0), (made[2].pk, -20, 7)],
                              add={"balance", "debt"}, also={"updated_at": at})

    assert (updated, len(queries.captured_queries)) == (2, 1)
    rows = PointsAccount.objects.filter(pk__in=[a.pk for a in made]).order_by("pk")
    assert [(a.balance, a.debt) for a in rows] == [(5, 0), (10, 0), (0, 7)]
    assert [a.updated_at == at for a in rows] == [True, False, True]


def test_update_rows_sets_values_and_splits_into_chunks(program):
    made = accounts(program, 5)

    with CaptureQueriesContext(connection) as queries:
        updated = update_rows(PointsAccount, ["balance"], [(a.pk, 100 + i) for i, a in enumerate(made)], chunk_size=2)

    assert (updated, len(queries.captured_queries)) == (5, 3)
    assert list(PointsAccount.objects.filter(pk__in=[a.pk for a in made]).order_by("pk")
                .values_list("balance", flat=True)) == [100, 101, 102, 103, 104]
    assert update_rows(PointsAccount, ["balance"], []) == 0


def test_a_batch_of_orders_writes_an_entry_and_a_lot_per_order_and_one_balance_per_member(program, member):
    other = make_member(store=member.store)
    rows = [order_row(member, "10.00"), order_row(other, "20.00"), order_row(member, "30.00")]

    result = record_orders(rows=rows, source="test")

    assert not result.rejected
    entries = PointsEntry.objects.order_by("pk")
    assert [(e.account.member_id, e.amount, e.kind) for e in entries] == [
        (member.pk, 10, "earn"), (other.pk, 20, "earn"), (member.pk, 30, "earn")]
    assert sorted(PointsLot.objects.values_list("entry_id", "amount", "remaining")) == [
        (e.pk, e.amount, e.amount) for e in entries]
    assert (balance(member, program), balance(other, program)) == ((40, 0), (20, 0))
    assert verify_ledger(program=program) == (2, [])


def test_a_spend_across_lots_updates_each_lot_and_records_each_allocation(program, member):
    for days in (3, 2, 1):
        buy(member, "10.00", when=NOW - dt.timedelta(days=days))

    entry = spend_points(member=member, program=program, amount=25, reason="兑换", source="redemption:1",
                         idempotency_key="r-1")

    assert (entry.pk, entry.amount) == (PointsEntry.objects.get(idempotency_key="r-1").pk, -25)
    assert list(PointsLot.objects.order_by("earned_at").values_list("remaining", flat=True)) == [0, 0, 5]
    assert sorted(PointsAllocation.objects.filter(entry=entry).values_list("amount", flat=True)) == [5, 10, 10]
    assert balance(member, program) == (5, 0)
    assert verify_ledger(program=program) == (1, [])
