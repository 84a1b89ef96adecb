"""Migrations that move ledger data: what an existing ledger holds must come through, both ways."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from siyu.loyalty.models import PointsAccount, PointsAllocation, PointsEntry
from tests.factories import make_member, make_program

BEFORE = ("loyalty", "0011_tier_history_without_key_checks")
AFTER = ("loyalty", "0013_remove_points_lots")
EARNED = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
EXPIRES = dt.datetime(2027, 12, 31, 16, 0, tzinfo=dt.UTC)


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_lots_move_into_their_credit_entries_and_back():
    program = make_program()
    account = PointsAccount.objects.create(program=program, member=make_member(), balance=25)
    leaf = MigrationExecutor(connection).loader.graph.leaf_nodes("loyalty")[0]
    try:
        old = migrate(BEFORE)
        Entry, Lot, Allocation = (old.get_model("loyalty", name) for name in ("PointsEntry", "PointsLot",
                                                                              "PointsAllocation"))

        def entry(key, kind, amount):
            return Entry.objects.create(program_id=program.pk, account_id=account.pk, kind=kind, amount=amount,
                                        reason="r", source_type="order", idempotency_key=key, occurred_at=EARNED,
                                        business_date=EARNED.date())

        earned, spent = entry("order:1", "earn", 30), entry("redeem:1", "redeem", -10)
        kept = entry("order:2", "earn", 5)
        Lot.objects.create(entry_id=earned.pk, account_id=account.pk, amount=30, remaining=20, earned_at=EARNED,
                           expires_at=EXPIRES)
        Lot.objects.create(entry_id=kept.pk, account_id=account.pk, amount=5, remaining=5, earned_at=EARNED)
        Allocation.objects.create(entry_id=spent.pk, lot_id=earned.pk, amount=10)

        migrate(AFTER)

        assert sorted(PointsEntry.objects.values_list("idempotency_key", "remaining", "expires_at")) == [
            ("order:1", 20, EXPIRES), ("order:2", 5, None), ("redeem:1", None, None)]
        drawn = PointsAllocation.objects.get()
        assert (drawn.entry_id, drawn.lot.idempotency_key, drawn.amount) == (spent.pk, "order:1", 10)

        back = migrate(BEFORE)

        assert sorted(back.get_model("loyalty", "PointsLot").objects.values_list(
            "entry_id", "account_id", "amount", "remaining", "earned_at", "expires_at")) == [
            (earned.pk, account.pk, 30, 20, EARNED, EXPIRES), (kept.pk, account.pk, 5, 5, EARNED, None)]
        assert back.get_model("loyalty", "PointsAllocation").objects.get().lot_id == earned.pk
    finally:
        migrate(leaf)
