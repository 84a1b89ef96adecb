"""The operator console through Django's test client: search, data scope, read-only facts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from siyu.commerce.models import Order
from siyu.commerce.services import record_orders
from siyu.core.models import ApiToken, IngestRejection
from siyu.core.tokens import create_token
from siyu.members.models import Member
from siyu.members.services import upsert_members
from siyu.org.models import Store
from tests.console.conftest import seed_events, seed_members, seed_orders
from tests.factories import make_brand

pytestmark = pytest.mark.django_db

MEMBERS = "/console/members/member/"
ORDERS = "/console/commerce/order/"
EVENTS = "/console/events/event/"


def listed(response) -> list:
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def listed_codes(response) -> set[str]:
    return {member.code for member in listed(response)}


@pytest.fixture
def boss(client, superuser):
    client.force_login(superuser)
    return client


# Search ------------------------------------------------------------------------------------

def test_a_member_is_found_by_a_phone_typed_with_plus86_and_dashes(boss, shop):
    wanted = shop.sh_members[0]
    assert wanted.phone == "13800138000"

    response = boss.get(MEMBERS, {"q": "+86 138-0013-8000"})

    assert listed_codes(response) == {wanted.code}


def test_a_member_is_found_by_any_identity_value(boss, shop):
    upsert_members(rows=[{"phone": "13800138001", "unionid": "oUnion-42", "email": "Li@Example.com"}],
                   source="test")
    wanted = shop.sh_members[1]

    assert listed_codes(boss.get(MEMBERS, {"q": "oUnion-42"})) == {wanted.code}
    assert listed_codes(boss.get(MEMBERS, {"q": "LI@example.COM"})) == {wanted.code}
    assert listed_codes(boss.get(MEMBERS, {"q": wanted.code})) == {wanted.code}


def test_a_member_is_found_by_part_of_the_name(boss, shop):
    assert listed_codes(boss.get(MEMBERS, {"q": "北京会员"})) == {m.code for m in shop.bj_members}


def test_orders_are_found_by_external_id_and_by_marketplace_buyer_nick(boss, shop):
    record_orders(rows=[{"channel": "pos-sh-01", "external_id": "TB-777", "buyer": "nick:小明的店",
                         "paid_amount": "10.00", "ordered_at": "2026-05-04 09:00"}], source="test")

    by_nick = listed(boss.get(ORDERS, {"q": "小明的店"}))
    by_id = listed(boss.get(ORDERS, {"q": "TB-777"}))

    assert [o.external_id for o in by_nick] == ["TB-777"]
    assert [o.external_id for o in by_id] == ["TB-777"]

    # The nick becomes a member's: the order binds, and the nick still finds it.
    joined = upsert_members(rows=[{"member_code": "NICK-1", "identities": ["nick:小明的店"]}], source="test")
    assert Order.objects.get(external_id="TB-777").member_id == joined.ids[0]
    assert [o.external_id for o in listed(boss.get(ORDERS, {"q": "小明的店"}))] == ["TB-777"]


def test_the_joined_date_filter_counts_whole_business_days(boss, shop):
    everyone = {m.code for m in shop.sh_members + shop.bj_members}

    same_day = boss.get(MEMBERS, {"joined_at_from": "2026-05-01", "joined_at_to": "2026-05-01"})
    day_before = boss.get(MEMBERS, {"joined_at_to": "2026-04-30"})

    assert listed_codes(same_day) == everyone
    assert listed_codes(day_before) == set()


def test_members_filter_by_store_and_reachability(boss, shop):
    bj = Store.objects.get(code="bj-01")
    upsert_members(rows=[{"phone": "13900139000", "follows_oa": "yes"}], source="test")

    assert listed_codes(boss.get(MEMBERS, {"store__id__exact": bj.pk})) == {m.code for m in shop.bj_members}
    assert listed_codes(boss.get(MEMBERS, {"follows_oa__exact": "1"})) == {shop.bj_members[0].code}


# Data scope --------------------------------------------------------------------------------

def test_a_store_manager_sees_only_their_stores_members_orders_and_events(client, shop, store_manager):
    client.force_login(store_manager)
    own = {m.code for m in shop.sh_members}

    members = listed_codes(client.get(MEMBERS))
    orders = {o.member.code for o in listed(client.get(ORDERS))}
    events = {e.member.code for e in listed(client.get(EVENTS))}

    assert members == own
    assert orders == own
    assert events == own


def test_a_store_manager_cannot_open_a_member_of_another_store(client, shop, store_manager):
    client.force_login(store_manager)
    other = shop.bj_members[0]

    response = client.get(f"{MEMBERS}{other.pk}/change/")

    assert response.status_code == 302  # the admin's "does not exist" redirect, never the page
    assert other.code not in response.content.decode()


def test_a_store_manager_searching_another_stores_phone_finds_nothing(client, shop, store_manager):
    client.force_login(store_manager)

    assert listed_codes(client.get(MEMBERS, {"q": "13900139000"})) == set()


def test_a_console_user_without_a_staff_record_sees_no_members(client, shop):
    user = get_user_model().objects.create_user("intern", password="pw-123456", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_member"))
    client.force_login(user)

    assert listed_codes(client.get(MEMBERS)) == set()


# Read-only facts, editable organisation ----------------------------------------------------

def test_the_member_page_links_to_the_members_journeys_and_messages(boss, shop):
    member = shop.sh_members[0]

    page = boss.get(f"{MEMBERS}{member.pk}/change/").content.decode()
    history = boss.get(f"/console/journeys/members/{member.pk}/")

    assert f'href="/console/journeys/members/{member.pk}/"' in page
    assert history.status_code == 200

def test_the_member_change_page_is_read_only(boss, shop):
    member = shop.sh_members[0]
    url = f"{MEMBERS}{member.pk}/change/"

    page = boss.get(url)
    post = boss.post(url, {"code": member.code, "name": "改过的名字", "phone": member.phone,
                           "gender": "female", "status": "frozen", "joined_at_0": "2026-05-01",
                           "joined_at_1": "10:00:00"})

    assert page.status_code == 200
    assert 'name="name"' not in page.content.decode()  # shown as text, not as an input
    assert post.status_code == 403
    member.refresh_from_db()
    assert (member.name, member.gender, member.status) == ("上海会员0", "unknown", "active")


@pytest.mark.parametrize("path", [MEMBERS, ORDERS, EVENTS, "/console/members/identity/",
                                  "/console/commerce/memberstats/", "/console/core/ingestrejection/",
                                  "/console/core/auditentry/", "/console/core/apitoken/"])
def test_facts_cannot_be_added_or_deleted_through_the_console(boss, shop, path):
    model_counts_before = (Member.objects.count(), Order.objects.count())

    add = boss.get(f"{path}add/")
    bulk_delete = boss.post(path, {"action": "delete_selected", "_selected_action": ["1"]})

    assert add.status_code == 403
    assert bulk_delete.status_code in (200, 302)  # no such action: the list is shown again
    assert (Member.objects.count(), Order.objects.count()) == model_counts_before


def test_stores_stay_editable(boss, shop):
    brand = make_brand()

    response = boss.post("/console/org/store/add/", {
        "code": "gz-01", "name": "广州天河店", "kind": "physical", "brand": brand.pk, "region": "",
        "city": "广州", "address": "天河路 1 号", "is_active": "on",
    })

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Store.objects.get(code="gz-01").name == "广州天河店"


def test_the_api_token_pages_never_show_the_secret(boss, db):
    issued = create_token(name="tmall-sync", scopes=["orders:write"], actor="test")
    secret = issued.plain.rsplit("_", 1)[1]
    token = ApiToken.objects.get()

    pages = [boss.get("/console/core/apitoken/"), boss.get(f"/console/core/apitoken/{token.pk}/change/")]

    for page in pages:
        body = page.content.decode()
        assert page.status_code == 200
        assert "tmall-sync" in body
        assert secret not in body
        assert token.secret_hash not in body


def test_a_rejected_row_is_shown_with_its_raw_data(boss, db):
    upsert_members(rows=[{"phone": "12345", "name": "错号的人"}], source="upload.csv")
    rejection = IngestRejection.objects.get()

    page = boss.get(f"/console/core/ingestrejection/{rejection.pk}/change/")
    listing = boss.get("/console/core/ingestrejection/", {"code": rejection.code})

    body = page.content.decode()
    assert "错号的人" in body and "12345" in body
    assert [r.pk for r in listed(listing)] == [rejection.pk]


# Speed -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [MEMBERS, ORDERS, EVENTS])
def test_changelists_do_not_query_per_row(boss, shop, path, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert boss.get(path).status_code == 200
    more = seed_members("sh-01", [f"1370000{i:04d}" for i in range(20)], prefix="新会员")
    seed_orders("pos-sh-01", more, start=100)
    seed_events(more, start=100)

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = boss.get(path)

    assert response.status_code == 200
    assert len(listed(response)) >= 20


@pytest.mark.parametrize("path", [MEMBERS, ORDERS, EVENTS])
def test_changelists_stay_within_a_small_query_budget(boss, shop, path, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = boss.get(path, {"q": "13800138000"})
    assert response.status_code == 200


def test_member_change_page_stays_within_a_query_budget(boss, shop, django_assert_max_num_queries):
    member = shop.sh_members[0]
    with django_assert_max_num_queries(16):
        assert boss.get(f"{MEMBERS}{member.pk}/change/").status_code == 200


# Navigation --------------------------------------------------------------------------------

def test_the_sidebar_groups_and_the_import_link_render_in_english(boss, db):
    body = boss.get("/console/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()

    for group in ("Member center", "Commerce", "Events", "Organisation", "Integrations"):
        assert group in body
    assert 'href="/console/import/"' in body


def test_the_console_speaks_chinese_by_default(boss, db):
    body = boss.get(MEMBERS, HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()

    for text in ("会员中心", "交易", "组织架构", "集成", "会员编号", "私域"):
        assert text in body


def test_a_business_day_filter_on_orders_uses_the_business_zone(boss, shop):
    # 2026-05-02 12:00 Shanghai is 04:00 UTC: the order belongs to 2 May, not 1 May.
    orders = listed(boss.get(ORDERS, {"ordered_at_from": "2026-05-02", "ordered_at_to": "2026-05-02"}))
    none = listed(boss.get(ORDERS, {"ordered_at_to": "2026-05-01"}))

    assert len(orders) == 5
    assert none == []
    assert orders[0].ordered_at.astimezone(dt.UTC).hour == 4


def test_a_store_manager_sees_only_the_sidebar_items_they_may_open(client, shop, store_manager):
    client.force_login(store_manager)

    body = client.get(MEMBERS, HTTP_ACCEPT_LANGUAGE="en-US").content.decode()

    assert f'href="{MEMBERS}"' in body and f'href="{ORDERS}"' in body
    assert 'href="/console/import/"' not in body  # importing needs an add permission
    assert 'href="/console/org/store/"' not in body
    assert 'href="/console/core/apitoken/"' not in body
