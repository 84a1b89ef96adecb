"""Console admin for journeys: the journey list links to the journey pages (diagram, statistics,
editing); enrolments, the step log and guide tasks are read-only (written by the engine)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter

from siyu.console.base import ConsoleAdmin, NoWritesMixin
from siyu.journeys.models import Enrolment, GuideTask, Journey, StepLog


@admin.register(Journey)
class JourneyAdmin(NoWritesMixin, ConsoleAdmin):
    list_display = ["name", "code", "status", "current_version", "updated_at", "page"]
    list_filter = [("status", ChoicesDropdownFilter)]
    search_fields = ["code", "name"]

    @admin.display(description=_("journey page"))
    def page(self, obj: Journey) -> str:
        return format_html('<a href="{}">{}</a>', reverse("journeys:detail", args=[obj.code]),
                           _("Diagram and statistics"))


@admin.register(Enrolment)
class EnrolmentAdmin(NoWritesMixin, ConsoleAdmin):
    list_display = ["journey", "member", "state", "step", "due_at", "entered_at", "converted_at"]
    list_filter = [("state", ChoicesDropdownFilter), "journey"]
    list_select_related = ["journey", "member"]
    raw_id_fields = ["member"]
    search_fields = ["member__code"]


@admin.register(StepLog)
class StepLogAdmin(NoWritesMixin, ConsoleAdmin):
    list_display = ["at", "journey", "member", "step", "kind", "outcome", "detail", "message_id"]
    list_filter = [("outcome", ChoicesDropdownFilter)]
    list_select_related = ["journey", "member"]
    search_fields = ["member__code"]


@admin.register(GuideTask)
class GuideTaskAdmin(ConsoleAdmin):
    """Guides close their tasks here until the guides area has its own inbox."""

    list_display = ["title", "guide", "member", "due_at", "status", "created_at"]
    list_filter = [("status", ChoicesDropdownFilter)]
    list_select_related = ["guide", "member"]
    fields = ["title", "guide", "member", "due_at", "status"]
    readonly_fields = ["title", "guide", "member", "due_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False
