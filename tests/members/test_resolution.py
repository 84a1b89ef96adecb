"""Identity resolution, retroactive order binding and merge candidates."""

from decimal import Decimal

import pytest

from siyu.commerce.models import MemberStats, Order
from siyu.commerce.services import record_orders
from siyu.core.models import IngestRejection
from siyu.members.models import Identity, Member, MergeCandidate, OwnershipChange
from siyu.members.services import upsert_members
from tests.factories import make_staff, make_store

pytestmark = pytest.mark.django_db


def test_phone_is_normalised_and_matches_the_same_member():
    first = upsert_members(rows=[{"phone": "+86 138-0013-8000", "name": "王芳"}], source="test")
    again = upsert_members(rows=[{"phone": "13800138000", "openid": "o-1"}], source="test")

    assert first.created == 1
    assert again.created == 0 and again.updated == 1
    member = Member.objects.get()
    assert member.phone == "13800138000"
    assert set(member.identities.values_list("kind", "value")) == {("phone", "13800138000"), ("openid", "o-1")}


def test_resending_a_member_batch_creates_nothing():
    rows = [{"phone": "13800138001", "name": "李雷", "gender": "男", "birthday": "1990-05-01"},
            {"unionid": "u-2", "nick": "tb_hanmei", "city": "杭州"}]
    upsert_members(rows=rows, source="test")

    result = upsert_members(rows=rows, source="test")

    assert (result.created, result.updated, result.duplicates) == (0, 0, 2)
    assert Member.objects.count() == 2
    assert Identity.objects.count() == 3


def test_two_rows_sharing_a_new_identity_resolve_to_one_member():
    result = upsert_members(rows=[{"phone": "13800138002"}, {"phone": "13800138002", "openid": "o-9"}],
                            source="test")

    assert result.created == 1
    assert Member.objects.count() == 1
    assert Identity.objects.filter(member=Member.objects.get()).count() == 2


def test_identities_of_two_members_are_flagged_never_merged():
    upsert_members(rows=[{"phone": "13800138003"}, {"nick": "tb_zhang"}], source="test")
    phone_member = Identity.objects.get(kind="phone").member_id
    nick_member = Identity.objects.get(kind="nick").member_id

    result = upsert_members(rows=[{"phone": "13800138003", "nick": "tb_zhang", "name": "张伟"}], source="test")

    assert result.ids == [phone_member]  # the strongest identity (phone) wins
    assert Member.objects.count() == 2
    candidate = MergeCandidate.objects.get()
    assert (candidate.member_id, candidate.other_id) == tuple(sorted((phone_member, nick_member)))
    assert Identity.objects.get(kind="nick").member_id == nick_member


def test_member_code_matches_before_identities():
    upsert_members(rows=[{"member_code": "VIP001", "phone": "13800138004"}], source="test")

    result = upsert_members(rows=[{"member_code": "VIP001", "email": "A@Example.com"}], source="test")

    assert result.updated == 1
    assert Member.objects.get(code="VIP001").identities.filter(kind="email", value="a@example.com").exists()


@pytest.mark.parametrize(("row", "field", "code"), [
    ({"name": "无身份"}, "identities", "no_identity"),
    ({"phone": "138****1234"}, "phone", "invalid_phone"),
    ({"phone": "1380013800"}, "phone", "invalid_phone"),
    ({"email": "not-an-email"}, "email", "invalid_email"),
    ({"phone": "13800138005", "birthday": "1990-13-45"}, "birthday", "invalid_date"),
    ({"phone": "13800138005", "joined_at": "yesterday"}, "joined_at", "invalid_datetime"),
    ({"phone": "13800138005", "gender": "x"}, "gender", "invalid_choice"),
    ({"phone": "13800138005", "store": "nowhere"}, "store", "unknown_store"),
    ({"phone": "13800138005", "guide": "nobody"}, "guide", "unknown_guide"),
    ({"identities": ["qq:12345"]}, "identities", "invalid_identity_kind"),
    ({"identities": ["13800138005"]}, "identities", "invalid_identity"),
])
def test_a_bad_member_row_is_rejected_and_kept_while_the_rest_lands(row, field, code):
    result = upsert_members(rows=[{"phone": "13900139000"}, row], source="file.csv")

    assert result.created == 1
    assert [(r.row, r.field, r.code) for r in result.rejected] == [(2, field, code)]
    kept = IngestRejection.objects.get()
    assert (kept.row, kept.field, kept.code, kept.source) == (2, field, code, "file.csv")
    assert kept.raw == row


def test_owner_changes_are_kept_as_history():
    store = make_store("bj-01", city="北京")
    first, second = make_staff("g-1", store=store), make_staff("g-2", store=store)
    upsert_members(rows=[{"phone": "13800138006", "guide": "g-1"}], source="test")

    upsert_members(rows=[{"phone": "13800138006", "guide": "g-2"}], source="test", actor="ops")

    member = Member.objects.get()
    assert (member.guide_id, member.store_id) == (second.pk, store.pk)
    history = list(OwnershipChange.objects.order_by("id").values_list("from_guide_id", "to_guide_id", "reason"))
    assert history == [(None, first.pk, "joined"), (first.pk, second.pk, "updated")]


def test_orders_of_an_unknown_buyer_bind_when_the_identity_joins(tmall):
    orders = record_orders(rows=[
        {"channel": "tmall", "external_id": "T1", "buyer": "nick:tb_late", "paid_amount": "120.00",
         "ordered_at": "2026-03-01 10:00:00", "item_count": 2},
        {"channel": "tmall", "external_id": "T2", "buyer": "nick:tb_late", "paid_amount": "80.50",
         "ordered_at": "2026-04-01 10:00:00", "item_count": 1, "refunds": [{"amount": "30.50"}]},
    ], source="test")
    assert orders.created == 2
    assert Order.objects.filter(member__isnull=True).count() == 2

    upsert_members(rows=[{"phone": "13800138007", "nick": "tb_late"}], source="test")

    member = Member.objects.get()
    assert Order.objects.filter(member=member).count() == 2
    stats = MemberStats.objects.get(member=member)
    assert (stats.order_count, stats.item_count, stats.total_paid, stats.total_refunded) == (
        2, 3, Decimal("170.00"), Decimal("30.50"))
