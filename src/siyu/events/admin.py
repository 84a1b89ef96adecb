"""Console pages for behaviour events: append-only facts written by ``record_events``."""

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

from siyu.console.base import BusinessDayRangeFilter, LargeFactAdmin, ScopedMixin, pretty_json
from siyu.events.models import Event
from siyu.members.models import Member


@admin.register(Event)
class EventAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["occurred_at", "kind", "member", "store", "channel", "received_at"]
    list_display_links = ["occurred_at", "kind"]
    list_select_related = ["member", "store", "channel"]
    search_fields = ["idempotency_key"]  # shows the search box; get_search_results matches
    search_help_text = _("Member code or idempotency key")
    list_filter = [
        ("kind", ChoicesDropdownFilter),
        ("occurred_at", BusinessDayRangeFilter),
        ("store", AutocompleteSelectFilter),
        ("channel", RelatedDropdownFilter),
    ]
    ordering = ["-occurred_at", "-id"]
    fields = ["member", "kind", "occurred_at", "store", "channel", "properties_display",
              "idempotency_key", "received_at"]
    readonly_fields = ["properties_display"]

    @admin.display(description=_("properties"))
    def properties_display(self, obj: Event) -> str:
        return pretty_json(obj.properties)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        member_ids = list(Member.objects.filter(code=term).values_list("pk", flat=True)[:1])
        return queryset.filter(Q(idempotency_key=term) | Q(member_id__in=member_ids)), False
