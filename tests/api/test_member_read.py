"""GET /api/v1/members/{ref}: any reference, the survivor of a merge, stats, orders, events."""

import re
from urllib.parse import quote

import pytest

from siyu.commerce.services import record_orders
from siyu.events.services import record_events
from siyu.members.merge import merge_members
from siyu.members.services import upsert_members
from tests.factories import make_member, make_staff, make_store

pytestmark = pytest.mark.django_db

OFFSET_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+08:00$")


def _wang(store_code="sh-01"):
    store = make_store(store_code)
    guide = make_staff("g-007", store=store)
    result = upsert_members(rows=[{"phone": "13800138000", "name": "王小明", "nick": "tb_abc", "store": store_code,
                                   "guide": "g-007", "sms_consent": True}], source="test")
    return result.ids[0], store, guide


def test_a_member_is_found_by_id_by_code_and_by_a_normalised_phone(api):
    member_id, _store, _guide = _wang()
    code = api.get(f"/members/{member_id}").json()["member"]["code"]

    for ref in (str(member_id), code, f"code:{code}", f"id:{member_id}", "phone:+86 138-0013-8000",
                "phone:13800138000", "nick:tb_abc"):
        response = api.get("/members/" + quote(ref, safe=""))
        assert (ref, response.status_code) == (ref, 200)
        assert response.json()["member"]["id"] == member_id
        assert response.json()["ref"] == {"value": ref, "member_id": member_id, "merged_into": None}


def test_the_profile_carries_identities_reachability_and_owner(api):
    member_id, store, guide = _wang()

    body = api.get(f"/members/{member_id}").json()

    member = body["member"]
    assert (member["name"], member["phone"], member["status"]) == ("王小明", "13800138000", "active")
    assert member["store"] == {"id": store.pk, "code": "sh-01", "name": store.name}
    assert member["guide"] == {"id": guide.pk, "code": "g-007", "name": guide.name}
    assert member["reachability"]["sms_consent"] is True
    assert member["reachability"]["reachable_online"] is False
    assert OFFSET_TIME.match(member["joined_at"])
    assert [(i["kind"], i["value"]) for i in body["identities"]] == [("phone", "13800138000"), ("nick", "tb_abc")]


def test_a_member_without_orders_has_zero_stats(api):
    member = make_member(name="新会员")

    stats = api.get(f"/members/{member.pk}").json()["stats"]

    assert stats == {"order_count": 0, "item_count": 0, "total_paid": "0.00", "total_refunded": "0.00",
                     "first_order_at": None, "last_order_at": None, "channels": []}
    assert api.get(f"/members/{member.pk}").json()["recent_orders"] == []


def test_stats_orders_and_events_serialise_money_as_strings_and_times_with_offset(api, tmall, pos):
    member_id, _store, _guide = _wang()
    record_orders(rows=[
        {"channel": "tmall", "external_id": "T1", "buyer": "nick:tb_abc", "paid_amount": 199.9,
         "ordered_at": "2025-03-08 10:30", "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "99.95"}],
         "refunds": [{"amount": "50", "external_id": "R1"}]},
        {"channel": "pos-sh-01", "external_id": "P1", "member_id": member_id, "paid_amount": "1000",
         "ordered_at": "2025-03-09 12:00"},
    ], source="test")
    record_events(rows=[{"member_id": member_id, "kind": "store_visit", "occurred_at": "2025-03-09 11:00",
                         "store": "sh-01", "properties": {"minutes": 40}}], source="test")

    body = api.get(f"/members/{member_id}").json()

    stats = body["stats"]
    assert (stats["order_count"], stats["total_paid"], stats["total_refunded"]) == (2, "1149.90", "50.00")
    assert {(c["channel"]["code"], c["order_count"], c["total_paid"]) for c in stats["channels"]} == {
        ("tmall", 1, "149.90"), ("pos-sh-01", 1, "1000.00")}
    assert stats["last_order_at"] == "2025-03-09T12:00:00+08:00"
    orders = body["recent_orders"]
    assert [o["external_id"] for o in orders] == ["P1", "T1"]
    assert (orders[1]["paid_amount"], orders[1]["refunded_amount"], orders[1]["channel"]["code"]) == (
        "199.90", "50.00", "tmall")
    assert orders[1]["lines"] == [{"line_no": 1, "sku": "SKU-1", "name": "", "quantity": 2,
                                   "unit_price": "99.95", "amount": "199.90"}]
    assert orders[0]["store"]["code"] == "sh-01"
    event = body["recent_events"][0]
    assert (event["kind"], event["store"]["code"], event["properties"]) == ("store_visit", "sh-01", {"minutes": 40})
    assert event["occurred_at"] == "2025-03-09T11:00:00+08:00"


def test_recent_orders_and_events_are_capped_at_20_and_50(api, pos):
    member = make_member()
    record_orders(rows=[{"channel": "pos-sh-01", "external_id": f"P{i}", "member_id": member.pk,
                         "paid_amount": "1", "ordered_at": f"2025-01-{i:02d}"} for i in range(1, 26)], source="t")
    record_events(rows=[{"member_id": member.pk, "kind": "page_view", "occurred_at": f"2025-01-01 00:{i:02d}"}
                        for i in range(60)], source="t")

    body = api.get(f"/members/{member.pk}").json()

    assert len(body["recent_orders"]) == 20
    assert body["recent_orders"][0]["external_id"] == "P25"
    assert len(body["recent_events"]) == 50
    assert body["recent_events"][0]["occurred_at"] == "2025-01-01T00:59:00+08:00"


def test_a_merged_member_answers_with_the_survivor(api):
    survivor = make_member(name="留下")
    merged = make_member(name="并入")
    merge_members(survivor_id=survivor.pk, merged_id=merged.pk, actor="test")

    for ref in (str(merged.pk), merged.code):
        body = api.get(f"/members/{ref}").json()
        assert body["member"]["id"] == survivor.pk
        assert body["ref"] == {"value": ref, "member_id": merged.pk, "merged_into": survivor.pk}


def test_a_numeric_ref_prefers_the_id_and_code_prefix_forces_the_code(api):
    first = make_member(code="MEMBER-A")
    numeric = make_member(code=str(first.pk))

    assert api.get(f"/members/{first.pk}").json()["member"]["id"] == first.pk
    assert api.get(f"/members/code:{first.pk}").json()["member"]["id"] == numeric.pk


def test_an_unknown_member_is_404_and_a_malformed_identity_is_400(api):
    missing = api.get("/members/phone:13800138000")
    malformed = api.get("/members/phone:12345")
    unknown_kind = api.get("/members/qq:12345")

    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "unknown_member")
    assert (malformed.status_code, malformed.json()["error"]) == (
        400, {"code": "invalid_phone", "message": malformed.json()["error"]["message"], "field": "ref"})
    assert (unknown_kind.status_code, unknown_kind.json()["error"]["code"]) == (400, "invalid_identity_kind")


def test_reading_a_member_costs_a_fixed_number_of_queries(api, tmall, pos, django_assert_num_queries):
    member_id, _store, _guide = _wang()
    record_orders(rows=[
        {"channel": channel, "external_id": f"O{i}", "member_id": member_id, "paid_amount": "10",
         "ordered_at": f"2025-02-{i:02d}", "store": "sh-01",
         "lines": [{"sku": f"S{i}-{n}", "quantity": 1, "amount": "5"} for n in range(2)]}
        for i, channel in enumerate(["tmall", "pos-sh-01"] * 6, start=1)
    ], source="t")
    record_events(rows=[{"member_id": member_id, "kind": "check_in", "occurred_at": f"2025-02-{i:02d}",
                         "store": "sh-01", "channel": "tmall"} for i in range(1, 13)], source="t")
    api.get(f"/members/{member_id}")  # records the token's last use

    # token, member, identities, stats, channel stats, orders, their lines, events
    with django_assert_num_queries(8):
        body = api.get("/members/phone:13800138000").json()

    assert (len(body["recent_orders"]), len(body["recent_events"])) == (12, 12)
