"""Batch ingestion over HTTP: per-row rejections, idempotency, limits and whole-batch failures."""

import pytest

from siyu.commerce.models import Order, OrderLine
from siyu.core.models import IngestRejection
from siyu.events.models import Event
from siyu.members.models import Identity, Member, WeComContact
from tests.factories import make_member, make_staff, make_store

pytestmark = pytest.mark.django_db


def test_a_member_batch_lands_the_good_rows_and_rejects_the_bad_ones(api):
    make_store("sh-01")
    rows = [
        {"phone": "+86 138-0013-8000", "name": "王小明", "store": "sh-01"},
        {"phone": "12345", "name": "bad phone"},
        "not an object",
        {"name": "no identity"},
        {"nick": "tb_abc", "gender": "女", "birthday": "1990-05-01"},
        {"phone": "13900139000", "store": "nowhere"},
    ]

    response = api.post("/members/batch", {"rows": rows})

    assert response.status_code == 200
    body = response.json()
    assert (body["entity"], body["created"], body["accepted"], body["duplicates"]) == ("member", 2, 2, 0)
    assert [(r["row"], r["field"], r["code"]) for r in body["rejected"]] == [
        (2, "phone", "invalid_phone"),
        (3, "", "invalid_row"),
        (4, "identities", "no_identity"),
        (6, "store", "unknown_store"),
    ]
    assert sorted(Member.objects.values_list("name", flat=True)) == ["", "王小明"]
    assert Member.objects.get(name="王小明").phone == "13800138000"
    assert set(IngestRejection.objects.values_list("row", "source")) == {
        (2, "api:crm-sync"), (3, "api:crm-sync"), (4, "api:crm-sync"), (6, "api:crm-sync")}


def test_resending_a_member_batch_creates_nothing(api):
    rows = [{"phone": "13800138000", "name": "王小明"}, {"unionid": "oUNION1", "city": "杭州"}]
    first = api.post("/members/batch", {"rows": rows}).json()

    again = api.post("/members/batch", {"rows": rows})

    assert again.status_code == 200
    assert (again.json()["created"], again.json()["updated"], again.json()["duplicates"]) == (0, 0, 2)
    assert again.json()["ids"] == first["ids"]
    assert Member.objects.count() == 2
    assert Identity.objects.count() == 2


def test_an_order_batch_lands_good_orders_and_resending_creates_nothing(api, tmall):
    member = make_member(name="王小明")
    Identity.objects.create(member=member, kind="nick", value="tb_abc")
    rows = [
        {"channel": "tmall", "external_id": "T1", "buyer": "nick:tb_abc", "paid_amount": "299.00",
         "ordered_at": "2025-03-08T10:30:00+08:00", "lines": [{"sku": "SKU-1", "quantity": 1, "amount": "299.00"}]},
        {"channel": "tmall", "external_id": "T2", "paid_amount": -1, "ordered_at": "2025-03-08 10:30"},
        {"channel": "jd", "external_id": "J1", "paid_amount": "10", "ordered_at": "2025-03-08"},
    ]

    first = api.post("/orders/batch", {"rows": rows})
    again = api.post("/orders/batch", {"rows": rows})

    assert first.status_code == again.status_code == 200
    assert [(r["row"], r["code"]) for r in first.json()["rejected"]] == [(2, "negative_amount"), (3, "unknown_channel")]
    assert (first.json()["created"], again.json()["created"], again.json()["duplicates"]) == (1, 0, 1)
    order = Order.objects.get()
    assert (order.member_id, str(order.paid_amount), OrderLine.objects.count()) == (member.pk, "299.00", 1)


def test_an_event_batch_lands_good_events_and_resending_creates_nothing(api):
    member = make_member(phone="13800138000")
    Identity.objects.create(member=member, kind="phone", value="13800138000")
    rows = [
        {"member": "phone:13800138000", "kind": "check_in", "occurred_at": "2025-03-08 08:00"},
        {"member_code": member.code, "kind": "share", "occurred_at": "2025-03-08 09:00",
         "properties": {"to": "moments"}},
        {"member": "phone:13900139000", "kind": "check_in", "occurred_at": "2025-03-08 08:00"},
        {"member_id": member.pk, "kind": "teleport", "occurred_at": "2025-03-08 08:00"},
    ]

    first = api.post("/events/batch", {"rows": rows})
    again = api.post("/events/batch", {"rows": rows})

    assert first.status_code == again.status_code == 200
    assert [(r["row"], r["code"]) for r in first.json()["rejected"]] == [(3, "unknown_member"), (4, "invalid_choice")]
    assert (first.json()["created"], again.json()["created"], again.json()["duplicates"]) == (2, 0, 2)
    assert Event.objects.count() == 2


def test_a_contact_batch_records_wecom_contacts_under_the_members_scope(api):
    guide = make_staff("wx-li", store=make_store("gz-01"))
    rows = [
        {"staff": "wx-li", "external_userid": "wmABC", "name": "小周", "add_way": "1"},
        {"staff": "nobody", "external_userid": "wmXYZ"},
    ]

    response = api.post("/contacts/batch", {"rows": rows})

    assert response.status_code == 200
    assert response.json()["created"] == 1
    assert [(r["row"], r["field"]) for r in response.json()["rejected"]] == [(2, "guide")]
    assert WeComContact.objects.get().staff_id == guide.pk
    assert Member.objects.get().is_wecom_friend is True


def test_a_batch_over_5000_rows_is_refused_whole(api):
    response = api.post("/members/batch", {"rows": [{"phone": "13800138000"}] * 5001})

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch_too_large"
    assert response.json()["error"]["field"] == "rows"
    assert Member.objects.count() == 0


def test_a_body_over_the_servers_size_limit_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000

    response = api.post("/members/batch", {"rows": [{"phone": "13800138000", "name": "王" * 50}] * 200})

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert Member.objects.count() == 0


def test_a_body_without_rows_is_422_with_the_field(api):
    response = api.post("/members/batch", {"row": []})

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_request", "rows")


def test_rows_that_are_not_a_list_is_422(api):
    response = api.post("/orders/batch", {"rows": {"channel": "tmall"}})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "rows"


def test_a_body_that_is_not_json_is_400(api):
    response = api.post("/members/batch", raw="{rows: [")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_a_batch_that_fails_inside_the_service_saves_nothing(api, tmall, monkeypatch):
    import siyu.commerce.services as services

    def explode(member_ids):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "refresh_member_stats", explode)
    rows = [{"channel": "tmall", "external_id": "T1", "paid_amount": "1", "ordered_at": "2025-03-08"},
            {"channel": "tmall", "external_id": "T2", "paid_amount": "x", "ordered_at": "2025-03-08"}]

    response = api.post("/orders/batch", {"rows": rows})

    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "batch_failed"
    assert "nothing from this batch was saved" in error["message"]
    assert "disk on fire" not in error["message"]
    assert Order.objects.count() == 0
    assert IngestRejection.objects.count() == 0
