"""Messaging (触达): templates per channel, the outbox (one row per message) and unsubscribes."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.members.models import Member


class Channel(models.TextChoices):
    WECOM = "wecom", _("WeCom 1:1 (企业微信私聊)")
    WECOM_GROUP_SEND = "wecom_group", _("WeCom group send (企业微信群发)")
    SMS = "sms", _("SMS (短信)")
    EMAIL = "email", _("email")
    WEBHOOK = "webhook", _("outbound webhook")


class Purpose(models.TextChoices):
    MARKETING = "marketing", _("marketing")
    SERVICE = "service", _("service")


class Status(models.TextChoices):
    QUEUED = "queued", _("queued")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    DELIVERED = "delivered", _("delivered")
    FAILED = "failed", _("failed")
    SUPPRESSED = "suppressed", _("suppressed")


class Reason(models.TextChoices):
    """Why a message was suppressed or failed (stable codes; the console shows the label)."""

    UNREACHABLE = "unreachable", _("not reachable on this channel")
    NO_CONSENT = "no_consent", _("no consent")
    UNSUBSCRIBED = "unsubscribed", _("unsubscribed from this channel")
    FREQUENCY_CAP = "frequency_cap", _("frequency cap reached")
    QUIET_HOURS = "quiet_hours", _("quiet hours")
    TEMPLATE_INACTIVE = "template_inactive", _("template switched off")
    RENDER_ERROR = "render_error", _("template could not be rendered")
    PROVIDER_REJECTED = "provider_rejected", _("rejected by the provider")
    PROVIDER_ERROR = "provider_error", _("provider error (retried)")
    NOT_CONFIGURED = "not_configured", _("channel not configured")
    OUTCOME_UNKNOWN = "outcome_unknown", _("worker stopped while sending")


class QuietHoursAction(models.TextChoices):
    DEFER = "defer", _("defer to the end of quiet hours")
    SUPPRESS = "suppress", _("suppress")


class MessageTemplate(models.Model):
    """A message template (消息模板) for one channel, with ``{{ variables }}`` from a fixed list."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    purpose = models.CharField(_("purpose"), max_length=10, choices=Purpose.choices, default=Purpose.MARKETING,
                               help_text=_("The default purpose of messages sent with this template"))
    subject = models.CharField(_("subject"), max_length=200, blank=True,
                               help_text=_("Email subject; may use the same variables as the body"))
    body = models.TextField(_("body"), help_text=_(
        "Django template syntax; allowed variables: member_name, tier, points, coupon_code, guide_name"))
    provider_template = models.CharField(_("provider template code"), max_length=64, blank=True,
                                         help_text=_("SMS: the template code registered with the provider"))
    webhook_url = models.URLField(_("webhook URL"), max_length=500, blank=True,
                                  help_text=_("Webhook channel: where the signed JSON is posted"))
    quiet_hours = models.CharField(_("in quiet hours"), max_length=10, choices=QuietHoursAction.choices,
                                   default=QuietHoursAction.DEFER,
                                   help_text=_("What happens to a marketing message enqueued in quiet hours"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        """Refuse a body or subject that would not render safely (unknown variable, tag, unsafe filter)."""
        from siyu.messaging.rendering import template_errors

        errors = template_errors(self)
        if errors:
            raise DjangoValidationError(errors)


class OutboxMessage(models.Model):
    """One message to one member on one channel (发件箱): queued, then sent or suppressed with a reason."""

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="+", db_index=False)  # (member, id) below serves it
    # No index of its own: a template with messages is never deleted (the console switches it off
    # instead), and one index fewer is one write fewer per enqueued message.
    template = models.ForeignKey(MessageTemplate, verbose_name=_("template"), on_delete=models.PROTECT,
                                 related_name="messages", db_index=False)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    purpose = models.CharField(_("purpose"), max_length=10, choices=Purpose.choices)
    dedupe_key = models.CharField(_("dedupe key"), max_length=200, unique=True)
    source = models.CharField(_("source"), max_length=100, blank=True)
    context = models.JSONField(_("variables"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices, blank=True)
    detail = models.CharField(_("detail"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"))
    send_at = models.DateTimeField(_("send at"), help_text=_("Planned send time (after quiet hours and not_before)"))
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    provider_id = models.CharField(_("provider message id"), max_length=100, blank=True, db_index=True)
    rendered = models.TextField(_("rendered text"), blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox")
        ordering = ["-id"]
        indexes = [
            # the deliverers' queue (due queued rows, stale sending rows) and the console's status filter
            models.Index(fields=["status", "next_attempt_at"], name="outbox_status_due"),
            # member history (newest first, keyset) and the frequency cap window
            models.Index(fields=["member", "id"], name="outbox_member_id"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel} → {self.member_id} ({self.status})"


class Unsubscribe(models.Model):
    """A member opted out of one channel (退订); only service messages still go out there."""

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="+",
                               db_index=False)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    at = models.DateTimeField(_("unsubscribed at"))
    source = models.CharField(_("source"), max_length=100, blank=True,
                              help_text=_("e.g. sms-reply TD, email link, console:operator"))

    class Meta:
        verbose_name = _("unsubscribe")
        verbose_name_plural = _("unsubscribes")
        ordering = ["-at"]
        constraints = [models.UniqueConstraint(fields=["member", "channel"], name="unsubscribe_member_channel")]

    def __str__(self) -> str:
        return f"{self.member_id} ✕ {self.channel}"
