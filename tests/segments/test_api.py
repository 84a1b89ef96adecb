"""Segments over HTTP: preview with node-precise errors, saved and static segments, pages,
exports and snapshots, and the scopes they need."""

import csv
import io

import pytest
from django.test import Client

from siyu.members.services import upsert_members
from siyu.segments.models import Snapshot
from tests.factories import make_member, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    token = make_token("crm", "segments:write")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def call(method, path, body=None):
        return getattr(client, method)(f"/api/v1{path}", body, content_type="application/json")

    return call


SHANGHAI = {"attr": "city", "op": "eq", "value": "上海"}


def test_preview_counts_samples_and_shows_the_sql(api):
    for i in range(3):
        make_member(city="上海", name=f"上海{i}")
    make_member(city="杭州")
    response = api("post", "/segments/preview?sql=true", {"rule": {"all": [SHANGHAI]}})
    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 3 and len(body["sample"]) == 3
    assert "members_member" in body["sql"] and "上海" in body["sql"]


def test_an_invalid_rule_names_the_node(api):
    rule = {"all": [SHANGHAI, {"orders": {"window": {"last_days": 0}}, "op": "gte", "value": 1}]}
    response = api("post", "/segments/preview", {"rule": rule})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "all[1].orders.window.last_days"
    assert response.json()["error"]["code"] == "invalid_rule"


def test_a_saved_segment_pages_exports_and_snapshots(api):
    members = [make_member(city="上海") for _ in range(5)]
    assert api("put", "/segments/sh", {"name": "上海会员", "rule": SHANGHAI}).json()["size"] == 5

    first = api("get", "/segments/sh/members?limit=2").json()
    second = api("get", f"/segments/sh/members?limit=2&after={first['next']}").json()
    assert [m["id"] for m in first["members"] + second["members"]] == [m.pk for m in members[:4]]

    export = api("get", "/segments/sh/export")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:2] == ["id", "code"] and len(rows) == 6

    snapshot = api("post", "/segments/sh/snapshots", {"name": "618 campaign"}).json()
    make_member(city="上海")  # joins the segment, not the frozen snapshot
    assert snapshot["size"] == 5
    assert Snapshot.objects.get(pk=snapshot["id"]).members.count() == 5
    assert api("put", "/segments/sh", {"name": "上海会员", "rule": SHANGHAI}).json()["size"] == 6


def test_a_static_segment_reports_unmatched_rows(api):
    upsert_members(rows=[{"phone": "13800138001"}, {"unionid": "u-1"}], source="test")
    body = api("post", "/segments/static", {"code": "vip-list", "name": "名单",
                                            "identities": ["13800138001", "unionid:u-1", "13800000000"]}).json()
    assert body["segment"]["size"] == 2
    assert [(u["row"], u["value"]) for u in body["unmatched"]] == [(3, "13800000000")]


def test_segments_need_a_token_with_the_segments_scope():
    assert Client().post("/api/v1/segments/preview", {"rule": SHANGHAI}, content_type="application/json"
                         ).status_code == 401
    token = make_token("pos", "orders:write")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").post(
        "/api/v1/segments/preview", {"rule": SHANGHAI}, content_type="application/json")
    assert response.status_code == 403
