"""GET /api/v1/members: keyset pagination and validated filters."""

import datetime as dt

import pytest
from django.utils import timezone

from siyu.members.merge import merge_members
from siyu.members.models import Identity
from tests.factories import make_member, make_staff, make_store

pytestmark = pytest.mark.django_db


def _walk(api, **params) -> list[int]:
    seen, after, pages = [], None, 0
    while True:
        query = {**params, **({"after": after} if after else {})}
        response = api.get("/members", **query)
        assert response.status_code == 200, response.json()
        body = response.json()
        seen.extend(item["id"] for item in body["items"])
        pages += 1
        after = body["next"]
        if after is None:
            return seen
        assert pages < 100


def test_pagination_walks_every_member_exactly_once_newest_first(api):
    ids = [make_member(name=f"m{i}").pk for i in range(23)]

    seen = _walk(api, limit=5)

    assert seen == sorted(ids, reverse=True)


def test_a_page_that_ends_exactly_at_the_last_member_has_no_next(api):
    for _ in range(4):
        make_member()

    body = api.get("/members", limit=4).json()

    assert (len(body["items"]), body["next"]) == (4, None)


def test_members_added_while_walking_do_not_shift_the_pages(api):
    ids = [make_member().pk for _ in range(6)]
    first = api.get("/members", limit=3).json()
    make_member()  # newer than every id already listed

    second = api.get("/members", limit=3, after=first["next"]).json()

    assert [m["id"] for m in first["items"] + second["items"]] == sorted(ids, reverse=True)


def test_filters_narrow_the_list(api):
    store = make_store("sh-01")
    guide = make_staff("g-1", store=store)
    wang = make_member(city="上海", store=store, guide=guide, is_wecom_friend=True,
                       joined_at=dt.datetime(2025, 3, 8, 9, 0, tzinfo=dt.UTC))
    Identity.objects.create(member=wang, kind="phone", value="13800138000")
    li = make_member(city="杭州", joined_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    frozen = make_member(city="上海", status="frozen", joined_at=timezone.now())

    def ids(**params):
        return [m["id"] for m in api.get("/members", **params).json()["items"]]

    assert ids(city="上海") == [frozen.pk, wang.pk]
    assert ids(store="sh-01") == ids(guide="g-1") == [wang.pk]
    assert ids(phone="+86 138 0013 8000") == [wang.pk]
    assert ids(is_wecom_friend="true") == [wang.pk]
    assert ids(is_wecom_friend="false") == [frozen.pk, li.pk]
    assert ids(joined_after="2025-03-01", joined_before="2025-04-01") == [wang.pk]
    assert ids(joined_before="2025-03-08T17:00:00+08:00") == [li.pk]
    assert ids(joined_before="2025-03-08T17:00:01+08:00") == [li.pk, wang.pk]
    assert ids(status="frozen") == [frozen.pk]
    assert ids(store="nowhere") == []


def test_merged_members_are_listed_only_when_asked_for(api):
    survivor, merged = make_member(), make_member()
    merge_members(survivor_id=survivor.pk, merged_id=merged.pk, actor="test")

    default = api.get("/members").json()["items"]
    only_merged = api.get("/members", status="merged").json()["items"]

    assert [m["id"] for m in default] == [survivor.pk]
    assert [(m["id"], m["merged_into"]) for m in only_merged] == [(merged.pk, survivor.pk)]


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 501}, "limit"),
    ({"limit": 0}, "limit"),
    ({"after": "garbage!"}, "after"),
    ({"phone": "12345"}, "phone"),
    ({"joined_after": "yesterday"}, "joined_after"),
    ({"status": "sleeping"}, "status"),
    ({"is_wecom_friend": "maybe"}, "is_wecom_friend"),
])
def test_invalid_filters_are_422_naming_the_parameter(api, params, field):
    response = api.get("/members", **params)

    assert response.status_code == 422
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("invalid_request", field)


def test_a_page_costs_one_query_after_the_token(api, django_assert_num_queries):
    store = make_store("sh-01")
    guide = make_staff("g-1", store=store)
    for _ in range(30):
        make_member(store=store, guide=guide, city="上海")
    api.get("/members")  # records the token's last use

    with django_assert_num_queries(2):
        body = api.get("/members", limit=25, city="上海", phone="13800138000").json()
    with django_assert_num_queries(2):
        body = api.get("/members", limit=25).json()

    assert len(body["items"]) == 25
    assert body["items"][0]["store"]["code"] == "sh-01"
    assert body["items"][0]["guide"]["code"] == "g-1"
