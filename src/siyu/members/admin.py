"""Console pages for the member center (会员中心). Read-only: the member services own the writes."""

from __future__ import annotations

import contextlib

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import (
    AutocompleteSelectFilter,
    BooleanRadioFilter,
    ChoicesDropdownFilter,
)

# The member page shows the order aggregates commerce maintains for it (read-only).
from siyu.commerce.models import MemberChannelStats, MemberStats, Order
from siyu.console.base import (
    BusinessDayRangeFilter,
    FactAdmin,
    LargeFactAdmin,
    ReadOnlyStackedInline,
    ReadOnlyTabularInline,
    ScopedMixin,
    exact_search,
    exact_value_filter,
)
from siyu.members.identities import normalize_phone
from siyu.members.models import (
    Identity,
    IdentityKind,
    Member,
    MergeCandidate,
    MergeRecord,
    OwnershipChange,
    WeComContact,
)

REACHABILITY = ("is_wecom_friend", "in_group", "follows_oa", "mini_program_authorized",
                "sms_consent", "marketing_consent")
#: Short labels for the member list: the channels that reach a member for free.
REACH_LABELS = (
    ("is_wecom_friend", _("WeCom")),
    ("in_group", _("group chat")),
    ("follows_oa", _("official account")),
    ("mini_program_authorized", _("mini-program")),
    ("sms_consent", _("SMS")),
)


def identity_values(term: str) -> set[str]:
    """Every normalised form ``term`` may be stored under as an identity value."""
    values = {term}
    with contextlib.suppress(ValueError):
        values.add(normalize_phone(term))
    if "@" in term:
        values.add(term.lower())
    return values


def member_search_q(term: str, *, prefix: str = "") -> Q:
    """Members whose code, phone or any identity value equals ``term``, or whose name contains it.

    Phones are normalised the way identities are (``+86 138-0013-8000`` → ``13800138000``). The
    identity lookup runs first (one query on the unique ``(kind, value)`` index) so the member
    query stays an OR of indexed equalities; a term that is a phone number skips the name match,
    which no index serves.
    """
    values = identity_values(term)
    member_ids = list(
        Identity.objects.filter(kind__in=IdentityKind.values, value__in=values)
        .values_list("member_id", flat=True)[:100]
    )
    q = (Q(**{f"{prefix}code": term}) | Q(**{f"{prefix}phone__in": values})
         | Q(**{f"{prefix}pk__in": member_ids}))
    if not _is_phone(term):
        q |= Q(**{f"{prefix}name__icontains": term})
    return q


def _is_phone(term: str) -> bool:
    try:
        normalize_phone(term)
    except ValueError:
        return False
    return True


class IdentityInline(ReadOnlyTabularInline):
    model = Identity
    tab = True
    fields = ["kind", "value", "source", "created_at"]
    verbose_name_plural = _("identities")


class WeComContactInline(ReadOnlyTabularInline):
    model = WeComContact
    tab = True
    fields = ["staff", "status", "add_way", "state", "remark", "added_at", "status_changed_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("staff")


class OwnershipChangeInline(ReadOnlyTabularInline):
    model = OwnershipChange
    tab = True
    fields = ["changed_at", "from_guide", "to_guide", "from_store", "to_store", "reason", "actor"]
    per_page = 10

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("from_guide", "to_guide", "from_store",
                                                            "to_store")


class MemberStatsInline(ReadOnlyStackedInline):
    model = MemberStats
    tab = True
    fields = ["order_count", "item_count", "total_paid", "total_refunded", "first_order_at",
              "last_order_at"]
    verbose_name_plural = _("order aggregates")


class MemberChannelStatsInline(ReadOnlyTabularInline):
    model = MemberChannelStats
    tab = True
    fields = ["channel", "order_count", "total_paid", "last_order_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("channel")


class RecentOrderInline(ReadOnlyTabularInline):
    model = Order
    fields = ["external_id", "channel", "status", "paid_amount", "refunded_amount", "store",
              "ordered_at"]
    ordering = ["-ordered_at", "-id"]
    show_change_link = True
    per_page = 10
    tab = True

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("channel", "store")


@admin.register(Member)
class MemberAdmin(ScopedMixin, FactAdmin):
    list_display = ["code", "name", "phone", "store", "guide", "status", "reach",
                    "order_count", "total_paid", "joined_at"]
    list_display_links = ["code", "name"]
    list_select_related = ["store", "guide", "stats"]
    search_fields = ["code"]  # shows the search box; get_search_results does the matching
    search_help_text = _("Member code, name, phone (any format) or any identity value: "
                         "unionid, openid, WeCom id, POS card, buyer nick, email")
    list_filter = [
        ("store", AutocompleteSelectFilter),
        ("guide", AutocompleteSelectFilter),
        exact_value_filter("city", _("city")),
        ("gender", ChoicesDropdownFilter),
        ("status", ChoicesDropdownFilter),
        *[(flag, BooleanRadioFilter) for flag in REACHABILITY],
        ("joined_at", BusinessDayRangeFilter),
    ]
    ordering = ["-id"]
    fieldsets = [
        (None, {"fields": ["code", "name", "phone", "status", "store", "guide", "joined_at", "loyalty", "journeys"]}),
        (_("Profile"), {"classes": ["tab"], "fields": [
            "gender", "birthday", "email", "city", "community", "house_number", "occupation",
            "source_channel", "merged_into"]}),
        (_("Reachability"), {"classes": ["tab"], "fields": list(REACHABILITY)}),
        (_("Record"), {"classes": ["tab"], "fields": ["created_at", "updated_at"]}),
    ]
    inlines = [MemberStatsInline, RecentOrderInline, IdentityInline, WeComContactInline,
               MemberChannelStatsInline, OwnershipChangeInline]

    @admin.display(description=_("loyalty"))
    def loyalty(self, obj: Member) -> str:
        return format_html('<a class="text-primary-600 dark:text-primary-500" href="{}">{}</a>',
                           reverse("loyalty:member", args=[obj.pk]), _("Points, tier and benefits"))

    @admin.display(description=_("journeys"))
    def journeys(self, obj: Member) -> str:
        return format_html('<a class="text-primary-600 dark:text-primary-500" href="{}">{}</a>',
                           reverse("journeys:member", args=[obj.pk]), _("Journey steps and messages"))

    @admin.display(description=_("orders"), ordering="stats__order_count")
    def order_count(self, obj: Member):
        stats = _stats(obj)
        return stats.order_count if stats else 0

    @admin.display(description=_("paid, net of refunds"), ordering="stats__total_paid")
    def total_paid(self, obj: Member):
        stats = _stats(obj)
        return stats.total_paid if stats else "-"

    @admin.display(description=_("reachable via"))
    def reach(self, obj: Member) -> str:
        labels = [str(label) for flag, label in REACH_LABELS if getattr(obj, flag)]
        if not labels:
            return "-"
        return format_html_join(
            " ", '<span class="inline-block rounded-default bg-base-100 px-1.5 text-xs '
            'dark:bg-base-800 whitespace-nowrap">{}</span>', ((label,) for label in labels))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(member_search_q(term)), False


def _stats(member: Member) -> MemberStats | None:
    """The member's stats row as loaded by ``select_related`` (members with no orders have none)."""
    try:
        return member.stats
    except MemberStats.DoesNotExist:
        return None


class MemberFactAdmin(ScopedMixin, LargeFactAdmin):
    """A table keyed by member: scoped through the member, searched by member code."""

    scope_prefix = "member__"
    member_search_fields = ["member__code"]
    search_fields = ["member__code"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return exact_search(queryset, term, self.member_search_fields), False


@admin.register(Identity)
class IdentityAdmin(MemberFactAdmin):
    list_display = ["value", "kind", "member", "source", "created_at"]
    list_select_related = ["member"]
    list_filter = [("kind", ChoicesDropdownFilter), ("created_at", BusinessDayRangeFilter)]
    search_help_text = _("Identity value (phones in any format) or member code")
    ordering = ["-id"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        values = identity_values(term)
        return queryset.filter(Q(kind__in=IdentityKind.values, value__in=values)
                               | Q(member__code=term)), False


@admin.register(WeComContact)
class WeComContactAdmin(MemberFactAdmin):
    list_display = ["member", "staff", "status", "add_way", "state", "added_at", "status_changed_at"]
    list_select_related = ["member", "staff"]
    list_filter = [
        ("staff", AutocompleteSelectFilter),
        ("status", ChoicesDropdownFilter),
        ("add_way", ChoicesDropdownFilter),
        exact_value_filter("state", _("channel state")),
        ("added_at", BusinessDayRangeFilter),
    ]
    ordering = ["-added_at"]


@admin.register(OwnershipChange)
class OwnershipChangeAdmin(MemberFactAdmin):
    list_display = ["changed_at", "member", "from_guide", "to_guide", "from_store", "to_store",
                    "reason", "actor"]
    list_select_related = ["member", "from_guide", "to_guide", "from_store", "to_store"]
    list_filter = [("to_store", AutocompleteSelectFilter), ("to_guide", AutocompleteSelectFilter),
                   ("changed_at", BusinessDayRangeFilter)]


@admin.register(MergeCandidate)
class MergeCandidateAdmin(MemberFactAdmin):
    list_display = ["member", "other", "reason", "status", "created_at", "resolved_at"]
    list_select_related = ["member", "other"]
    list_filter = [("status", ChoicesDropdownFilter), ("created_at", BusinessDayRangeFilter)]
    member_search_fields = ["member__code", "other__code"]
    ordering = ["-id"]


@admin.register(MergeRecord)
class MergeRecordAdmin(MemberFactAdmin):
    scope_prefix = "survivor__"
    list_display = ["merged_at", "merged", "survivor", "actor"]
    list_select_related = ["merged", "survivor"]
    list_filter = [("merged_at", BusinessDayRangeFilter)]
    member_search_fields = ["survivor__code", "merged__code"]
    search_fields = ["survivor__code"]
