"""The ledger's set-based writes: one update for many accounts or lots, and what a batch writes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from siyu.commerce.services import record_orders
from siyu.core.db import among, update_rows
from siyu.loyalty.ledger import spend_points, verify_ledger
from siyu.loyalty.models import PointsAccount, PointsAllocation, PointsEntry
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


def test_update_rows_and_among_carry_nulls_decimals_booleans_and_large_numbers(program):
    made = accounts(program, 3)
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    big = 2**62 + 1

    update_rows(PointsAccount, ["balance", "tier_paid", "tier_figures_exact", "tier_figures_at"], [
        (made[0].pk, big, Decimal("12.34"), True, at), (made[1].pk, 0, Decimal("0.00"), False, None),
        (made[2].pk, 7, Decimal("99999999.5"), False, at)])

    rows = PointsAccount.objects.filter(among("pk", [a.pk for a in made])).order_by("pk").values_list(
        "balance", "tier_paid", "tier_figures_exact", "tier_figures_at")
    assert list(rows) == [(big, Decimal("12.34"), True, at), (0, Decimal("0.00"), False, None),
                          (7, Decimal("99999999.50"), False, at)]
    assert list(PointsAccount.objects.filter(among("balance", [big, None])).values_list("pk", flat=True)) == [
        made[0].pk]


def test_update_rows_sets_values_and_splits_into_chunks(program):
    """Every chunk is written; ``meanwhile`` runs once (with the last chunk in flight on
    PostgreSQL), also when there is nothing to write."""
    made = accounts(program, 5)
    calls = []

    with CaptureQueriesContext(connection) as queries:
        updated = update_rows(PointsAccount, ["balance"], [(a.pk, 100 + i) for i, a in enumerate(made)], chunk_size=2,
                              meanwhile=lambda: calls.append(len(queries.captured_queries)))

    assert (updated, len(queries.captured_queries)) == (5, 3)
    assert calls == [3]  # once every statement was sent (on PostgreSQL, the last one still running)
    assert list(PointsAccount.objects.filter(pk__in=[a.pk for a in made]).order_by("pk")
                .values_list("balance", flat=True)) == [100, 101, 102, 103, 104]
    assert update_rows(PointsAccount, ["balance"], [], meanwhile=lambda: calls.append("none")) == 0
    assert calls[-1] == "none"


def test_saving_locked_accounts_writes_balances_and_tier_figures_exactly_in_one_statement(program):
    from siyu.loyalty.ledger import lock_accounts, save_accounts

    made = accounts(program, 3)
    at = dt.datetime(2026, 6, 30, 4, 5, 6, 789012, tzinfo=dt.UTC)
    locked = lock_accounts([(program.pk, a.member_id) for a in made])
    first, second, third = (locked[(program.pk, a.member_id)] for a in made)
    first.balance, first.tier_figures_at, first.tier_figures_from = 7, at, None  # None: all history
    first.tier_paid, first.tier_orders, first.tier_points = Decimal("12345678.91"), 3, 2**40
    second.debt, second.tier_figures_at, second.tier_figures_from = 5, at, at - dt.timedelta(days=365)
    for a in (first, second):
        a.unsaved = True

    with CaptureQueriesContext(connection) as queries:
        assert save_accounts(locked.values()) == 2

    assert len(queries.captured_queries) == 1
    rows = {a.pk: a for a in PointsAccount.objects.filter(pk__in=[a.pk for a in made])}
    assert (rows[first.pk].balance, rows[first.pk].debt, rows[first.pk].tier_figures_at,
            rows[first.pk].tier_figures_from, rows[first.pk].tier_paid, rows[first.pk].tier_orders,
            rows[first.pk].tier_points) == (7, 0, at, None, Decimal("12345678.91"), 3, 2**40)
    assert (rows[second.pk].balance, rows[second.pk].debt, rows[second.pk].tier_figures_from) == (
        10, 5, at - dt.timedelta(days=365))
    assert (rows[third.pk].balance, rows[third.pk].tier_figures_at) == (20, None)  # not marked: untouched
    assert not first.unsaved and not second.unsaved


def test_a_batch_of_orders_writes_an_entry_per_order_that_is_its_lot_and_one_balance_per_member(program, member):
    other = make_member(store=member.store)
    rows = [order_row(member, "10.00"), order_row(other, "20.00"), order_row(member, "30.00")]

    result = record_orders(rows=rows, source="test")

    assert not result.rejected
    entries = PointsEntry.objects.order_by("pk")
    assert [(e.account.member_id, e.amount, e.kind, e.remaining) for e in entries] == [
        (member.pk, 10, "earn", 10), (other.pk, 20, "earn", 20), (member.pk, 30, "earn", 30)]
    assert (balance(member, program), balance(other, program)) == ((40, 0), (20, 0))
    assert verify_ledger(program=program) == (2, [])


def test_a_spend_across_lots_updates_each_lot_and_records_each_allocation(program, member):
    for days in (3, 2, 1):
        buy(member, "10.00", when=NOW - dt.timedelta(days=days))

    entry = spend_points(member=member, program=program, amount=25, reason="兑换", source="redemption:1",
                         idempotency_key="r-1")

    assert (entry.pk, entry.amount) == (PointsEntry.objects.get(idempotency_key="r-1").pk, -25)
    assert list(PointsEntry.objects.filter(kind="earn").order_by("occurred_at").values_list(
        "remaining", flat=True)) == [0, 0, 5]
    assert PointsEntry.objects.get(pk=entry.pk).remaining is None  # a debit is no lot
    assert sorted(PointsAllocation.objects.filter(entry=entry).values_list("amount", flat=True)) == [5, 10, 10]
    assert balance(member, program) == (5, 0)
    assert verify_ledger(program=program) == (1, [])
