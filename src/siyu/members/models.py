"""Member center (会员中心): one member per real person, joined from many identities."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from siyu.org.models import Staff, Store


class Gender(models.TextChoices):
    UNKNOWN = "unknown", _("unknown")
    MALE = "male", _("male")
    FEMALE = "female", _("female")


class MemberStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    FROZEN = "frozen", _("frozen")
    MERGED = "merged", _("merged into another member")
    ERASED = "erased", _("erased (PIPL)")


class Member(models.Model):
    code = models.CharField(_("member code"), max_length=32, unique=True)
    name = models.CharField(pgettext_lazy("person", "name"), max_length=100, blank=True)
    gender = models.CharField(_("gender"), max_length=8, choices=Gender.choices,
                              default=Gender.UNKNOWN, db_index=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True, db_index=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True,
                             help_text=_("Primary phone, normalised (e.g. 13800138000)"))
    email = models.CharField(_("email"), max_length=254, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True, db_index=True)
    community = models.CharField(_("residential community (小区)"), max_length=100, blank=True,
                                 db_index=True)
    house_number = models.CharField(_("house number (房号)"), max_length=50, blank=True)
    occupation = models.CharField(_("occupation"), max_length=50, blank=True)
    joined_at = models.DateTimeField(_("joined at"), db_index=True)
    source_channel = models.CharField(_("source channel"), max_length=50, blank=True,
                                      db_index=True,
                                      help_text=_("Where the member came from, e.g. store, tmall, live-code"))
    store = models.ForeignKey(Store, verbose_name=_("owning store"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="members")
    guide = models.ForeignKey(Staff, verbose_name=_("owning guide (专属导购)"), null=True,
                              blank=True, on_delete=models.SET_NULL, related_name="members")
    status = models.CharField(_("status"), max_length=10, choices=MemberStatus.choices,
                              default=MemberStatus.ACTIVE, db_index=True)
    merged_into = models.ForeignKey("self", verbose_name=_("merged into"), null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    # Reachability (全渠道触达): maintained by the services that record contacts and consent.
    is_wecom_friend = models.BooleanField(_("WeCom friend of a guide"), default=False,
                                          db_index=True)
    in_group = models.BooleanField(_("in a WeChat group"), default=False, db_index=True)
    follows_oa = models.BooleanField(_("follows the official account"), default=False,
                                     db_index=True)
    mini_program_authorized = models.BooleanField(_("mini-program authorised"), default=False,
                                                  db_index=True)
    sms_consent = models.BooleanField(_("SMS consent"), default=False, db_index=True)
    marketing_consent = models.BooleanField(_("marketing consent"), default=False, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name or self.code} ({self.code})"

    @property
    def is_reachable_online(self) -> bool:
        return self.is_wecom_friend or self.in_group or self.follows_oa or self.mini_program_authorized


class IdentityKind(models.TextChoices):
    """Kinds in order of strength: resolution prefers the earlier kinds (phone first)."""

    PHONE = "phone", _("phone")
    UNIONID = "unionid", _("WeChat unionid")
    WECOM = "wecom", _("WeCom external_userid")
    OPENID = "openid", _("WeChat openid")
    POS_CARD = "pos_card", _("POS card number")
    NICK = "nick", _("marketplace buyer nick")
    EMAIL = "email", _("email")


IDENTITY_STRENGTH = {kind: rank for rank, kind in enumerate(IdentityKind.values)}


class Identity(models.Model):
    """One way to recognise a member; a (kind, value) belongs to at most one member."""

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="identities")
    kind = models.CharField(_("kind"), max_length=10, choices=IdentityKind.choices)
    value = models.CharField(_("value"), max_length=191)
    source = models.CharField(_("source"), max_length=50, blank=True)
    created_at = models.DateTimeField(_("linked at"), auto_now_add=True)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="identity_kind_value_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class OwnershipChange(models.Model):
    """History of a member's owning guide and store (专属导购变更)."""

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="ownership_changes")
    from_guide = models.ForeignKey(Staff, verbose_name=_("previous guide"), null=True,
                                   blank=True, on_delete=models.SET_NULL, related_name="+")
    to_guide = models.ForeignKey(Staff, verbose_name=_("new guide"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    from_store = models.ForeignKey(Store, verbose_name=_("previous store"), null=True,
                                   blank=True, on_delete=models.SET_NULL, related_name="+")
    to_store = models.ForeignKey(Store, verbose_name=_("new store"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(_("reason"), max_length=100, blank=True)
    actor = models.CharField(_("changed by"), max_length=200, blank=True)
    changed_at = models.DateTimeField(_("changed at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("ownership change")
        verbose_name_plural = _("ownership changes")
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.from_guide_id} → {self.to_guide_id}"


class AddWay(models.TextChoices):
    SCAN = "scan", _("scanned a QR code")
    SEARCH = "search", _("searched phone or WeCom id")
    GROUP = "group", _("from a group chat")
    SHARE = "share", _("shared business card")
    OTHER = "other", _("other")


class ContactStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    DELETED_BY_CUSTOMER = "deleted_by_customer", _("deleted by the customer")
    DELETED_BY_STAFF = "deleted_by_staff", _("deleted by the staff")


class WeComContact(models.Model):
    """A member as the WeCom contact (好友) of one staff member."""

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="wecom_contacts", db_index=False)
    staff = models.ForeignKey(Staff, verbose_name=_("staff"), on_delete=models.CASCADE,
                              related_name="wecom_contacts", db_index=False)
    added_at = models.DateTimeField(_("added at"), db_index=True)
    add_way = models.CharField(_("added by"), max_length=10, choices=AddWay.choices,
                               default=AddWay.OTHER)
    state = models.CharField(_("channel state"), max_length=64, blank=True, db_index=True,
                             help_text=_("The state parameter of the channel code scanned"))
    remark = models.CharField(_("staff remark"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=ContactStatus.choices,
                              default=ContactStatus.ACTIVE, db_index=True)
    status_changed_at = models.DateTimeField(_("status changed at"), db_index=True)

    class Meta:
        verbose_name = _("WeCom contact")
        verbose_name_plural = _("WeCom contacts")
        constraints = [
            models.UniqueConstraint(fields=["member", "staff"], name="wecom_contact_unique"),
        ]
        indexes = [models.Index(fields=["staff", "status"], name="wecom_contact_staff_status")]

    def __str__(self) -> str:
        return f"{self.staff_id} ↔ {self.member_id} ({self.status})"


class MergeStatus(models.TextChoices):
    OPEN = "open", _("open")
    MERGED = "merged", _("merged")
    DISMISSED = "dismissed", _("dismissed")


class MergeCandidate(models.Model):
    """Two members that share evidence of being one person; never merged silently."""

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="+", db_index=False)
    other = models.ForeignKey(Member, verbose_name=_("other member"), on_delete=models.CASCADE,
                              related_name="+")
    reason = models.CharField(_("evidence"), max_length=300)
    status = models.CharField(_("status"), max_length=10, choices=MergeStatus.choices,
                              default=MergeStatus.OPEN, db_index=True)
    created_at = models.DateTimeField(_("flagged at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("merge candidate")
        verbose_name_plural = _("merge candidates")
        constraints = [
            models.UniqueConstraint(fields=["member", "other"], name="merge_candidate_pair_unique"),
            models.CheckConstraint(condition=Q(member__lt=models.F("other")),
                                   name="merge_candidate_ordered_pair"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} ≟ {self.other_id}"


class MergeRecord(models.Model):
    """A completed merge: what moved from the merged member to the survivor."""

    survivor = models.ForeignKey(Member, verbose_name=_("surviving member"),
                                 on_delete=models.PROTECT, related_name="merges_absorbed")
    merged = models.ForeignKey(Member, verbose_name=_("merged member"),
                               on_delete=models.PROTECT, related_name="merges_into")
    moved = models.JSONField(_("moved rows"), default=dict)
    snapshot = models.JSONField(_("merged member's profile"), default=dict)
    actor = models.CharField(_("merged by"), max_length=200)
    merged_at = models.DateTimeField(_("merged at"), auto_now_add=True)

    class Meta:
        verbose_name = _("merge record")
        verbose_name_plural = _("merge records")
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"{self.merged_id} → {self.survivor_id}"
