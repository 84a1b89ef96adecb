"""A journey version's definition: parsed and validated JSON, normalised for the engine.

```json
{"trigger": {"kind": "joined"},
 "reentry": {"policy": "once"},                       # once | period (+ "period_days") | always
 "goal": {"kind": "order_placed", "within_days": 30},  # optional; exits early, counts as conversion
 "control_pct": 10,                                   # held out, still watched for the goal
 "send_window": {"hours": [9, 21], "weekdays": [1, 2, 3, 4, 5, 6, 7]},   # optional, for actions
 "steps": [{"key": "d3", "kind": "wait", "mode": "days_after_entry", "days": 3, "at": "10:00"},
           {"key": "m3", "kind": "send", "template_id": 4}, ...]}
```

Each step goes on to ``next`` (default: the following step; ``"exit"`` or the end finishes the
journey). A condition branches to ``yes``/``no``, a split to its variants' ``next``, a wait until
a condition to ``next`` or, on timeout, ``timeout_next``. The graph must not loop, so every step
runs at most once per enrolment.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.core.errors import ValidationError

TRIGGERS = ("joined", "days_after_joining", "order_placed", "event", "tag_added", "lifecycle_changed",
            "rfm_changed", "segment_entered", "tier_changed", "birthday", "schedule", "manual")
#: What the console shows for each trigger.
TRIGGER_LABELS = {
    "joined": gettext_lazy("joined"), "days_after_joining": gettext_lazy("N days after joining"),
    "order_placed": gettext_lazy("order placed"), "event": gettext_lazy("event happened"),
    "tag_added": gettext_lazy("tag added"), "lifecycle_changed": gettext_lazy("lifecycle stage changed"),
    "rfm_changed": gettext_lazy("RFM class changed"), "segment_entered": gettext_lazy("entered a segment"),
    "tier_changed": gettext_lazy("tier changed"), "birthday": gettext_lazy("birthday"),
    "schedule": gettext_lazy("scheduled, over a segment snapshot"), "manual": gettext_lazy("entered by hand or API"),
}
GOALS = ("order_placed", "event", "tag_added")
WAIT_MODES = ("duration", "time_of_day", "date", "days_after_entry", "condition")
ACTIONS = ("send", "coupon", "tag_add", "tag_remove", "points", "guide_task", "webhook")
STEP_KINDS = ("wait", "condition", "split", *ACTIONS, "exit")
POLICIES = ("once", "period", "always")
END = "exit"
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _fail(field: str, message: str, code: str = "invalid_definition") -> ValidationError:
    return ValidationError(message, code=code, field=field)


def _int(node: dict, name: str, path: str, *, minimum: int = 0, maximum: int = 10**6, required: bool = True,
         default: int | None = None) -> int | None:
    value = node.get(name, default)
    if value is None:
        if required:
            raise _fail(f"{path}.{name}", _("this field is required"))
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise _fail(f"{path}.{name}", _("give a whole number from %(min)s to %(max)s") % {"min": minimum,
                                                                                       "max": maximum})
    return value


def _str(node: dict, name: str, path: str, *, required: bool = True, default: str = "", max_length: int = 200) -> str:
    value = node.get(name, default)
    if value in (None, ""):
        if required:
            raise _fail(f"{path}.{name}", _("this field is required"))
        return default
    if not isinstance(value, str) or len(value) > max_length:
        raise _fail(f"{path}.{name}", _("give a text of at most %(n)s characters") % {"n": max_length})
    return value.strip()


def _strings(node: dict, name: str, path: str, *, required: bool = False) -> list[str]:
    value = node.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(f"{path}.{name}", _("give a list of codes"))
    if required and not value:
        raise _fail(f"{path}.{name}", _("give at least one"))
    return value


def _time_of_day(node: dict, name: str, path: str, *, required: bool = True) -> str | None:
    value = node.get(name)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not _TIME.match(value):
        raise _fail(f"{path}.{name}", _("give a time of day as HH:MM, e.g. 10:00"))
    return value


def _moment(node: dict, name: str, path: str) -> str:
    value = node.get(name)
    try:
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise _fail(f"{path}.{name}", _("give a date and time in ISO 8601, e.g. 2026-05-01T10:00:00+08:00"))
    return value


def _rule(node: dict, name: str, path: str) -> Any:
    from siyu.segments.selectors import rule_members

    value = node.get(name)
    if value is None:
        raise _fail(f"{path}.{name}", _("give a segment rule"))
    try:
        rule_members(value)  # parses and compiles; runs no query
    except ValidationError as exc:
        where = f"{path}.{name}" + (f".{exc.field}" if exc.field and exc.field != "rule" else "")
        raise _fail(where, _("the rule does not parse: %(error)s") % {"error": exc.message}) from exc
    return value


def parse_window(node: Any, path: str) -> dict | None:
    """``{"hours": [start, end], "weekdays": [1…7]}``: actions run from start (inclusive) to end
    (exclusive) o'clock in the business zone on those ISO weekdays (1 = Monday)."""
    if node in (None, {}):
        return None
    if not isinstance(node, dict):
        raise _fail(path, _("give an object with hours and weekdays"))
    hours = node.get("hours", [0, 24])
    if (not isinstance(hours, list) or len(hours) != 2 or not all(isinstance(h, int) for h in hours)
            or not 0 <= hours[0] < hours[1] <= 24):
        raise _fail(f"{path}.hours", _("give [start, end] whole hours with 0 ≤ start < end ≤ 24"))
    weekdays = node.get("weekdays", [1, 2, 3, 4, 5, 6, 7])
    if (not isinstance(weekdays, list) or not weekdays
            or not all(isinstance(d, int) and 1 <= d <= 7 for d in weekdays)):
        raise _fail(f"{path}.weekdays", _("give ISO weekdays from 1 (Monday) to 7 (Sunday)"))
    return {"hours": hours, "weekdays": sorted(set(weekdays))}


def parse_trigger(node: Any, path: str = "trigger", *, goal: bool = False) -> dict:
    kinds = GOALS if goal else TRIGGERS
    if not isinstance(node, dict) or node.get("kind") not in kinds:
        raise _fail(f"{path}.kind", _("choose one of: %(kinds)s") % {"kinds": ", ".join(kinds)})
    kind = node["kind"]
    out: dict[str, Any] = {"kind": kind}
    if kind == "days_after_joining":
        out["days"] = _int(node, "days", path, maximum=3650)
    elif kind == "order_placed":
        out["channels"] = _strings(node, "channels", path)
        amount = node.get("min_amount")
        if amount not in (None, ""):
            try:
                from decimal import Decimal
                out["min_amount"] = str(Decimal(str(amount)).quantize(Decimal("0.01")))
            except ArithmeticError as exc:
                raise _fail(f"{path}.min_amount", _("give an amount such as 99.00")) from exc
        out["first_order"] = bool(node.get("first_order", False))
    elif kind == "event":
        out["event_kind"] = _str(node, "event_kind", path, max_length=20)
    elif kind == "tag_added":
        out["tags"] = _strings(node, "tags", path, required=True)
    elif kind in ("lifecycle_changed", "rfm_changed"):
        out["values"] = _strings(node, "values", path, required=True)
    elif kind == "segment_entered":
        out["segment"] = _str(node, "segment", path, max_length=64)
    elif kind == "tier_changed":
        out["tiers"] = _strings(node, "tiers", path)
        out["reason"] = _str(node, "reason", path, required=False, max_length=10)
    elif kind == "birthday":
        out["days_before"] = _int(node, "days_before", path, maximum=60, default=0)
    elif kind == "schedule":
        out["segment"] = _str(node, "segment", path, max_length=64)
        out["at"] = _moment(node, "at", path)
        out["every_days"] = _int(node, "every_days", path, minimum=1, maximum=366, required=False)
    if goal:
        out["within_days"] = _int(node, "within_days", path, minimum=1, maximum=3650, default=30)
    return out


def _parse_step(node: Any, path: str) -> dict:
    if not isinstance(node, dict):
        raise _fail(path, _("each step is an object"))
    key = node.get("key")
    if not isinstance(key, str) or not _KEY.match(key) or key == END:
        raise _fail(f"{path}.key", _("give a key of lower-case letters, digits, - and _ (at most 32), not 'exit'"))
    kind = node.get("kind")
    if kind not in STEP_KINDS:
        raise _fail(f"{path}.kind", _("choose one of: %(kinds)s") % {"kinds": ", ".join(STEP_KINDS)})
    step: dict[str, Any] = {"key": key, "kind": kind, "label": _str(node, "label", path, required=False,
                                                                      max_length=100)}
    if "next" in node:
        step["next"] = _str(node, "next", path, max_length=32)
    if kind == "wait":
        mode = node.get("mode", "duration")
        if mode not in WAIT_MODES:
            raise _fail(f"{path}.mode", _("choose one of: %(kinds)s") % {"kinds": ", ".join(WAIT_MODES)})
        step["mode"] = mode
        if mode == "duration":
            step["days"] = _int(node, "days", path, maximum=3650, default=0)
            step["hours"] = _int(node, "hours", path, maximum=10**5, default=0)
            step["minutes"] = _int(node, "minutes", path, maximum=10**6, default=0)
            if not (step["days"] or step["hours"] or step["minutes"]):
                raise _fail(f"{path}.days", _("give a duration in days, hours or minutes"))
            step["at"] = _time_of_day(node, "at", path, required=False)
        elif mode == "time_of_day":
            step["at"] = _time_of_day(node, "at", path)
        elif mode == "date":
            step["until"] = _moment(node, "until", path)
        elif mode == "days_after_entry":
            step["days"] = _int(node, "days", path, maximum=3650)
            step["at"] = _time_of_day(node, "at", path, required=False)
        else:
            step["rule"] = _rule(node, "rule", path)
            step["timeout_hours"] = _int(node, "timeout_hours", path, minimum=1, maximum=10**5)
            step["check_minutes"] = _int(node, "check_minutes", path, minimum=1, maximum=10**5, default=60)
            step["timeout_next"] = _str(node, "timeout_next", path, required=False, default=END, max_length=32)
    elif kind == "condition":
        step["rule"] = _rule(node, "rule", path)
        for branch in ("yes", "no"):
            if branch in node:
                step[branch] = _str(node, branch, path, max_length=32)
    elif kind == "split":
        variants = node.get("variants")
        if not isinstance(variants, list) or len(variants) < 2:
            raise _fail(f"{path}.variants", _("give at least two variants"))
        parsed = []
        for i, variant in enumerate(variants):
            vpath = f"{path}.variants[{i}]"
            if not isinstance(variant, dict):
                raise _fail(vpath, _("each variant is an object"))
            parsed.append({"name": _str(variant, "name", vpath, max_length=20),
                           "percent": _int(variant, "percent", vpath, minimum=1, maximum=100),
                           "next": _str(variant, "next", vpath, max_length=32)})
        if sum(v["percent"] for v in parsed) != 100:
            raise _fail(f"{path}.variants", _("the variants' percentages must add up to 100"))
        if len({v["name"] for v in parsed}) != len(parsed):
            raise _fail(f"{path}.variants", _("variant names must differ"))
        step["variants"] = parsed
    elif kind in ("send", "webhook"):
        step["template_id"] = _int(node, "template_id", path, minimum=1, maximum=2**62)
        step["purpose"] = _str(node, "purpose", path, required=False,
                               default="marketing" if kind == "send" else "service", max_length=20)
        if step["purpose"] not in ("marketing", "service"):
            raise _fail(f"{path}.purpose", _("choose one of: %(kinds)s") % {"kinds": "marketing, service"})
        context = node.get("context") or {}
        if not isinstance(context, dict):
            raise _fail(f"{path}.context", _("give an object of variables"))
        step["context"] = context
    elif kind == "coupon":
        step["template"] = _str(node, "template", path, max_length=64)
    elif kind in ("tag_add", "tag_remove"):
        step["tags"] = _strings(node, "tags", path, required=True)
    elif kind == "points":
        step["program"] = _str(node, "program", path, max_length=64)
        step["amount"] = _int(node, "amount", path, minimum=1, maximum=10**7)
        step["reason"] = _str(node, "reason", path, required=False, default="journey", max_length=200)
    elif kind == "guide_task":
        step["title"] = _str(node, "title", path, max_length=200)
        step["due_days"] = _int(node, "due_days", path, maximum=365, default=1)
    if kind in ACTIONS:
        step["window"] = parse_window(node.get("window"), f"{path}.window")
    return step


def parse_definition(data: Any) -> dict:
    """Validate ``data`` and return the normalised definition; raises ``ValidationError`` with the
    offending field path (``steps[2].days``) and reason."""
    if not isinstance(data, dict):
        raise _fail("definition", _("give the journey definition as an object"))
    out: dict[str, Any] = {"trigger": parse_trigger(data.get("trigger"))}
    reentry = data.get("reentry") or {"policy": "once"}
    if not isinstance(reentry, dict) or reentry.get("policy") not in POLICIES:
        raise _fail("reentry.policy", _("choose one of: %(kinds)s") % {"kinds": ", ".join(POLICIES)})
    out["reentry"] = {"policy": reentry["policy"]}
    if reentry["policy"] == "period":
        out["reentry"]["period_days"] = _int(reentry, "period_days", "reentry", minimum=1, maximum=3650)
    goal = data.get("goal")
    out["goal"] = parse_trigger(goal, "goal", goal=True) if goal else None
    out["control_pct"] = _int(data, "control_pct", "definition", maximum=90, default=0)
    out["send_window"] = parse_window(data.get("send_window"), "send_window")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _fail("steps", _("give at least one step"))
    if len(steps) > 100:
        raise _fail("steps", _("a journey has at most 100 steps"))
    parsed = [_parse_step(node, f"steps[{i}]") for i, node in enumerate(steps)]
    keys = [s["key"] for s in parsed]
    if len(set(keys)) != len(keys):
        raise _fail("steps", _("step keys must differ"))
    for i, step in enumerate(parsed):  # the default successor is the following step
        step.setdefault("next", keys[i + 1] if i + 1 < len(keys) else END)
        if step["kind"] == "condition":
            step.setdefault("yes", step["next"])
            step.setdefault("no", END)
        if step["kind"] == "exit":
            step["next"] = END
    for i, step in enumerate(parsed):
        for target, where in successors(step):
            if target != END and target not in keys:
                raise _fail(f"steps[{i}].{where}", _("no step has the key %(key)s") % {"key": target})
    _check_acyclic(parsed)
    out["steps"] = parsed
    return out


def successors(step: dict) -> list[tuple[str, str]]:
    """``(step key, field)`` of every step ``step`` can lead to."""
    if step["kind"] == "condition":
        return [(step["yes"], "yes"), (step["no"], "no")]
    if step["kind"] == "split":
        return [(v["next"], f"variants[{i}].next") for i, v in enumerate(step["variants"])]
    if step["kind"] == "wait" and step["mode"] == "condition":
        return [(step["next"], "next"), (step["timeout_next"], "timeout_next")]
    return [(step["next"], "next")]


def _check_acyclic(steps: list[dict]) -> None:
    by_key = {s["key"]: s for s in steps}
    state: dict[str, int] = {}

    def visit(key: str) -> None:
        if key == END or state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise _fail("steps", _("the steps loop back to %(key)s; a journey must not loop") % {"key": key})
        state[key] = 1
        for target, _where in successors(by_key[key]):
            visit(target)
        state[key] = 2

    for step in steps:
        visit(step["key"])


def first_step(definition: dict) -> str:
    return definition["steps"][0]["key"]


def step_map(definition: dict) -> dict[str, dict]:
    return {s["key"]: s for s in definition["steps"]}
