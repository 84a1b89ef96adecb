"""Console pages for messaging: templates are edited here (checked on save, with a preview);
the outbox and unsubscribes are read-only (written by the services and the deliverer)."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter

from siyu.console.base import ConsoleAdmin, FactAdmin, LargeFactAdmin, ScopedMixin, exact_search, pretty_json
from siyu.core.errors import SiyuError
from siyu.messaging.models import MessageTemplate, OutboxMessage, Unsubscribe
from siyu.messaging.rendering import VARIABLES
from siyu.messaging.selectors import preview_template


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ConsoleAdmin):
    list_display = ["code", "name", "channel", "purpose", "quiet_hours", "is_active", "updated_at"]
    list_filter = [("channel", ChoicesDropdownFilter), ("purpose", ChoicesDropdownFilter), "is_active"]
    search_fields = ["code", "name"]
    readonly_fields = ["variables_help", "preview"]
    formfield_overrides = {**ConsoleAdmin.formfield_overrides, models.URLField: {
        **ConsoleAdmin.formfield_overrides.get(models.URLField, {}), "assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["code", "name", "channel", "purpose", "is_active"]}),
        (_("Content"), {"fields": ["subject", "body", "variables_help", "preview"]}),
        (_("Channel settings"), {"fields": ["provider_template", "webhook_url", "quiet_hours"]}),
    ]

    def has_delete_permission(self, request, obj=None) -> bool:
        # the outbox keeps every message's template: switch a template off instead of deleting it
        return False

    @admin.display(description=_("variables"))
    def variables_help(self, obj) -> str:
        return format_html_join("", "<div><code>{{{{ {} }}}}</code> — {}</div>",
                                ((name, label) for name, label in VARIABLES.items()))

    @admin.display(description=_("preview"))
    def preview(self, obj: MessageTemplate | None) -> str:
        if obj is None or obj.pk is None:
            return _("Save the template to see a preview.")
        try:
            rendered, member = preview_template(obj)
        except SiyuError as error:
            return format_html('<span class="text-red-600">{}</span>', error.message)
        who = str(member) if member else _("a sample member")
        head = format_html("<div><em>{}</em></div>", _("As %(member)s would receive it:") % {"member": who})
        subject = format_html("<div><strong>{}</strong></div>", rendered.subject) if rendered.subject else ""
        # the email's HTML is shown as source: the preview must not run the template's markup in the console
        body = format_html('<pre style="white-space: pre-wrap">{}</pre>', rendered.html or rendered.text)
        return format_html("{}{}{}", head, subject, body)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ScopedMixin, LargeFactAdmin):
    scope_prefix = "member__"
    list_display = ["id", "created_at", "member", "channel", "purpose", "status", "reason", "attempts", "send_at",
                    "sent_at", "source"]
    list_display_links = ["id", "created_at"]
    list_select_related = ["member"]
    list_filter = [("status", ChoicesDropdownFilter), ("channel", ChoicesDropdownFilter),
                   ("reason", ChoicesDropdownFilter), ("purpose", ChoicesDropdownFilter),
                   ("template", RelatedDropdownFilter)]
    search_fields = ["dedupe_key"]
    search_help_text = _("Dedupe key, member id or provider message id (exact)")
    ordering = ["-id"]
    fields = ["member", "template", "channel", "purpose", "status", "reason", "detail", "dedupe_key", "source",
              "context_display", "rendered", "created_at", "send_at", "next_attempt_at", "attempts", "sent_at",
              "delivered_at", "provider_id"]
    readonly_fields = ["context_display"]

    @admin.display(description=_("variables"))
    def context_display(self, obj: OutboxMessage) -> str:
        return pretty_json(obj.context)

    def get_search_results(self, request, queryset, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        fields = ["dedupe_key", "provider_id", *(["member_id"] if term.isdigit() else [])]
        return exact_search(queryset, term, fields), False


@admin.register(Unsubscribe)
class UnsubscribeAdmin(ScopedMixin, FactAdmin):
    scope_prefix = "member__"
    list_display = ["member", "channel", "at", "source"]
    list_select_related = ["member"]
    list_filter = [("channel", ChoicesDropdownFilter)]
    search_fields = ["member__code"]
    ordering = ["-at"]
