"""Segments API: preview a rule, save segments and static lists, page and export members,
take snapshots."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from typing import Any

from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from siyu.core.api_auth import AUTH_ERRORS, ErrorOut, Moment, api_source, require
from siyu.core.time import business_zone
from siyu.segments.models import Segment
from siyu.segments.selectors import (
    EXPORT_FIELDS,
    export_rows,
    member_page,
    members_sql,
    preview,
    rule_members,
    segment_members,
)
from siyu.segments.services import create_static_segment, save_segment, take_snapshot

router = Router(tags=["segments"])
ERRORS = {400: ErrorOut, 404: ErrorOut, **AUTH_ERRORS}
RULE_EXAMPLE = {"all": [
    {"attr": "brand", "op": "eq", "value": "brand-a"}, {"attr": "city", "op": "eq", "value": "上海"},
    {"orders": {"window": {"last_days": 180}}, "measure": "count", "op": "gte", "value": 2},
    {"not": {"orders": {"window": {"last_days": 60}}, "measure": "count", "op": "gte", "value": 1}},
    {"tags": "any", "value": ["mother-baby"]}, {"attr": "is_wecom_friend", "op": "eq", "value": True},
]}


class RuleIn(Schema):
    rule: dict[str, Any] = Field(description="A rule tree; see docs/segments.md", examples=[RULE_EXAMPLE])


class PreviewOut(Schema):
    count: int
    sample: list[dict[str, Any]]
    sql: str | None = None


class SegmentIn(Schema):
    name: str = Field(max_length=100)
    rule: dict[str, Any] = Field(examples=[RULE_EXAMPLE])
    description: str = ""
    track_membership: bool = False


class StaticSegmentIn(Schema):
    code: str = Field(pattern=r"^[-a-zA-Z0-9_]{1,64}$")
    name: str = Field(max_length=100)
    identities: list[str] = Field(max_length=100_000, description="Phones, or kind:value (unionid:…, nick:…)")


class SegmentOut(Schema):
    code: str
    name: str
    kind: str
    rule: dict[str, Any] | None
    description: str
    track_membership: bool
    size: int | None
    counted_at: Moment | None


class StaticSegmentOut(Schema):
    segment: SegmentOut
    unmatched: list[dict[str, Any]]


class MemberPageOut(Schema):
    members: list[dict[str, Any]]
    next: int | None = Field(description="Pass as `after` for the next page; null on the last page")


class SnapshotIn(Schema):
    name: str = ""


class SnapshotOut(Schema):
    id: int
    segment: str = Field(alias="segment.code")
    name: str
    size: int
    taken_at: Moment
    rule: dict[str, Any] | None


@router.post("/segments/preview", auth=require("segments:read"), response={200: PreviewOut, **ERRORS},
             summary="Count and sample the members of a rule")
def preview_rule(request: HttpRequest, payload: RuleIn, sql: bool = False):
    """Count the members matching a rule and show the newest 20; `sql=true` adds the query.

    An invalid rule answers 400 with `field` naming the node, e.g. `all[2].orders.window.last_days`.
    """
    members = rule_members(payload.rule)
    return {**preview(members), "sql": members_sql(members) if sql else None}


@router.get("/segments", auth=require("segments:read"), response={200: list[SegmentOut], **AUTH_ERRORS},
            summary="List saved segments")
def list_segments(request: HttpRequest):
    return Segment.objects.order_by("code")


@router.post("/segments/static", auth=require("segments:write"), response={200: StaticSegmentOut, **ERRORS},
             summary="Create a static segment from a list of identities")
def post_static(request: HttpRequest, payload: StaticSegmentIn):
    """Rows that match no member (or are malformed) come back in `unmatched` with their row number."""
    segment, unmatched = create_static_segment(code=payload.code, name=payload.name, identities=payload.identities)
    return {"segment": segment, "unmatched": unmatched}


@router.put("/segments/{code}", auth=require("segments:write"), response={200: SegmentOut, **ERRORS},
            summary="Create or update a rule segment")
def put_segment(request: HttpRequest, code: str, payload: SegmentIn):
    """Idempotent by `code`. The rule is validated and the segment counted."""
    return save_segment(code=code, name=payload.name, rule=payload.rule, description=payload.description,
                        track_membership=payload.track_membership)


@router.get("/segments/{code}", auth=require("segments:read"), response={200: SegmentOut, **ERRORS},
            summary="One saved segment")
def get_segment(request: HttpRequest, code: str):
    return get_object_or_404(Segment, code=code)


class PageQuery(Schema):
    after: int | None = Field(None, description="Cursor from the previous page")
    limit: int = Field(100, ge=1, le=1000)


@router.get("/segments/{code}/members", auth=require("segments:read"), response={200: MemberPageOut, **ERRORS},
            summary="Members of a segment, a page at a time")
def get_members(request: HttpRequest, code: str, query: Query[PageQuery]):
    segment = get_object_or_404(Segment, code=code)
    rows, cursor = member_page(segment_members(segment), after=query.after, limit=query.limit)
    return {"members": rows, "next": cursor}


def _local(value):
    """Excel has no time zones: datetimes go as business-zone wall time."""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value, business_zone()).replace(tzinfo=None)
    return value


class _Echo:
    def write(self, value):
        return value


@router.get("/segments/{code}/export", auth=require("segments:read"), response={404: ErrorOut, **AUTH_ERRORS},
            summary="Export a segment's members as CSV or XLSX")
def export_segment(request: HttpRequest, code: str, format: str = Query("csv", pattern="^(csv|xlsx)$")):
    """CSV streams row by row (UTF-8 with BOM, so Excel shows Chinese); XLSX is written to a
    temporary file first (the format cannot stream)."""
    segment = get_object_or_404(Segment, code=code)
    rows = export_rows(segment_members(segment))
    if format == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(segment.code[:31])
        sheet.append(EXPORT_FIELDS)
        for row in rows:
            sheet.append([_local(v) for v in row])
        out = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
        book.save(out)
        out.seek(0)
        return FileResponse(out, as_attachment=True, filename=f"{segment.code}.xlsx")
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow(EXPORT_FIELDS)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{segment.code}.csv"'
    return response


@router.post("/segments/{code}/snapshots", auth=require("segments:write"), response={200: SnapshotOut, **ERRORS},
             summary="Freeze the segment's current members")
def post_snapshot(request: HttpRequest, code: str, payload: SnapshotIn):
    """A snapshot keeps who was in the segment, when, and under which rule, for campaigns and journeys."""
    segment = get_object_or_404(Segment, code=code)
    return take_snapshot(segment=segment, name=payload.name, actor=api_source(request))

