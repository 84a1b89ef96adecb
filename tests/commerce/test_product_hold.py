"""A batch holds the products its lines name until it commits (the lines' product key has no
database constraint): a product being deleted meanwhile waits, then Django's PROTECT sees the
lines (PostgreSQL and MariaDB; SQLite serialises all writes anyway)."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import ProtectedError

from siyu.commerce.models import OrderLine, Product
from siyu.commerce.services import record_orders
from tests.analytics.test_locking import _in_other_connection
from tests.factories import make_product

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no row locks"),
]


def test_a_product_cannot_be_deleted_while_a_batch_naming_it_is_open(pos):
    make_product("SKU-1")
    order = {"channel": "pos-sh-01", "external_id": "H1", "paid_amount": "10.00", "ordered_at": "2026-05-01 10:00",
             "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "10.00"}]}

    with transaction.atomic():  # the batch has written its line and not committed yet
        assert record_orders(rows=[order], source="test").created == 1
        meanwhile = _in_other_connection(lambda: Product.objects.filter(sku="SKU-1").delete())

    assert isinstance(meanwhile, OperationalError)  # it waited for the batch's lock, then gave up
    product = Product.objects.get(sku="SKU-1")
    assert OrderLine.objects.get().product_id == product.pk
    with pytest.raises(ProtectedError):
        product.delete()
