"""Behaviour events: what members did, append-only, idempotent by key."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.commerce.models import Channel
from siyu.members.models import Member
from siyu.org.models import Store


class EventKind(models.TextChoices):
    PAGE_VIEW = "page_view", _("page view")
    CONTENT_VIEW = "content_view", _("content view")
    CHECK_IN = "check_in", _("check-in (签到/打卡)")
    SHARE = "share", _("share")
    FOLLOW = "follow", _("follow official account")
    UNFOLLOW = "unfollow", _("unfollow official account")
    GROUP_JOIN = "group_join", _("joined group")
    GROUP_LEAVE = "group_leave", _("left group")
    GROUP_MESSAGE = "group_message", _("group message")
    STORE_VISIT = "store_visit", _("store visit")
    FORM_SUBMIT = "form_submit", _("form submitted")
    ADD_TO_CART = "add_to_cart", _("added to cart")
    LIVE_VIEW = "live_view", _("watched livestream")
    COUPON_RECEIVE = "coupon_receive", _("received coupon")
    COUPON_REDEEM = "coupon_redeem", _("redeemed coupon")
    SIGN_UP = "sign_up", _("signed up for activity")


class Event(models.Model):
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT,
                               related_name="events", db_index=False)
    kind = models.CharField(_("kind"), max_length=20, choices=EventKind.choices)
    occurred_at = models.DateTimeField(_("occurred at"), db_index=True)
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="+")
    channel = models.ForeignKey(Channel, verbose_name=_("channel"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+")
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, unique=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["member", "kind", "occurred_at"], name="event_member_kind_time"),
            models.Index(fields=["kind", "occurred_at"], name="event_kind_time"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind} {self.occurred_at:%Y-%m-%d %H:%M}"
