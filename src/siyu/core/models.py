"""Shared kernel tables: rejected input, the audit trail, integration tokens, nightly runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Entity(models.TextChoices):
    MEMBER = "member", _("member")
    ORDER = "order", _("order")
    EVENT = "event", _("event")
    CONTACT = "contact", _("WeCom contact")


class IngestRejection(models.Model):
    """A row an entry point refused: kept raw with the reason, never dropped."""

    batch_id = models.UUIDField(_("batch"), db_index=True)
    entity = models.CharField(_("entity"), max_length=16, choices=Entity.choices)
    source = models.CharField(_("source"), max_length=200, help_text=_("API token, file or callback"))
    row = models.PositiveIntegerField(_("row"), help_text=_("1-based row number in the batch or file"))
    field = models.CharField(_("field"), max_length=100, blank=True)
    code = models.CharField(_("reason code"), max_length=50)
    message = models.TextField(_("reason"))
    raw = models.JSONField(_("raw row"))
    created_at = models.DateTimeField(_("rejected at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("rejected row")
        verbose_name_plural = _("rejected rows")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.entity} #{self.row} {self.field}: {self.code}"


class AuditEntry(models.Model):
    """Who did what to which record: merges, exports, deletions, token changes."""

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    actor = models.CharField(_("actor"), max_length=200)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True,
                             blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(_("action"), max_length=50, db_index=True)
    target_type = models.CharField(_("target type"), max_length=50)
    target_id = models.CharField(_("target id"), max_length=64, db_index=True)
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target_type}:{self.target_id}"


class ApiToken(models.Model):
    """A per-integration API token: stored hashed, shown once, scoped, revocable."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    prefix = models.CharField(_("prefix"), max_length=12, unique=True)
    secret_hash = models.CharField(_("secret hash"), max_length=128)
    scopes = models.JSONField(_("scopes"), default=list,
                              help_text=_('e.g. ["members:write", "orders:read"]'))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class NightlyRun(models.Model):
    """One business day's nightly run (夜间任务): claimed once, whichever worker sees the hour first."""

    class State(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    day = models.DateField(_("business day"), unique=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.QUEUED)
    queued_at = models.DateTimeField(_("queued at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    results = models.JSONField(_("results"), default=dict, blank=True,
                               help_text=_("What each job did, or its error"))

    class Meta:
        verbose_name = _("nightly run")
        verbose_name_plural = _("nightly runs")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day} ({self.get_state_display()})"
