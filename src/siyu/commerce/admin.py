"""Console pages for omni-channel commerce. Channels and products are editable; orders, lines,
refunds and member stats are facts written by ``record_orders`` and are read-only here."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import (
    AutocompleteSelectFilter,
    ChoicesDropdownFilter,
    RelatedDropdownFilter,
)

from siyu.commerce.models import (
    Channel,
    MemberChannelStats,
    MemberStats,
    Order,
    OrderLine,
    Product,
    Refund,
)
from siyu.console.base import (
    BusinessDayRangeFilter,
    ConsoleAdmin,
    LargeFactAdmin,
    ReadOnlyTabularInline,
    ScopedMixin,
    exact_search,
)
from siyu.members.models import Identity, IdentityKind, Member


@admin.register(Channel)
class ChannelAdmin(ConsoleAdmin):
    list_display = ["name", "code", "kind", "platform", "store", "is_active"]
    list_select_related = ["store"]
    list_filter = [("kind", ChoicesDropdownFilter), "platform", "is_active"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["store"]


@admin.register(Product)
class ProductAdmin(ConsoleAdmin):
    list_display = ["name", "sku", "category", "price", "role", "is_active"]
    list_filter = [("role", ChoicesDropdownFilter), "category", "is_active"]
    search_fields = ["sku", "name"]


class OrderLineInline(ReadOnlyTabularInline):
    model = OrderLine
    fields = ["line_no", "sku", "name", "product", "quantity", "unit_price", "amount"]
    ordering = ["line_no"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("product")


class RefundInline(ReadOnlyTabularInline):
    model = Refund
    fields = ["external_id", "amount", "refunded_at", "reason"]
    ordering = ["refunded_at"]


@admin.register(Order)
class OrderAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["external_id", "channel", "status", "member", "buyer", "paid_amount",
                    "refunded_amount", "item_count", "store", "guide", "ordered_at"]
    list_display_links = ["external_id"]
    list_select_related = ["channel", "member", "store", "guide"]
    search_fields = ["external_id"]  # shows the search box; get_search_results does the matching
    search_help_text = _("External order id, marketplace buyer nick or member code")
    list_filter = [
        ("channel", RelatedDropdownFilter),
        ("status", ChoicesDropdownFilter),
        ("store", AutocompleteSelectFilter),
        ("ordered_at", BusinessDayRangeFilter),
    ]
    ordering = ["-ordered_at", "-id"]
    fieldsets = [
        (None, {"fields": ["channel", "external_id", "status", "is_counted", "ordered_at",
                           "paid_at"]}),
        (_("Buyer"), {"fields": ["member", "buyer_kind", "buyer_value"]}),
        (_("Amounts"), {"fields": ["total_amount", "paid_amount", "refunded_amount",
                                   "item_count"]}),
        (_("Attribution"), {"fields": ["store", "guide"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"]}),
    ]
    inlines = [OrderLineInline, RefundInline]

    @admin.display(description=_("buyer identity"), ordering="buyer_value")
    def buyer(self, obj: Order) -> str:
        return obj.buyer_value or "-"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Each branch is an indexed equality: (channel, external_id) is unique, a buyer waiting
        # for their member has a partial index and (member, ordered_at) leads another. A buyer
        # nick that became a member's identity finds the member's orders. Channel and member ids
        # are looked up first so that no branch is a join the planner cannot OR together.
        channel_ids = list(Channel.objects.values_list("pk", flat=True))
        member_ids = {*Member.objects.filter(code=term).values_list("pk", flat=True)[:1],
                      *Identity.objects.filter(kind=IdentityKind.NICK, value=term).values_list("member_id", flat=True)}
        return queryset.filter(
            Q(channel_id__in=channel_ids, external_id=term)
            | Q(buyer_kind=IdentityKind.NICK, buyer_value=term, member__isnull=True)
            | Q(member_id__in=sorted(member_ids))
        ), False


@admin.register(OrderLine)
class OrderLineAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "order__member__"
    list_display = ["order", "line_no", "sku", "name", "quantity", "unit_price", "amount"]
    list_select_related = ["order"]
    search_fields = ["sku"]
    ordering = ["-id"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return exact_search(queryset, term, ["sku", "order__external_id"]), False


@admin.register(Refund)
class RefundAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "order__member__"
    list_display = ["external_id", "order", "amount", "refunded_at", "reason"]
    list_select_related = ["order"]
    list_filter = [("refunded_at", BusinessDayRangeFilter)]
    search_fields = ["external_id"]
    ordering = ["-refunded_at", "-id"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return exact_search(queryset, term, ["external_id", "order__external_id"]), False


@admin.register(MemberStats)
class MemberStatsAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["member", "order_count", "item_count", "total_paid", "total_refunded",
                    "first_order_at", "last_order_at"]
    list_select_related = ["member"]
    list_filter = [("last_order_at", BusinessDayRangeFilter)]
    search_fields = ["member__code"]
    ordering = ["-last_order_at"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(member__code=term), False


@admin.register(MemberChannelStats)
class MemberChannelStatsAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["member", "channel", "order_count", "total_paid", "last_order_at"]
    list_select_related = ["member", "channel"]
    list_filter = [("channel", RelatedDropdownFilter)]
    search_fields = ["member__code"]
    ordering = ["-id"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(member__code=term), False
