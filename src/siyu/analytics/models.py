"""Modelled member values: RFM (per brand) and lifecycle stage (per brand), with history.

Both are recomputed set-based in SQL: for the members a batch touched right after ingestion,
and for everyone by the nightly task. Segments filter on them; they also appear as model tags.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from siyu.members.models import Member
from siyu.org.models import Brand


class RfmMethod(models.TextChoices):
    QUANTILES = "quantiles", _("quantiles (quintiles of the brand's buyers)")
    THRESHOLDS = "thresholds", _("fixed thresholds")


class RfmClass(models.TextChoices):
    """The eight classic RFM classes: R, F, M each high (≥ 3) or low."""

    IMPORTANT_VALUE = "important_value", _("重要价值客户 (important value)")
    IMPORTANT_DEVELOP = "important_develop", _("重要发展客户 (important to develop)")
    IMPORTANT_KEEP = "important_keep", _("重要保持客户 (important to keep)")
    IMPORTANT_RETAIN = "important_retain", _("重要挽留客户 (important to win back)")
    GENERAL_VALUE = "general_value", _("一般价值客户 (general value)")
    GENERAL_DEVELOP = "general_develop", _("一般发展客户 (general to develop)")
    GENERAL_KEEP = "general_keep", _("一般保持客户 (general to keep)")
    GENERAL_RETAIN = "general_retain", _("一般挽留客户 (general to win back)")


class LifecycleStage(models.TextChoices):
    NEW = "new", _("new")
    ACTIVE = "active", pgettext_lazy("lifecycle", "active")
    SILENT = "silent", _("silent (at risk)")
    CHURNED = "churned", _("churned")
    RECALLED = "recalled", _("recalled")


class RfmSettings(models.Model):
    """How one brand scores RFM and stages the lifecycle (one row per brand)."""

    brand = models.OneToOneField(Brand, verbose_name=_("brand"), on_delete=models.CASCADE,
                                 related_name="rfm_settings")
    method = models.CharField(_("method"), max_length=12, choices=RfmMethod.choices, default=RfmMethod.QUANTILES)
    window_days = models.PositiveIntegerField(_("window (days)"), default=365)
    # fixed thresholds: four ascending cut points per dimension give scores 1–5
    recency_days = models.JSONField(_("recency cut points (days)"), default=list, blank=True)
    frequency = models.JSONField(_("frequency cut points (orders)"), default=list, blank=True)
    monetary = models.JSONField(_("monetary cut points (CNY)"), default=list, blank=True)
    new_days = models.PositiveIntegerField(_("new for (days after first order)"), default=30)
    silent_days = models.PositiveIntegerField(_("silent after (days without an order)"), default=90)
    churned_days = models.PositiveIntegerField(_("churned after (days without an order)"), default=180)

    class Meta:
        verbose_name = _("RFM and lifecycle settings")
        verbose_name_plural = _("RFM and lifecycle settings")

    def __str__(self) -> str:
        return str(self.brand)

    def clean(self) -> None:
        errors = {}
        if self.window_days is not None and self.window_days < 1:
            errors["window_days"] = _("the window must be at least one day")
        if self.silent_days is not None and self.churned_days is not None and self.silent_days >= self.churned_days:
            errors["churned_days"] = _("churned must come after silent: make it more days")
        if self.method == RfmMethod.THRESHOLDS:
            for field in ("recency_days", "frequency", "monetary"):
                try:
                    self.cut_points(field)
                except ValueError as exc:
                    errors[field] = str(exc)
        if errors:
            raise ValidationError(errors)

    def cut_points(self, field: str) -> list:
        """The four ascending cut points of ``field`` (``recency_days``, ``frequency`` or
        ``monetary``): whole numbers for days and orders, amounts as ``Decimal``; ``ValueError``
        with a translatable message when they are not four ascending non-negative numbers."""
        values = getattr(self, field)
        if not isinstance(values, list) or len(values) != 4:
            raise ValueError(_("give four ascending cut points, e.g. [30, 90, 180, 365]"))
        try:
            if field == "monetary":
                points = [Decimal(str(v)).quantize(Decimal("0.01")) for v in values]
            else:
                points = [int(v) for v in values]
                if any(p != v for p, v in zip(points, values, strict=True)):
                    raise ValueError
        except (InvalidOperation, TypeError, ValueError):
            raise ValueError(_("cut points must be numbers")) from None
        if points[0] < 0 or any(a >= b for a, b in itertools.pairwise(points)):
            raise ValueError(_("cut points must be non-negative and strictly ascending"))
        return points


class MemberRfm(models.Model):
    """A member's RFM scores with one brand (orders in the brand's stores within the window).

    The last order's time is kept rather than the days since it, which change every day: a
    nightly recompute then rewrites only the rows whose values changed. ``computed_at`` is when
    the row was last written.
    """

    # Derived rows, rewritten by every recompute: keys not checked by the database, as ModelChange's.
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="rfm",
                               db_index=False, db_constraint=False)
    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.CASCADE, related_name="+",
                              db_index=False, db_constraint=False)
    last_order_at = models.DateTimeField(_("last order"))
    frequency = models.PositiveIntegerField(_("orders"))
    monetary = models.DecimalField(_("paid, net of refunds"), max_digits=14, decimal_places=2)
    r_score = models.PositiveSmallIntegerField(_("R score"))
    f_score = models.PositiveSmallIntegerField(_("F score"))
    m_score = models.PositiveSmallIntegerField(_("M score"))
    rfm_class = models.CharField(_("RFM class"), max_length=20, choices=RfmClass.choices)
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("member RFM")
        verbose_name_plural = _("member RFM")
        constraints = [models.UniqueConstraint(fields=["member", "brand"], name="member_rfm_unique")]
        indexes = [models.Index(fields=["brand", "rfm_class"], name="member_rfm_class")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.brand_id} {self.rfm_class}"

    def recency_days_at(self, now: dt.datetime) -> int:
        """Whole days from the last order to ``now`` (what R was scored on, at the recompute's ``now``)."""
        return int((now - self.last_order_at).total_seconds() // 86400)

    @property
    def recency_days(self) -> int:
        """Whole days since the last order, as of now."""
        return self.recency_days_at(timezone.now())

    @recency_days.setter
    def recency_days(self, days: int) -> None:
        # ``MemberRfm(recency_days=…)`` (fixtures, callers of the former column): the last order
        # that many days before now.
        self.last_order_at = timezone.now() - dt.timedelta(days=int(days))

    @classmethod
    def merge_member(cls, survivor_id: int, merged_id: int) -> int:
        """Modelled values are recomputed for the survivor after a merge; the merged member's go."""
        return cls.objects.filter(member_id=merged_id).delete()[0]


class MemberLifecycle(models.Model):
    """A member's lifecycle stage with one brand, and since when."""

    # Derived rows, as MemberRfm's: keys not checked by the database (a check per member whose
    # stage a batch sets, at its commit).
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="lifecycle", db_index=False, db_constraint=False)
    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.CASCADE, related_name="+",
                              db_index=False, db_constraint=False)
    stage = models.CharField(_("stage"), max_length=10, choices=LifecycleStage.choices)
    since = models.DateTimeField(_("since"))
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("member lifecycle")
        verbose_name_plural = _("member lifecycle")
        constraints = [models.UniqueConstraint(fields=["member", "brand"], name="member_lifecycle_unique")]
        indexes = [models.Index(fields=["brand", "stage"], name="member_lifecycle_stage")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.brand_id} {self.stage}"

    @classmethod
    def merge_member(cls, survivor_id: int, merged_id: int) -> int:
        """Modelled values are recomputed for the survivor after a merge; the merged member's go."""
        return cls.objects.filter(member_id=merged_id).delete()[0]


class ModelChange(models.Model):
    """History of modelled values: a member's RFM class or lifecycle stage changed.

    Append-only, and written by the million on a first scoring: its keys are not checked by the
    database (a deferred check per row and key doubled the recompute's commit). Merges move a
    member's rows to the survivor like any other; deleting a member or brand deletes them
    through the ORM.
    """

    class Kind(models.TextChoices):
        RFM = "rfm", _("RFM class")
        LIFECYCLE = "lifecycle", _("lifecycle stage")

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="+",
                               db_constraint=False, db_index=False)
    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.CASCADE, related_name="+",
                              db_constraint=False)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    old_value = models.CharField(_("from"), max_length=20, blank=True)
    new_value = models.CharField(_("to"), max_length=20, blank=True)
    at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("model change")
        verbose_name_plural = _("model changes")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["member", "brand", "kind", "at"], name="model_change_member")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind} {self.old_value}→{self.new_value}"
