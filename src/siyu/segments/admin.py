"""Console pages for segments: saved segments with their live size, snapshots read-only."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter

from siyu.console.base import ConsoleAdmin, FactAdmin, pretty_json
from siyu.segments.models import Segment, SegmentKind, Snapshot


@admin.register(Segment)
class SegmentAdmin(ConsoleAdmin):
    list_display = ["name", "code", "kind", "size", "counted_at", "track_membership", "updated_at", "builder_link"]
    list_filter = [("kind", ChoicesDropdownFilter), "track_membership"]
    search_fields = ["code", "name"]
    readonly_fields = ["size", "counted_at", "rule_display"]

    @admin.display(description=_("segment builder"))
    def builder_link(self, obj: Segment) -> str:
        if obj.kind != SegmentKind.DYNAMIC:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("segments:builder_edit", args=[obj.code]), _("Edit the rule"))

    @admin.display(description=_("rule"))
    def rule_display(self, obj: Segment) -> str:
        return pretty_json(obj.rule) if obj.rule is not None else "—"


@admin.register(Snapshot)
class SnapshotAdmin(FactAdmin):
    list_display = ["segment", "name", "size", "taken_at", "taken_by"]
    list_select_related = ["segment"]
    search_fields = ["segment__code", "name"]
    ordering = ["-taken_at", "-id"]
