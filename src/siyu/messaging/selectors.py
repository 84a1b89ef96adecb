"""Messaging reads: a member's message history (newest first, keyset-paged)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from siyu.core.errors import ValidationError
from siyu.messaging.models import MessageTemplate, OutboxMessage

MAX_PAGE = 200


@dataclass(frozen=True)
class MessagePage:
    messages: list[OutboxMessage]
    next: int | None  # pass as ``before_id`` for the next (older) page; None on the last page


def messages_for_member(member_id: int, *, before_id: int | None = None, limit: int = 50,
                        channel: str | None = None, status: str | None = None) -> MessagePage:
    """The member's outbox rows (suppressed ones included), newest first, keyset-paged by id."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(_("limit must be between 1 and %(n)s") % {"n": MAX_PAGE}, code="invalid",
                              field="limit")
    qs: QuerySet[OutboxMessage] = (OutboxMessage.objects.filter(member_id=member_id)
                                   .select_related("template").order_by("-id"))
    if before_id is not None:
        qs = qs.filter(pk__lt=before_id)
    if channel:
        qs = qs.filter(channel=channel)
    if status:
        qs = qs.filter(status=status)
    rows = list(qs[:limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return MessagePage(rows, rows[-1].pk if more else None)


def template_by_code(code: str) -> MessageTemplate | None:
    return MessageTemplate.objects.filter(code=code).first()


SAMPLE_COUPON = "SAMPLE-2026"


def preview_template(template: MessageTemplate, *, member_id: int | None = None):
    """The template rendered for one member (default: the newest active member), with a sample coupon code.

    Returns ``(rendered, member)``; ``member`` is None when there is no member yet (sample values).
    Raises :class:`ValidationError` when the template does not check.
    """
    from siyu.members.models import Member, MemberStatus
    from siyu.messaging.delivery import _loyalty
    from siyu.messaging.models import Channel
    from siyu.messaging.rendering import check_template, render

    html = template.channel == Channel.EMAIL
    used = check_template(template.body, html=html).variables | check_template(template.subject).variables
    members = Member.objects.select_related("guide", "store__brand")
    member = (members.filter(pk=member_id).first() if member_id
              else members.filter(status=MemberStatus.ACTIVE).exclude(name="").order_by("-pk").first())
    if member is None:
        variables = {"member_name": "张三", "tier": "金卡", "points": 1280, "guide_name": "李导购"}
    else:
        variables = {"member_name": member.name or member.code,
                     "guide_name": member.guide.name if member.guide_id else ""}
        if used & {"tier", "points"}:
            variables["tier"], variables["points"] = _loyalty(member, {})
    variables["coupon_code"] = SAMPLE_COUPON
    return render(body=template.body, subject=template.subject, html=html, variables=variables), member
