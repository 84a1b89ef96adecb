"""Segment reads: members of a rule or saved segment, previews, the SQL, exports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from siyu.members.models import Member
from siyu.org.models import Staff
from siyu.org.selectors import member_scope_q
from siyu.segments.compiler import compile_rule
from siyu.segments.models import Segment, SegmentKind, SegmentMember
from siyu.segments.rules import parse_rule

SAMPLE_SIZE = 20
EXPORT_FIELDS = ("id", "code", "name", "gender", "birthday", "phone", "city", "community", "joined_at",
                 "source_channel", "store__code", "guide__code", "status", "is_wecom_friend", "sms_consent")


def rule_members(rule: Any, *, now: dt.datetime | None = None, staff: Staff | None = None,
                 everyone: bool = True) -> QuerySet[Member]:
    """Members matching ``rule`` (raw JSON; raises ``RuleError``), narrowed to ``staff``'s scope
    unless ``everyone`` (an API token or a superuser)."""
    members = Member.objects.filter(compile_rule(parse_rule(rule), now=now))
    return members if everyone else members.filter(member_scope_q(staff))


def segment_members(segment: Segment, *, now: dt.datetime | None = None, staff: Staff | None = None,
                    everyone: bool = True) -> QuerySet[Member]:
    """Members of a saved segment now: the rule's members, or the uploaded list."""
    if segment.kind == SegmentKind.STATIC:
        members = Member.objects.filter(pk__in=SegmentMember.objects.filter(segment=segment).values("member_id"))
        return members if everyone else members.filter(member_scope_q(staff))
    return rule_members(segment.rule, now=now, staff=staff, everyone=everyone)


def preview(members: QuerySet[Member]) -> dict:
    """Count and a sample of the newest 20, fast enough to refresh while an operator edits."""
    sample = list(members.order_by("-pk").values("id", "code", "name", "city", "phone")[:SAMPLE_SIZE])
    count = len(sample) if len(sample) < SAMPLE_SIZE else members.order_by().count()
    return {"count": count, "sample": sample}


def members_sql(members: QuerySet[Member]) -> str:
    """The SQL the database runs for this member set, parameters inlined for reading."""
    sql, params = members.order_by().values("pk").query.sql_with_params()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            return cursor.cursor.mogrify(sql, params)
    return sql % tuple(repr(str(p)) if not isinstance(p, (int, float)) else p for p in params)


def member_page(members: QuerySet[Member], *, after: int | None = None, limit: int = 100) -> tuple[list, int | None]:
    """One page of members by id (keyset: pass the returned cursor as ``after``)."""
    if after:
        members = members.filter(pk__gt=after)
    rows = list(members.order_by("pk").values(*EXPORT_FIELDS)[:limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["id"] if more else None)


def export_rows(members: QuerySet[Member]) -> Iterator[tuple]:
    """Every member as a tuple of :data:`EXPORT_FIELDS`, streamed from the database."""
    return members.order_by("pk").values_list(*EXPORT_FIELDS).iterator(chunk_size=2000)
