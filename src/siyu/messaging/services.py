"""Messaging writes: enqueue messages into the outbox (policy decided set-based), unsubscribe.

``enqueue`` is the one door into the outbox. It decides, for a whole batch in a handful of
queries, whether each message is queued or suppressed (with a reason), and writes one outbox
row per dedupe key either way, so a member's history shows what was *not* sent and why.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.db import among, chunked, insert_rows, note_bulk_write, update_rows
from siyu.core.errors import BatchTooLarge, ValidationError
from siyu.members.models import ContactStatus, Member, MemberStatus, WeComContact
from siyu.messaging.models import (
    Channel,
    MessageTemplate,
    OutboxMessage,
    Purpose,
    QuietHoursAction,
    Reason,
    Status,
    Unsubscribe,
)
from siyu.messaging.policy import Cap, marketing_cap, quiet_hours

__all__ = ["Channel", "EnqueueResult", "Enqueued", "Outgoing", "Purpose", "Reason", "Receipt", "Status", "enqueue",
           "record_receipts", "resubscribe", "unsubscribe"]

MAX_BATCH = 10_000
MAX_KEY = 200
MAX_SOURCE = 100
#: Rows that still count toward the frequency cap (a failed or suppressed message reached no one).
CAP_STATUSES = (Status.QUEUED, Status.SENDING, Status.SENT, Status.DELIVERED)

_COLUMNS = ("member_id", "template_id", "channel", "purpose", "dedupe_key", "source", "context", "status",
            "reason", "detail", "created_at", "send_at", "next_attempt_at", "attempts", "provider_id", "rendered")


@dataclass(frozen=True)
class Outgoing:
    """One message to enqueue: who, with which template, and its idempotency key."""

    member_id: int
    template_id: int
    dedupe_key: str
    purpose: str = Purpose.MARKETING
    context: dict = field(default_factory=dict)
    source: str = ""
    not_before: dt.datetime | None = None


@dataclass(frozen=True)
class Enqueued:
    """The outcome for one dedupe key: the outbox row (``id`` is None when ``status`` is ``rejected``)."""

    id: int | None
    status: str
    reason: str = ""
    created: bool = False
    send_at: dt.datetime | None = None


@dataclass
class EnqueueResult:
    by_key: dict[str, Enqueued]
    created: int = 0
    duplicates: int = 0

    def __getitem__(self, key: str) -> Enqueued:
        return self.by_key[key]

    def __len__(self) -> int:
        return len(self.by_key)

    @property
    def queued(self) -> int:
        return sum(1 for e in self.by_key.values() if e.created and e.status == Status.QUEUED)

    @property
    def suppressed(self) -> dict[str, int]:
        """``{reason: count}`` of the rows this call created as suppressed."""
        counts: dict[str, int] = defaultdict(int)
        for e in self.by_key.values():
            if e.created and e.status == Status.SUPPRESSED:
                counts[e.reason] += 1
        return dict(counts)


REJECTED = "rejected"  # status of a key that got no row (unknown member)


def _validate(messages: Sequence[Outgoing]) -> None:
    if len(messages) > MAX_BATCH:
        raise BatchTooLarge(_("at most %(n)s messages per call") % {"n": MAX_BATCH}, field="messages")
    purposes = set(Purpose.values)
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg.dedupe_key, str) or not msg.dedupe_key.strip():
            raise ValidationError(_("a dedupe key is required"), code="required", field=f"{where}.dedupe_key")
        if len(msg.dedupe_key) > MAX_KEY:
            raise ValidationError(_("at most %(n)s characters") % {"n": MAX_KEY}, code="too_long",
                                  field=f"{where}.dedupe_key")
        if len(msg.source or "") > MAX_SOURCE:
            raise ValidationError(_("at most %(n)s characters") % {"n": MAX_SOURCE}, code="too_long",
                                  field=f"{where}.source")
        if msg.purpose not in purposes:
            raise ValidationError(_("purpose must be one of %(v)s") % {"v": ", ".join(purposes)},
                                  code="invalid_choice", field=f"{where}.purpose")
        if not isinstance(msg.member_id, int) or isinstance(msg.member_id, bool):
            raise ValidationError(_("a member id (integer) is required"), code="invalid", field=f"{where}.member_id")
        if not isinstance(msg.template_id, int) or isinstance(msg.template_id, bool):
            raise ValidationError(_("a template id (integer) is required"), code="invalid",
                                  field=f"{where}.template_id")
        if msg.not_before is not None and timezone.is_naive(msg.not_before):
            raise ValidationError(_("not_before must be timezone-aware"), code="naive_datetime",
                                  field=f"{where}.not_before")
        if not isinstance(msg.context, dict):
            raise ValidationError(_("context must be an object"), code="invalid", field=f"{where}.context")
        if msg.context:
            try:
                json.dumps(msg.context)
            except (TypeError, ValueError):
                raise ValidationError(_("context must hold only JSON values (text, numbers, lists, objects)"),
                                      code="invalid", field=f"{where}.context") from None


def _existing(keys: list[str]) -> dict[str, Enqueued]:
    found: dict[str, Enqueued] = {}
    for part in chunked(keys, 5000):
        for pk, key, status, reason, send_at in (OutboxMessage.objects.filter(among("dedupe_key", part))
                                                 .values_list("pk", "dedupe_key", "status", "reason", "send_at")):
            found[key] = Enqueued(pk, status, reason, False, send_at)
    return found


@dataclass
class _Facts:
    """What the policy needs to know about the batch's members, read in a few queries."""

    members: dict[int, tuple]  # id -> (status, marketing_consent, sms_consent, phone, email)
    wecom: set[int]
    unsubscribed: set[tuple[int, str]]
    cap_times: dict[int, list[dt.datetime]]


def _facts(member_ids: list[int], wecom_ids: list[int], capped: dict[int, tuple[dt.datetime, dt.datetime]],
           cap: Cap | None) -> _Facts:
    members_qs = Member.objects.filter(among("pk", member_ids)).order_by("pk")
    if connection.vendor != "sqlite" and capped:
        # Two concurrent enqueues for one member must not both pass the cap: lock the members in
        # id order (PostgreSQL: FOR NO KEY UPDATE, so outbox inserts referencing them do not wait).
        members_qs = members_qs.select_for_update(no_key=connection.vendor == "postgresql")
    members = {row[0]: row[1:] for row in members_qs.values_list(
        "pk", "status", "marketing_consent", "sms_consent", "phone", "email")}
    wecom = set()
    if wecom_ids:
        wecom = set(WeComContact.objects.filter(among("member_id", wecom_ids), status=ContactStatus.ACTIVE)
                    .values_list("member_id", flat=True).distinct())
    unsubscribed = set(Unsubscribe.objects.filter(among("member_id", member_ids))
                       .values_list("member_id", "channel"))
    cap_times: dict[int, list[dt.datetime]] = defaultdict(list)
    if capped and cap:
        low = min(t for t, _x in capped.values()) - cap.window
        high = max(t for _x, t in capped.values()) + cap.window
        rows = (OutboxMessage.objects.filter(among("member_id", list(capped)), purpose=Purpose.MARKETING,
                                             status__in=CAP_STATUSES, send_at__gt=low, send_at__lt=high)
                .values_list("member_id", "send_at"))
        for member_id, send_at in rows:
            cap_times[member_id].append(send_at)
    return _Facts(members, wecom, unsubscribed, cap_times)


def _reachability(channel: str, purpose: str, member: tuple, member_id: int, facts: _Facts) -> str:
    """The suppression reason for a member on a channel ignoring time (caps, quiet hours), or ''."""
    status, marketing_ok, sms_ok, phone, email = member
    if status != MemberStatus.ACTIVE:
        return Reason.UNREACHABLE
    if channel in (Channel.WECOM, Channel.WECOM_GROUP_SEND):
        if member_id not in facts.wecom:
            return Reason.UNREACHABLE
    elif channel == Channel.SMS:
        if not phone:
            return Reason.UNREACHABLE
        if not sms_ok:
            return Reason.NO_CONSENT
    elif channel == Channel.EMAIL and not email:
        return Reason.UNREACHABLE
    if purpose == Purpose.MARKETING:
        if not marketing_ok:
            return Reason.NO_CONSENT
        if (member_id, channel) in facts.unsubscribed:
            return Reason.UNSUBSCRIBED
    return ""


def _within(times: list[dt.datetime], at: dt.datetime, window: dt.timedelta) -> int:
    return sum(1 for t in times if abs(t - at) < window)


def enqueue(*, messages: Sequence[Outgoing], now: dt.datetime | None = None) -> EnqueueResult:
    """Put messages in the outbox, each queued or suppressed with a reason; idempotent by dedupe key.

    Each message's channel is its template's. Suppression reasons, in the order checked:
    ``unreachable`` (member not active, no active WeCom contact, no phone or email address),
    ``no_consent`` (SMS without SMS consent; marketing without marketing consent), ``unsubscribed``
    (marketing on a channel the member opted out of), ``quiet_hours`` (marketing planned inside
    quiet hours with a template that suppresses; otherwise the send is deferred to their end) and
    ``frequency_cap`` (the member already has the cap's count of marketing messages planned
    within one window of this one, on any channel). Service messages skip caps and quiet hours.

    A key already in the outbox (or repeated within the call) creates nothing and answers with
    the existing row. A member id that does not exist gets no row: status ``rejected``, reason
    ``unknown_member``. Raises :class:`ValidationError` for malformed input (field
    ``messages[i].…``) or an unknown template, before anything is written. A constant number of
    queries per call, whatever its size.
    """
    _validate(messages)
    now = now or timezone.now()
    result = EnqueueResult(by_key={})
    if not messages:
        return result
    firsts: dict[str, Outgoing] = {}
    for msg in messages:
        firsts.setdefault(msg.dedupe_key, msg)
    template_ids = {m.template_id for m in firsts.values()}
    templates = {t.pk: t for t in MessageTemplate.objects.filter(among("pk", list(template_ids)))}
    for i, msg in enumerate(messages):
        if msg.template_id not in templates:
            raise ValidationError(_("no message template with id %(id)s") % {"id": msg.template_id},
                                  code="unknown_template", field=f"messages[{i}].template_id")
    hours, cap = quiet_hours(), marketing_cap()
    with transaction.atomic():
        for attempt in range(3):
            existing = _existing(list(firsts))
            result.by_key.update(existing)
            fresh = [m for k, m in firsts.items() if k not in existing]
            if not fresh:
                break
            try:
                with transaction.atomic():
                    _insert(fresh, templates, now, hours, cap, result)
                break
            except IntegrityError:
                # Another enqueue wrote some of these keys since we looked: read them, try the rest.
                if attempt == 2:
                    raise
    result.created = sum(1 for e in result.by_key.values() if e.created)
    rejected = sum(1 for e in result.by_key.values() if e.status == REJECTED)
    result.duplicates = len(messages) - result.created - rejected
    return result


def _insert(fresh: list[Outgoing], templates: dict, now: dt.datetime, hours, cap: Cap | None,
            result: EnqueueResult) -> None:
    plans: list[tuple[Outgoing, str, str, dt.datetime, bool]] = []  # msg, channel, purpose, send_at, defer-able
    capped: dict[int, tuple[dt.datetime, dt.datetime]] = {}
    for msg in fresh:
        template = templates[msg.template_id]
        start = max(msg.not_before, now) if msg.not_before else now
        send_at = start
        quiet = False
        if msg.purpose == Purpose.MARKETING and hours and hours.contains(start):
            if template.quiet_hours == QuietHoursAction.SUPPRESS:
                quiet = True
            else:
                send_at = hours.end_after(start)
        plans.append((msg, template.channel, msg.purpose, send_at, quiet))
        if msg.purpose == Purpose.MARKETING and cap:
            low, high = capped.get(msg.member_id, (send_at, send_at))
            capped[msg.member_id] = (min(low, send_at), max(high, send_at))
    member_ids = sorted({m.member_id for m in fresh})
    wecom_ids = sorted({m.member_id for m, channel, *_r in plans
                        if channel in (Channel.WECOM, Channel.WECOM_GROUP_SEND)})
    facts = _facts(member_ids, wecom_ids, capped, cap)
    rows: list[tuple] = []
    keys: list[tuple[str, str, str, dt.datetime]] = []
    # Within the batch, a member's marketing messages take cap room in planned-time order.
    for msg, channel, purpose, send_at, quiet in sorted(plans, key=lambda p: p[3]):
        member = facts.members.get(msg.member_id)
        if member is None:
            result.by_key[msg.dedupe_key] = Enqueued(None, REJECTED, "unknown_member")
            continue
        reason = _reachability(channel, purpose, member, msg.member_id, facts)
        if not reason and quiet:
            reason = Reason.QUIET_HOURS
        if not reason and purpose == Purpose.MARKETING and cap:
            times = facts.cap_times[msg.member_id]
            if _within(times, send_at, cap.window) >= cap.count:
                reason = Reason.FREQUENCY_CAP
            else:
                times.append(send_at)
        status = Status.SUPPRESSED if reason else Status.QUEUED
        rows.append((msg.member_id, msg.template_id, channel, purpose, msg.dedupe_key, msg.source or "",
                     msg.context, status, reason, "", now, send_at,
                     None if reason else send_at, 0, "", ""))
        keys.append((msg.dedupe_key, status, reason, send_at))
    returning = connection.vendor != "mysql" or connection.mysql_is_mariadb
    ids = insert_rows(OutboxMessage, _COLUMNS, rows, returning=returning, chunk_size=1000)
    note_bulk_write(OutboxMessage, len(rows))  # keep the planner's statistics up with a bulk enqueue
    if not returning:
        ids_by_key = dict(OutboxMessage.objects.filter(among("dedupe_key", [k[0] for k in keys]))
                          .values_list("dedupe_key", "pk"))
        ids = [ids_by_key[k[0]] for k in keys]
    for pk, (key, status, reason, send_at) in zip(ids, keys, strict=True):
        result.by_key[key] = Enqueued(pk, status, reason, True, send_at)


def unsubscribe(*, member_ids: Sequence[int], channel: str, source: str = "", now: dt.datetime | None = None) -> int:
    """Opt members out of marketing on ``channel`` (退订); returns how many were newly unsubscribed.

    Idempotent: a member already unsubscribed keeps the first record.
    """
    if channel not in Channel.values:
        raise ValidationError(_("unknown channel %(c)s") % {"c": channel}, code="invalid_choice", field="channel")
    if len(source) > MAX_SOURCE:
        raise ValidationError(_("at most %(n)s characters") % {"n": MAX_SOURCE}, code="too_long", field="source")
    now = now or timezone.now()
    ids = sorted(set(member_ids))
    with transaction.atomic():
        known = set(Member.objects.filter(among("pk", ids)).values_list("pk", flat=True)) if ids else set()
        missing = [i for i in ids if i not in known]
        if missing:
            raise ValidationError(_("no member with id %(id)s") % {"id": missing[0]}, code="unknown_member",
                                  field="member_ids")
        before = Unsubscribe.objects.filter(among("member_id", ids), channel=channel).count() if ids else 0
        Unsubscribe.objects.bulk_create([Unsubscribe(member_id=i, channel=channel, at=now, source=source)
                                         for i in ids], ignore_conflicts=True)
    return len(ids) - before


def resubscribe(*, member_ids: Sequence[int], channel: str) -> int:
    """Undo :func:`unsubscribe` for ``channel``; returns how many records were removed."""
    if channel not in Channel.values:
        raise ValidationError(_("unknown channel %(c)s") % {"c": channel}, code="invalid_choice", field="channel")
    ids = sorted(set(member_ids))
    if not ids:
        return 0
    with transaction.atomic():
        deleted, _x = Unsubscribe.objects.filter(among("member_id", ids), channel=channel).delete()
    return deleted


@dataclass(frozen=True)
class Receipt:
    """A provider's delivery report (回执) for one sent message, by the id the provider gave it."""

    provider_id: str
    delivered: bool
    at: dt.datetime
    error: str = ""  # the provider's code when not delivered, e.g. MOBILE_NUMBER_ILLEGAL


def record_receipts(*, channel: str, receipts: Sequence[Receipt]) -> int:
    """Mark sent messages of ``channel`` delivered (or failed with the provider's error code).

    Idempotent: only rows still ``sent`` change, so a repeated report changes nothing; unknown
    provider ids are ignored. Returns how many rows changed. Two queries per call.
    """
    if channel not in Channel.values:
        raise ValidationError(_("unknown channel %(c)s") % {"c": channel}, code="invalid_choice", field="channel")
    for i, receipt in enumerate(receipts):
        if timezone.is_naive(receipt.at):
            raise ValidationError(_("the time must be timezone-aware"), code="naive_datetime",
                                  field=f"receipts[{i}].at")
    by_id = {r.provider_id: r for r in receipts if r.provider_id}
    if not by_id:
        return 0
    changed = 0
    with transaction.atomic():
        rows = list(OutboxMessage.objects.filter(among("provider_id", list(by_id)), channel=channel,
                                                 status=Status.SENT)
                    .select_for_update().order_by("pk").values_list("pk", "provider_id"))
        delivered = [(pk, by_id[pid].at) for pk, pid in rows if by_id[pid].delivered]
        failed = [(pk, by_id[pid].error[:500] or "undelivered") for pk, pid in rows if not by_id[pid].delivered]
        if delivered:
            changed += update_rows(OutboxMessage, ["delivered_at"], delivered, also={"status": Status.DELIVERED})
        if failed:
            changed += update_rows(OutboxMessage, ["detail"], failed,
                                   also={"status": Status.FAILED, "reason": Reason.PROVIDER_REJECTED})
    return changed
