"""/api/v1/analytics/metrics: each metric as JSON with its definition and the filters applied."""

from __future__ import annotations

import datetime as dt

import pytest

from siyu.analytics.metrics.catalog import METRICS
from tests.analytics.metrics_world import Reference, build_world
from tests.api.conftest import Api
from tests.factories import make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(db) -> Api:
    return Api(make_token("bi", "analytics:read"))


def test_metrics_need_a_token_with_the_analytics_read_scope(db):
    assert Api().get("/analytics/metrics/member_share").status_code == 401
    denied = Api(make_token("crm", "members:read")).get("/analytics/metrics/member_share")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "insufficient_scope"


def test_the_list_names_every_metric_with_its_definition(reader):
    response = reader.get("/analytics/metrics")

    assert response.status_code == 200
    body = response.json()
    assert [m["metric"] for m in body] == list(METRICS)
    share = body[0]
    assert share["title"] == "Member share (会员占比)"
    assert share["definition"].startswith("Orders placed by members / all orders")


def test_a_metric_comes_with_its_definition_the_filters_and_exact_figures(reader):
    build_world()
    expected = Reference(start=dt.date(2026, 5, 1), end=dt.date(2026, 6, 1), brand="brand-a").member_share()

    response = reader.get("/analytics/metrics/member_share", start="2026-05-01", end="2026-05-31", brand="brand-a")

    assert response.status_code == 200
    body = response.json()
    assert body["metric"] == "member_share"
    assert body["filters"] == {
        "period": {"start": "2026-05-01", "end": "2026-06-01", "days": 31, "time_zone": "Asia/Shanghai"},
        "brand": "brand-a", "region": None, "store": None, "channel": None, "segment": None, "scope": "all"}
    value = body["value"]
    assert value["orders"] == expected["orders"] and value["member_orders"] == expected["member_orders"]
    assert value["amount"] == str(expected["amount"])  # money as a decimal string, never a float
    assert value["by_orders"] == str(expected["by_orders"])


def test_the_zh_hans_definition_is_served_when_asked_for(reader):
    response = reader.client.get("/api/v1/analytics/metrics", headers={
        "Authorization": reader._headers(None)["Authorization"], "Accept-Language": "zh-hans"})

    assert response.status_code == 200
    assert response.json()[0]["metric"] == "member_share"


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_answers_for_an_empty_period(reader, metric):
    response = reader.get(f"/analytics/metrics/{metric}", start="2025-01-01", end="2025-01-07")

    assert response.status_code == 200, response.json()
    assert response.json()["filters"]["period"]["days"] == 7


def test_cohorts_league_and_conversion_take_their_options(reader):
    build_world()

    cohorts = reader.get("/analytics/metrics/cohorts", start="2026-05-01", end="2026-06-30", basis="first_order")
    league = reader.get("/analytics/metrics/league", start="2026-05-01", end="2026-05-31", by="guide", limit=2)
    new = reader.get("/analytics/metrics/new_members", start="2026-05-01", end="2026-05-31", within_days=7)

    assert cohorts.json()["value"]["basis"] == "first_order"
    assert [c["cohort"] for c in cohorts.json()["value"]["cohorts"]] == ["2026-05", "2026-06"]
    assert len(league.json()["value"]) == 2
    assert all(row["code"].startswith("guide-") for row in league.json()["value"])
    assert new.json()["value"] == {**Reference(start=dt.date(2026, 5, 1), end=dt.date(2026, 6, 1)).new_members(7),
                                   "conversion_rate": new.json()["value"]["conversion_rate"]}


@pytest.mark.parametrize(("params", "status", "field"), [
    ({"brand": "no-such"}, 404, "brand"),
    ({"store": "nowhere"}, 404, "store"),
    ({"segment": "nobody"}, 404, "segment"),
    ({"start": "2026-05-31", "end": "2026-05-01"}, 400, "end"),
    ({"start": "2020-01-01", "end": "2026-01-01"}, 400, "end"),
])
def test_bad_filters_are_refused_naming_the_field(reader, params, status, field):
    response = reader.get("/analytics/metrics/member_share", **params)

    assert response.status_code == status
    assert response.json()["error"]["field"] == field


def test_an_unknown_metric_or_malformed_date_is_refused(reader):
    assert reader.get("/analytics/metrics/happiness").status_code == 422
    bad = reader.get("/analytics/metrics/member_share", start="31/05/2026")
    assert bad.status_code == 422


def test_a_funnel_takes_its_steps_and_window(reader):
    build_world()
    expected = Reference(start=dt.date(2026, 5, 1), end=dt.date(2026, 6, 1)).funnel(["join", "order"], 14)

    response = reader.get("/analytics/metrics/funnel", start="2026-05-01", end="2026-05-31", steps="join,order",
                          within_days=14)
    bad = reader.get("/analytics/metrics/funnel", steps="join,teleport")

    assert response.status_code == 200
    assert [s["members"] for s in response.json()["value"]["steps"]] == [s["members"] for s in expected]
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "steps"
