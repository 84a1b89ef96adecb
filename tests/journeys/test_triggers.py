"""Triggers read the fact tables through cursors: only what happens after a journey goes live,
each fact once, filters applied, and a restart resumes where the cursor stopped."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from siyu.journeys.engine import tick
from siyu.journeys.models import Enrolment, TriggerCursor
from tests.journeys.conftest import at, live, local, member, template

pytestmark = pytest.mark.django_db

START = at("2026-06-30 12:00")
_numbers = itertools.count(1)


def journey_on(trigger: dict, **extra):
    n = next(_numbers)
    hello = template(f"hello-{n}")
    return live(f"on-{n}", {
        "trigger": trigger, "reentry": extra.pop("reentry", {"policy": "always"}),
        "steps": [{"key": "s", "kind": "send", "template_id": hello.pk}], **extra}, now=START)


def entered(journey) -> list[int]:
    return sorted(Enrolment.objects.filter(journey=journey).values_list("member_id", flat=True))


def test_joined_enrols_members_who_join_after_the_journey_went_live():
    before = member(joined=START - dt.timedelta(days=1))
    journey = journey_on({"kind": "joined"})
    after = member(joined=START)
    tick(now=START + dt.timedelta(minutes=1))
    tick(now=START + dt.timedelta(minutes=2))
    assert entered(journey) == [after.pk]
    assert before.pk not in entered(journey)


def test_days_after_joining_starts_the_steps_n_days_after_the_join():
    journey = journey_on({"kind": "days_after_joining", "days": 3})
    someone = member(joined=at("2026-06-30 11:00"))
    tick(now=START)
    enrolment = Enrolment.objects.get(journey=journey)
    assert (enrolment.member_id, local(enrolment.due_at)) == (someone.pk, at("2026-07-03 11:00"))


def test_order_placed_with_channel_amount_and_first_order_filters(pos, tmall):
    from tests.loyalty.conftest import buy

    big_first, small, online, repeat = member(), member(), member(), member()
    buy(repeat, "500.00", when=START - dt.timedelta(days=10))  # before the journey: not a trigger
    journey = journey_on({"kind": "order_placed", "channels": ["pos-sh-01"], "min_amount": "100",
                          "first_order": True})
    tick(now=START)
    buy(big_first, "120.00", when=START + dt.timedelta(hours=1))
    buy(small, "99.99", when=START + dt.timedelta(hours=1))
    buy(online, "300.00", channel="tmall", when=START + dt.timedelta(hours=1))
    buy(repeat, "500.00", when=START + dt.timedelta(hours=1))
    tick(now=START + dt.timedelta(hours=2))
    tick(now=START + dt.timedelta(hours=3))
    assert entered(journey) == [big_first.pk]
    cursor = TriggerCursor.objects.get(journey=journey)
    assert cursor.source == "trigger:order_placed" and cursor.position > 0


def test_each_event_enrols_again_under_always_but_once_under_once(pos):
    from tests.loyalty.conftest import event

    again = journey_on({"kind": "event", "event_kind": "check_in"})
    once = journey_on({"kind": "event", "event_kind": "store_visit"}, reentry={"policy": "once"})
    someone = member()
    tick(now=START)
    event(someone, "check_in", when=START)
    event(someone, "share", when=START)
    event(someone, "store_visit", when=START)
    tick(now=START + dt.timedelta(minutes=1))  # the check-in enrols, the journey completes at once
    event(someone, "check_in", when=START + dt.timedelta(hours=1))
    event(someone, "store_visit", when=START + dt.timedelta(hours=1))
    tick(now=START + dt.timedelta(hours=2))
    assert Enrolment.objects.filter(journey=again).count() == 2
    assert Enrolment.objects.filter(journey=once).count() == 1


def test_tag_added_enrols_holders_of_the_new_tag():
    from siyu.tags.models import Tag
    from siyu.tags.services import apply_tags, save_tag, save_tag_group

    group = save_tag_group(code="interest", name="兴趣")
    save_tag(code="mother-baby", group=group, name="母婴")
    save_tag(code="sports", group=group, name="运动")
    journey = journey_on({"kind": "tag_added", "tags": ["mother-baby"]})
    mum, runner = member(), member()
    apply_tags(member_ids=[mum.pk], tags=[Tag.objects.get(code="mother-baby")], source="manual")
    apply_tags(member_ids=[runner.pk], tags=[Tag.objects.get(code="sports")], source="manual")
    tick(now=START)
    assert entered(journey) == [mum.pk]


def test_lifecycle_and_tier_changes_enrol_from_their_history_tables():
    from siyu.analytics.models import ModelChange
    from tests.factories import make_brand, make_program, make_tier

    silent = journey_on({"kind": "lifecycle_changed", "values": ["silent"]})
    upgraded = journey_on({"kind": "tier_changed", "tiers": ["gold"]})
    quiet, active, vip = member(), member(), member()
    brand = make_brand()
    ModelChange.objects.create(member=quiet, brand=brand, kind="lifecycle", old_value="active", new_value="silent",
                               at=START)
    ModelChange.objects.create(member=active, brand=brand, kind="lifecycle", old_value="new", new_value="active",
                               at=START)
    from siyu.loyalty.models import TierChange

    program = make_program()
    TierChange.objects.create(program=program, member=vip, from_tier=make_tier(program, "silver", 1),
                              to_tier=make_tier(program, "gold", 2), reason="upgrade", changed_at=START)
    tick(now=START)
    assert entered(silent) == [quiet.pk]
    assert entered(upgraded) == [vip.pk]


def test_entering_a_tracked_segment_enrols():
    from siyu.segments.services import refresh_memberships, save_segment

    segment = save_segment(code="shanghai", name="上海会员", rule={"attr": "city", "op": "eq", "value": "上海"},
                           track_membership=True)
    journey = journey_on({"kind": "segment_entered", "segment": "shanghai"})
    sh = member(city="上海")
    member(city="北京")
    refresh_memberships(segments=[segment], now=START)
    tick(now=START)
    assert entered(journey) == [sh.pk]


def test_birthdays_are_scanned_once_per_business_day():
    journey = journey_on({"kind": "birthday", "days_before": 1})
    tomorrow = member(birthday=dt.date(1990, 7, 1))
    member(birthday=dt.date(1990, 7, 3))
    tick(now=START)  # today's scan (06-30) finds the birthdays of 07-01
    tick(now=START + dt.timedelta(hours=1))
    assert entered(journey) == [tomorrow.pk]
    next_day = member(birthday=dt.date(1985, 7, 2))
    tick(now=at("2026-07-01 00:30"))  # 07-01's scan: birthdays on 07-02
    late = member(birthday=dt.date(1985, 7, 2))
    tick(now=at("2026-07-01 09:00"))  # 07-01 is scanned already
    assert entered(journey) == [tomorrow.pk, next_day.pk]
    assert late.pk not in entered(journey)


def test_a_recurring_schedule_enrols_a_segment_snapshot_each_time_it_fires():
    from siyu.segments.services import save_segment

    save_segment(code="everyone", name="全部", rule={"attr": "city", "op": "ne", "value": "火星"})
    journey = journey_on({"kind": "schedule", "segment": "everyone", "at": "2026-07-01T10:00:00+08:00",
                          "every_days": 7})
    people = [member(city="上海") for _ in range(3)]
    tick(now=START)
    assert entered(journey) == []
    tick(now=at("2026-07-01 10:05"))
    tick(now=at("2026-07-01 11:00"))
    assert entered(journey) == sorted(p.pk for p in people)
    tick(now=at("2026-07-08 10:00"))
    assert Enrolment.objects.filter(journey=journey).count() == 6


def test_a_crash_while_entering_leaves_the_cursor_so_the_next_tick_enrols_them(monkeypatch):
    from siyu.journeys import triggers

    journey = journey_on({"kind": "joined"})
    people = [member(joined=START) for _ in range(3)]
    real = triggers.enrol

    def dies(**kwargs):
        real(**kwargs)
        raise RuntimeError("worker killed")

    monkeypatch.setattr(triggers, "enrol", dies)
    with pytest.raises(RuntimeError):
        tick(now=START)
    assert entered(journey) == []
    assert TriggerCursor.objects.get(journey=journey, source="trigger:joined").position < people[0].pk
    monkeypatch.setattr(triggers, "enrol", real)
    tick(now=START)
    tick(now=START)
    assert entered(journey) == sorted(p.pk for p in people)


def test_a_webhook_step_goes_through_messagings_webhook_channel():
    from siyu.messaging.models import OutboxMessage

    hook = template("crm-hook", channel="webhook", webhook_url="https://crm.example.com/hook")
    journey = live("hook", {"trigger": {"kind": "manual"},
                            "steps": [{"key": "h", "kind": "webhook", "template_id": hook.pk}]}, now=START)
    from siyu.journeys import services

    someone = member()
    services.enrol_members(journey=journey, member_ids=[someone.pk], entry_key="k", now=START)
    tick(now=START)
    message = OutboxMessage.objects.get(member=someone)
    assert (message.channel, message.purpose, message.status) == ("webhook", "service", "queued")
