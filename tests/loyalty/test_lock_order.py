"""The lock order of order ingestion: a batch locks the points accounts it earns on before the kept
totals (member stats, daily sales), and so does binding orders to a member who joins later; a
batch waiting for an account holds none of the kept totals that every other batch of the day
needs (PostgreSQL and MariaDB; SQLite serialises all writes anyway)."""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction

from siyu.commerce.models import DailySales, MemberStats, Order
from siyu.commerce.services import record_orders
from siyu.loyalty.models import PointsAccount
from siyu.members.services import upsert_members
from tests.concurrency import in_background, in_other_connection
from tests.loyalty.conftest import NOW, balance, buy, order_row

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no row locks"),
]


def _wait_until_it_waits_for_the_account(outcome: list) -> None:
    """Until another connection waits for a points account's lock (its locking read of the accounts)."""
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
           "AND query LIKE %s" if connection.vendor == "postgresql" else
           "SELECT count(*) FROM information_schema.processlist WHERE db = database() AND id <> connection_id() "
           "AND info LIKE %s")  # this test's database: other workers of the suite run beside it
    deadline = time.monotonic() + 20
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_stat_clear_snapshot()")  # else the transaction sees one snapshot
            cursor.execute(sql, ["%loyalty_pointsaccount%FOR UPDATE%"])
            if cursor.fetchone()[0]:
                return
            assert not outcome, outcome  # it finished (or failed) without waiting
            time.sleep(0.05)
    raise AssertionError("nothing came to wait for the account's lock")


def _lock(queryset) -> None:
    with transaction.atomic():
        assert list(queryset.select_for_update())


def test_an_order_batch_waiting_for_a_points_account_holds_no_kept_totals(program, member):
    buy(member, "100.00")  # the account, the member's stats and the day's sales exist
    account = PointsAccount.objects.filter(program=program, member=member)

    with transaction.atomic():  # another transaction holds the account (a redemption, say)
        _lock(account)
        batch, outcome = in_background(
            lambda: record_orders(rows=[order_row(member, "50.00", when=NOW)], source="test"))
        _wait_until_it_waits_for_the_account(outcome)
        # The waiting batch has inserted its order but locked neither kept total yet.
        assert in_other_connection(lambda: _lock(MemberStats.objects.filter(member=member))) is None
        assert in_other_connection(lambda: _lock(DailySales.objects.all())) is None
    batch.join()

    assert outcome[0].created == 1, outcome
    assert balance(member, program) == (150, 0)
    assert MemberStats.objects.get(member=member).order_count == 2


def test_binding_orders_to_a_member_takes_the_account_before_the_kept_totals(program, member):
    buy(member, "100.00")
    record_orders(rows=[{"channel": "pos-sh-01", "external_id": "X1", "buyer": "phone:13800000001",
                         "paid_amount": "80.00", "ordered_at": NOW.isoformat()}], source="test")
    account = PointsAccount.objects.filter(program=program, member=member)

    with transaction.atomic():
        _lock(account)
        joining, outcome = in_background(
            lambda: upsert_members(rows=[{"member_code": member.code, "phone": "13800000001"}], source="test"))
        _wait_until_it_waits_for_the_account(outcome)
        assert in_other_connection(lambda: _lock(DailySales.objects.all())) is None
        assert in_other_connection(lambda: _lock(MemberStats.objects.filter(member=member))) is None
    joining.join()

    assert not outcome[0].rejected, outcome
    assert Order.objects.get(external_id="X1").member_id == member.pk
    assert balance(member, program) == (180, 0)


def test_concurrent_batches_and_spends_of_the_same_members_all_land_exactly(program, shop):
    """Three feeds sending orders of the same six members in different orders, and redemptions
    meanwhile: no batch deadlocks or fails, and every balance is exactly what it earned less what
    it spent."""
    import random
    import threading

    from siyu.loyalty.ledger import spend_points, verify_ledger
    from tests.factories import make_member

    members = [make_member(name=f"会员{n}", store=shop.store) for n in range(6)]
    for member in members:
        buy(member, "100.00")
    start = threading.Barrier(5)

    def feed(n: int):
        start.wait()
        order = members[:]
        random.Random(n).shuffle(order)
        for batch in range(3):
            result = record_orders(rows=[order_row(m, "10.00", external_id=f"F{n}-{batch}-{m.pk}", when=NOW)
                                         for m in order], source="test")
            assert (result.created, result.rejected) == (6, []), result

    def spend(n: int):
        start.wait()
        for member in reversed(members) if n else members:
            spend_points(member=member, program=program, amount=5, reason="兑换", source=("redemption", n),
                         idempotency_key=f"redeem-{n}-{member.pk}")

    threads = [in_background(lambda n=n: feed(n)) for n in range(3)]
    threads += [in_background(lambda n=n: spend(n)) for n in range(2)]
    for thread, _outcome in threads:
        thread.join()

    assert [outcome for _thread, outcome in threads] == [[None]] * 5
    for member in members:
        assert balance(member, program) == (100 + 3 * 3 * 10 - 2 * 5, 0)
    assert verify_ledger(program=program) == (6, [])
