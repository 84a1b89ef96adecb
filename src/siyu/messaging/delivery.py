"""Delivery of the outbox through the channel adapters (``siyu worker`` calls ``deliver_due`` every 5 s).

A run claims due messages in small chunks: ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL,
MariaDB/MySQL; SQLite has one writer), sets them ``sending`` with a lease (``next_attempt_at`` =
now + :data:`LEASE`) and commits, so two workers never claim the same row. Each chunk is then
rendered and sent, and each adapter call's outcomes are committed right after it returns:

* sent / delivered → ``sent`` or ``delivered`` with the provider's id;
* a transient failure → ``queued`` again after an exponential backoff
  (:data:`BACKOFF_BASE` × 2^(attempts−1), at most :data:`BACKOFF_MAX`), the error kept as reason
  and detail; after :func:`max_attempts` attempts → ``failed``;
* a permanent failure → ``failed`` with the reason.

A worker that dies mid-chunk leaves rows ``sending`` whose lease runs out; the next run resolves
them per adapter: at-least-once channels (webhook, email: the receiver can recognise the
re-send by the delivery id / Message-ID) are queued again, at-most-once channels (WeCom, SMS: a
duplicate reaches a person) are failed with ``outcome_unknown``. Nothing is lost silently.

Consent, unsubscribes and reachability are checked again before sending (a deferred message may
wait for hours), and a marketing message that comes due inside quiet hours (after a retry) waits
for their end without using an attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from siyu.core.db import among, chunked
from siyu.members.models import ContactStatus, Identity, IdentityKind, WeComContact
from siyu.messaging.adapters import DELIVERED, FAILED, RETRY, SENT, Outcome, Prepared, adapter_for, setting
from siyu.messaging.models import Channel, OutboxMessage, Purpose, Reason, Status
from siyu.messaging.policy import quiet_hours
from siyu.messaging.rendering import check_template, render

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=10)
BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_MAX = dt.timedelta(hours=6)
CLAIM_CHUNK = 50  # the lease must cover a chunk even when every call times out (10 s each)
WECOM = (Channel.WECOM, Channel.WECOM_GROUP_SEND)


def max_attempts() -> int:
    return max(1, int(setting("SIYU_MESSAGING_MAX_ATTEMPTS", "5")))


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failed attempt: 1, 2, 4, 8 … minutes, at most 6 hours."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def deliver_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Send due outbox messages (at most ``limit``); returns how many were claimed."""
    now = now or timezone.now()
    _resolve_expired_leases(now)
    done = 0
    group_send_chunk = adapter_for(Channel.WECOM_GROUP_SEND).batch_size
    while done < limit:
        # group sends are claimed on their own so that one task carries many customers
        ids = _claim(now, min(group_send_chunk, limit - done), channels=[Channel.WECOM_GROUP_SEND])
        if not ids:
            ids = _claim(now, min(CLAIM_CHUNK, limit - done))
        if not ids:
            break
        done += len(ids)
        _deliver(ids, now)
    return done


def _resolve_expired_leases(now: dt.datetime) -> None:
    expired = OutboxMessage.objects.filter(status=Status.SENDING, next_attempt_at__lte=now)
    again = [c for c in Channel.values if adapter_for(c).at_least_once]
    with transaction.atomic():
        expired.filter(channel__in=again).update(status=Status.QUEUED, next_attempt_at=now)
        lost = expired.exclude(channel__in=again).update(
            status=Status.FAILED, reason=Reason.OUTCOME_UNKNOWN, next_attempt_at=None,
            detail="the worker stopped while sending; not re-sent (at-most-once channel)")
    if lost:
        logger.warning("messaging: %s messages failed with outcome_unknown after a worker stopped", lost)


def _claim(now: dt.datetime, size: int, *, channels: list[str] | None = None) -> list[int]:
    with transaction.atomic():
        due = OutboxMessage.objects.filter(status=Status.QUEUED, next_attempt_at__lte=now)
        due = due.filter(channel__in=channels) if channels else due.exclude(channel=Channel.WECOM_GROUP_SEND)
        if connection.vendor != "sqlite":
            due = due.select_for_update(skip_locked=True)
        ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:size])
        if ids:
            OutboxMessage.objects.filter(among("pk", ids)).update(
                status=Status.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
    return ids


def _wecom_senders(member_ids: list[int], guides: dict[int, int | None]) -> dict[int, tuple[str, str, str]]:
    """``{member_id: (staff userid, staff name, external_userid)}``, the owning guide's contact first."""
    if not member_ids:
        return {}
    contacts: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    rows = (WeComContact.objects.filter(among("member_id", member_ids), status=ContactStatus.ACTIVE,
                                        staff__is_active=True)
            .order_by("added_at", "pk").values_list("member_id", "staff_id", "staff__code", "staff__name"))
    for member_id, staff_id, code, name in rows:
        contacts[member_id].append((staff_id, code, name))
    external = dict(Identity.objects.filter(among("member_id", member_ids), kind=IdentityKind.WECOM)
                    .order_by("-pk").values_list("member_id", "value"))
    found = {}
    for member_id, options in contacts.items():
        own = [o for o in options if o[0] == guides.get(member_id)]
        _staff, code, name = (own or options)[0]
        found[member_id] = (code, name, external.get(member_id, ""))
    return found


def _loyalty(member, cache: dict) -> tuple[str, int | str]:
    """(tier name, points balance) in the program of the member's store's brand; blank without one."""
    from siyu.loyalty import selectors as loyalty

    brand = member.store.brand if member.store_id else None
    if brand is None:
        return "", ""
    if brand.pk not in cache:
        cache[brand.pk] = loyalty.program_for_brand(brand)
    program = cache[brand.pk]
    if program is None:
        return "", ""
    tier = loyalty.current_tier(member.pk, program)
    return (tier.name if tier else ""), loyalty.points_account(member.pk, program).balance


def _deliver(ids: list[int], now: dt.datetime) -> None:
    from siyu.messaging.services import _facts, _reachability

    messages = list(OutboxMessage.objects.filter(among("pk", ids))
                    .select_related("template", "member", "member__guide", "member__store__brand").order_by("pk"))
    member_ids = sorted({m.member_id for m in messages})
    facts = _facts(member_ids, sorted({m.member_id for m in messages if m.channel in WECOM}), {}, None)
    senders = _wecom_senders(sorted({m.member_id for m in messages if m.channel in WECOM}),
                             {m.member_id: m.member.guide_id for m in messages})
    hours = quiet_hours()
    used_by_template: dict[int, set[str]] = {}
    programs: dict = {}
    ready: dict[str, list[tuple[OutboxMessage, Prepared]]] = defaultdict(list)
    settled: dict[int, tuple[OutboxMessage, Outcome | tuple]] = {}
    for msg in messages:
        template, member = msg.template, msg.member
        if not template.is_active:
            settled[msg.pk] = (msg, ("suppress", Reason.TEMPLATE_INACTIVE))
            continue
        member_row = facts.members.get(msg.member_id)
        reason = _reachability(msg.channel, msg.purpose, member_row, msg.member_id, facts) if member_row else \
            Reason.UNREACHABLE
        if reason:
            settled[msg.pk] = (msg, ("suppress", reason))
            continue
        if msg.purpose == Purpose.MARKETING and hours and hours.contains(now):
            settled[msg.pk] = (msg, ("defer", hours.end_after(now)))
            continue
        html = msg.channel == Channel.EMAIL
        try:
            if template.pk not in used_by_template:
                used_by_template[template.pk] = check_template(template.body, html=html).variables
            used = used_by_template[template.pk]
            sender = senders.get(msg.member_id, ("", "", ""))
            guide_name = sender[1] if msg.channel in WECOM and sender[1] else (
                member.guide.name if member.guide_id else "")
            variables = {"member_name": member.name or member.code, "guide_name": guide_name,
                         "coupon_code": (msg.context or {}).get("coupon_code", "")}
            if used & {"tier", "points"}:
                variables["tier"], variables["points"] = _loyalty(member, programs)
            variables = {k: v for k, v in variables.items() if k in used}
            rendered = render(body=template.body, subject=template.subject, html=html, variables=variables)
        except Exception as error:  # a template that no longer renders must not stop the queue
            settled[msg.pk] = (msg, Outcome(FAILED, Reason.RENDER_ERROR, str(error)[:500]))
            continue
        ready[msg.channel].append((msg, Prepared(
            id=msg.pk, dedupe_key=msg.dedupe_key, member_id=msg.member_id, member_code=member.code,
            purpose=msg.purpose, rendered=rendered, variables=variables, template_code=template.code,
            provider_template=template.provider_template, webhook_url=template.webhook_url, phone=member.phone,
            email=member.email, sender=sender[0], external_userid=sender[2])))
    if settled:
        _record(list(settled.values()), now)
    for channel, items in ready.items():
        adapter = adapter_for(channel)
        for part in chunked(items, adapter.batch_size):
            try:
                outcomes = adapter.send([p for _m, p in part])
            except Exception as error:  # an adapter bug: retry later rather than lose the claim
                logger.exception("messaging: the %s adapter failed", channel)
                outcomes = {p.id: Outcome(RETRY, Reason.PROVIDER_ERROR, f"{type(error).__name__}: {error}"[:500])
                            for _m, p in part}
            for m, p in part:
                m.rendered = p.rendered.text
            _record([(m, outcomes.get(m.pk) or Outcome(RETRY, Reason.PROVIDER_ERROR, "no outcome"))
                     for m, _p in part], now)


def _record(results: list[tuple[OutboxMessage, Outcome | tuple]], now: dt.datetime) -> None:
    """Commit the outcomes of one adapter call (or of the messages settled before sending)."""
    limit = max_attempts()
    with transaction.atomic():
        for msg, outcome in results:
            still_ours = OutboxMessage.objects.filter(pk=msg.pk, status=Status.SENDING)
            if isinstance(outcome, tuple):
                kind, value = outcome
                if kind == "defer":
                    still_ours.update(status=Status.QUEUED, next_attempt_at=value, attempts=F("attempts") - 1)
                else:
                    still_ours.update(status=Status.SUPPRESSED, reason=value, next_attempt_at=None)
                continue
            fields = {"rendered": msg.rendered or "", "provider_id": outcome.provider_id,
                      "detail": outcome.detail, "reason": outcome.reason}
            if outcome.state == SENT:
                still_ours.update(status=Status.SENT, sent_at=now, next_attempt_at=None, **fields)
            elif outcome.state == DELIVERED:
                still_ours.update(status=Status.DELIVERED, sent_at=now, delivered_at=now, next_attempt_at=None,
                                  **fields)
            elif outcome.state == RETRY and msg.attempts < limit:  # attempts counts this one (claimed)
                still_ours.update(status=Status.QUEUED, next_attempt_at=now + backoff(msg.attempts), **fields)
            else:
                if outcome.state == RETRY:
                    fields["detail"] = f"gave up after {msg.attempts} attempts: {outcome.detail}"[:500]
                still_ours.update(status=Status.FAILED, next_attempt_at=None, **fields)
