"""deliver_due: retries with backoff, giving up, crashed workers, checks at send time, concurrency."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.test import override_settings

from siyu.messaging.delivery import LEASE, backoff, deliver_due
from siyu.messaging.models import Channel, OutboxMessage, Reason, Status
from siyu.messaging.services import Outgoing, enqueue, unsubscribe
from tests.messaging.conftest import at, make_template, reachable_member

NOON = at("2026-03-02 12:00")
MINUTE = dt.timedelta(minutes=1)


def queue(member, template, key="k1", **fields):
    return enqueue(messages=[Outgoing(member_id=member.pk, template_id=template.pk, dedupe_key=key, **fields)],
                   now=NOON)[key].id


def test_backoff_doubles_from_one_minute_up_to_six_hours():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [MINUTE, 2 * MINUTE, 4 * MINUTE, 8 * MINUTE]
    assert backoff(20) == dt.timedelta(hours=6)


@pytest.mark.django_db
@override_settings(SIYU_MESSAGING_MAX_ATTEMPTS=3)
def test_transient_failures_are_retried_with_backoff_then_fail(webhook_server):
    webhook_server.next_answers = [(503, {"error": "down"})] * 3
    pk = queue(reachable_member(), make_template(Channel.WEBHOOK, webhook_url=webhook_server.url))
    moments = [NOON]
    for expected_wait in (MINUTE, 2 * MINUTE):
        assert deliver_due(now=moments[-1]) == 1
        row = OutboxMessage.objects.get(pk=pk)
        assert (row.status, row.reason) == (Status.QUEUED, Reason.PROVIDER_ERROR)
        assert row.next_attempt_at == moments[-1] + expected_wait
        assert deliver_due(now=row.next_attempt_at - dt.timedelta(seconds=1)) == 0  # not due yet
        moments.append(row.next_attempt_at)
    assert deliver_due(now=moments[-1]) == 1
    row = OutboxMessage.objects.get(pk=pk)
    assert (row.status, row.reason, row.attempts, row.next_attempt_at) == (
        Status.FAILED, Reason.PROVIDER_ERROR, 3, None)
    assert row.detail.startswith("gave up after 3 attempts: HTTP 503")
    assert deliver_due(now=moments[-1] + dt.timedelta(days=1)) == 0
    assert len(webhook_server.requests) == 3 and webhook_server.accepted == []


@pytest.mark.django_db
def test_a_retry_that_succeeds_is_delivered_once(webhook_server):
    webhook_server.next_answers = [(500, {"error": "oops"})]
    pk = queue(reachable_member(), make_template(Channel.WEBHOOK, webhook_url=webhook_server.url))
    deliver_due(now=NOON)
    deliver_due(now=NOON + MINUTE)
    row = OutboxMessage.objects.get(pk=pk)
    assert (row.status, row.attempts) == (Status.DELIVERED, 2)
    assert [a["delivery"] for a in webhook_server.accepted] == [str(pk)]


def _crash_mid_send(pk):
    """What a worker that died after claiming leaves behind: sending, with a lease."""
    OutboxMessage.objects.filter(pk=pk).update(status=Status.SENDING, attempts=1, next_attempt_at=NOON + LEASE)


@pytest.mark.django_db
def test_a_crashed_worker_s_sms_is_failed_as_outcome_unknown_not_sent_twice(sms_server):
    pk = queue(reachable_member(), make_template(Channel.SMS, provider_template="SMS_1"))
    _crash_mid_send(pk)
    assert deliver_due(now=NOON + MINUTE) == 0  # lease still running: nobody touches it
    assert OutboxMessage.objects.get(pk=pk).status == Status.SENDING
    deliver_due(now=NOON + LEASE)
    row = OutboxMessage.objects.get(pk=pk)
    assert (row.status, row.reason) == (Status.FAILED, Reason.OUTCOME_UNKNOWN)
    assert sms_server.sent == []


@pytest.mark.django_db
def test_a_crashed_worker_s_webhook_is_sent_again_with_the_same_delivery_id(webhook_server):
    pk = queue(reachable_member(), make_template(Channel.WEBHOOK, webhook_url=webhook_server.url))
    _crash_mid_send(pk)
    assert deliver_due(now=NOON + LEASE) == 1
    row = OutboxMessage.objects.get(pk=pk)
    assert (row.status, row.attempts) == (Status.DELIVERED, 2)
    assert [a["delivery"] for a in webhook_server.accepted] == [str(pk)]


@pytest.mark.django_db
@override_settings(SIYU_QUIET_HOURS="22:00-08:00")
def test_a_marketing_retry_due_in_quiet_hours_waits_for_eight(webhook_server):
    pk = queue(reachable_member(), make_template(Channel.WEBHOOK, webhook_url=webhook_server.url))
    OutboxMessage.objects.filter(pk=pk).update(next_attempt_at=at("2026-03-02 23:00"))
    assert deliver_due(now=at("2026-03-02 23:00")) == 1
    row = OutboxMessage.objects.get(pk=pk)
    assert (row.status, row.attempts, row.next_attempt_at) == (Status.QUEUED, 0, at("2026-03-03 08:00"))
    assert webhook_server.requests == []


@pytest.mark.django_db
def test_consent_withdrawn_before_sending_suppresses_the_message(sms_server):
    member = reachable_member()
    sms = make_template(Channel.SMS, provider_template="SMS_1")
    first, second = queue(member, sms, "a"), queue(member, sms, "b", purpose="service")
    member.sms_consent = False
    member.save()
    deliver_due(now=NOON)
    rows = OutboxMessage.objects.in_bulk([first, second])
    assert [(rows[p].status, rows[p].reason) for p in (first, second)] == [
        (Status.SUPPRESSED, Reason.NO_CONSENT), (Status.SUPPRESSED, Reason.NO_CONSENT)]
    assert sms_server.sent == []


@pytest.mark.django_db
def test_unsubscribing_before_sending_suppresses_marketing(webhook_server):
    member = reachable_member()
    pk = queue(member, make_template(Channel.WEBHOOK, webhook_url=webhook_server.url))
    unsubscribe(member_ids=[member.pk], channel=Channel.WEBHOOK, source="test")
    deliver_due(now=NOON)
    row = OutboxMessage.objects.get(pk=pk)
    assert (row.status, row.reason) == (Status.SUPPRESSED, Reason.UNSUBSCRIBED)


@pytest.mark.django_db
def test_a_switched_off_template_suppresses_its_queued_messages(webhook_server):
    template = make_template(Channel.WEBHOOK, webhook_url=webhook_server.url)
    pk = queue(reachable_member(), template)
    template.is_active = False
    template.save()
    deliver_due(now=NOON)
    assert OutboxMessage.objects.filter(pk=pk).values_list("status", "reason").get() == (
        Status.SUPPRESSED, Reason.TEMPLATE_INACTIVE)


@pytest.mark.django_db
def test_messages_not_yet_due_stay_queued(webhook_server):
    pk = queue(reachable_member(), make_template(Channel.WEBHOOK, webhook_url=webhook_server.url),
               not_before=NOON + dt.timedelta(hours=2))
    assert deliver_due(now=NOON + dt.timedelta(hours=1)) == 0
    assert deliver_due(now=NOON + dt.timedelta(hours=2)) == 1
    assert OutboxMessage.objects.get(pk=pk).status == Status.DELIVERED


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has one writer: no concurrent deliverers")
@override_settings(SIYU_MARKETING_CAP="off")
def test_two_concurrent_deliverers_send_each_message_once(webhook_server):
    template = make_template(Channel.WEBHOOK, webhook_url=webhook_server.url)
    members = [reachable_member() for _ in range(12)]
    enqueue(messages=[Outgoing(member_id=m.pk, template_id=template.pk, dedupe_key=f"c{m.pk}-{i}")
                      for m in members for i in range(10)], now=NOON)
    barrier = threading.Barrier(2)
    claimed: list[int] = []

    def worker():
        try:
            barrier.wait()
            claimed.append(deliver_due(now=NOON, limit=1000))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deliveries = [a["delivery"] for a in webhook_server.accepted]
    assert sum(claimed) == 120
    assert len(deliveries) == 120 and len(set(deliveries)) == 120
    assert OutboxMessage.objects.filter(status=Status.DELIVERED).count() == 120
