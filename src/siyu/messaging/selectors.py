"""Messaging reads: a member's message history (newest first, keyset-paged)."""

from __future__ import annotations

from django.db.models import QuerySet

from siyu.core.errors import ValidationError
from siyu.messaging.models import MessageTemplate, OutboxMessage

MAX_PAGE = 200


def messages_for_member(member_id: int, *, before_id: int | None = None, limit: int = 50,
                        channel: str | None = None, status: str | None = None) -> list[OutboxMessage]:
    """The member's outbox rows, newest first; pass the last row's id as ``before_id`` for the next page."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}", code="invalid", field="limit")
    qs: QuerySet[OutboxMessage] = (OutboxMessage.objects.filter(member_id=member_id)
                                   .select_related("template").order_by("-id"))
    if before_id is not None:
        qs = qs.filter(pk__lt=before_id)
    if channel:
        qs = qs.filter(channel=channel)
    if status:
        qs = qs.filter(status=status)
    return list(qs[:limit])


def template_by_code(code: str) -> MessageTemplate | None:
    return MessageTemplate.objects.filter(code=code).first()
