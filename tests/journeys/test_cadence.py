"""The 3/7/15/30-day, month 2/3/5 cadence as one journey, driven by a fake clock."""

from __future__ import annotations

import datetime as dt

import pytest

from siyu.journeys.engine import tick
from siyu.journeys.models import Enrolment, EnrolmentState
from tests.journeys.conftest import CADENCE, at, cadence_definition, live, local, member, outbox, run

pytestmark = pytest.mark.django_db


def test_each_member_gets_each_cadence_message_once_on_its_day_in_order(cadence_templates):
    start = at("2026-03-01 00:00")
    live("cadence", cadence_definition(cadence_templates), now=start)
    early = member(joined=at("2026-03-01 09:00"))
    late = member(joined=at("2026-03-01 23:30"))  # joins late in the evening: its day 3 is 03-04

    run(start + dt.timedelta(hours=1), at("2026-08-05 00:00"))

    by_template = {pk: day for day, pk in cadence_templates.items()}
    for who, joined_day in ((early, dt.date(2026, 3, 1)), (late, dt.date(2026, 3, 1))):
        sent = outbox(member=who)
        assert [by_template[m.template_id] for m in sent] == CADENCE
        assert [local(m.send_at).date() for m in sent] == [joined_day + dt.timedelta(days=d) for d in CADENCE]
        assert all(m.status == "queued" for m in sent)
        assert all(10 <= local(m.send_at).hour < 16 for m in sent)  # at the first tick from 10:00
    assert Enrolment.objects.filter(state=EnrolmentState.COMPLETED).count() == 2


def test_replayed_ticks_send_nothing_twice(cadence_templates):
    start = at("2026-03-01 00:00")
    live("cadence", cadence_definition(cadence_templates), now=start)
    someone = member(joined=at("2026-03-01 12:00"))
    moment = at("2026-03-04 10:00")
    run(start + dt.timedelta(hours=13), moment - dt.timedelta(hours=1))
    assert outbox(member=someone) == []
    assert tick(now=moment) == 2  # the wait ends, the message is queued
    assert len(outbox(member=someone)) == 1
    for _again in range(3):
        assert tick(now=moment) == 0
    assert len(outbox(member=someone)) == 1


def test_a_late_tick_catches_up_in_order(cadence_templates):
    start = at("2026-03-01 00:00")
    live("cadence", cadence_definition(cadence_templates), now=start)
    someone = member(joined=at("2026-03-01 12:00"))
    tick(now=at("2026-03-01 13:00"))
    tick(now=at("2026-03-20 11:00"))  # the worker was down for 19 days

    by_template = {pk: day for day, pk in cadence_templates.items()}
    assert [by_template[m.template_id] for m in outbox(member=someone)] == [3, 7, 15]
    enrolment = Enrolment.objects.get(member=someone)
    assert (enrolment.step, local(enrolment.due_at)) == ("d30", at("2026-03-31 10:00"))


def test_the_cadence_helper_builds_the_same_journey(cadence_templates):
    from siyu.journeys.services import cadence_definition as build

    start = at("2026-03-01 00:00")
    live("helper", build(template_ids=cadence_templates), now=start)
    someone = member(joined=at("2026-03-01 12:00"))
    run(start + dt.timedelta(hours=13), at("2026-04-01 00:00"))
    by_template = {pk: day for day, pk in cadence_templates.items()}
    assert [by_template[m.template_id] for m in outbox(member=someone)] == [3, 7, 15, 30]
