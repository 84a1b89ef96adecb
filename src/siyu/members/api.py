"""Members API: batch upsert of members and WeCom contacts, one member by any reference, and
keyset-paginated member lists."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from pydantic import BeforeValidator, field_validator

from siyu.commerce.selectors import member_channel_stats, member_stats, recent_orders
from siyu.core.api_auth import (
    AUTH_ERRORS,
    BATCH_RESPONSES,
    ErrorOut,
    Moment,
    Money,
    lenient_rows,
    require,
    run_batch,
)
from siyu.core.rows import parse_moment
from siyu.events.selectors import recent_events
from siyu.members.contacts import record_wecom_contacts
from siyu.members.identities import normalize_phone
from siyu.members.models import IdentityKind, MemberStatus
from siyu.members.selectors import MemberFilter, member_by_ref, member_identities, member_page
from siyu.members.services import upsert_members

router = Router(tags=["members"])

# --- batch bodies -----------------------------------------------------------------------------

_TEXT = {"type": "string"}
_FLAG = {"type": ["boolean", "string"], "description": "true/false, 1/0, 是/否"}
_IDENTITY_FIELDS = {
    "phone": {**_TEXT, "description": "Mainland mobile; +86, spaces and dashes are normalised away"},
    "unionid": _TEXT, "openid": _TEXT, "external_userid": {**_TEXT, "description": "WeCom external_userid"},
    "pos_card": _TEXT, "nick": {**_TEXT, "description": "Taobao/Tmall buyer nick"}, "email": _TEXT,
}
MEMBER_ROW = {
    "type": "object",
    "title": "MemberRow",
    "description": "One member. Matched by member_code or any identity (phone strongest); unknown identities are "
                   "linked to the matched member; only fields present are written. Needs a member_code or at least "
                   "one identity.",
    "additionalProperties": True,
    "properties": {
        "member_code": {**_TEXT, "maxLength": 32},
        **_IDENTITY_FIELDS,
        "identities": {"type": "array", "items": {"type": ["string", "object"]},
                       "description": "More identities as \"kind:value\" or {\"kind\", \"value\"}; kinds: "
                                      + ", ".join(IdentityKind.values)},
        "name": _TEXT, "gender": {**_TEXT, "description": "male/female/unknown, 男/女, m/f, 1/2"},
        "birthday": {**_TEXT, "description": "YYYY-MM-DD"}, "city": _TEXT,
        "community": {**_TEXT, "description": "Residential community (小区)"},
        "house_number": {**_TEXT, "description": "House number (房号)"}, "occupation": _TEXT,
        "source_channel": _TEXT, "joined_at": {**_TEXT, "description": "ISO 8601; earliest value wins"},
        "store": {**_TEXT, "description": "Owning store code"},
        "guide": {**_TEXT, "description": "Owning guide staff code"},
        "in_group": _FLAG, "follows_oa": _FLAG, "mini_program_authorized": _FLAG, "sms_consent": _FLAG,
        "marketing_consent": _FLAG,
    },
}
MEMBER_EXAMPLE = {"phone": "+86 138-0013-8000", "name": "王小明", "gender": "男", "city": "上海",
                  "store": "sh-01", "identities": ["nick:tb_abc"], "sms_consent": True}
CONTACT_ROW = {
    "type": "object",
    "title": "ContactRow",
    "description": "One WeCom contact relation (企业微信好友). Key: the member resolved from external_userid/unionid "
                   "+ the staff code. A customer new to Siyu becomes a member owned by that staff member.",
    "required": ["staff", "external_userid"],
    "additionalProperties": True,
    "properties": {
        "staff": {**_TEXT, "description": "Staff code (WeCom userid)"},
        "external_userid": _TEXT, "unionid": _TEXT, "name": _TEXT,
        "add_way": {**_TEXT, "description": "scan/search/group/share/other or WeCom's numeric add_way"},
        "added_at": _TEXT, "state": {**_TEXT, "description": "The state of the channel code scanned"},
        "remark": _TEXT,
        "status": {"type": "string", "enum": ["active", "deleted_by_customer", "deleted_by_staff"]},
        "status_changed_at": _TEXT,
    },
}
CONTACT_EXAMPLE = {"staff": "guide-007", "external_userid": "wmABCDEF123", "name": "王小明", "add_way": "1",
                   "added_at": "2025-03-08T09:00:00+08:00", "state": "poster-sh-01"}

MemberRows = lenient_rows(MEMBER_ROW, examples=[MEMBER_EXAMPLE])
ContactRows = lenient_rows(CONTACT_ROW, examples=[CONTACT_EXAMPLE])


class MemberBatchIn(Schema):
    rows: MemberRows


class ContactBatchIn(Schema):
    rows: ContactRows


# --- responses --------------------------------------------------------------------------------

class StoreRef(Schema):
    id: int
    code: str
    name: str


class StaffRef(Schema):
    id: int
    code: str
    name: str


class ChannelRef(Schema):
    id: int
    code: str
    name: str
    kind: str


class ReachabilityOut(Schema):
    """Which channels reach the member online (全渠道触达)."""

    is_wecom_friend: bool
    in_group: bool
    follows_oa: bool
    mini_program_authorized: bool
    sms_consent: bool
    marketing_consent: bool
    reachable_online: bool


class MemberSummaryOut(Schema):
    id: int
    code: str
    name: str
    gender: str
    phone: str
    city: str
    status: str
    joined_at: Moment
    source_channel: str
    store: StoreRef | None
    guide: StaffRef | None = Field(description="Owning guide (专属导购)")
    reachability: ReachabilityOut
    merged_into: int | None = Field(None, description="For merged members: the surviving member's id")

    @staticmethod
    def resolve_reachability(obj) -> dict:
        return {**{f: getattr(obj, f) for f in ReachabilityOut.model_fields if f != "reachable_online"},
                "reachable_online": obj.is_reachable_online}

    @staticmethod
    def resolve_merged_into(obj) -> int | None:
        return obj.merged_into_id


class MemberProfileOut(MemberSummaryOut):
    birthday: dt.date | None
    email: str
    community: str = Field(description="Residential community (小区)")
    house_number: str = Field(description="House number (房号)")
    occupation: str
    created_at: Moment
    updated_at: Moment


class IdentityOut(Schema):
    kind: str
    value: str
    source: str
    linked_at: Moment

    @staticmethod
    def resolve_linked_at(obj) -> dt.datetime:
        return obj.created_at


class ChannelStatsOut(Schema):
    channel: ChannelRef
    order_count: int
    total_paid: Money
    last_order_at: Moment | None


class StatsOut(Schema):
    order_count: int
    item_count: int
    total_paid: Money = Field(description="Paid, net of refunds")
    total_refunded: Money
    first_order_at: Moment | None
    last_order_at: Moment | None
    channels: list[ChannelStatsOut]


class OrderLineOut(Schema):
    line_no: int
    sku: str
    name: str
    quantity: int
    unit_price: Money
    amount: Money


class OrderOut(Schema):
    id: int
    channel: ChannelRef
    external_id: str
    status: str
    is_counted: bool
    total_amount: Money
    paid_amount: Money
    refunded_amount: Money
    item_count: int
    ordered_at: Moment
    paid_at: Moment | None
    store: StoreRef | None
    guide: StaffRef | None
    lines: list[OrderLineOut]


class EventOut(Schema):
    id: int
    kind: str
    occurred_at: Moment
    store: StoreRef | None
    channel: ChannelRef | None
    properties: dict[str, Any]


class RefOut(Schema):
    value: str = Field(description="The reference as requested")
    member_id: int = Field(description="The member the reference matched")
    merged_into: int | None = Field(description="Set when that member was merged: the survivor answered instead")


class MemberDetailOut(Schema):
    ref: RefOut
    member: MemberProfileOut
    identities: list[IdentityOut]
    stats: StatsOut
    recent_orders: list[OrderOut] = Field(description="The 20 most recent orders, newest first")
    recent_events: list[EventOut] = Field(description="The 50 most recent events, newest first")


class MemberPageOut(Schema):
    items: list[MemberSummaryOut]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last page")


# --- list filters -----------------------------------------------------------------------------

def _encode_cursor(member_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": member_id}).encode()).decode().rstrip("=")


def _decode_cursor(value: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        member_id = data["id"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise ValueError("not a cursor from this API; pass the `next` value of the previous page") from None
    if not isinstance(member_id, int) or isinstance(member_id, bool) or member_id < 1:
        raise ValueError("not a cursor from this API; pass the `next` value of the previous page")
    return member_id


def _moment_in(value: Any) -> Any:
    if value is None or value == "":
        return None
    parsed = parse_moment(value)
    if parsed is None:
        raise ValueError("not a date or date-time (e.g. 2025-03-08 or 2025-03-08T10:30:00+08:00)")
    return parsed


MomentIn = Annotated[dt.datetime | None, BeforeValidator(_moment_in)]


class MemberListQuery(Schema):
    limit: int = Field(50, ge=1, le=500, description="Page size, at most 500")
    after: str | None = Field(None, description="The `next` cursor of the previous page")
    city: str | None = None
    store: str | None = Field(None, description="Owning store code")
    guide: str | None = Field(None, description="Owning guide staff code")
    phone: str | None = Field(None, description="Any of the member's phones; normalised (+86, spaces, dashes)")
    joined_after: MomentIn = Field(None, description="Inclusive; a date means its start in the business zone")
    joined_before: MomentIn = Field(None, description="Exclusive")
    status: MemberStatus | None = Field(None, description="Default: every status but merged and erased")
    is_wecom_friend: bool | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return normalize_phone(value)
        except ValueError:
            raise ValueError("not a valid mainland mobile number") from None

    @field_validator("after")
    @classmethod
    def _after(cls, value: str | None) -> str | None:
        if value:
            _decode_cursor(value)
        return value or None


# --- operations -------------------------------------------------------------------------------

@router.post("/members/batch", auth=require("members:write"), response=BATCH_RESPONSES,
             summary="Create or update a batch of members")
def upsert_member_batch(request: HttpRequest, payload: MemberBatchIn):
    """Create or update members, resolving identities (scope `members:write`).

    Answers 200 with per-row rejections; re-sending a batch changes nothing (duplicates).
    """
    return run_batch(upsert_members, request, payload.rows)


@router.post("/contacts/batch", auth=require("members:write"), response=BATCH_RESPONSES,
             summary="Record a batch of WeCom contacts")
def record_contact_batch(request: HttpRequest, payload: ContactBatchIn):
    """Record WeCom contact relations: added, remarked, deleted by either side (scope `members:write`).

    Maintains the members' `is_wecom_friend` flag; answers 200 with per-row rejections.
    """
    return run_batch(record_wecom_contacts, request, payload.rows)


@router.get("/members", auth=require("members:read"), response={200: MemberPageOut, 422: ErrorOut, **AUTH_ERRORS},
            summary="List members")
def list_members(request: HttpRequest, filters: Query[MemberListQuery]):
    """Members, newest first, keyset-paginated (scope `members:read`).

    Follow `next` until it is null to walk every member exactly once, even while members are
    being added.
    """
    page, more = member_page(
        MemberFilter(city=filters.city or "", store=filters.store or "", guide=filters.guide or "",
                     phone=filters.phone or "", joined_after=filters.joined_after,
                     joined_before=filters.joined_before, status=filters.status or "",
                     is_wecom_friend=filters.is_wecom_friend),
        limit=filters.limit, before_id=_decode_cursor(filters.after) if filters.after else None,
    )
    return {"items": page, "next": _encode_cursor(page[-1].pk) if more else None}


@router.get("/members/{ref}", auth=require("members:read"),
            response={200: MemberDetailOut, 400: ErrorOut, 404: ErrorOut, **AUTH_ERRORS},
            summary="Get one member")
def get_member(request: HttpRequest, ref: str):
    """One member with identities, reachability, owner, stats, recent orders and events (scope `members:read`).

    `ref` is a member id, a member code, or an identity as `kind:value` (`phone:13800138000`,
    `nick:tb_abc`, `unionid:…`); `id:…` and `code:…` force the meaning of a numeric ref. A
    merged member's ref answers with the surviving member (`ref.merged_into`).
    """
    lookup = member_by_ref(ref)
    member = lookup.member
    stats = member_stats(member.pk)
    return {
        "ref": {"value": ref, "member_id": lookup.named.pk, "merged_into": lookup.merged_into},
        "member": member,
        "identities": member_identities(member.pk),
        "stats": {**{f: getattr(stats, f) for f in StatsOut.model_fields if f != "channels"},
                  "channels": member_channel_stats(member.pk)},
        "recent_orders": recent_orders(member.pk, limit=20),
        "recent_events": recent_events(member.pk, limit=50),
    }
