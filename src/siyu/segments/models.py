"""Segments (人群/分群): saved rules, static lists, frozen snapshots and membership history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.members.models import Member


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", _("dynamic (rule)")
    STATIC = "static", _("static (uploaded list)")


class Segment(models.Model):
    """A saved segment: a rule evaluated live (dynamic) or a fixed list of members (static)."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    rule = models.JSONField(_("rule"), null=True, blank=True)
    description = models.TextField(_("description"), blank=True)
    track_membership = models.BooleanField(
        _("keep membership history"), default=False,
        help_text=_("record when each member enters and leaves (refreshed after every batch and nightly)"))
    size = models.PositiveIntegerField(_("members"), null=True, blank=True)
    counted_at = models.DateTimeField(_("counted at"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    """A member of a static segment."""

    segment = models.ForeignKey(Segment, verbose_name=_("segment"), on_delete=models.CASCADE, related_name="listed",
                                db_index=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = _("listed member")
        verbose_name_plural = _("listed members")
        constraints = [models.UniqueConstraint(fields=["segment", "member"], name="segment_member_unique")]

    def __str__(self) -> str:
        return f"{self.segment_id} {self.member_id}"

    @classmethod
    def merge_member(cls, survivor_id: int, merged_id: int) -> int:
        from siyu.members.merge import move_member_rows

        return move_member_rows(cls, survivor_id, merged_id, unique_with="segment_id")


class SegmentMembership(models.Model):
    """History of a dynamic segment: a member entered at ``entered_at`` and left at ``left_at``."""

    segment = models.ForeignKey(Segment, verbose_name=_("segment"), on_delete=models.CASCADE,
                                related_name="memberships", db_index=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="+")
    entered_at = models.DateTimeField(_("entered at"))
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)

    class Meta:
        verbose_name = _("segment membership")
        verbose_name_plural = _("segment memberships")
        indexes = [
            models.Index(fields=["segment", "member", "left_at"], name="segment_membership_member"),
            models.Index(fields=["segment", "left_at"], name="segment_membership_open"),
        ]

    def __str__(self) -> str:
        return f"{self.segment_id} {self.member_id}"


class Snapshot(models.Model):
    """A frozen membership (快照) for a campaign or journey: who was in, when, under which rule."""

    segment = models.ForeignKey(Segment, verbose_name=_("segment"), on_delete=models.PROTECT, related_name="snapshots")
    name = models.CharField(_("name"), max_length=100, blank=True)
    rule = models.JSONField(_("rule"), null=True, blank=True)
    size = models.PositiveIntegerField(_("members"), default=0)
    taken_at = models.DateTimeField(_("taken at"))
    taken_by = models.CharField(_("taken by"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("snapshot")
        verbose_name_plural = _("snapshots")
        ordering = ["-taken_at", "-id"]

    def __str__(self) -> str:
        return f"{self.segment} @ {self.taken_at:%Y-%m-%d %H:%M}"


class SnapshotMember(models.Model):
    snapshot = models.ForeignKey(Snapshot, verbose_name=_("snapshot"), on_delete=models.CASCADE,
                                 related_name="members", db_index=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = _("snapshot member")
        verbose_name_plural = _("snapshot members")
        constraints = [models.UniqueConstraint(fields=["snapshot", "member"], name="snapshot_member_unique")]

    def __str__(self) -> str:
        return f"{self.snapshot_id} {self.member_id}"

    @classmethod
    def merge_member(cls, survivor_id: int, merged_id: int) -> int:
        from siyu.members.merge import move_member_rows

        return move_member_rows(cls, survivor_id, merged_id, unique_with="snapshot_id")
