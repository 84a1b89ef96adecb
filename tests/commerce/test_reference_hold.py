"""A batch holds the rows its orders refer to until it commits — the lines' products, the orders'
channels, stores and guides, whose keys have no database constraint: deleting one meanwhile
waits for the batch (here it gives up), and once the orders are committed Django's
``on_delete`` sees them (PostgreSQL and MariaDB; SQLite serialises all writes anyway). Without
the constraints, Django's CASCADE still takes an order's lines and refunds with it."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import ProtectedError

from siyu.commerce.models import Channel, Order, OrderLine, Product, Refund
from siyu.commerce.services import record_orders
from siyu.org.models import Staff, Store
from tests.concurrency import in_other_connection
from tests.factories import make_channel, make_product, make_staff, make_store

pytestmark = pytest.mark.django_db(transaction=True)
row_locks = pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no row locks")


def _order(**fields) -> dict:
    return {"channel": "pos-sh-01", "external_id": "H1", "paid_amount": "10.00", "ordered_at": "2026-05-01 10:00",
            "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "10.00"}], **fields}


@row_locks
def test_a_product_cannot_be_deleted_while_a_batch_naming_it_is_open(pos):
    make_product("SKU-1")

    with transaction.atomic():  # the batch has written its line and not committed yet
        assert record_orders(rows=[_order()], source="test").created == 1
        meanwhile = in_other_connection(lambda: Product.objects.filter(sku="SKU-1").delete())

    assert isinstance(meanwhile, OperationalError)  # it waited for the batch's lock, then gave up
    product = Product.objects.get(sku="SKU-1")
    assert OrderLine.objects.get().product_id == product.pk
    with pytest.raises(ProtectedError):
        product.delete()


@row_locks
@pytest.mark.parametrize(("named", "store"), [
    ("channel", ""),
    ("channel's store", ""),  # the order names no store and takes its channel's
    ("store", "sh-02"),
])
def test_a_channel_or_store_cannot_be_deleted_while_a_batch_naming_it_is_open(named, store):
    channel = make_channel("pos-sh-01", store=make_store("sh-01"))
    make_store("sh-02")
    target = {"channel": Channel.objects.filter(pk=channel.pk),
              "channel's store": Store.objects.filter(code="sh-01"),
              "store": Store.objects.filter(code="sh-02")}[named]

    def delete():
        if named == "channel's store":  # the channel moves to another store; its old one goes
            Channel.objects.filter(pk=channel.pk).update(store=Store.objects.get(code="sh-02"))
        target.delete()

    with transaction.atomic():
        assert record_orders(rows=[_order(store=store)], source="test").created == 1
        meanwhile = in_other_connection(delete)

    assert isinstance(meanwhile, OperationalError)
    order = Order.objects.get()
    assert (order.channel.code, order.store.code) == ("pos-sh-01", store or "sh-01")
    with pytest.raises(ProtectedError):
        target.get().delete()


@row_locks
def test_a_guide_deleted_while_a_batch_naming_them_is_open_waits_then_leaves_the_order_without_a_guide(pos):
    guide = make_staff("g-01", store=pos.store)

    with transaction.atomic():
        assert record_orders(rows=[_order(guide="g-01")], source="test").created == 1
        meanwhile = in_other_connection(lambda: Staff.objects.filter(pk=guide.pk).delete())

    assert isinstance(meanwhile, OperationalError)
    assert Order.objects.get().guide_id == guide.pk
    guide.delete()
    assert Order.objects.get().guide_id is None


def test_deleting_an_order_deletes_its_lines_and_refunds(pos):
    record_orders(rows=[_order(refunds=[{"external_id": "R1", "amount": "4.00", "refunded_at": "2026-05-02 10:00"}]),
                        _order(external_id="H2")], source="test")
    assert (OrderLine.objects.count(), Refund.objects.count()) == (2, 1)

    Order.objects.get(external_id="H1").delete()

    assert list(OrderLine.objects.values_list("order__external_id", flat=True)) == ["H2"]
    assert not Refund.objects.exists()
