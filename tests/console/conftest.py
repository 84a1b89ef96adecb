"""Console fixtures: two stores with members, orders and events recorded through the services."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from siyu.commerce.services import record_orders
from siyu.events.services import record_events
from siyu.members.models import Member
from siyu.members.services import upsert_members
from siyu.org.models import Role
from tests.factories import make_channel, make_region, make_staff, make_store

PASSWORD = "pw-123456"

#: What a store manager's console role is granted: view the facts of the member center.
STORE_MANAGER_PERMISSIONS = ("members.view_member", "commerce.view_order", "events.view_event")


@dataclass
class Shop:
    """Shanghai store sh-01 (3 members) and Beijing store bj-01 (2 members), one POS each."""

    sh_members: list[Member]
    bj_members: list[Member]


def seed_members(store_code: str, phones: list[str], *, prefix: str) -> list[Member]:
    rows = [{"phone": phone, "name": f"{prefix}{i}", "store": store_code, "city": "上海",
             "joined_at": "2026-05-01 10:00"} for i, phone in enumerate(phones)]
    result = upsert_members(rows=rows, source="test")
    assert not result.rejected, result.rejected
    return list(Member.objects.filter(phone__in=phones).order_by("phone"))


def seed_orders(channel_code: str, members: list[Member], *, start: int = 0) -> None:
    rows = [{"channel": channel_code, "external_id": f"{channel_code}-{start + i}",
             "member_code": m.code, "paid_amount": "99.00", "ordered_at": "2026-05-02 12:00",
             "lines": [{"sku": "SKU-1", "name": "面霜", "quantity": 1, "amount": "99.00"}]}
            for i, m in enumerate(members)]
    result = record_orders(rows=rows, source="test")
    assert not result.rejected, result.rejected


def seed_events(members: list[Member], *, start: int = 0) -> None:
    rows = [{"member_code": m.code, "kind": "check_in", "occurred_at": "2026-05-03 08:00",
             "idempotency_key": f"ev-{start + i}", "store": "sh-01"} for i, m in enumerate(members)]
    result = record_events(rows=rows, source="test")
    assert not result.rejected, result.rejected


@pytest.fixture
def shop(db) -> Shop:
    east = make_region("east")
    make_store("sh-01", region=east)
    make_store("bj-01", city="北京")
    make_channel("pos-sh-01", store=make_store("sh-01"))
    make_channel("pos-bj-01", store=make_store("bj-01"))
    sh = seed_members("sh-01", ["13800138000", "13800138001", "13800138002"], prefix="上海会员")
    bj = seed_members("bj-01", ["13900139000", "13900139001"], prefix="北京会员")
    seed_orders("pos-sh-01", sh)
    seed_orders("pos-bj-01", bj)
    seed_events(sh + bj)
    return Shop(sh_members=sh, bj_members=bj)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)


@pytest.fixture
def store_manager(db):
    """A store manager of sh-01 with a console login allowed to view members, orders, events."""
    staff = make_staff("mgr-sh", role=Role.STORE_MANAGER, store=make_store("sh-01"), username="mgr-sh")
    staff.user.user_permissions.set(Permission.objects.filter(
        content_type__app_label__in=["members", "commerce", "events"],
        codename__in=[perm.split(".")[1] for perm in STORE_MANAGER_PERMISSIONS],
    ))
    return staff.user
