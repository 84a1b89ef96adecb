"""Console pages for the modelled member values. Settings are editable per brand; RFM scores,
lifecycle stages and their history are written by the recompute services and are read-only."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter

from siyu.analytics.models import (
    LifecycleStage,
    MemberLifecycle,
    MemberRfm,
    ModelChange,
    RfmClass,
    RfmSettings,
)
from siyu.console.base import BusinessDayRangeFilter, ConsoleAdmin, LargeFactAdmin, ScopedMixin


@admin.register(RfmSettings)
class RfmSettingsAdmin(ConsoleAdmin):
    list_display = ["brand", "method", "window_days", "new_days", "silent_days", "churned_days"]
    list_select_related = ["brand"]
    list_filter = [("method", ChoicesDropdownFilter)]
    autocomplete_fields = ["brand"]
    fieldsets = [
        (None, {"fields": ["brand"]}),
        (_("RFM"), {
            "fields": ["method", "window_days", "recency_days", "frequency", "monetary"],
            "description": _("With fixed thresholds, give four ascending cut points per dimension, e.g. "
                             "recency [30, 90, 180, 365] days, frequency [2, 3, 5, 8] orders, monetary "
                             "[200, 500, 1000, 3000] CNY. Quantiles need no cut points."),
        }),
        (_("Lifecycle"), {"fields": ["new_days", "silent_days", "churned_days"]}),
    ]


class MemberCodeSearchMixin:
    """The search box matches a member code exactly (an indexed equality)."""

    search_fields = ["member__code"]
    search_help_text = _("Member code")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(member__code=term), False


@admin.register(MemberRfm)
class MemberRfmAdmin(MemberCodeSearchMixin, ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["member", "brand", "rfm_class", "r_score", "f_score", "m_score", "recency",
                    "frequency", "monetary", "last_order_at", "computed_at"]
    list_select_related = ["member", "brand"]
    list_filter = [("brand", RelatedDropdownFilter), ("rfm_class", ChoicesDropdownFilter),
                   "r_score", "f_score", "m_score"]
    ordering = ["-id"]

    @admin.display(description=_("days since last order"), ordering="-last_order_at")
    def recency(self, obj: MemberRfm) -> int:
        return obj.recency_days


@admin.register(MemberLifecycle)
class MemberLifecycleAdmin(MemberCodeSearchMixin, ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["member", "brand", "stage", "since", "computed_at"]
    list_select_related = ["member", "brand"]
    list_filter = [("brand", RelatedDropdownFilter), ("stage", ChoicesDropdownFilter),
                   ("since", BusinessDayRangeFilter)]
    ordering = ["-id"]


@admin.register(ModelChange)
class ModelChangeAdmin(MemberCodeSearchMixin, ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["at", "member", "brand", "kind", "old", "new"]
    list_select_related = ["member", "brand"]
    list_filter = [("brand", RelatedDropdownFilter), ("kind", ChoicesDropdownFilter),
                   ("at", BusinessDayRangeFilter)]
    ordering = ["-at", "-id"]

    @admin.display(description=_("from"), ordering="old_value")
    def old(self, obj: ModelChange) -> str:
        return _label(obj.kind, obj.old_value)

    @admin.display(description=_("to"), ordering="new_value")
    def new(self, obj: ModelChange) -> str:
        return _label(obj.kind, obj.new_value)


def _label(kind: str, value: str) -> str:
    if not value:
        return "-"
    choices = RfmClass if kind == ModelChange.Kind.RFM else LifecycleStage
    return str(dict(choices.choices).get(value, value))
