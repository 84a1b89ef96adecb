"""The console's journey editor: settings fields and a step list (one row per step), turned into a
definition for :func:`siyu.journeys.definition.parse_definition`, and its errors put back on the
row and field they name."""

from __future__ import annotations

import json
import re

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.widgets import (
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from siyu.core.errors import SiyuError
from siyu.journeys.definition import GOALS, POLICIES, STEP_KINDS, TRIGGER_LABELS, TRIGGERS

WEEKDAYS = [(1, gettext_lazy("Mon")), (2, gettext_lazy("Tue")), (3, gettext_lazy("Wed")), (4, gettext_lazy("Thu")),
            (5, gettext_lazy("Fri")), (6, gettext_lazy("Sat")), (7, gettext_lazy("Sun"))]
_STEP_FIELDS = ("key", "kind", "label", "next")


def _json_field(label, **kwargs) -> forms.CharField:
    return forms.CharField(label=label, required=False,
                           widget=UnfoldAdminTextInputWidget(attrs={"class": "font-mono"}), **kwargs)


def _object(text: str, *, not_object: str | None = None) -> dict:
    if not (text or "").strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(_("not valid JSON: %(error)s") % {"error": exc}) from exc
    if not isinstance(value, dict):
        raise forms.ValidationError(not_object or _("give an object such as {\"days\": 3}"))
    return value


class JourneyBasicsForm(forms.Form):
    """What every journey has besides its definition."""

    code = forms.SlugField(label=gettext_lazy("code"), max_length=64, widget=UnfoldAdminTextInputWidget)
    name = forms.CharField(label=gettext_lazy("name"), max_length=100, widget=UnfoldAdminTextInputWidget)
    description = forms.CharField(label=gettext_lazy("description"), required=False,
                                  widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))


class JourneyForm(JourneyBasicsForm):
    """The whole definition as JSON (the editor's ``?json=1`` mode)."""

    definition = forms.CharField(label=gettext_lazy("definition (trigger, steps, goal …) as JSON"),
                                 widget=UnfoldAdminTextareaWidget(attrs={"rows": 24, "class": "font-mono text-sm"}))

    def clean_definition(self):
        return _object(self.cleaned_data["definition"], not_object=_("give the journey definition as an object"))


class JourneySettingsForm(JourneyBasicsForm):
    trigger_kind = forms.ChoiceField(label=gettext_lazy("trigger"),
                                     choices=[(t, TRIGGER_LABELS[t]) for t in TRIGGERS],
                                     widget=UnfoldAdminSelectWidget)
    trigger_options = _json_field(gettext_lazy("trigger options"),
                                  help_text=gettext_lazy('e.g. {"channels": ["pos-sh-01"], "first_order": true}'))
    reentry = forms.ChoiceField(label=gettext_lazy("re-entry"), choices=[(p, p) for p in POLICIES],
                                widget=UnfoldAdminSelectWidget)
    period_days = forms.IntegerField(label=gettext_lazy("re-entry period (days)"), required=False, min_value=1,
                                     widget=UnfoldAdminIntegerFieldWidget)
    goal_kind = forms.ChoiceField(label=gettext_lazy("goal"), required=False,
                                  choices=[("", "—"), *[(g, g) for g in GOALS]], widget=UnfoldAdminSelectWidget)
    goal_within_days = forms.IntegerField(label=gettext_lazy("goal within (days)"), required=False, min_value=1,
                                          widget=UnfoldAdminIntegerFieldWidget)
    goal_options = _json_field(gettext_lazy("goal options"))
    control_pct = forms.IntegerField(label=gettext_lazy("control group (%)"), min_value=0, max_value=90, initial=0,
                                     widget=UnfoldAdminIntegerFieldWidget)
    window_start = forms.IntegerField(label=gettext_lazy("send window from (hour)"), required=False, min_value=0,
                                      max_value=23, widget=UnfoldAdminIntegerFieldWidget)
    window_end = forms.IntegerField(label=gettext_lazy("send window until (hour)"), required=False, min_value=1,
                                    max_value=24, widget=UnfoldAdminIntegerFieldWidget)
    weekdays = forms.TypedMultipleChoiceField(label=gettext_lazy("send window weekdays"), required=False,
                                              coerce=int, choices=WEEKDAYS, widget=forms.CheckboxSelectMultiple)

    def clean_trigger_options(self):
        return _object(self.cleaned_data["trigger_options"])

    def clean_goal_options(self):
        return _object(self.cleaned_data["goal_options"])


class StepForm(forms.Form):
    key = forms.CharField(label=gettext_lazy("key"), max_length=32, required=False,
                          widget=UnfoldAdminTextInputWidget(attrs={"size": 8}))
    kind = forms.ChoiceField(label=gettext_lazy("kind"), required=False,
                             choices=[("", "—"), *[(k, k) for k in STEP_KINDS]], widget=UnfoldAdminSelectWidget)
    label = forms.CharField(label=gettext_lazy("label"), max_length=100, required=False,
                            widget=UnfoldAdminTextInputWidget)
    next = forms.CharField(label=gettext_lazy("next"), max_length=32, required=False,
                           widget=UnfoldAdminTextInputWidget(attrs={"size": 8}))
    options = _json_field(gettext_lazy("options"))

    def clean_options(self):
        return _object(self.cleaned_data["options"])


StepFormSet = forms.formset_factory(StepForm, extra=2, can_delete=True)


def initial(journey=None, definition: dict | None = None) -> tuple[dict, list[dict]]:
    """The editor's initial values for a journey (or an example definition)."""
    definition = definition or journey.current_version.definition
    trigger = dict(definition["trigger"])
    goal = dict(definition.get("goal") or {})
    window = definition.get("send_window") or {}
    hours = window.get("hours") or [None, None]
    settings = {
        "code": getattr(journey, "code", ""), "name": getattr(journey, "name", ""),
        "description": getattr(journey, "description", ""),
        "trigger_kind": trigger.pop("kind"), "trigger_options": _dump(trigger),
        "reentry": definition.get("reentry", {}).get("policy", "once"),
        "period_days": definition.get("reentry", {}).get("period_days"),
        "goal_kind": goal.pop("kind", ""), "goal_within_days": goal.pop("within_days", None),
        "goal_options": _dump(goal), "control_pct": definition.get("control_pct", 0),
        "window_start": hours[0], "window_end": hours[1],
        "weekdays": window.get("weekdays", []),
    }
    steps = []
    for step in definition["steps"]:
        options = {k: v for k, v in step.items() if k not in _STEP_FIELDS and v not in (None, "", {}, [])}
        steps.append({"key": step["key"], "kind": step["kind"], "label": step.get("label", ""),
                      "next": step.get("next", ""), "options": _dump(options)})
    return settings, steps


def _dump(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False) if value else ""


def build_definition(settings: dict, steps: list[dict]) -> tuple[dict, list[int]]:
    """The definition from the cleaned forms, and for each step of it the index of its form row."""
    data = settings
    definition: dict = {"trigger": {**data["trigger_options"], "kind": data["trigger_kind"]},
                        "reentry": {"policy": data["reentry"]}, "control_pct": data["control_pct"] or 0}
    if data["reentry"] == "period":
        definition["reentry"]["period_days"] = data["period_days"]
    if data["goal_kind"]:
        definition["goal"] = {**data["goal_options"], "kind": data["goal_kind"],
                              **({"within_days": data["goal_within_days"]} if data["goal_within_days"] else {})}
    if data["window_start"] is not None or data["window_end"] is not None or data["weekdays"]:
        definition["send_window"] = {"hours": [data["window_start"] if data["window_start"] is not None else 0,
                                               data["window_end"] if data["window_end"] is not None else 24],
                                     "weekdays": data["weekdays"] or [1, 2, 3, 4, 5, 6, 7]}
    rows, out = [], []
    for index, step in enumerate(steps):
        if not step or step.get("DELETE") or not (step.get("key") or step.get("kind")):
            continue
        node = {**step["options"], "key": step["key"], "kind": step["kind"]}
        if step.get("label"):
            node["label"] = step["label"]
        if step.get("next"):
            node["next"] = step["next"]
        out.append(node)
        rows.append(index)
    definition["steps"] = out
    return definition, rows


_STEP_PATH = re.compile(r"^steps\[(\d+)\](?:\.(\w+))?")


def place_error(error: SiyuError, settings_form: JourneySettingsForm, formset, rows: list[int]) -> None:
    """Put a service error on the field it names (``steps[2].days`` → row 2's options)."""
    field, message = error.field or "", str(error.message)
    match = _STEP_PATH.match(field)
    if match and int(match.group(1)) < len(rows):
        form = formset.forms[rows[int(match.group(1))]]
        name = match.group(2) if match.group(2) in _STEP_FIELDS else "options"
        form.add_error(name, f"{field}: {message}")
        return
    target = {"code": "code", "name": "name", "description": "description", "trigger": "trigger_options",
              "reentry": "period_days", "goal": "goal_options", "send_window": "window_start",
              "definition": "control_pct"}.get(field.split(".")[0].split("[")[0])
    if field == "trigger.kind":
        target = "trigger_kind"
    if target:
        settings_form.add_error(target, f"{field}: {message}" if field not in ("code", "name") else message)
    else:
        settings_form.add_error(None, f"{field}: {message}" if field else message)
