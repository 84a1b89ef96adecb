"""Messaging API: a member's message history (newest first) and per-channel unsubscribe/resubscribe.

Reading uses the ``members:read`` scope and unsubscribing ``members:write``: consent is part of
the member record.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from siyu.core.api_auth import AUTH_ERRORS, ErrorOut, Moment, api_source, require
from siyu.members.selectors import member_by_ref
from siyu.messaging.models import Channel, OutboxMessage, Status
from siyu.messaging.selectors import MAX_PAGE, messages_for_member
from siyu.messaging.services import resubscribe, unsubscribe

router = Router(tags=["messaging"])
ERRORS = {400: ErrorOut, 404: ErrorOut, 422: ErrorOut, **AUTH_ERRORS}


class MessageOut(Schema):
    id: int
    channel: str
    purpose: str
    status: str
    reason: str = Field(description="Why it was suppressed or failed (e.g. frequency_cap, quiet_hours)")
    detail: str
    template: str
    source: str
    text: str = Field(description="The text as sent (empty until sent)")
    created_at: Moment
    send_at: Moment
    sent_at: Moment | None
    delivered_at: Moment | None
    attempts: int

    @staticmethod
    def resolve_template(message: OutboxMessage) -> str:
        return message.template.code

    @staticmethod
    def resolve_text(message: OutboxMessage) -> str:
        return message.rendered


class MessagePageOut(Schema):
    member_id: int
    messages: list[MessageOut]
    next: int | None = Field(description="Pass as `before` for the next (older) page; null on the last page")


class MessagesQuery(Schema):
    before: int | None = Field(None, description="Cursor from the previous page")
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    channel: Channel | None = None
    status: Status | None = None


@router.get("/messaging/members/{ref}/messages", auth=require("members:read"),
            response={200: MessagePageOut, **ERRORS}, summary="A member's messages, newest first")
def get_member_messages(request: HttpRequest, ref: str, query: Query[MessagesQuery]):
    """Every outbox row of the member, suppressed ones included with their reason. `ref` as in `GET /members/{ref}`."""
    member = member_by_ref(ref).member
    page = messages_for_member(member.pk, before_id=query.before, limit=query.limit, channel=query.channel,
                               status=query.status)
    return {"member_id": member.pk, "messages": page.messages, "next": page.next}


class SubscriptionIn(Schema):
    member: str = Field(min_length=1, description="Member reference: id, code or kind:value (phone:138…)")
    channel: Channel
    source: str = Field("", max_length=100, description="Where the request came from, e.g. sms-reply TD")


class SubscriptionOut(Schema):
    member_id: int
    channel: str
    unsubscribed: bool
    changed: bool


@router.post("/messaging/unsubscribe", auth=require("members:write"), response={200: SubscriptionOut, **ERRORS},
             summary="Unsubscribe a member from marketing on one channel (退订)")
def post_unsubscribe(request: HttpRequest, payload: SubscriptionIn):
    """Idempotent: unsubscribing twice keeps the first record (`changed` false). Service messages still go out."""
    member = member_by_ref(payload.member).member
    changed = unsubscribe(member_ids=[member.pk], channel=payload.channel,
                          source=payload.source or api_source(request))
    return {"member_id": member.pk, "channel": payload.channel, "unsubscribed": True, "changed": bool(changed)}


@router.post("/messaging/resubscribe", auth=require("members:write"), response={200: SubscriptionOut, **ERRORS},
             summary="Undo an unsubscribe")
def post_resubscribe(request: HttpRequest, payload: SubscriptionIn):
    member = member_by_ref(payload.member).member
    changed = resubscribe(member_ids=[member.pk], channel=payload.channel)
    return {"member_id": member.pk, "channel": payload.channel, "unsubscribed": False, "changed": bool(changed)}
