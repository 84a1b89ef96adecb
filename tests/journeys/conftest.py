"""Journey fixtures: reachable members, SMS templates and a fake clock driven through ``tick(now=…)``."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

import pytest

from siyu.journeys import services
from siyu.journeys.engine import tick
from siyu.journeys.models import Enrolment, Journey, StepLog
from tests.factories import make_member

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
_seq = itertools.count(1)


def at(text: str) -> dt.datetime:
    """An aware instant from Shanghai wall time: ``at("2026-03-02 10:00")``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(SHANGHAI)


def template(code: str, channel: str = "sms", **fields):
    from siyu.messaging.models import MessageTemplate

    return MessageTemplate.objects.create(code=code, name=code, channel=channel, body="{{ member_name }}，您好",
                                          provider_template="SMS_1", **fields)


def member(joined: dt.datetime | None = None, **fields):
    """A member reachable by SMS with marketing consent."""
    n = next(_seq)
    fields = {"name": f"会员{n}", "phone": f"1390000{n:04d}", "sms_consent": True, "marketing_consent": True,
              **fields}
    if joined is not None:
        fields["joined_at"] = joined
    return make_member(**fields)


def outbox(**filters) -> list:
    from siyu.messaging.models import OutboxMessage

    return list(OutboxMessage.objects.filter(**filters).order_by("created_at", "id"))


def live(code: str, definition: dict, *, now: dt.datetime, name: str = "旅程") -> Journey:
    journey = services.create_journey(code=code, name=name, definition=definition, actor="test")
    return services.activate_journey(journey=journey, actor="test", now=now)


def run(start: dt.datetime, end: dt.datetime, step: dt.timedelta = dt.timedelta(hours=6)) -> int:
    """Tick the fake clock from ``start`` to ``end`` (inclusive) every ``step``; returns the moves."""
    moved = 0
    now = start
    while now <= end:
        moved += tick(now=now)
        now += step
    return moved


def history(enrolment: Enrolment) -> list[tuple[str, str]]:
    return list(StepLog.objects.filter(enrolment=enrolment).order_by("at", "id").values_list("step", "outcome"))


#: The classic cadence (3/7/15/30 days, months 2/3/5 after joining) as one journey, sent at 10:00.
CADENCE = [3, 7, 15, 30, 60, 90, 150]


def cadence_definition(templates: dict[int, int], **extra) -> dict:
    steps = []
    for day in CADENCE:
        steps.append({"key": f"d{day}", "kind": "wait", "mode": "days_after_entry", "days": day, "at": "10:00"})
        steps.append({"key": f"m{day}", "kind": "send", "template_id": templates[day]})
    return {"trigger": {"kind": "joined"}, "steps": steps, **extra}


@pytest.fixture
def cadence_templates(db) -> dict[int, int]:
    return {day: template(f"day-{day}").pk for day in CADENCE}
