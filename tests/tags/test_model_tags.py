"""RFM classes and lifecycle stages as model tags: one exclusive group per brand and model,
kept in step with the rows by every recompute, the full pass and the touched members alike."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from siyu.analytics.models import MemberLifecycle, MemberRfm, RfmMethod, RfmSettings
from siyu.analytics.services import recompute_lifecycle, recompute_models, sync_model_tags
from siyu.core.errors import ValidationError
from siyu.members.merge import merge_members
from siyu.tags.models import MemberTag, MemberTagChange, Tag, TagGroup
from siyu.tags.services import apply_tags, set_model_tags
from tests.analytics.conftest import NOW, brand_channel, brand_of, buy
from tests.factories import make_member

pytestmark = pytest.mark.django_db

RFM_NAMES = {"重要价值客户", "重要发展客户", "重要保持客户", "重要挽留客户",
             "一般价值客户", "一般发展客户", "一般保持客户", "一般挽留客户"}


@pytest.fixture
def shop(db):
    return brand_channel("brand-a")


def thresholds(shop) -> None:
    """Fixed thresholds for brand A, so that one member's class depends on their orders alone."""
    RfmSettings.objects.create(brand=brand_of(shop), method=RfmMethod.THRESHOLDS, recency_days=[7, 30, 90, 180],
                               frequency=[1, 2, 3, 4], monetary=[100, 300, 800, 2000])


def model_tags(member) -> dict[str, str]:
    """``{group code: tag code}`` of the member's model tags (RFM and lifecycle groups)."""
    held = MemberTag.objects.filter(member=member, tag__group__category__in=["model", "lifecycle"])
    return dict(held.values_list("tag__group__code", "tag__code"))


def tag_writes() -> tuple[int, int, int, int]:
    return (TagGroup.objects.count(), Tag.objects.count(), MemberTag.objects.count(),
            MemberTagChange.objects.count())


def test_a_recompute_gives_each_member_the_tags_of_their_class_and_stage(shop):
    member = make_member()
    buy(member, shop, 3, "80.00")

    with translation.override("en"):  # tags are shared data: named in the site's language
        recompute_models(now=NOW)

    assert model_tags(member) == {"rfm-brand-a": "rfm-brand-a-general-retain",
                                  "lifecycle-brand-a": "lifecycle-brand-a-new"}
    rfm = TagGroup.objects.get(code="rfm-brand-a")
    lifecycle = TagGroup.objects.get(code="lifecycle-brand-a")
    assert (rfm.category, rfm.exclusive, rfm.brand) == ("model", True, brand_of(shop))
    assert (lifecycle.category, lifecycle.exclusive, lifecycle.brand) == ("lifecycle", True, brand_of(shop))
    assert set(rfm.tags.values_list("name", flat=True)) == RFM_NAMES
    assert lifecycle.tags.count() == 5
    assert set(MemberTag.objects.values_list("source", "actor")) == {("model", "model:rfm"),
                                                                    ("model", "model:lifecycle")}


def test_the_tags_follow_the_class_and_the_stage_as_they_change(shop):
    thresholds(shop)
    member = make_member()
    buy(member, shop, 20, "50.00")
    buy(member, shop, 60, "50.00")
    recompute_models(now=NOW)
    before = model_tags(member)

    for days in (1, 2, 3):
        buy(member, shop, days, "500.00")  # recent, frequent, big: important value
    recompute_models(now=NOW)
    later = NOW + dt.timedelta(days=120)  # 121 days after the last order: silent
    recompute_models(now=later)

    assert before == {"rfm-brand-a": "rfm-brand-a-general-value", "lifecycle-brand-a": "lifecycle-brand-a-active"}
    assert model_tags(member) == {"rfm-brand-a": "rfm-brand-a-important-keep",
                                  "lifecycle-brand-a": "lifecycle-brand-a-silent"}
    history = list(MemberTagChange.objects.filter(member=member, tag__group__code="lifecycle-brand-a")
                   .order_by("id").values_list("tag__code", "action", "at"))
    assert history == [("lifecycle-brand-a-active", "added", NOW), ("lifecycle-brand-a-active", "removed", later),
                       ("lifecycle-brand-a-silent", "added", later)]
    assert [c for c in MemberTagChange.objects.filter(member=member, tag__group__code="rfm-brand-a")
            .order_by("id").values_list("tag__code", "action")] == [
        ("rfm-brand-a-general-value", "added"), ("rfm-brand-a-general-value", "removed"),
        ("rfm-brand-a-important-value", "added"), ("rfm-brand-a-important-value", "removed"),
        ("rfm-brand-a-important-keep", "added")]


def test_rerunning_any_recompute_writes_no_tag_and_no_history(shop):
    members = [make_member() for _ in range(4)]
    for i, member in enumerate(members):
        buy(member, shop, 10 + 60 * i, "100.00")
    recompute_models(now=NOW)
    written = tag_writes()

    recompute_models(now=NOW)
    recompute_models(member_ids=[m.pk for m in members], now=NOW)
    recompute_lifecycle(member_ids=[members[0].pk], now=NOW)
    sync_model_tags(now=NOW)

    assert tag_writes() == written == (2, 13, 8, 8)


def test_touched_members_get_the_tags_a_full_pass_gives(shop):
    thresholds(shop)
    members = [make_member() for _ in range(5)]
    for i, member in enumerate(members):
        for days in range(i + 1):
            buy(member, shop, 5 + 50 * days, "150.00")

    recompute_models(member_ids=[m.pk for m in members], now=NOW)  # touched path first
    touched = {m.pk: model_tags(m) for m in members}
    history = MemberTagChange.objects.count()
    recompute_models(now=NOW)

    assert {m.pk: model_tags(m) for m in members} == touched
    assert MemberTagChange.objects.count() == history == 10
    assert len({tags["rfm-brand-a"] for tags in touched.values()}) > 1


def test_a_member_who_loses_the_row_loses_the_tags(shop):
    member, other = make_member(), make_member()
    order = buy(member, shop, 3)
    buy(other, shop, 3)
    recompute_models(now=NOW)

    order.is_counted = False  # e.g. cancelled: no counted order left
    order.save(update_fields=["is_counted"])
    recompute_models(member_ids=[member.pk], now=NOW)

    assert not MemberRfm.objects.filter(member=member).exists()
    assert not MemberLifecycle.objects.filter(member=member).exists()
    assert model_tags(member) == {}
    assert set(model_tags(other)) == {"rfm-brand-a", "lifecycle-brand-a"}
    assert set(MemberTagChange.objects.filter(member=member, action="removed").values_list("tag__code", flat=True)) \
        == {"rfm-brand-a-general-retain", "lifecycle-brand-a-new"}


def test_a_merged_member_loses_its_tags_and_the_survivor_holds_one_per_group(shop):
    thresholds(shop)
    now = timezone.now()
    survivor, merged = make_member(), make_member()
    buy(survivor, shop, 100, "50.00", now=now)
    for days in (1, 2, 3, 4):
        buy(merged, shop, days, "900.00", now=now)
    recompute_models(now=now)
    assert model_tags(survivor) != model_tags(merged)

    merge_members(survivor_id=survivor.pk, merged_id=merged.pk, actor="test")

    assert model_tags(merged) == {}
    rfm_class = MemberRfm.objects.get(member=survivor).rfm_class  # recomputed by the next full pass
    stage = MemberLifecycle.objects.get(member=survivor).stage  # recomputed right away
    assert model_tags(survivor) == {"rfm-brand-a": f"rfm-brand-a-{rfm_class.replace('_', '-')}",
                                    "lifecycle-brand-a": f"lifecycle-brand-a-{stage}"}


def test_a_model_tag_changed_by_hand_is_put_back_by_the_next_pass(shop):
    member = make_member()
    buy(member, shop, 3)
    recompute_models(now=NOW)
    wrong = Tag.objects.get(code="rfm-brand-a-important-value")

    apply_tags(member_ids=[member.pk], tags=[wrong], source="manual", actor="user:ops")
    recompute_models(now=NOW)

    assert model_tags(member)["rfm-brand-a"] == "rfm-brand-a-general-retain"


def test_the_touched_path_costs_the_same_queries_for_one_member_or_a_hundred(shop):
    members = [make_member() for _ in range(100)]
    for member in members:
        buy(member, shop, 3)
    recompute_models(now=NOW)  # the groups exist; everyone holds their tags
    for member in members:
        buy(member, shop, 1)

    costs = []
    for batch in (members[:1], members[1:]):
        with CaptureQueriesContext(connection) as queries:
            recompute_lifecycle(member_ids=[m.pk for m in batch], now=NOW)
            sync_model_tags(member_ids=[m.pk for m in batch], kinds=["rfm"], now=NOW)
        costs.append(len(queries))

    assert costs[0] == costs[1]


def test_set_model_tags_with_a_mapping_names_each_members_tag_or_none():
    group = TagGroup.objects.create(code="score", name="分数", category="model", exclusive=True)
    high, low = (Tag.objects.create(group=group, code=c, name=c) for c in ("high", "low"))
    other = Tag.objects.create(group=TagGroup.objects.create(code="x", name="x"), code="x", name="x")
    a, b, c = make_member(), make_member(), make_member()
    set_model_tags(group=group, assignments={a.pk: high, b.pk: high, c.pk: low}, actor="model:test")

    result = set_model_tags(group=group, assignments={a.pk: low, b.pk: None}, actor="model:test")
    again = set_model_tags(group=group, assignments={a.pk: low, b.pk: None}, actor="model:test")

    assert (result.added, result.removed, again.added, again.removed, again.unchanged) == (1, 2, 0, 0, 1)
    assert dict(MemberTag.objects.values_list("member_id", "tag__code")) == {a.pk: "low", c.pk: "low"}
    with pytest.raises(ValidationError) as error:
        set_model_tags(group=group, assignments={a.pk: other}, actor="model:test")
    assert error.value.code == "wrong_group"
