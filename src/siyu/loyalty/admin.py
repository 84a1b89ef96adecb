"""Console pages for loyalty: programs, tiers, benefits, rules and plans are edited here; accounts,
the ledger, lots, tier history and paid memberships are read-only (written by the services)."""

from __future__ import annotations

from django.contrib import admin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter

from siyu.console.base import ConsoleAdmin, LargeFactAdmin, ScopedMixin
from siyu.loyalty.models import (
    Benefit,
    EventEarnRule,
    LoyaltyProgram,
    MemberTier,
    PaidMembership,
    PaidMembershipPlan,
    PointsAccount,
    PointsAllocation,
    PointsEntry,
    PurchaseExclusion,
    Tier,
    TierChange,
)


@admin.register(LoyaltyProgram)
class LoyaltyProgramAdmin(ConsoleAdmin):
    list_display = ["name", "code", "scope", "brand", "is_active", "points_per_yuan", "expiry_policy",
                    "member_day_kind"]
    list_filter = [("scope", ChoicesDropdownFilter), "is_active"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["group", "brand"]


@admin.register(Tier)
class TierAdmin(ConsoleAdmin):
    list_display = ["name", "code", "program", "rank", "min_paid_amount", "min_order_count", "min_points_earned",
                    "requires", "retention_days"]
    list_select_related = ["program"]
    list_filter = [("program", RelatedDropdownFilter)]
    search_fields = ["code", "name"]
    ordering = ["program", "rank"]


@admin.register(Benefit)
class BenefitAdmin(ConsoleAdmin):
    list_display = ["name", "program", "tier", "paid_plan", "category", "kind", "multiplier", "is_active"]
    list_select_related = ["program", "tier", "paid_plan"]
    list_filter = [("program", RelatedDropdownFilter), ("category", ChoicesDropdownFilter),
                   ("kind", ChoicesDropdownFilter), "is_active"]
    search_fields = ["name"]


@admin.register(PaidMembershipPlan)
class PaidMembershipPlanAdmin(ConsoleAdmin):
    list_display = ["name", "code", "program", "price", "duration_days", "is_active"]
    list_select_related = ["program"]
    list_filter = [("program", RelatedDropdownFilter), "is_active"]
    search_fields = ["code", "name"]


@admin.register(EventEarnRule)
class EventEarnRuleAdmin(ConsoleAdmin):
    list_display = ["name", "code", "program", "event_kind", "points", "once_per_member", "max_per_day", "is_active"]
    list_select_related = ["program"]
    list_filter = [("program", RelatedDropdownFilter), ("event_kind", ChoicesDropdownFilter), "is_active"]
    search_fields = ["code", "name"]


@admin.register(PurchaseExclusion)
class PurchaseExclusionAdmin(ConsoleAdmin):
    list_display = ["__str__", "program", "product", "category"]
    list_select_related = ["program", "product"]
    list_filter = [("program", RelatedDropdownFilter)]
    autocomplete_fields = ["product"]


@admin.register(PointsAccount)
class PointsAccountAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["member", "program", "balance", "debt", "updated_at"]
    list_select_related = ["member", "program"]
    list_filter = [("program", RelatedDropdownFilter)]
    search_fields = ["member__code"]
    ordering = ["-updated_at", "-id"]


@admin.register(PointsEntry)
class PointsEntryAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "account__member__"
    list_display = ["created_at", "account", "kind", "amount", "debt_delta", "reason", "source_type", "source_id",
                    "occurred_at", "remaining", "expires_at", "actor"]
    list_select_related = ["account"]
    list_filter = [("kind", ChoicesDropdownFilter), ("source_type", ChoicesDropdownFilter),
                   ("program", RelatedDropdownFilter)]
    search_fields = ["account__member__code", "idempotency_key"]
    ordering = ["-id"]


@admin.register(PointsAllocation)
class PointsAllocationAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "entry__account__member__"
    list_display = ["entry", "lot", "amount"]
    list_select_related = ["entry", "lot"]
    search_fields = ["entry__account__member__code"]
    ordering = ["-id"]


@admin.register(MemberTier)
class MemberTierAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["member", "program", "tier", "achieved_at", "retained_until"]
    list_select_related = ["member", "program", "tier"]
    list_filter = [("program", RelatedDropdownFilter), ("tier", RelatedDropdownFilter)]
    search_fields = ["member__code"]
    ordering = ["-updated_at", "-id"]


@admin.register(TierChange)
class TierChangeAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["changed_at", "member", "program", "from_tier", "to_tier", "reason"]
    list_select_related = ["member", "program", "from_tier", "to_tier"]
    list_filter = [("reason", ChoicesDropdownFilter), ("program", RelatedDropdownFilter)]
    search_fields = ["member__code"]
    ordering = ["-changed_at", "-id"]


@admin.register(PaidMembership)
class PaidMembershipAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["member", "plan", "starts_at", "ends_at", "price", "status"]
    list_select_related = ["member", "plan"]
    list_filter = [("status", ChoicesDropdownFilter), ("plan", RelatedDropdownFilter)]
    search_fields = ["member__code"]
    ordering = ["-starts_at", "-id"]


from siyu.loyalty import coupon_admin  # noqa: E402,F401 - coupons and the points mall
