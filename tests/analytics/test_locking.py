"""Concurrent recomputes of one brand: batches of touched members pass each other, a full pass
waits for them (PostgreSQL and MariaDB; SQLite serialises all writes anyway)."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection, transaction

from siyu.analytics.models import MemberLifecycle
from siyu.analytics.services import recompute_lifecycle
from tests.analytics.conftest import NOW, buy
from tests.concurrency import in_other_connection
from tests.factories import make_member

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no row locks"),
]


def test_a_batch_does_not_wait_for_another_batch_of_the_brand_but_a_full_pass_does(shop):
    first, second = make_member(), make_member()
    buy(first, shop, 3)
    buy(second, shop, 3)
    recompute_lifecycle(member_ids=[first.pk], now=NOW)  # the brand's first recompute creates its tag groups

    with transaction.atomic():  # an ingestion batch still open after recomputing its member
        recompute_lifecycle(member_ids=[first.pk], now=NOW)

        other_batch = in_other_connection(lambda: recompute_lifecycle(member_ids=[second.pk], now=NOW))
        full_pass = in_other_connection(lambda: recompute_lifecycle(now=NOW))

    assert other_batch is None
    assert isinstance(full_pass, OperationalError)
    assert set(MemberLifecycle.objects.values_list("member_id", flat=True)) == {first.pk, second.pk}
