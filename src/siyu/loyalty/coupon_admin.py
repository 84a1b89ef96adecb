"""Console pages for coupons and the points mall: templates and rewards are edited here; issue
runs, coupons and redemptions are read-only (written by ``coupons`` and ``mall``)."""

from __future__ import annotations

from django.contrib import admin
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter

from siyu.console.base import ConsoleAdmin, LargeFactAdmin, ScopedMixin, pretty_json
from siyu.loyalty.coupon_models import (
    Coupon,
    CouponCategory,
    CouponIssue,
    CouponTemplate,
    Reward,
    RewardRedemption,
)


class CouponCategoryInline(TabularInline):
    model = CouponCategory
    extra = 0


@admin.register(CouponTemplate)
class CouponTemplateAdmin(ConsoleAdmin):
    list_display = ["name", "code", "kind", "program", "brand", "amount_off", "percent_off", "min_amount",
                    "validity", "valid_until", "valid_days", "total_stock", "issued_count", "per_member_limit",
                    "is_active"]
    list_select_related = ["program", "brand"]
    list_filter = [("kind", ChoicesDropdownFilter), ("program", RelatedDropdownFilter),
                   ("brand", RelatedDropdownFilter), "is_active"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["brand", "gift_product", "channels", "stores", "products"]
    readonly_fields = ["issued_count", "created_at", "updated_at"]
    inlines = [CouponCategoryInline]


@admin.register(CouponIssue)
class CouponIssueAdmin(LargeFactAdmin):
    list_display = ["issued_at", "template", "target", "target_ref", "requested", "issued", "actor"]
    list_select_related = ["template"]
    list_filter = [("target", ChoicesDropdownFilter), ("template", RelatedDropdownFilter)]
    search_fields = ["idempotency_key"]
    ordering = ["-id"]
    readonly_fields = ["skipped_pretty", "skipped_members_pretty"]

    @admin.display(description=CouponIssue._meta.get_field("skipped").verbose_name)
    def skipped_pretty(self, obj: CouponIssue):
        return pretty_json(obj.skipped)

    @admin.display(description=CouponIssue._meta.get_field("skipped_members").verbose_name)
    def skipped_members_pretty(self, obj: CouponIssue):
        return pretty_json(obj.skipped_members)


@admin.register(Coupon)
class CouponAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["code", "template", "member", "state", "issued_at", "valid_until", "order", "discount",
                    "redeemed_at"]
    list_select_related = ["template", "member", "order"]
    list_filter = [("state", ChoicesDropdownFilter), ("template", RelatedDropdownFilter)]
    search_fields = ["code", "member__code"]
    ordering = ["-id"]


@admin.register(Reward)
class RewardAdmin(ConsoleAdmin):
    list_display = ["name", "code", "program", "kind", "points_price", "stock", "redeemed_count", "per_member_limit",
                    "valid_from", "valid_until", "is_active"]
    list_select_related = ["program"]
    list_filter = [("program", RelatedDropdownFilter), ("kind", ChoicesDropdownFilter), "is_active"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["product", "coupon_template"]
    readonly_fields = ["redeemed_count", "created_at", "updated_at"]
    ordering = ["program", "sort", "id"]


@admin.register(RewardRedemption)
class RewardRedemptionAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["redeemed_at", "member", "reward", "quantity", "points", "coupon", "actor"]
    list_select_related = ["member", "reward", "coupon"]
    list_filter = [("reward", RelatedDropdownFilter)]
    search_fields = ["member__code", "idempotency_key"]
    ordering = ["-id"]
