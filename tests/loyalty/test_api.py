"""Loyalty over HTTP: a member's points, tier and benefits, the ledger in pages, spending and
adjusting with an idempotency key, and the scopes they need."""

from __future__ import annotations

import pytest
from django.test import Client

from siyu.core.models import AuditEntry
from siyu.loyalty.models import Benefit, PointsEntry
from tests.factories import make_program, make_tier, make_token
from tests.loyalty.conftest import balance, buy

pytestmark = pytest.mark.django_db


def test_a_members_points_tier_and_benefits(api, program, member):
    gold = make_tier(program, "gold", 1, min_paid_amount=100)
    make_tier(program, "basic", 0)
    Benefit.objects.create(program=program, tier=gold, category="service", kind="free_shipping", name="包邮")
    buy(member, "288.00")

    status, body = api("get", f"/loyalty/members/{member.code}/points")

    assert status == 200
    assert body["balance"] == 288 and body["debt"] == 0 and body["program"] == "vip"
    assert body["tier"]["code"] == "gold"
    assert [b["name"] for b in body["benefits"]] == ["包邮"]


def test_the_ledger_pages_newest_first(api, program, member):
    for paid in ("10.00", "20.00", "30.00"):
        buy(member, paid)

    _s, first = api("get", f"/loyalty/members/{member.pk}/ledger?limit=2")
    _s, second = api("get", f"/loyalty/members/{member.pk}/ledger?limit=2&before={first['next']}")

    assert [e["amount"] for e in first["entries"]] == [30, 20]
    assert [e["amount"] for e in second["entries"]] == [10] and second["next"] is None


def test_spending_twice_with_one_key_spends_once(api, program, member):
    buy(member, "100.00")
    body = {"member": f"id:{member.pk}", "amount": 60, "reason": "兑换保温杯", "idempotency_key": "r-1"}

    first = api("post", "/loyalty/points/spend", body)
    again = api("post", "/loyalty/points/spend", body)

    assert first[0] == again[0] == 200
    assert first[1]["id"] == again[1]["id"] and first[1]["amount"] == -60
    assert balance(member, program) == (40, 0)


def test_spending_more_than_the_balance_is_refused_and_writes_nothing(api, program, member):
    buy(member, "50.00")

    status, body = api("post", "/loyalty/points/spend", {"member": member.code, "amount": 51, "reason": "x",
                                                         "idempotency_key": "r-2"})

    assert status == 409 and body["error"]["code"] == "insufficient_points"
    assert balance(member, program) == (50, 0)
    assert not PointsEntry.objects.filter(kind="redeem").exists()


def test_an_adjustment_is_audited_with_the_token(api, program, member):
    status, body = api("post", "/loyalty/points/adjust", {"member": member.code, "amount": 500,
                                                          "reason": "客诉补偿", "idempotency_key": "adj-1"})

    assert status == 200 and body["kind"] == "adjust" and body["actor"] == "api:mall"
    assert balance(member, program) == (500, 0)
    assert AuditEntry.objects.get(action="loyalty.adjust_points").actor == "api:mall"


def test_with_two_programs_the_program_must_be_named(api, program, member):
    make_program("other", group_wide=True)

    status, body = api("get", f"/loyalty/members/{member.code}/points")
    named = api("get", f"/loyalty/members/{member.code}/points?program=vip")

    assert status == 400 and body["error"]["code"] == "program_required"
    assert named[0] == 200


def test_an_unknown_member_or_program_is_404(api, program, member):
    assert api("get", "/loyalty/members/phone:13999999999/points")[0] == 404
    assert api("get", f"/loyalty/members/{member.code}/points?program=nope")[1]["error"]["code"] == "unknown_program"


def test_reading_needs_the_loyalty_scope_and_writing_the_write_scope(program, member):
    other = Client(HTTP_AUTHORIZATION=f"Bearer {make_token('crm', 'members:write')}")
    reader = Client(HTTP_AUTHORIZATION=f"Bearer {make_token('bi', 'loyalty:read')}")

    assert other.get(f"/api/v1/loyalty/members/{member.code}/points").status_code == 403
    assert reader.get(f"/api/v1/loyalty/members/{member.code}/points").status_code == 200
    assert reader.post("/api/v1/loyalty/points/adjust", {"member": member.code, "amount": 1, "reason": "x",
                                                        "idempotency_key": "k"},
                       content_type="application/json").status_code == 403


def test_programs_are_listed_with_their_brand_and_rate(api, program):
    make_program("group", group_wide=True, points_per_yuan="1.5")

    status, body = api("get", "/loyalty/programs")

    assert status == 200
    assert [(p["code"], p["brand"], p["points_per_yuan"], p["scope"]) for p in body] == [
        ("group", None, "1.50", "group"), ("vip", "brand-a", "1.00", "brand")]
