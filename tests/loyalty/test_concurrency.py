"""Twenty parallel spends of the last points of one account: exactly one succeeds (PostgreSQL and
MariaDB; SQLite serialises all writes anyway)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from siyu.core.errors import Conflict
from siyu.loyalty.ledger import spend_points, verify_ledger
from siyu.loyalty.models import EntryKind, PointsEntry
from tests.loyalty.conftest import balance, buy

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no row locks"),
]


def test_twenty_parallel_spends_of_the_last_points_let_exactly_one_through(program, member):
    buy(member, "30.00")
    buy(member, "20.00")  # two lots: 50 points
    start = threading.Barrier(20)
    outcomes: list = []

    def spend(n: int) -> None:
        try:
            start.wait()
            spend_points(member=member, program=program, amount=50, reason="积分兑换", source=("redemption", n),
                         idempotency_key=f"redeem-{n}")
            outcomes.append("ok")
        except Conflict as exc:
            outcomes.append(exc.code)
        except BaseException as exc:  # handed back to the test
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["insufficient_points"] * 19 + ["ok"]
    assert balance(member, program) == (0, 0)
    assert PointsEntry.objects.filter(kind=EntryKind.REDEEM).count() == 1
    assert verify_ledger() == (1, [])


def test_parallel_repeats_of_one_spend_spend_once(program, member):
    buy(member, "50.00")
    start = threading.Barrier(10)
    entries: list = []

    def spend() -> None:
        try:
            start.wait()
            entries.append(spend_points(member=member, program=program, amount=20, reason="积分兑换",
                                        source="redemption:9", idempotency_key="redeem-9").pk)
        except BaseException as exc:  # handed back to the test
            entries.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=spend) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(entries)) == 1 and isinstance(entries[0], int)
    assert balance(member, program) == (30, 0)
