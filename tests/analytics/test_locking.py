"""Concurrent recomputes of one brand: batches of touched members pass each other, a full pass
waits for them (PostgreSQL and MariaDB; SQLite serialises all writes anyway)."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, connections, transaction

from siyu.analytics.models import MemberLifecycle
from siyu.analytics.services import recompute_lifecycle
from tests.analytics.conftest import NOW, buy
from tests.factories import make_member

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no row locks"),
]


def _in_other_connection(work) -> BaseException | None:
    """Run ``work`` in a thread (its own connection) that gives up on a lock after a second."""
    failure: list[BaseException] = []

    def run():
        try:
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("SET lock_timeout = '1s'")
                else:
                    cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
            work()
        except BaseException as exc:  # handed back to the test
            failure.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return failure[0] if failure else None


def test_a_batch_does_not_wait_for_another_batch_of_the_brand_but_a_full_pass_does(shop):
    first, second = make_member(), make_member()
    buy(first, shop, 3)
    buy(second, shop, 3)
    recompute_lifecycle(member_ids=[first.pk], now=NOW)  # the brand's first recompute creates its tag groups

    with transaction.atomic():  # an ingestion batch still open after recomputing its member
        recompute_lifecycle(member_ids=[first.pk], now=NOW)

        other_batch = _in_other_connection(lambda: recompute_lifecycle(member_ids=[second.pk], now=NOW))
        full_pass = _in_other_connection(lambda: recompute_lifecycle(now=NOW))

    assert other_batch is None
    assert isinstance(full_pass, OperationalError)
    assert set(MemberLifecycle.objects.values_list("member_id", flat=True)) == {first.pk, second.pk}
