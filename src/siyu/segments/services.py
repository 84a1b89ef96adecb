"""Segment writes: save, static lists, snapshots, membership history, tagging a segment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.db import chunked
from siyu.core.errors import ValidationError
from siyu.members.models import Member
from siyu.segments.compiler import compile_rule
from siyu.segments.models import Segment, SegmentKind, SegmentMember, SegmentMembership, Snapshot, SnapshotMember
from siyu.segments.rules import parse_rule
from siyu.segments.selectors import segment_members
from siyu.tags.models import Tag
from siyu.tags.services import TagResult, apply_tags, resolve_identity_list


def save_segment(*, code: str, name: str, rule: Any, description: str = "", track_membership: bool = False,
                 user=None) -> Segment:
    """Create or update the dynamic segment ``code`` (idempotent key). The rule is validated
    first (``RuleError`` names the node); its current size is counted."""
    parse_rule(rule)
    if not name.strip():
        raise ValidationError(_("a segment needs a name"), field="name")
    with transaction.atomic():
        segment, created = Segment.objects.select_for_update().get_or_create(code=code, defaults={
            "name": name, "kind": SegmentKind.DYNAMIC, "rule": rule, "description": description,
            "track_membership": track_membership, "created_by": user})
        if not created:
            if segment.kind != SegmentKind.DYNAMIC:
                raise ValidationError(_("segment %(code)s is a static list") % {"code": code}, field="code",
                                      code="static_segment")
            segment.name, segment.rule, segment.description = name, rule, description
            segment.track_membership = track_membership
        count_segment(segment)
    return segment


def create_static_segment(*, code: str, name: str, identities: Sequence[str], user=None) -> tuple[Segment, list[dict]]:
    """A static segment (静态人群) from an uploaded list of phones, unionids or nicks.

    Returns the segment and the unmatched rows (row number, value, reason). Re-uploading to the
    same code adds the new members; nobody is listed twice.
    """
    member_ids, unmatched = resolve_identity_list(identities)
    with transaction.atomic():
        segment, _created = Segment.objects.get_or_create(code=code, defaults={
            "name": name, "kind": SegmentKind.STATIC, "created_by": user})
        if segment.kind != SegmentKind.STATIC:
            raise ValidationError(_("segment %(code)s is a rule segment") % {"code": code}, field="code",
                                  code="dynamic_segment")
        for part in chunked(sorted(set(member_ids)), 1000):
            listed = set(SegmentMember.objects.filter(segment=segment, member_id__in=part)
                         .values_list("member_id", flat=True))
            SegmentMember.objects.bulk_create([SegmentMember(segment=segment, member_id=m)
                                               for m in part if m not in listed])
        count_segment(segment)
    return segment, unmatched


def count_segment(segment: Segment, *, now: dt.datetime | None = None) -> int:
    """Count the segment now and keep the figure on it."""
    now = now or timezone.now()
    segment.size = segment_members(segment, now=now).order_by().count()
    segment.counted_at = now
    segment.save()
    return segment.size


def take_snapshot(*, segment: Segment, name: str = "", actor: str = "", now: dt.datetime | None = None) -> Snapshot:
    """Freeze who is in the segment now (快照) for a campaign or journey: one INSERT … SELECT."""
    now = now or timezone.now()
    with transaction.atomic():
        snapshot = Snapshot.objects.create(segment=segment, name=name[:100], rule=segment.rule, taken_at=now,
                                           taken_by=actor[:100])
        picked = segment_members(segment, now=now).order_by().values(picked_id=F("pk"))
        select, params = picked.query.sql_with_params()
        quote = connection.ops.quote_name
        table = quote(SnapshotMember._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({quote('snapshot_id')}, {quote('member_id')}) "  # noqa: S608
                f"SELECT %s, picked.picked_id FROM ({select}) picked", [snapshot.pk, *params])
            snapshot.size = cursor.rowcount
        snapshot.save(update_fields=["size"])
    return snapshot


def tag_segment(*, segment: Segment, tags: Sequence[Tag], actor: str, expires_at: dt.datetime | None = None,
                remove: bool = False) -> TagResult:
    """Give (or take) ``tags`` to every member of the segment now."""
    from siyu.tags.services import remove_tags

    ids = list(segment_members(segment).order_by().values_list("pk", flat=True))
    if remove:
        return remove_tags(member_ids=ids, tags=tags, source="manual", actor=actor)
    return apply_tags(member_ids=ids, tags=tags, source="manual", actor=actor, expires_at=expires_at)


def refresh_memberships(*, member_ids: Iterable[int] | None = None, segments: Sequence[Segment] | None = None,
                        now: dt.datetime | None = None) -> dict[str, int]:
    """Bring the membership history of tracked segments up to date.

    With ``member_ids`` only those members are re-evaluated (after a batch: cost grows with what
    changed); without, everyone (nightly, for rules relative to today). A member who now matches
    and has no open membership enters; one with an open membership who no longer matches leaves.
    """
    now = now or timezone.now()
    if segments is None:
        segments = list(Segment.objects.filter(track_membership=True, kind=SegmentKind.DYNAMIC))
    ids = None if member_ids is None else sorted(set(member_ids))
    entered = left = 0
    for segment in segments:
        q = compile_rule(parse_rule(segment.rule), now=now)
        for part in [None] if ids is None else chunked(ids, 1000):
            scope = Member.objects.all() if part is None else Member.objects.filter(pk__in=part)
            open_rows = SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
            if part is not None:
                open_rows = open_rows.filter(member_id__in=part)
            new = list(scope.filter(q).exclude(pk__in=open_rows.values("member_id")).values_list("pk", flat=True))
            for chunk in chunked(new, 1000):
                SegmentMembership.objects.bulk_create(
                    [SegmentMembership(segment=segment, member_id=m, entered_at=now) for m in chunk])
            matching = scope.filter(q).values("pk")
            leaving = open_rows.filter(~Q(member_id__in=matching))
            left += leaving.update(left_at=now)
            entered += len(new)
    return {"entered": entered, "left": left}
