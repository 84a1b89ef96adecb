"""Console pages for journeys (自动化旅程): the list, a journey with its diagram and live
statistics (go live, pause, resume, stop), create and edit, and a member's journey history."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from siyu.console.base import scope_q
from siyu.core.errors import NotFound, SiyuError
from siyu.journeys import forms as editor
from siyu.journeys import selectors, services
from siyu.journeys.definition import ACTIONS, STEP_KINDS, TRIGGER_LABELS, TRIGGERS, WAIT_MODES
from siyu.journeys.diagram import describe, kind_label, render_svg
from siyu.members.models import Member

EXAMPLE = {
    "trigger": {"kind": "joined"},
    "reentry": {"policy": "once"},
    "goal": {"kind": "order_placed", "within_days": 30},
    "control_pct": 10,
    "send_window": {"hours": [9, 21], "weekdays": [1, 2, 3, 4, 5, 6, 7]},
    "steps": [
        {"key": "d3", "kind": "wait", "mode": "days_after_entry", "days": 3, "at": "10:00"},
        {"key": "m3", "kind": "send", "template_id": 1, "label": "第3天关怀"},
        {"key": "d7", "kind": "wait", "mode": "days_after_entry", "days": 7, "at": "10:00"},
        {"key": "bought", "kind": "condition", "label": "已下单?",
         "rule": {"orders": {"window": {"last_days": 7}}, "measure": "count", "op": "gte", "value": 1},
         "yes": "thanks", "no": "coupon"},
        {"key": "thanks", "kind": "send", "template_id": 2, "next": "exit"},
        {"key": "coupon", "kind": "coupon", "template": "welcome-10"},
        {"key": "task", "kind": "guide_task", "title": "回访第7天未下单会员", "due_days": 1},
    ],
}


def _need(request: HttpRequest, action: str) -> None:
    if not request.user.has_perm(f"journeys.{action}_journey"):
        raise PermissionDenied


def _journey(code: str):
    try:
        return selectors.journey_by_code(code)
    except NotFound as exc:
        raise Http404(code) from exc


def _context(request: HttpRequest, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


@staff_member_required
def journey_list(request: HttpRequest) -> HttpResponse:
    _need(request, "view")
    journeys = list(selectors.journeys()[:200])
    counts = selectors.journey_counts([j.pk for j in journeys])
    rows = [{"journey": j, "stats": counts[j.pk], "trigger": _trigger_label(j)} for j in journeys]
    return TemplateResponse(request, "journeys/list.html", _context(
        request, title=_("Journeys"), rows=rows, may_add=request.user.has_perm("journeys.add_journey")))


def _trigger_label(journey) -> str:
    kind = journey.current_version.trigger_kind if journey.current_version else ""
    return TRIGGER_LABELS.get(kind, kind)


def _help() -> dict:
    return {"triggers": TRIGGERS, "kinds": STEP_KINDS, "actions": ACTIONS, "waits": WAIT_MODES}


def _form_errors(form: editor.JourneyForm, error: SiyuError) -> None:
    field = error.field or ""
    if field in ("code", "name", "description"):
        form.add_error(field, str(error.message))
    else:
        form.add_error("definition", f"{field}: {error.message}" if field else str(error.message))


def _actor(request: HttpRequest) -> str:
    return f"console:{request.user.get_username()}"


def _save(request: HttpRequest, journey, definition: dict, data: dict):
    if journey is None:
        return services.create_journey(code=data["code"], name=data["name"], description=data["description"],
                                       definition=definition, actor=_actor(request), user=request.user)
    return services.update_journey(journey=journey, name=data["name"], description=data["description"],
                                   definition=definition, actor=_actor(request), user=request.user)


def _done(request: HttpRequest, journey, created: bool) -> HttpResponse:
    if created:
        messages.success(request, _("Journey %(name)s created as a draft") % {"name": journey.name})
    else:
        messages.success(request, _("Journey saved"))
    return redirect("journeys:detail", code=journey.code)


def _edit_json(request: HttpRequest, journey) -> HttpResponse:
    """The whole definition as JSON: for rules and options the step list does not spell out."""
    definition = journey.current_version.definition if journey else EXAMPLE
    form = editor.JourneyForm(request.POST or None, initial={
        "code": getattr(journey, "code", ""), "name": getattr(journey, "name", ""),
        "description": getattr(journey, "description", ""),
        "definition": json.dumps(definition, ensure_ascii=False, indent=2)})
    if journey is not None:
        form.fields["code"].disabled = True
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = _save(request, journey, data["definition"], data)
        except SiyuError as error:
            _form_errors(form, error)
        else:
            return _done(request, saved, journey is None)
    title = _("Edit %(name)s") % {"name": journey.name} if journey else _("New journey")
    return TemplateResponse(request, "journeys/form.html", _context(
        request, title=title, form=form, help=_help(), journey=journey))


def _edit_steps(request: HttpRequest, journey) -> HttpResponse:
    """Settings fields and one row per step (its options as a small JSON object)."""
    settings_initial, steps_initial = editor.initial(journey, None if journey else EXAMPLE)
    settings_form = editor.JourneySettingsForm(request.POST or None, initial=settings_initial)
    # Rows are compared with their initial values to spot untouched extra rows: a posted row equal
    # to its initial one must still count, so the posted formset gets no initial.
    formset = (editor.StepFormSet(request.POST, prefix="steps") if request.method == "POST"
               else editor.StepFormSet(initial=steps_initial, prefix="steps"))
    if journey is not None:
        settings_form.fields["code"].disabled = True
    if request.method == "POST" and settings_form.is_valid() and formset.is_valid():
        definition, rows = editor.build_definition(settings_form.cleaned_data, formset.cleaned_data)
        try:
            saved = _save(request, journey, definition, settings_form.cleaned_data)
        except SiyuError as error:
            editor.place_error(error, settings_form, formset, rows)
        else:
            return _done(request, saved, journey is None)
    title = _("Edit %(name)s") % {"name": journey.name} if journey else _("New journey")
    return TemplateResponse(request, "journeys/editor.html", _context(
        request, title=title, form=settings_form, formset=formset, help=_help(), journey=journey))


@staff_member_required
@require_http_methods(["GET", "POST"])
def journey_new(request: HttpRequest) -> HttpResponse:
    _need(request, "add")
    return _edit_json(request, None) if request.GET.get("json") else _edit_steps(request, None)


@staff_member_required
@require_http_methods(["GET", "POST"])
def journey_edit(request: HttpRequest, code: str) -> HttpResponse:
    _need(request, "change")
    journey = _journey(code)
    return _edit_json(request, journey) if request.GET.get("json") else _edit_steps(request, journey)


@staff_member_required
def journey_detail(request: HttpRequest, code: str) -> HttpResponse:
    _need(request, "view")
    journey = _journey(code)
    stats = selectors.journey_stats(journey)
    definition = journey.current_version.definition
    steps = [{**s, "kind_label": kind_label(s), "describe": describe(s)} for s in definition["steps"]]
    return TemplateResponse(request, "journeys/detail.html", _context(
        request, title=journey.name, journey=journey, stats=stats, steps=steps, definition=definition,
        trigger_label=_trigger_label(journey),
        diagram=mark_safe(render_svg(definition, stats)),  # noqa: S308 - every text in it is escaped
        may_change=request.user.has_perm("journeys.change_journey"),
        versions=journey.versions.order_by("-number")[:20]))


@staff_member_required
@require_POST
def journey_action(request: HttpRequest, code: str, action: str) -> HttpResponse:
    _need(request, "change")
    journey = _journey(code)
    service = {"activate": services.activate_journey, "pause": services.pause_journey,
               "stop": services.stop_journey}.get(action)
    if service is None:
        raise Http404(action)
    try:
        service(journey=journey, actor=f"console:{request.user.get_username()}", user=request.user)
    except SiyuError as error:
        messages.error(request, str(error.message))
    else:
        messages.success(request, _("Journey status: %(status)s") % {
            "status": _journey(code).get_status_display()})
    return redirect("journeys:detail", code=code)


@staff_member_required
def member_journeys_view(request: HttpRequest, member_id: int) -> HttpResponse:
    """A member's journeys with every step and message (for the member page to link to)."""
    _need(request, "view")
    member = get_object_or_404(Member.objects.filter(scope_q(request)), pk=member_id)
    return TemplateResponse(request, "journeys/member.html", _context(
        request, title=_("Journeys of %(member)s") % {"member": member}, member=member,
        trips=selectors.member_journeys(member.pk)))
