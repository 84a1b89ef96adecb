"""Loyalty fixtures: brand-a's store and POS channel, a program, and orders through ingestion."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.test import Client

from siyu.commerce.services import record_orders
from siyu.events.services import record_events
from siyu.loyalty.models import PointsAccount
from tests.factories import make_channel, make_member, make_program, make_store, make_token

#: Noon in Shanghai, a Tuesday.
NOW = dt.datetime(2026, 6, 30, 4, 0, tzinfo=dt.UTC)

_numbers = itertools.count(1)


def at(days_ago: float = 0, now: dt.datetime = NOW) -> dt.datetime:
    return now - dt.timedelta(days=days_ago)


def order_row(member, paid: str, *, external_id: str | None = None, when: dt.datetime = NOW, channel="pos-sh-01",
              **extra) -> dict:
    return {"channel": channel, "external_id": external_id or f"O{next(_numbers)}", "member_id": member.pk,
            "paid_amount": paid, "ordered_at": when.isoformat(), **extra}


def buy(member, paid: str, **kwargs) -> dict:
    """Ingest one order of ``member`` through ``record_orders`` and return the row sent."""
    row = order_row(member, paid, **kwargs)
    result = record_orders(rows=[row], source="test")
    assert not result.rejected, result.rejected
    return row


def event(member, kind: str, when: dt.datetime = NOW, **extra) -> dict:
    row = {"member_id": member.pk, "kind": kind, "occurred_at": when.isoformat(),
           "idempotency_key": f"E{next(_numbers)}", **extra}
    result = record_events(rows=[row], source="test")
    assert not result.rejected, result.rejected
    return row


def balance(member, program) -> tuple[int, int]:
    """``(balance, debt)`` of the member's account (zeros when there is none)."""
    account = PointsAccount.objects.filter(program=program, member=member).first()
    return (account.balance, account.debt) if account else (0, 0)


@pytest.fixture
def shop(db):
    return make_channel("pos-sh-01", store=make_store("sh-01"))


@pytest.fixture
def program(shop):
    return make_program()


@pytest.fixture
def member(shop):
    """A member of store sh-01 (brand-a)."""
    return make_member(name="王芳", store=shop.store)


@pytest.fixture
def superuser(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(username="boss", password="pw-123456")


@pytest.fixture
def api(db):
    """Call ``/api/v1`` as the integration "mall" (scope ``loyalty:write``): ``(status, json)``."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {make_token('mall', 'loyalty:write')}", HTTP_ACCEPT_LANGUAGE="en")

    def call(method, path, body=None):
        response = getattr(client, method)(f"/api/v1{path}", body, content_type="application/json")
        return response.status_code, response.json()

    return call
