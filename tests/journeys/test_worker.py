"""Crashes and concurrency: a batch is all or nothing, and two workers never do one step twice."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test import override_settings

from siyu.journeys import services, steps
from siyu.journeys.engine import tick
from siyu.journeys.models import Enrolment, StepLog
from tests.journeys.conftest import at, live, member, outbox, template

START = at("2026-03-02 10:00")


def three_sends() -> dict:
    return {"trigger": {"kind": "manual"},
            "steps": [{"key": "s1", "kind": "send", "template_id": template("one").pk, "purpose": "service"},
                      {"key": "s2", "kind": "send", "template_id": template("two").pk, "purpose": "service"},
                      {"key": "s3", "kind": "send", "template_id": template("three").pk, "purpose": "service"}]}


@pytest.mark.django_db
def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_nothing(monkeypatch):
    journey = live("crash", three_sends(), now=START)
    people = [member() for _ in range(10)]
    services.enrol_members(journey=journey, member_ids=[p.pk for p in people], entry_key="k", now=START)
    real_send = steps.ACTIONS["send"]
    calls = {"n": 0}

    def dies_on_the_fifth_send(step, items, ctx):
        calls["n"] += 1
        result = real_send(step, items, ctx)  # the outbox rows are written …
        if calls["n"] == 5:
            raise SystemExit("worker killed")  # … and the process dies before the batch commits
        return result

    monkeypatch.setitem(steps.ACTIONS, "send", dies_on_the_fifth_send)
    with pytest.raises(SystemExit):
        tick(now=START, batch_size=4)  # batch 1 (4 members × 3 sends) commits; batch 2 dies in its 2nd send
    assert sum(len(outbox(member=p)) for p in people) == 12
    assert Enrolment.objects.filter(state="active").count() == 6

    monkeypatch.setitem(steps.ACTIONS, "send", real_send)
    tick(now=START, batch_size=4)
    for person in people:
        assert [m.dedupe_key.rsplit(":", 1)[1] for m in outbox(member=person)] == ["s1", "s2", "s3"]
    assert StepLog.objects.count() == 30
    assert Enrolment.objects.filter(state="completed").count() == 10


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no row locks (SKIP LOCKED); it serialises "
                                                          "writers, and one worker per SQLite file is the setup")
@override_settings(SIYU_MARKETING_CAP="off")
def test_two_concurrent_workers_produce_no_duplicates():
    journey = live("race", {**three_sends(), "trigger": {"kind": "joined"}}, now=START)
    people = [member(joined=START) for _ in range(60)]
    start = threading.Barrier(2)
    errors: list = []

    def worker() -> None:
        try:
            start.wait()
            for _round in range(3):
                tick(now=START, batch_size=7)
        except BaseException as exc:  # handed back to the test
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Enrolment.objects.filter(journey=journey).count() == 60
    for person in people:
        assert [m.dedupe_key.rsplit(":", 1)[1] for m in outbox(member=person)] == ["s1", "s2", "s3"]
    assert StepLog.objects.count() == 180
