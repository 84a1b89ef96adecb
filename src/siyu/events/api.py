"""Events API: batch ingestion of member behaviour (views, check-ins, shares, visits …)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from siyu.core.api_auth import BATCH_RESPONSES, lenient_rows, require, run_batch
from siyu.events.models import EventKind
from siyu.events.services import record_events

router = Router(tags=["events"])

_TEXT = {"type": "string"}

EVENT_ROW = {
    "type": "object",
    "title": "EventRow",
    "description": "One behaviour event. Idempotency key: idempotency_key, or a hash of member, kind, time and "
                   "properties when absent; re-sending an event never duplicates it.",
    "required": ["kind", "occurred_at"],
    "additionalProperties": True,
    "properties": {
        "kind": {"type": "string", "enum": list(EventKind.values)},
        "occurred_at": {"type": "string", "description": "ISO 8601, or \"2025-03-08 10:30:00\" in the business zone"},
        "member_id": {"type": "integer"},
        "member_code": _TEXT,
        "member": {**_TEXT, "description": "Member identity as kind:value, e.g. openid:o6_bmjrPTlm6"},
        "phone": _TEXT, "unionid": _TEXT, "openid": _TEXT, "external_userid": _TEXT, "nick": _TEXT,
        "pos_card": _TEXT, "email": _TEXT,
        "store": {**_TEXT, "description": "Store code"},
        "channel": {**_TEXT, "description": "Sales channel code"},
        "properties": {"type": "object", "additionalProperties": True},
        "idempotency_key": {**_TEXT, "maxLength": 100},
    },
}
EVENT_EXAMPLE = {"member": "phone:13800138000", "kind": "check_in", "occurred_at": "2025-03-08T08:00:00+08:00",
                 "properties": {"activity": "21-day-camp", "day": 3}, "idempotency_key": "camp-3-13800138000"}

EventRows = lenient_rows(EVENT_ROW, examples=[EVENT_EXAMPLE])


class EventBatchIn(Schema):
    rows: EventRows


@router.post("/events/batch", auth=require("events:write"), response=BATCH_RESPONSES,
             summary="Record a batch of behaviour events")
def record_event_batch(request: HttpRequest, payload: EventBatchIn):
    """Record behaviour events (scope `events:write`).

    The member is named by `member_id`, `member_code` or an identity; an event for an unknown
    member is rejected (kept in the rejection table). Answers 200 with per-row rejections.
    """
    return run_batch(record_events, request, payload.rows)
