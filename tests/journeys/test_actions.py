"""Actions other than messages: coupons, tags, points and guide tasks, each once per member and step."""

from __future__ import annotations

import pytest

from siyu.journeys import services
from siyu.journeys.engine import tick
from siyu.journeys.models import Enrolment, GuideTask, StepLog
from tests.factories import make_program, make_staff
from tests.journeys.conftest import at, history, live, member

pytestmark = pytest.mark.django_db

START = at("2026-06-30 12:00")


def manual(steps: list[dict]) -> dict:
    return {"trigger": {"kind": "manual"}, "reentry": {"policy": "always"}, "steps": steps}


def test_a_coupon_step_issues_one_coupon_per_member_and_logs_it(pos):
    from siyu.loyalty.coupon_models import Coupon
    from tests.loyalty.coupon_fixtures import make_template

    program = make_program()
    make_template("welcome-10", program=program)
    journey = live("coupon", manual([{"key": "c", "kind": "coupon", "template": "welcome-10"}]), now=START)
    people = [member(store=pos.store) for _ in range(3)]
    services.enrol_members(journey=journey, member_ids=[p.pk for p in people], entry_key="k1", now=START)
    tick(now=START)
    tick(now=START)
    assert sorted(Coupon.objects.values_list("member_id", flat=True)) == sorted(p.pk for p in people)
    assert [history(e) for e in Enrolment.objects.order_by("pk")] == [[("c", "done")]] * 3


def test_a_missing_coupon_template_skips_the_step_with_the_reason_instead_of_stalling():
    journey = live("coupon", manual([{"key": "c", "kind": "coupon", "template": "gone"}]), now=START)
    someone = member()
    services.enrol_members(journey=journey, member_ids=[someone.pk], entry_key="k1", now=START)
    tick(now=START)
    log = StepLog.objects.get(member_id=someone.pk)
    assert (log.outcome, log.detail.split(":")[0]) == ("skipped", "unknown_template")
    assert Enrolment.objects.get(member=someone).state == "completed"


def test_tag_steps_add_and_remove_tags():
    from siyu.tags.models import MemberTag, Tag
    from siyu.tags.services import apply_tags, save_tag, save_tag_group

    group = save_tag_group(code="journey", name="旅程")
    save_tag(code="welcomed", group=group, name="已欢迎")
    save_tag(code="new-member", group=group, name="新会员")
    journey = live("tags", manual([{"key": "a", "kind": "tag_add", "tags": ["welcomed"]},
                                   {"key": "r", "kind": "tag_remove", "tags": ["new-member"]}]), now=START)
    someone = member()
    apply_tags(member_ids=[someone.pk], tags=[Tag.objects.get(code="new-member")], source="manual")
    services.enrol_members(journey=journey, member_ids=[someone.pk], entry_key="k1", now=START)
    tick(now=START)
    assert list(MemberTag.objects.filter(member=someone).values_list("tag__code", flat=True)) == ["welcomed"]


def test_a_points_step_grants_points_once_per_member(pos):
    from siyu.loyalty.models import PointsAccount, PointsEntry

    make_program()
    journey = live("points", manual([{"key": "p", "kind": "points", "program": "vip", "amount": 50,
                                      "reason": "入会礼"}]), now=START)
    people = [member(store=pos.store) for _ in range(2)]
    services.enrol_members(journey=journey, member_ids=[p.pk for p in people], entry_key="k1", now=START)
    tick(now=START)
    tick(now=START)
    assert sorted(PointsAccount.objects.values_list("member_id", "balance")) == sorted((p.pk, 50) for p in people)
    assert PointsEntry.objects.filter(reason="入会礼").count() == 2


def test_a_guide_task_lands_in_the_owning_guides_inbox():
    guide = make_staff("g-1")
    journey = live("task", manual([{"key": "t", "kind": "guide_task", "title": "回访新会员", "due_days": 2}]),
                   now=START)
    owned, orphan = member(guide=guide), member()
    services.enrol_members(journey=journey, member_ids=[owned.pk, orphan.pk], entry_key="k1", now=START)
    tick(now=START)
    task = GuideTask.objects.get()
    assert (task.guide_id, task.member_id, task.title, task.status) == (guide.pk, owned.pk, "回访新会员", "open")
    assert task.due_at == at("2026-07-02 12:00")
    assert StepLog.objects.get(member_id=orphan.pk).detail == "no_guide"
