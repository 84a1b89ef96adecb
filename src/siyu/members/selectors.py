"""Member center reads: one member by any reference, and keyset-paginated member lists."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from siyu.core.errors import NotFound, ValidationError
from siyu.core.rows import RowError
from siyu.members.identities import parse_ref
from siyu.members.models import IDENTITY_STRENGTH, Identity, Member, MemberStatus

#: Merges can chain (A → B, later B → C); follow at most this many hops.
_MAX_MERGE_HOPS = 10
#: Statuses a member list leaves out unless asked for by ``status``.
HIDDEN_BY_DEFAULT = (MemberStatus.MERGED, MemberStatus.ERASED)


@dataclass(frozen=True)
class MemberLookup:
    """The member a reference answers with, and the member it named when that one was merged."""

    member: Member
    named: Member

    @property
    def merged_into(self) -> int | None:
        return self.member.pk if self.named.pk != self.member.pk else None


def _members() -> QuerySet[Member]:
    return Member.objects.select_related("store", "guide")


def _ref_filter(ref: str) -> Q:
    """``12345`` (id, else code), ``id:12345``, ``code:M…``, ``phone:138…`` or a bare member code."""
    text = str(ref).strip()
    if not text:
        raise ValidationError(_("empty member reference"), code="invalid_ref", field="ref")
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    if sep and kind == "id":
        if not value.strip().isdigit():
            raise ValidationError(_("not a member id: %(v)s") % {"v": value}, code="invalid_ref", field="ref")
        return Q(pk=int(value))
    if sep and kind == "code":
        return Q(code=value.strip())
    if sep:
        try:
            ident = parse_ref(text, field="ref")
        except RowError as error:
            raise ValidationError(error.message, code=error.code, field="ref") from None
        return Q(pk__in=Identity.objects.filter(kind=ident.kind, value=ident.value).values("member_id"))
    if text.isascii() and text.isdigit() and len(text) < 19:
        return Q(pk=int(text)) | Q(code=text)
    return Q(code=text)


def member_by_ref(ref: str) -> MemberLookup:
    """The member ``ref`` names, followed to its survivor when it was merged.

    A numeric ref is an id, or a member code when no member has that id (``code:…`` forces a
    code). Raises :class:`NotFound` for an unknown reference or an erased member,
    :class:`ValidationError` for a malformed ``kind:value``.
    """
    digits = str(ref).strip()
    found = list(_members().filter(_ref_filter(ref))[:2])
    if len(found) > 1:  # a numeric ref matched one member's id and another's code: the id wins
        found = [m for m in found if str(m.pk) == digits] or found[:1]
    if not found:
        raise NotFound(_("no member matches %(ref)s") % {"ref": ref}, code="unknown_member", field="ref")
    named = member = found[0]
    for _hop in range(_MAX_MERGE_HOPS):
        if member.status != MemberStatus.MERGED or member.merged_into_id is None:
            break
        member = _members().get(pk=member.merged_into_id)
    if member.status == MemberStatus.ERASED:
        raise NotFound(_("member %(ref)s has been erased") % {"ref": ref}, code="member_erased", field="ref")
    return MemberLookup(member=member, named=named)


def member_identities(member_id: int) -> list[Identity]:
    """A member's identities, strongest kind first (phone, unionid, WeCom …)."""
    identities = list(Identity.objects.filter(member_id=member_id).order_by("pk"))
    return sorted(identities, key=lambda i: (IDENTITY_STRENGTH.get(i.kind, 99), i.pk))


@dataclass(frozen=True)
class MemberFilter:
    """Validated member list filters; ``None``/empty means "any"."""

    city: str = ""
    store: str = ""  # store code
    guide: str = ""  # staff code
    phone: str = ""  # normalised mainland mobile
    joined_after: dt.datetime | None = None  # inclusive
    joined_before: dt.datetime | None = None  # exclusive
    status: str = ""
    is_wecom_friend: bool | None = None

    def q(self) -> Q:
        q = Q()
        if self.city:
            q &= Q(city=self.city)
        if self.store:
            q &= Q(store__code=self.store)
        if self.guide:
            q &= Q(guide__code=self.guide)
        if self.phone:
            # Any of the member's phones, not only the primary one: (kind, value) is unique.
            q &= Q(pk__in=Identity.objects.filter(kind="phone", value=self.phone).values("member_id"))
        if self.joined_after:
            q &= Q(joined_at__gte=self.joined_after)
        if self.joined_before:
            q &= Q(joined_at__lt=self.joined_before)
        q &= Q(status=self.status) if self.status else ~Q(status__in=HIDDEN_BY_DEFAULT)
        if self.is_wecom_friend is not None:
            q &= Q(is_wecom_friend=self.is_wecom_friend)
        return q


def member_page(filters: MemberFilter, *, limit: int, before_id: int | None = None) -> tuple[list[Member], bool]:
    """One page of members, newest id first, starting after ``before_id`` (keyset, one query).

    Returns the members and whether more follow. Merged and erased members are left out unless
    ``filters.status`` asks for them.
    """
    members = _members().filter(filters.q())
    if before_id is not None:
        members = members.filter(pk__lt=before_id)
    page = list(members.order_by("-pk")[:limit + 1])
    return page[:limit], len(page) > limit
