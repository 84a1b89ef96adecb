"""The nightly run: claimed once per business day at its hour; every job brings time-based
facts up to date for everyone; a failing job is recorded and the others still run."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from siyu.analytics.models import MemberLifecycle
from siyu.core import nightly
from siyu.core.models import NightlyRun
from siyu.core.nightly import claim_due_run, run_nightly
from siyu.core.tasks import nightly as nightly_task
from siyu.segments.models import SegmentMembership
from siyu.segments.services import refresh_memberships, save_segment
from siyu.tags.models import MemberTag, Tag, TagGroup
from siyu.tags.services import apply_tags
from tests.analytics.conftest import brand_channel, buy
from tests.factories import make_member

pytestmark = pytest.mark.django_db

#: 2026-06-30 in Shanghai: 01:59 and 02:00 (UTC+8).
BEFORE_TWO = dt.datetime(2026, 6, 29, 17, 59, tzinfo=dt.UTC)
AT_TWO = dt.datetime(2026, 6, 29, 18, 0, tzinfo=dt.UTC)


def test_the_run_is_claimed_once_when_its_hour_comes(settings):
    settings.SIYU_NIGHTLY_AT = "02:00"

    early = claim_due_run(now=BEFORE_TWO)
    first = claim_due_run(now=AT_TWO)
    again = claim_due_run(now=AT_TWO + dt.timedelta(hours=3))

    assert early is None
    assert first is not None and first.day == dt.date(2026, 6, 30)
    assert again is None
    assert NightlyRun.objects.count() == 1


def test_nothing_is_claimed_when_the_schedule_is_off(settings):
    settings.SIYU_NIGHTLY_AT = "off"

    assert claim_due_run(now=AT_TWO) is None


def test_the_run_brings_what_time_changes_up_to_date():
    now = AT_TWO
    channel = brand_channel("brand-a")
    fading, fresh = make_member(), make_member()
    buy(fading, channel, 20, now=now - dt.timedelta(days=100))  # active then, silent by now
    buy(fresh, channel, 1, now=now)
    group = TagGroup.objects.create(code="camp", name="训练营")
    trial = Tag.objects.create(group=group, code="trial", name="试用")
    apply_tags(member_ids=[fading.pk], tags=[trial], source="manual", expires_at=now - dt.timedelta(hours=1),
               now=now - dt.timedelta(days=3))
    segment = save_segment(code="recent", name="近30天下单", track_membership=True, rule={
        "orders": {"window": {"last_days": 30}}, "measure": "count", "op": "gte", "value": 1})
    refresh_memberships(now=now - dt.timedelta(days=100))

    run = run_nightly(now=now)

    assert run.state == NightlyRun.State.DONE and run.day == dt.date(2026, 6, 30)
    assert set(run.results) == {key for key, _label, _path in nightly.JOBS}
    assert not MemberTag.objects.filter(member=fading, tag=trial).exists()
    assert MemberLifecycle.objects.get(member=fading).stage == "silent"
    assert MemberLifecycle.objects.get(member=fresh).stage == "new"
    left = SegmentMembership.objects.get(segment=segment, member=fading)
    assert left.left_at == now
    assert SegmentMembership.objects.get(segment=segment, member=fresh).left_at is None


def test_a_failing_job_is_recorded_and_the_others_still_run(monkeypatch):
    monkeypatch.setattr(nightly, "JOBS", [("broken", "broken", "siyu.core.time.no_such_function"),
                                          *nightly.JOBS])
    channel = brand_channel("brand-a")
    buy(make_member(), channel, 1, now=AT_TWO)

    run = run_nightly(now=AT_TWO)

    assert run.state == NightlyRun.State.FAILED
    assert "no_such_function" in run.results["broken"]["error"]
    assert run.results["models"]["lifecycle"] == 1


def test_the_worker_task_runs_the_claimed_day(settings):
    settings.SIYU_NIGHTLY_AT = "00:00"
    run = claim_due_run()

    results = nightly_task.call(run.pk)

    run.refresh_from_db()
    assert run.state == NightlyRun.State.DONE and run.finished_at is not None
    assert results == run.results


def test_the_command_runs_once_a_day_unless_asked_again():
    out = io.StringIO()
    call_command("nightly", stdout=out)
    first = NightlyRun.objects.get()

    call_command("nightly", stdout=out)
    assert NightlyRun.objects.get().started_at == first.started_at
    call_command("nightly", "--again", stdout=out)

    assert NightlyRun.objects.get().started_at > first.started_at
    assert "models:" in out.getvalue()


def test_the_command_fails_when_a_job_fails(monkeypatch):
    monkeypatch.setattr(nightly, "JOBS", [("broken", "broken", "siyu.core.time.no_such_function")])

    with pytest.raises(CommandError):
        call_command("nightly", stdout=io.StringIO())
