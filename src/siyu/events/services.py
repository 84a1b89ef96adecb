"""Behaviour event ingestion: append-only, idempotent by key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Case, OuterRef, Subquery, Value, When
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.commerce.models import Channel
from siyu.core.db import ids_by, insert_rows, note_bulk_write
from siyu.core.ingest import Batch, IngestResult, run_batch, run_batches
from siyu.core.rows import RowError, RowReader, unknown_reference
from siyu.events.models import Event, EventKind
from siyu.loyalty.earning import earn_for_events
from siyu.members.identities import Ident, parse_ref, row_identities
from siyu.members.models import Member
from siyu.members.resolution import lookup_identities
from siyu.org.models import Store


@dataclass
class _EventRow:
    row: int
    raw: Mapping[str, Any]
    member_id: int | None
    member_code: str
    identities: list[Ident]
    kind: str
    occurred_at: Any
    store_code: str
    channel_code: str
    properties: dict
    key: str


def _parse_event(row: int, raw: Mapping[str, Any]) -> _EventRow:
    reader = RowReader(raw)
    member_id = reader.integer("member_id", minimum=1)
    member_code = reader.text("member_code", max_length=32)
    identities = row_identities(raw)
    if raw.get("member") not in (None, ""):
        identities.insert(0, parse_ref(raw["member"], field="member"))
    if not (member_id or member_code or identities):
        raise RowError("member", "missing",
                       _('name the member by member_id, member_code or an identity ("member": "openid:…")'))
    kind = reader.choice("kind", EventKind)
    if kind is None:
        raise RowError("kind", "missing", _("this field is required"))
    occurred_at = reader.datetime("occurred_at", required=True)
    properties = reader.mapping("properties")
    key = reader.text("idempotency_key", max_length=100)
    if not key:
        basis = json.dumps([member_id, member_code, [str(i) for i in identities], kind,
                            occurred_at.isoformat(), properties], sort_keys=True, cls=DjangoJSONEncoder)
        key = "auto:" + hashlib.sha256(basis.encode()).hexdigest()[:40]
    return _EventRow(row, raw, member_id, member_code, identities, kind, occurred_at,
                     reader.text("store", max_length=50), reader.text("channel", max_length=50),
                     properties, key)


def record_events(*, rows: Sequence[Mapping[str, Any]], source: str, first_row: int = 1,
        row_numbers: Sequence[int] | None = None) -> IngestResult:
    """Record behaviour events (one transaction).

    Idempotency key: ``idempotency_key`` or, when absent, a hash of member, kind, time and
    properties — re-sending an event never duplicates it. The member is named by
    ``member_id``, ``member_code`` or an identity (``"member": "openid:…"``).

    Rejects: unknown member (kept here until the member exists), unknown kind, bad time,
    unknown store or channel, non-object properties.
    """
    return run_batch(entity="event", rows=rows, parse=_parse_event, apply=_apply_events, source=source,
                     first_row=first_row, row_numbers=row_numbers)


def record_event_batches(*, batches: Iterable[Sequence[Mapping[str, Any]] | Batch],
                         source: str) -> Iterator[IngestResult]:
    """:func:`record_events` over a stream of batches, one result per batch as each commits
    (see :func:`~siyu.core.ingest.run_batches`)."""
    return run_batches(entity="event", batches=batches, parse=_parse_event, apply=_apply_events, source=source)


def _apply_events(parsed: list[_EventRow], result: IngestResult) -> None:
    stores = ids_by(Store, "code", (p.store_code for p in parsed))
    channels = ids_by(Channel, "code", (p.channel_code for p in parsed))
    ids = ids_by(Member, "pk", (p.member_id for p in parsed))
    codes = ids_by(Member, "code", (p.member_code for p in parsed))
    identities = lookup_identities([i for p in parsed for i in p.identities])
    existing = set(ids_by(Event, "idempotency_key", (p.key for p in parsed)))
    now = timezone.now()
    events: list[tuple] = []
    for p in parsed:
        member_id = (p.member_id if p.member_id in ids else None) or codes.get(p.member_code) or next(
            (identities[i] for i in p.identities if i in identities), None)
        error = None
        if member_id is None:
            error = unknown_reference("member", p.member_id or p.member_code or ", ".join(map(str, p.identities)))
        elif p.store_code and p.store_code not in stores:
            error = unknown_reference("store", p.store_code)
        elif p.channel_code and p.channel_code not in channels:
            error = unknown_reference("channel", p.channel_code)
        if error:
            result.reject(p.row, error, p.raw)
            continue
        if p.key in existing:
            result.duplicates += 1
            continue
        existing.add(p.key)
        events.append((member_id, p.kind, p.occurred_at, stores.get(p.store_code), channels.get(p.channel_code),
                       p.properties, p.key, now))
    # A key another transaction wrote meanwhile is skipped (the unique key decides), not an error.
    insert_rows(Event, EVENT_FIELDS, events, ignore_conflicts=True)
    note_bulk_write(Event, len(events))
    result.created += len(events)
    result.members.update(e[0] for e in events)
    _refresh_follows({e[0] for e in events if e[1] in FOLLOW_KINDS})
    earn_for_events(event_keys=[e[6] for e in events])  # points (积分) by the loyalty rules


EVENT_FIELDS = ["member_id", "kind", "occurred_at", "store_id", "channel_id", "properties", "idempotency_key",
                "received_at"]


FOLLOW_KINDS = (EventKind.FOLLOW, EventKind.UNFOLLOW)


def _refresh_follows(member_ids: set[int]) -> None:
    """``follows_oa`` follows the member's latest follow/unfollow event (events may arrive late)."""
    if not member_ids:
        return
    latest = (Event.objects.filter(member=OuterRef("pk"), kind__in=FOLLOW_KINDS)
              .order_by("-occurred_at", "-id").values("kind")[:1])
    Member.objects.filter(pk__in=member_ids).update(follows_oa=Case(
        When(Exact(Subquery(latest), EventKind.FOLLOW), then=Value(True)), default=Value(False)))
