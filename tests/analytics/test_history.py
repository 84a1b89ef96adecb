"""Class and stage changes are recorded once; a recompute that changes nothing records nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from siyu.analytics.models import MemberLifecycle, MemberRfm, ModelChange, RfmMethod, RfmSettings
from siyu.analytics.services import recompute_models
from siyu.members.merge import merge_members
from tests.analytics.conftest import NOW, brand_of, buy
from tests.factories import make_member

pytestmark = pytest.mark.django_db


def changes() -> list[tuple]:
    return list(ModelChange.objects.order_by("id").values_list("member_id", "kind", "old_value", "new_value", "at"))


def test_the_first_assignment_is_recorded_and_repeating_the_recompute_records_nothing(shop):
    member = make_member()
    buy(member, shop, 3, "80.00")

    first = recompute_models(now=NOW)
    rows = list(MemberRfm.objects.values_list("last_order_at", "rfm_class", "computed_at"))
    again = recompute_models(now=NOW)

    assert (first.rfm_changes, first.lifecycle_changes) == (1, 1)
    assert (again.rfm, again.lifecycle, again.rfm_changes, again.lifecycle_changes) == (1, 1, 0, 0)
    assert changes() == [(member.pk, "rfm", "", "general_retain", NOW), (member.pk, "lifecycle", "", "new", NOW)]
    assert list(MemberRfm.objects.values_list("last_order_at", "rfm_class", "computed_at")) == rows
    assert MemberLifecycle.objects.get().brand == brand_of(shop)


def test_time_passing_moves_the_stage_and_records_the_change(shop):
    member = make_member()
    buy(member, shop, 20)
    buy(member, shop, 60)
    recompute_models(now=NOW)
    later = NOW + dt.timedelta(days=80)  # 100 days since the last order: silent

    result = recompute_models(now=later)

    assert result.lifecycle_changes == 1
    assert changes()[-1] == (member.pk, "lifecycle", "active", "silent", later)
    assert MemberRfm.objects.get().recency_days_at(later) == 100


def test_a_new_order_changes_the_class_once_whichever_path_runs_first(shop):
    RfmSettings.objects.create(brand=brand_of(shop), method=RfmMethod.THRESHOLDS, recency_days=[7, 30, 90, 180],
                               frequency=[1, 2, 3, 4], monetary=[100, 300, 800, 2000])
    regular, newcomer = make_member(), make_member()
    for days in (5, 30, 60):
        buy(regular, shop, days, "300.00")
    buy(newcomer, shop, 200, "10.00")
    recompute_models(now=NOW)
    before = dict(MemberRfm.objects.values_list("member_id", "rfm_class"))

    for days in (1, 2, 3, 4):
        buy(newcomer, shop, days, "500.00")
    touched = recompute_models(member_ids=[newcomer.pk], now=NOW)
    everyone = recompute_models(now=NOW)

    assert before == {regular.pk: "important_value", newcomer.pk: "general_retain"}
    assert dict(MemberRfm.objects.values_list("member_id", "rfm_class")) == {
        regular.pk: "important_value", newcomer.pk: "important_value"}
    assert (touched.rfm, touched.rfm_changes, everyone.rfm, everyone.rfm_changes) == (1, 1, 2, 0)
    assert [c[:4] for c in changes() if c[1] == "rfm" and c[2]] == [
        (newcomer.pk, "rfm", "general_retain", "important_value")]


def test_a_merge_moves_the_history_to_the_survivor(shop):
    survivor, merged = make_member(), make_member()
    buy(survivor, shop, 3)
    buy(merged, shop, 5)
    recompute_models(now=NOW)

    merge_members(survivor_id=survivor.pk, merged_id=merged.pk, actor="test")

    assert not ModelChange.objects.filter(member_id=merged.pk).exists()
    assert ModelChange.objects.filter(member=survivor, old_value="").count() == 4  # both members' first values
