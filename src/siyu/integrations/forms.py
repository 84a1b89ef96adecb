"""The console import form."""

from __future__ import annotations

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from siyu.integrations.importers.errors import ImportSetupError
from siyu.integrations.importers.mapping import parse_mapping
from siyu.integrations.importers.presets import PRESETS

ENTITY_CHOICES = [("members", _("Members")), ("orders", _("Orders")), ("events", _("Behaviour events"))]
FORMAT_CHOICES = [("", _("From the file extension")), ("csv", "CSV"), ("xlsx", "Excel (.xlsx)"),
                  ("ndjson", "NDJSON")]


class ImportForm(forms.Form):
    entity = forms.ChoiceField(label=_("What the file holds"), choices=ENTITY_CHOICES,
                               widget=UnfoldAdminSelectWidget)
    preset = forms.ChoiceField(
        label=_("Column layout"), widget=UnfoldAdminSelectWidget,
        choices=[(name, format_lazy("{} — {}", name, preset.description)) for name, preset in PRESETS.items()])
    channel = forms.CharField(label=_("Sales channel code"), required=False, max_length=50,
                              widget=UnfoldAdminTextInputWidget,
                              help_text=_("For orders and events without a channel column; required for Taobao."))
    mapping = forms.CharField(
        label=_("Column mapping"), required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text=_("One field=column per line, on top of the layout, e.g. paid_amount=实收金额. "
                    "field= ignores the layout's column."))
    file_format = forms.ChoiceField(label=_("Format"), choices=FORMAT_CHOICES, required=False,
                                    widget=UnfoldAdminSelectWidget)
    encoding = forms.CharField(label=_("Text encoding"), required=False, max_length=30,
                               widget=UnfoldAdminTextInputWidget,
                               help_text=_("CSV only; detected when empty (UTF-8, GBK/GB18030 …)."))
    file = forms.FileField(label=_("File"), widget=UnfoldAdminFileFieldWidget,
                           help_text=_("CSV, Excel .xlsx or NDJSON."))

    def clean_mapping(self) -> dict[str, str]:
        try:
            return parse_mapping(self.cleaned_data["mapping"].splitlines())
        except ImportSetupError as error:
            raise forms.ValidationError(str(error.message), code=error.code) from None
