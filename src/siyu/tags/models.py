"""Tags (标签): groups with a category, tags in them, and which member holds which tag.

A member's tags live in :class:`MemberTag` (one row per member and tag, indexed both ways) —
never as a text list — and every change is kept in :class:`MemberTagChange`.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from siyu.members.models import Member
from siyu.org.models import Brand, Staff


class TagCategory(models.TextChoices):
    BASIC = "basic", _("basic")
    TIER = "tier", _("member tier")
    CONSUMPTION = "consumption", _("consumption")
    LIFECYCLE = "lifecycle", _("lifecycle")
    PERSONAL = "personal", _("personalised (manual)")
    QUESTIONNAIRE = "questionnaire", _("questionnaire")
    REGISTRATION = "registration", _("registration")
    SCENE = "scene", _("scene")
    MODEL = "model", _("model")


class TagSource(models.TextChoices):
    MANUAL = "manual", _("manual")
    RULE = "rule", _("rule")
    SCENE = "scene", _("scene")
    MODEL = "model", _("model")
    IMPORT = "import", _("import")


class TagGroup(models.Model):
    """Tag group (标签组). In an exclusive group a member holds at most one tag."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    category = models.CharField(pgettext_lazy("tag", "category"), max_length=20, choices=TagCategory.choices,
                                default=TagCategory.PERSONAL, db_index=True)
    exclusive = models.BooleanField(_("mutually exclusive"), default=False,
                                    help_text=_("a member holds at most one tag of this group"))
    brand = models.ForeignKey(Brand, verbose_name=_("brand"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", help_text=_("empty: shared by the whole group (集团)"))
    sort = models.PositiveIntegerField(_("sort order"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")
        ordering = ["sort", "code"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A tag. With a ``rule`` (a segment rule tree) it is a rule tag: Siyu applies and removes it."""

    group = models.ForeignKey(TagGroup, verbose_name=_("tag group"), on_delete=models.PROTECT, related_name="tags",
                              db_index=False)
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100)
    rule = models.JSONField(_("rule"), null=True, blank=True,
                            help_text=_("a segment rule: members matching it hold the tag"))
    is_active = models.BooleanField(_("active"), default=True)
    sort = models.PositiveIntegerField(_("sort order"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["group__sort", "sort", "code"]
        constraints = [models.UniqueConstraint(fields=["group", "name"], name="tag_group_name_unique")]

    def __str__(self) -> str:
        return self.name


class MemberTag(models.Model):
    """A tag a member holds now: who or what applied it, when, until when."""

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="tags",
                               db_index=False)
    tag = models.ForeignKey(Tag, verbose_name=_("tag"), on_delete=models.CASCADE, related_name="holders",
                            db_index=False)
    source = models.CharField(_("source"), max_length=10, choices=TagSource.choices)
    applied_by = models.ForeignKey(Staff, verbose_name=_("applied by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    actor = models.CharField(_("actor"), max_length=100, blank=True,
                             help_text=_("who or what applied it: a user, a rule, an import"))
    applied_at = models.DateTimeField(_("applied at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("member tag")
        verbose_name_plural = _("member tags")
        constraints = [models.UniqueConstraint(fields=["member", "tag"], name="member_tag_unique")]
        indexes = [models.Index(fields=["tag", "member"], name="member_tag_by_tag")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.tag_id}"

    @classmethod
    def merge_member(cls, survivor_id: int, merged_id: int) -> int:
        """The survivor gains the merged member's tags it does not hold (rule tags are re-evaluated)."""
        from siyu.members.merge import move_member_rows

        return move_member_rows(cls, survivor_id, merged_id, unique_with="tag_id")


class TagAction(models.TextChoices):
    ADDED = "added", _("added")
    REMOVED = "removed", _("removed")


class MemberTagChange(models.Model):
    """History: every time a member gained or lost a tag, and why.

    Append-only, and written by the thousand with model tags: its keys are not checked by the
    database, as ``analytics.ModelChange``'s; deleting a member or tag deletes them through the ORM.
    """

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="tag_changes", db_index=False, db_constraint=False)
    tag = models.ForeignKey(Tag, verbose_name=_("tag"), on_delete=models.CASCADE, related_name="changes",
                            db_constraint=False)
    action = models.CharField(_("action"), max_length=10, choices=TagAction.choices)
    source = models.CharField(_("source"), max_length=10, choices=TagSource.choices)
    actor = models.CharField(_("actor"), max_length=100, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("tag change")
        verbose_name_plural = _("tag changes")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["member", "at"], name="tag_change_member_time")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.action} {self.tag_id}"
