"""/api/v1/analytics: distributions per brand and the on-demand recompute, behind scoped tokens."""

from __future__ import annotations

import pytest

from siyu.analytics.models import MemberLifecycle, MemberRfm
from siyu.analytics.services import recompute_models
from tests.analytics.conftest import NOW, buy
from tests.api.conftest import Api
from tests.factories import make_member, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(db) -> Api:
    return Api(make_token("bi", "analytics:read"))


@pytest.fixture
def writer(db) -> Api:
    return Api(make_token("ops", "analytics:write"))


def test_distribution_needs_a_token_with_the_analytics_read_scope(shop):
    assert Api().get("/analytics/distribution").status_code == 401
    denied = Api(make_token("crm", "members:read")).get("/analytics/distribution")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "insufficient_scope"


def test_distribution_reports_each_brands_counts(reader, shop, other_shop):
    member = make_member()
    buy(member, shop, 3)
    buy(member, other_shop, 100)
    recompute_models(now=NOW)

    response = reader.get("/analytics/distribution", brand="brand-b")

    assert response.status_code == 200
    [brand] = response.json()["brands"]
    assert brand["brand"] == "brand-b"
    assert brand["lifecycle"] == {"new": 0, "active": 0, "silent": 1, "churned": 0, "recalled": 0}
    assert sum(brand["rfm"].values()) == 1 and len(brand["rfm"]) == 8
    assert [b["brand"] for b in reader.get("/analytics/distribution").json()["brands"]] == ["brand-a", "brand-b"]


def test_an_unknown_brand_is_a_404(reader, shop):
    response = reader.get("/analytics/distribution", brand="nope")

    assert response.status_code == 404
    assert response.json()["error"]["field"] == "brand"


def test_recompute_needs_the_write_scope_and_a_denied_request_computes_nothing(reader, shop):
    buy(make_member(), shop, 3)

    assert Api().post("/analytics/recompute", {}).status_code == 401
    assert reader.post("/analytics/recompute", {}).status_code == 403
    assert not MemberRfm.objects.exists()


def test_recompute_of_everyone_or_of_listed_members(writer, shop):
    first, second = make_member(), make_member()
    buy(first, shop, 3)
    buy(second, shop, 3)

    some = writer.post("/analytics/recompute", {"member_ids": [first.pk]})
    assert some.status_code == 200
    assert {k: some.json()[k] for k in ("rfm", "lifecycle", "rfm_changes", "lifecycle_changes")} == {
        "rfm": 1, "lifecycle": 1, "rfm_changes": 1, "lifecycle_changes": 1}
    assert list(MemberLifecycle.objects.values_list("member_id", flat=True)) == [first.pk]

    everyone = writer.post("/analytics/recompute", {})
    assert everyone.status_code == 200
    assert everyone.json()["lifecycle"] == 2
    assert MemberLifecycle.objects.count() == 2


def test_recompute_refuses_more_than_5000_members(writer, shop):
    response = writer.post("/analytics/recompute", {"member_ids": list(range(1, 5002))})

    assert response.status_code == 413
    assert response.json()["error"]["field"] == "member_ids"


def test_distribution_reads_a_fixed_number_of_queries_however_many_members(reader, shop, other_shop,
                                                                           django_assert_num_queries):
    for days in range(0, 200, 20):
        buy(make_member(), shop, days)
        buy(make_member(), other_shop, days)
    recompute_models(now=NOW)
    reader.get("/analytics/distribution")  # the token's first use is recorded once

    with django_assert_num_queries(4):
        response = reader.get("/analytics/distribution")

    assert response.status_code == 200
    assert sum(sum(b["lifecycle"].values()) for b in response.json()["brands"]) == 20
