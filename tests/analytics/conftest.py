"""Analytics fixtures: brands with a store each, and orders written straight into the facts."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from siyu.commerce.models import Channel, Order
from siyu.members.models import Member
from siyu.org.models import Brand
from tests.factories import make_brand, make_channel, make_store

#: The fixed "now" of every recompute in these tests (noon in Shanghai).
NOW = dt.datetime(2026, 6, 30, 4, 0, tzinfo=dt.UTC)

_external = itertools.count(1)


def buy(member: Member, channel: Channel, days_ago: float, paid: str | Decimal = "100.00", *,
        refunded: str | Decimal = "0", counted: bool = True, now: dt.datetime = NOW) -> Order:
    """One order of ``member`` in ``channel``'s store, ``days_ago`` days before ``now``."""
    return Order.objects.create(
        channel=channel, external_id=f"A{next(_external)}", member=member, store=channel.store,
        paid_amount=Decimal(paid), total_amount=Decimal(paid), refunded_amount=Decimal(refunded),
        is_counted=counted, status="paid" if counted else "closed",
        ordered_at=now - dt.timedelta(days=days_ago))


def brand_channel(code: str) -> Channel:
    """A brand ``code`` with one store ``<code>-01`` and its POS channel ``pos-<code>``."""
    brand = make_brand(code)
    return make_channel(f"pos-{code}", store=make_store(f"{code}-01", brand=brand))


@pytest.fixture
def shop(db) -> Channel:
    """Brand ``brand-a``'s POS channel."""
    return brand_channel("brand-a")


@pytest.fixture
def other_shop(db) -> Channel:
    """Brand ``brand-b``'s POS channel."""
    return brand_channel("brand-b")


def brand_of(channel: Channel) -> Brand:
    return channel.store.brand
