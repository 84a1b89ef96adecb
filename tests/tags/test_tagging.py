"""Tagging: exclusive groups, idempotency, history, rule tags, identity lists, scope, expiry."""

import datetime as dt

import pytest
from django.utils import timezone

from siyu.core.errors import PermissionDenied, ValidationError
from siyu.members.services import upsert_members
from siyu.org.models import Role, Scope
from siyu.segments.compiler import compile_rule
from siyu.segments.rules import parse_rule
from siyu.tags.models import MemberTag, MemberTagChange, Tag, TagGroup
from siyu.tags.services import (
    apply_tags,
    expire_tags,
    refresh_rule_tags,
    tag_identities,
    tag_member_as_staff,
)
from tests.factories import make_member, make_staff, make_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def stage_group():
    group = TagGroup.objects.create(code="stage", name="阶段", category="lifecycle", exclusive=True)
    return group, Tag.objects.create(group=group, code="pregnant", name="孕期"), \
        Tag.objects.create(group=group, code="newborn", name="新生儿")


def _held(member):
    return sorted(MemberTag.objects.filter(member=member).values_list("tag__code", flat=True))


def test_an_exclusive_group_keeps_one_tag_and_history_says_why(stage_group):
    _, pregnant, newborn = stage_group
    m = make_member()
    apply_tags(member_ids=[m.pk], tags=[pregnant], source="manual", actor="user:ops")
    apply_tags(member_ids=[m.pk], tags=[newborn], source="manual", actor="user:ops")

    assert _held(m) == ["newborn"]
    changes = list(MemberTagChange.objects.filter(member=m).order_by("id").values_list("tag__code", "action"))
    assert changes == [("pregnant", "added"), ("pregnant", "removed"), ("newborn", "added")]


def test_two_tags_of_one_exclusive_group_at_once_are_refused(stage_group):
    _, pregnant, newborn = stage_group
    m = make_member()
    with pytest.raises(ValidationError) as error:
        apply_tags(member_ids=[m.pk], tags=[pregnant, newborn], source="manual")
    assert error.value.code == "exclusive_conflict"
    assert _held(m) == []


def test_reapplying_a_tag_changes_nothing(stage_group):
    _, pregnant, _ = stage_group
    m = make_member()
    apply_tags(member_ids=[m.pk], tags=[pregnant], source="manual")
    result = apply_tags(member_ids=[m.pk, m.pk], tags=[pregnant], source="manual")
    assert (result.added, result.unchanged) == (0, 1)
    assert MemberTagChange.objects.count() == 1


def test_tagging_an_uploaded_list_reports_unmatched_rows():
    upsert_members(rows=[{"phone": "13800138001"}, {"nick": "tb_mama"}], source="test")
    group = TagGroup.objects.create(code="interest", name="兴趣")
    tag = Tag.objects.create(group=group, code="mother-baby", name="母婴")

    result = tag_identities(identities=["13800138001", "nick:tb_mama", "13900000000", "phone:12", ""], tags=[tag])

    assert result.added == 2
    assert [(u["row"], u["value"]) for u in result.unmatched] == [(3, "13900000000"), (4, "phone:12")]


def test_a_guide_tags_only_their_own_customers():
    group = TagGroup.objects.create(code="personal", name="个性")
    tag = Tag.objects.create(group=group, code="vip-care", name="重点关怀")
    store = make_store()
    guide = make_staff("g1", role=Role.GUIDE, store=store)
    assert guide.data_scope == Scope.OWN
    mine, theirs = make_member(guide=guide), make_member()

    tag_member_as_staff(staff=guide, member=mine, tags=[tag])
    with pytest.raises(PermissionDenied):
        tag_member_as_staff(staff=guide, member=theirs, tags=[tag])

    assert _held(mine) == ["vip-care"] and _held(theirs) == []
    assert MemberTag.objects.get(member=mine).applied_by == guide


def test_rule_tags_follow_their_rule_and_both_paths_agree():
    group = TagGroup.objects.create(code="auto", name="自动")
    shanghai = Tag.objects.create(group=group, code="sh", name="上海会员",
                                  rule={"attr": "city", "op": "eq", "value": "上海"})
    a, b, c = make_member(city="上海"), make_member(city="杭州"), make_member(city="上海")
    refresh_rule_tags()
    assert set(MemberTag.objects.filter(tag=shanghai).values_list("member_id", flat=True)) == {a.pk, c.pk}

    b.city, c.city = "上海", "北京"
    b.save(), c.save()
    refresh_rule_tags(member_ids=[b.pk, c.pk])  # the real-time path: just the touched members
    touched = set(MemberTag.objects.filter(tag=shanghai).values_list("member_id", flat=True))
    refresh_rule_tags()  # the nightly path
    assert touched == set(MemberTag.objects.filter(tag=shanghai).values_list("member_id", flat=True)) == {a.pk, b.pk}

    with pytest.raises(ValidationError) as error:
        apply_tags(member_ids=[c.pk], tags=[shanghai], source="manual")
    assert error.value.code == "rule_tag"


def test_an_expired_tag_no_longer_matches_and_is_removed_nightly(stage_group):
    _, pregnant, _ = stage_group
    m = make_member()
    apply_tags(member_ids=[m.pk], tags=[pregnant], source="manual",
               expires_at=timezone.now() - dt.timedelta(minutes=1))
    holding = compile_rule(parse_rule({"tags": "any", "value": ["pregnant"]}))
    assert not type(m).objects.filter(holding).exists()

    assert expire_tags() == 1
    assert _held(m) == []
    assert MemberTagChange.objects.filter(member=m, action="removed", actor="expiry").exists()
