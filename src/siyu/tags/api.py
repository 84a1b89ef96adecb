"""Tags API: the taxonomy, rule tags, and tagging members by id, identity list or segment."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from siyu.core.api_auth import AUTH_ERRORS, ErrorOut, api_source, require
from siyu.core.errors import ValidationError
from siyu.members.models import Member
from siyu.tags.models import Tag, TagCategory, TagGroup, TagSource
from siyu.tags.services import apply_tags, remove_tags, save_tag, save_tag_group, tag_identities

router = Router(tags=["tags"])
ERRORS = {400: ErrorOut, 404: ErrorOut, **AUTH_ERRORS}


class TagOut(Schema):
    code: str
    name: str
    rule: dict[str, Any] | None
    is_active: bool


class TagGroupOut(Schema):
    code: str
    name: str
    category: str
    exclusive: bool
    tags: list[TagOut]


class TagGroupIn(Schema):
    name: str = Field(max_length=100)
    category: TagCategory = TagCategory.PERSONAL
    exclusive: bool = False


class TagIn(Schema):
    group: str = Field(description="Tag group code")
    name: str = Field(max_length=100)
    rule: dict[str, Any] | None = Field(None, description="A segment rule: makes this a rule tag")
    is_active: bool = True


class TaggingIn(Schema):
    tags: list[str] = Field(min_length=1, description="Tag codes")
    member_ids: list[int] = Field(default_factory=list, max_length=100_000)
    identities: list[str] = Field(default_factory=list, max_length=100_000,
                                  description="Phones or kind:value identities (an uploaded list)")
    segment: str | None = Field(None, description="Segment code: tag every member of it")
    remove: bool = False
    expires_at: dt.datetime | None = None


class TaggingOut(Schema):
    added: int
    removed: int
    unchanged: int
    unmatched: list[dict[str, Any]]


@router.get("/tags", auth=require("tags:read"), response={200: list[TagGroupOut], **AUTH_ERRORS},
            summary="Tag groups and their tags")
def list_tags(request: HttpRequest):
    return TagGroup.objects.prefetch_related("tags").order_by("sort", "code")


@router.put("/tags/groups/{code}", auth=require("tags:write"), response={200: TagGroupOut, **ERRORS},
            summary="Create or update a tag group")
def put_group(request: HttpRequest, code: str, payload: TagGroupIn):
    return save_tag_group(code=code, **payload.dict())


@router.put("/tags/{code}", auth=require("tags:write"), response={200: TagOut, **ERRORS},
            summary="Create or update a tag (with a rule: a rule tag)")
def put_tag(request: HttpRequest, code: str, payload: TagIn):
    """A rule tag is applied to every member matching its rule right away, then after every batch
    for the members it touched, and nightly for everyone."""
    group = get_object_or_404(TagGroup, code=payload.group)
    return save_tag(code=code, group=group, name=payload.name, rule=payload.rule, is_active=payload.is_active)


@router.post("/tags/apply", auth=require("tags:write"), response={200: TaggingOut, **ERRORS},
             summary="Tag (or untag) members by id, identity list or segment")
def apply(request: HttpRequest, payload: TaggingIn):
    """Idempotent: a member keeps one row per tag; history records each change with the token as actor."""
    from siyu.segments.models import Segment
    from siyu.segments.services import tag_segment

    tags = list(Tag.objects.select_related("group").filter(code__in=payload.tags))
    missing = sorted(set(payload.tags) - {t.code for t in tags})
    if missing:
        raise ValidationError(_("no tag with code %(code)s") % {"code": missing[0]}, field="tags", code="unknown_tag")
    actor = api_source(request)
    if payload.segment:
        segment = get_object_or_404(Segment, code=payload.segment)
        return tag_segment(segment=segment, tags=tags, actor=actor, expires_at=payload.expires_at,
                           remove=payload.remove).as_dict()
    if payload.identities:
        return tag_identities(identities=payload.identities, tags=tags, actor=actor, remove=payload.remove,
                              expires_at=payload.expires_at).as_dict()
    known = set(Member.objects.filter(pk__in=payload.member_ids).values_list("pk", flat=True))
    if payload.remove:
        result = remove_tags(member_ids=known, tags=tags, source=TagSource.MANUAL, actor=actor)
    else:
        result = apply_tags(member_ids=known, tags=tags, source=TagSource.MANUAL, actor=actor,
                            expires_at=payload.expires_at)
    result.unmatched = [{"row": row, "value": m, "reason": _("no member with id %(v)s") % {"v": m}}
                        for row, m in enumerate(payload.member_ids, start=1) if m not in known]
    return result.as_dict()
