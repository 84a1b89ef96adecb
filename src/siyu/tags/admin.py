"""Console pages for tags: the taxonomy is edited here; who holds what is read-only (written by
the tagging services, with history)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter

from siyu.console.base import ConsoleAdmin, LargeFactAdmin, ScopedMixin, pretty_json
from siyu.tags.models import MemberTag, MemberTagChange, Tag, TagGroup


@admin.register(TagGroup)
class TagGroupAdmin(ConsoleAdmin):
    list_display = ["name", "code", "category", "exclusive", "brand", "sort"]
    list_filter = [("category", ChoicesDropdownFilter), "exclusive"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["brand"]


@admin.register(Tag)
class TagAdmin(ConsoleAdmin):
    list_display = ["name", "code", "group", "is_rule_tag", "is_active"]
    list_select_related = ["group"]
    list_filter = [("group", RelatedDropdownFilter), "is_active"]
    search_fields = ["code", "name"]
    readonly_fields = ["rule_display"]

    @admin.display(description=_("rule tag"), boolean=True)
    def is_rule_tag(self, obj: Tag) -> bool:
        return obj.rule is not None

    @admin.display(description=_("rule"))
    def rule_display(self, obj: Tag) -> str:
        return pretty_json(obj.rule) if obj.rule is not None else "—"


@admin.register(MemberTag)
class MemberTagAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["member", "tag", "source", "actor", "applied_at", "expires_at"]
    list_select_related = ["member", "tag"]
    list_filter = [("tag", RelatedDropdownFilter), ("source", ChoicesDropdownFilter)]
    search_fields = ["member__code"]
    ordering = ["-applied_at", "-id"]


@admin.register(MemberTagChange)
class MemberTagChangeAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["at", "member", "tag", "action", "source", "actor", "reason"]
    list_select_related = ["member", "tag"]
    list_filter = [("action", ChoicesDropdownFilter), ("source", ChoicesDropdownFilter),
                   ("tag", RelatedDropdownFilter)]
    search_fields = ["member__code"]
    ordering = ["-at", "-id"]
