"""Console pages for the shared kernel: rejected rows, the audit trail, API tokens, console users.

All three kernel tables are read-only here: rejections and audit entries are written by the
services in the same transaction as what they record, and tokens are created and revoked with
``siyu token …`` or the API, where the secret can be shown exactly once.
"""

from __future__ import annotations

import contextlib
import uuid

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from siyu.console.base import (
    BusinessDayRangeFilter,
    FactAdmin,
    LargeFactAdmin,
    exact_search,
    exact_value_filter,
    pretty_json,
)
from siyu.core.models import ApiToken, AuditEntry, IngestRejection, NightlyRun


@admin.register(IngestRejection)
class IngestRejectionAdmin(LargeFactAdmin):
    list_display = ["created_at", "entity", "code", "row", "field", "message", "source", "batch_id"]
    list_display_links = ["created_at", "entity"]
    list_filter = [
        ("entity", ChoicesDropdownFilter),
        exact_value_filter("code", _("reason code")),
        exact_value_filter("batch_id", _("batch")),
        ("created_at", BusinessDayRangeFilter),
    ]
    search_fields = ["source"]
    search_help_text = _("Source (API token, file or callback) or batch id")
    ordering = ["-id"]
    fields = ["created_at", "entity", "source", "batch_id", "row", "field", "code", "message",
              "raw_display"]
    readonly_fields = ["raw_display"]

    @admin.display(description=_("raw row"))
    def raw_display(self, obj: IngestRejection) -> str:
        return pretty_json(obj.raw)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        q = Q(source=term)
        with contextlib.suppress(ValueError):
            q |= Q(batch_id=uuid.UUID(term))
        return queryset.filter(q), False


@admin.register(AuditEntry)
class AuditEntryAdmin(LargeFactAdmin):
    list_display = ["at", "actor", "action", "target_type", "target_id", "user"]
    list_display_links = ["at", "action"]
    list_select_related = ["user"]
    list_filter = [
        exact_value_filter("action", _("action")),
        exact_value_filter("target_type", _("target type")),
        ("at", BusinessDayRangeFilter),
    ]
    search_fields = ["target_id"]
    search_help_text = _("Target id or actor")
    ordering = ["-id"]
    fields = ["at", "actor", "user", "action", "target_type", "target_id", "data_display"]
    readonly_fields = ["data_display"]

    @admin.display(description=_("details"))
    def data_display(self, obj: AuditEntry) -> str:
        return pretty_json(obj.data)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return exact_search(queryset, term, ["target_id", "actor"]), False


@admin.register(ApiToken)
class ApiTokenAdmin(FactAdmin):
    """Tokens are listed, never revealed: not even the hash is on the page."""

    list_display = ["name", "prefix_display", "scopes", "is_active", "created_at", "last_used_at",
                    "revoked_at"]
    search_fields = ["name", "prefix"]
    fields = ["name", "prefix_display", "scopes", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix_display"]

    @admin.display(description=_("prefix"))
    def prefix_display(self, obj: ApiToken) -> str:
        return f"{obj.prefix}…"

    @admin.display(description=_("active"), boolean=True)
    def is_active(self, obj: ApiToken) -> bool:
        return obj.is_active


# Console users and permission groups, with unfold's forms so they match the rest of the console.
@admin.register(NightlyRun)
class NightlyRunAdmin(FactAdmin):
    list_display = ["day", "state", "started_at", "finished_at"]
    list_filter = ["state"]
    readonly_fields = ["results_display"]
    exclude = ["results"]

    @admin.display(description=_("results"))
    def results_display(self, obj: NightlyRun) -> str:
        return pretty_json(obj.results)


admin.site.unregister(User)
admin.site.unregister(AuthGroup)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_filter_submit = True


@admin.register(AuthGroup)
class PermissionGroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass
