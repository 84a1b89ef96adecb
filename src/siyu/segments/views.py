"""Console page: the segment builder (分群构建器).

The operator edits a rule tree in a form; every change posts the tree (htmx) to
:func:`preview_view`, which answers the live count, a sample and the SQL, or the error naming the
node. Saving goes through :func:`siyu.segments.services.save_segment`, as the API does.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST
from unfold.widgets import UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget, UnfoldBooleanSwitchWidget

from siyu.console.base import request_staff
from siyu.core.errors import ValidationError
from siyu.segments.models import Segment, SegmentKind
from siyu.segments.rules import RuleError, parse_rule
from siyu.segments.selectors import members_sql, preview, rule_members
from siyu.segments.services import save_segment
from siyu.segments.vocabulary import builder_vocabulary

#: What a new segment starts from: every active member, one condition the operator edits.
NEW_RULE = {"all": [{"attr": "status", "op": "eq", "value": "active"}]}


class SegmentForm(forms.Form):
    code = forms.SlugField(label=gettext_lazy("code"), max_length=64, widget=UnfoldAdminTextInputWidget,
                           help_text=gettext_lazy("Letters, digits, - and _; the API and exports use it"))
    name = forms.CharField(label=gettext_lazy("name"), max_length=100, widget=UnfoldAdminTextInputWidget)
    description = forms.CharField(label=gettext_lazy("description"), required=False,
                                  widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))
    track_membership = forms.BooleanField(
        label=gettext_lazy("keep membership history"), required=False, widget=UnfoldBooleanSwitchWidget,
        help_text=gettext_lazy("Record when each member enters and leaves the segment"))
    rule = forms.CharField(widget=forms.HiddenInput)

    def clean_rule(self):
        try:
            rule = json.loads(self.cleaned_data["rule"])
        except ValueError as exc:
            raise forms.ValidationError(_("the rule is not valid JSON: %(error)s") % {"error": exc}) from exc
        try:
            parse_rule(rule)
        except RuleError as exc:
            raise forms.ValidationError(f"{exc.field}: {exc.message}") from exc
        return rule


def _masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 11 else phone


def _members(request: HttpRequest, rule):
    """The rule's members as this user may see them (superusers: everyone)."""
    return rule_members(rule, staff=request_staff(request), everyone=request.user.is_superuser)


@staff_member_required
@require_http_methods(["GET", "POST"])
def builder_view(request: HttpRequest, code: str | None = None) -> HttpResponse:
    segment = get_object_or_404(Segment, code=code, kind=SegmentKind.DYNAMIC) if code else None
    if not request.user.has_perm("segments.view_segment"):
        raise PermissionDenied
    may_save = request.user.has_perm("segments.change_segment" if segment else "segments.add_segment")
    initial = {"code": segment.code, "name": segment.name, "description": segment.description,
               "track_membership": segment.track_membership,
               "rule": json.dumps(segment.rule, ensure_ascii=False)} if segment else {
        "rule": json.dumps(NEW_RULE, ensure_ascii=False)}
    form = SegmentForm(request.POST or None, initial=initial)
    if segment:
        form.fields["code"].disabled = True
    if request.method == "POST":
        if not may_save:
            raise PermissionDenied
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = save_segment(code=data["code"], name=data["name"], rule=data["rule"],
                                     description=data["description"], track_membership=data["track_membership"],
                                     user=request.user)
            except ValidationError as error:
                form.add_error(None, str(error.message))
            else:
                messages.success(request, _("Segment %(name)s saved: %(size)s members") % {
                    "name": saved.name, "size": saved.size})
                return redirect("segments:builder_edit", code=saved.code)
    rule_text = form["rule"].value() or initial["rule"]
    context = {
        **admin.site.each_context(request),
        "title": _("Edit segment %(name)s") % {"name": segment.name} if segment else _("New segment"),
        "form": form,
        "segment": segment,
        "may_save": may_save,
        "rule_text": rule_text,
        "vocabulary": builder_vocabulary(),
    }
    return TemplateResponse(request, "segments/builder.html", context)


@staff_member_required
@require_POST
def preview_view(request: HttpRequest) -> HttpResponse:
    """The live count (htmx partial): count, the newest 20 members and the SQL, or the error."""
    if not request.user.has_perm("segments.view_segment"):
        raise PermissionDenied
    context: dict = {}
    try:
        rule = json.loads(request.POST.get("rule") or "null")
        members = _members(request, rule)
        context.update(preview(members))
        context["sql"] = members_sql(members)
        for row in context["sample"]:
            row["phone"] = _masked(row["phone"] or "")
    except ValueError as exc:  # not JSON
        context["error_field"], context["error"] = "rule", str(exc)
    except RuleError as exc:
        context["error_field"], context["error"] = exc.field, str(exc.message)
    return TemplateResponse(request, "segments/_preview.html", context)
