"""Steps, branches, goals, control groups, versions and re-entry through tick(now=…)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from siyu.core.errors import Conflict
from siyu.journeys import services
from siyu.journeys.engine import tick
from siyu.journeys.models import Enrolment, EnrolmentState, StepLog
from siyu.journeys.timing import bucket
from tests.journeys.conftest import at, history, live, local, member, outbox, template

pytestmark = pytest.mark.django_db

START = at("2026-03-02 09:00")  # a Monday


def manual(steps: list[dict], **extra) -> dict:
    return {"trigger": {"kind": "manual"}, "reentry": {"policy": "always"}, "steps": steps, **extra}


def test_a_wait_until_a_time_of_day_in_quiet_hours_is_deferred_by_messaging():
    late = template("late-night")
    journey = live("night", manual([{"key": "w", "kind": "wait", "mode": "time_of_day", "at": "23:00"},
                                    {"key": "s", "kind": "send", "template_id": late.pk}]), now=START)
    someone = member()
    services.enrol_members(journey=journey, member_ids=[someone.pk], entry_key="k1", now=START)
    tick(now=START)
    assert outbox(member=someone) == []
    tick(now=at("2026-03-02 23:00"))
    [message] = outbox(member=someone)
    assert local(message.created_at) == at("2026-03-02 23:00")
    assert local(message.send_at) == at("2026-03-03 08:00")  # the end of quiet hours (22:00–08:00)


def test_a_send_window_holds_the_step_until_the_next_opening():
    promo = template("promo")
    journey = live("window", manual([{"key": "s", "kind": "send", "template_id": promo.pk,
                                      "window": {"hours": [14, 18], "weekdays": [6, 7]}}]), now=START)
    someone = member()
    services.enrol_members(journey=journey, member_ids=[someone.pk], entry_key="k1", now=START)
    tick(now=START)  # Monday 09:00: outside the window
    assert outbox(member=someone) == []
    enrolment = Enrolment.objects.get(member=someone)
    assert local(enrolment.due_at) == at("2026-03-07 14:00")  # Saturday 14:00
    tick(now=at("2026-03-07 14:00"))
    assert [local(m.created_at) for m in outbox(member=someone)] == [at("2026-03-07 14:00")]


def test_a_journey_send_window_applies_to_every_action():
    promo = template("promo")
    journey = live("window", manual([{"key": "s", "kind": "send", "template_id": promo.pk}],
                                    send_window={"hours": [10, 12]}), now=START)
    someone = member()
    services.enrol_members(journey=journey, member_ids=[someone.pk], entry_key="k1", now=START)
    tick(now=START)
    assert outbox(member=someone) == []
    tick(now=at("2026-03-02 10:00"))
    assert len(outbox(member=someone)) == 1


def test_a_condition_branches_members_by_a_segment_rule_evaluated_now():
    yes, no = template("shanghai"), template("elsewhere")
    journey = live("branch", manual([
        {"key": "c", "kind": "condition", "rule": {"attr": "city", "op": "eq", "value": "上海"}, "yes": "sy",
         "no": "sn"},
        {"key": "sy", "kind": "send", "template_id": yes.pk, "next": "exit"},
        {"key": "sn", "kind": "send", "template_id": no.pk}]), now=START)
    sh, bj = member(city="上海"), member(city="北京")
    services.enrol_members(journey=journey, member_ids=[sh.pk, bj.pk], entry_key="k1", now=START)
    tick(now=START)
    assert [m.template_id for m in outbox(member=sh)] == [yes.pk]
    assert [m.template_id for m in outbox(member=bj)] == [no.pk]
    assert history(Enrolment.objects.get(member=sh)) == [("c", "yes"), ("sy", "sent")]
    assert history(Enrolment.objects.get(member=bj)) == [("c", "no"), ("sn", "sent")]


def test_a_wait_for_a_condition_rechecks_and_times_out_on_its_branch():
    thanks, nudge = template("thanks"), template("nudge")
    journey = live("until", manual([
        {"key": "w", "kind": "wait", "mode": "condition", "rule": {"attr": "city", "op": "eq", "value": "上海"},
         "timeout_hours": 48, "check_minutes": 60, "timeout_next": "n"},
        {"key": "t", "kind": "send", "template_id": thanks.pk, "next": "exit"},
        {"key": "n", "kind": "send", "template_id": nudge.pk}]), now=START)
    mover, stayer = member(city="北京"), member(city="北京")
    services.enrol_members(journey=journey, member_ids=[mover.pk, stayer.pk], entry_key="k1", now=START)
    tick(now=START)
    assert local(Enrolment.objects.get(member=mover).due_at) == at("2026-03-02 10:00")  # re-checked hourly
    type(mover).objects.filter(pk=mover.pk).update(city="上海")
    tick(now=at("2026-03-02 10:00"))
    assert [m.template_id for m in outbox(member=mover)] == [thanks.pk]
    assert outbox(member=stayer) == []
    tick(now=at("2026-03-04 09:00"))  # 48 hours later
    assert [m.template_id for m in outbox(member=stayer)] == [nudge.pk]
    assert history(Enrolment.objects.get(member=stayer)) == [("w", "timed_out"), ("n", "sent")]


def test_an_ab_split_is_deterministic_per_member():
    a, b = template("a"), template("b")
    definition = manual([{"key": "ab", "kind": "split", "variants": [{"name": "A", "percent": 50, "next": "sa"},
                                                                      {"name": "B", "percent": 50, "next": "sb"}]},
                         {"key": "sa", "kind": "send", "template_id": a.pk, "next": "exit"},
                         {"key": "sb", "kind": "send", "template_id": b.pk}])
    journey = live("ab", definition, now=START)
    people = [member() for _ in range(60)]
    services.enrol_members(journey=journey, member_ids=[p.pk for p in people], entry_key="k1", now=START)
    tick(now=START)
    services.enrol_members(journey=journey, member_ids=[p.pk for p in people], entry_key="k2", now=START)
    tick(now=START + dt.timedelta(hours=1))
    variants = {}
    for person in people:
        sent = [m.template_id for m in outbox(member=person)]
        expected = a.pk if bucket(f"journey:{journey.pk}:ab", person.pk) < 50 else b.pk
        assert sent == [expected, expected]  # the same variant on both entries
        variants[person.pk] = expected
    assert 0 < sum(1 for v in variants.values() if v == a.pk) < 60
    assert StepLog.objects.filter(step="ab", detail="A").count() == 2 * sum(1 for v in variants.values() if v == a.pk)


def test_the_goal_exits_members_early_and_counts_as_conversion(pos):
    from tests.loyalty.conftest import buy

    first, second = template("first"), template("second")
    journey = live("goal", {"trigger": {"kind": "manual"}, "goal": {"kind": "order_placed", "within_days": 30},
                            "steps": [{"key": "s1", "kind": "send", "template_id": first.pk},
                                      {"key": "w", "kind": "wait", "mode": "duration", "days": 3},
                                      {"key": "s2", "kind": "send", "template_id": second.pk}]}, now=START)
    buyer, browser = member(), member()
    services.enrol_members(journey=journey, member_ids=[buyer.pk, browser.pk], entry_key="k1", now=START)
    tick(now=START)
    buy(buyer, "99.00", when=at("2026-03-03 12:00"))
    tick(now=at("2026-03-03 13:00"))
    tick(now=at("2026-03-05 09:00"))
    assert [m.template_id for m in outbox(member=buyer)] == [first.pk]
    assert [m.template_id for m in outbox(member=browser)] == [first.pk, second.pk]
    won = Enrolment.objects.get(member=buyer)
    assert (won.state, local(won.converted_at), won.exit_reason) == ("converted", at("2026-03-03 12:00"), "goal")
    assert Enrolment.objects.get(member=browser).state == "completed"


@override_settings(SIYU_MARKETING_CAP="off")
def test_a_control_group_is_held_out_deterministically_and_still_tracked_for_conversion(pos):
    from tests.loyalty.conftest import buy

    hello = template("hello")
    journey = live("ctl", {"trigger": {"kind": "manual"}, "control_pct": 20,
                           "goal": {"kind": "order_placed", "within_days": 30},
                           "steps": [{"key": "s", "kind": "send", "template_id": hello.pk}]}, now=START)
    people = [member() for _ in range(50)]
    services.enrol_members(journey=journey, member_ids=[p.pk for p in people], entry_key="k1", now=START)
    tick(now=START)
    held = [p for p in people if bucket(f"journey:{journey.pk}:control", p.pk) < 20]
    assert 0 < len(held) < 50
    for person in people:
        state = Enrolment.objects.get(member=person).state
        assert (state, len(outbox(member=person))) == (("control", 0) if person in held else ("completed", 1))
    buy(held[0], "10.00", when=at("2026-03-04 12:00"))
    tick(now=at("2026-03-04 13:00"))
    assert Enrolment.objects.get(member=held[0]).converted_at is not None


def test_editing_a_live_journey_makes_a_version_and_members_in_flight_finish_on_theirs():
    old, new = template("old"), template("new")
    journey = live("ver", manual([{"key": "w", "kind": "wait", "mode": "duration", "days": 1},
                                  {"key": "s", "kind": "send", "template_id": old.pk}]), now=START)
    early, later = member(), member()
    services.enrol_members(journey=journey, member_ids=[early.pk], entry_key="k1", now=START)
    tick(now=START)
    services.update_journey(journey=journey, definition=manual([
        {"key": "w", "kind": "wait", "mode": "duration", "days": 1},
        {"key": "s", "kind": "send", "template_id": new.pk}]), actor="test")
    journey.refresh_from_db()
    assert journey.current_version.number == 2
    services.enrol_members(journey=journey, member_ids=[later.pk], entry_key="k1", now=START + dt.timedelta(hours=1))
    tick(now=at("2026-03-03 12:00"))
    assert [m.template_id for m in outbox(member=early)] == [old.pk]
    assert [m.template_id for m in outbox(member=later)] == [new.pk]
    assert outbox(member=early)[0].source == f"journey:{journey.pk}:v1:step:s"


@pytest.mark.parametrize(("policy", "expected"), [("once", 1), ("always", 3), ("period", 2)])
def test_reentry_policies(policy, expected):
    hello = template("hello")
    reentry = {"policy": policy, "period_days": 10} if policy == "period" else {"policy": policy}
    journey = live("re", {"trigger": {"kind": "manual"}, "reentry": reentry,
                          "steps": [{"key": "s", "kind": "send", "template_id": hello.pk, "purpose": "service"}]},
                   now=START)
    someone = member()
    for n, day in enumerate((0, 3, 12)):
        moment = START + dt.timedelta(days=day)
        services.enrol_members(journey=journey, member_ids=[someone.pk], entry_key=f"k{n}", now=moment)
        tick(now=moment)
    assert Enrolment.objects.filter(member=someone).count() == expected
    assert len(outbox(member=someone)) == expected


def test_pause_holds_members_and_resume_catches_up_while_stop_exits_them():
    hello = template("hello")
    journey = live("pause", manual([{"key": "w", "kind": "wait", "mode": "duration", "hours": 1},
                                    {"key": "s", "kind": "send", "template_id": hello.pk}]), now=START)
    someone = member()
    services.enrol_members(journey=journey, member_ids=[someone.pk], entry_key="k1", now=START)
    tick(now=START)
    services.pause_journey(journey=journey, actor="test")
    tick(now=START + dt.timedelta(hours=2))
    assert outbox(member=someone) == []
    with pytest.raises(Conflict) as denied:
        services.enrol_members(journey=journey, member_ids=[someone.pk], entry_key="k2", now=START)
    assert denied.value.code == "journey_not_live"
    services.activate_journey(journey=journey, actor="test")
    tick(now=START + dt.timedelta(hours=3))
    assert len(outbox(member=someone)) == 1

    other = member()
    services.enrol_members(journey=journey, member_ids=[other.pk], entry_key="k3", now=START + dt.timedelta(hours=3))
    tick(now=START + dt.timedelta(hours=3))
    services.stop_journey(journey=journey, actor="test", now=START + dt.timedelta(hours=3, minutes=30))
    tick(now=START + dt.timedelta(hours=5))
    assert outbox(member=other) == []
    assert Enrolment.objects.get(member=other).state == EnrolmentState.EXITED
    assert Enrolment.objects.get(member=other).exit_reason == "stopped"
