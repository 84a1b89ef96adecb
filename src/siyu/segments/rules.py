"""Segment rules (分群规则): a JSON tree validated into typed nodes, with precise errors.

A rule is a tree of groups and conditions::

    {"all": [node, …]}   {"any": [node, …]}   {"not": node}        groups nest to any depth

    {"attr": "city", "op": "in", "value": ["上海", "杭州"]}         member attributes
    {"tags": "any" | "all" | "none", "value": ["mother-baby"]}     tags held (unexpired)
    {"orders": {"window": {"last_days": 180}, "channels": [...], "stores": [...], "brands": [...],
                "products": [...], "categories": [...], "roles": [...]},
     "measure": "count" | "paid" | "aov" | "first_at" | "last_at", "op": "gte", "value": 2}
    {"events": {"kind": "check_in", "window": {"from": "2026-01-01", "to": "2026-03-31"},
                "props": {"activity": "21-day-camp"}}, "op": "gte", "value": 1}
    {"model": "rfm_class" | "r_score" | "f_score" | "m_score" | "lifecycle", "brand": "brand-a",
     "op": "in", "value": ["important_value"]}

Operators: ``eq ne in not_in contains empty`` for text; ``eq ne gt gte lt lte between`` for
numbers, money and dates; ``eq`` for flags; ``last_days`` for ``joined_at``. Order measures
count counted orders (paid, shipped, completed); ``paid`` is net of refunds; a filter on
products, categories or roles keeps the orders that contain such a line. A member with no
matching order has count 0 and paid 0 (so ``count eq 0`` means "never"), and no average or
first/last date (a condition on those is false).

:func:`parse_rule` returns the typed tree or raises :class:`RuleError` naming the node
(``all[1].orders.window.last_days``) and why.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from siyu.core.errors import ValidationError
from siyu.core.money import to_money

MAX_DEPTH = 20
MAX_NODES = 200


class RuleError(ValidationError):
    code = "invalid_rule"


TEXT_OPS = ("eq", "ne", "in", "not_in", "contains", "empty")
ORDERED_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
TEXT_ATTRS = ("city", "community", "gender", "source_channel", "status", "brand", "store", "guide")
CODE_ATTRS = ("brand", "store", "guide")  # matched by code; text ops except contains
FLAG_ATTRS = ("is_wecom_friend", "in_group", "follows_oa", "mini_program_authorized", "sms_consent",
              "marketing_consent")
ATTRS = (*TEXT_ATTRS, *FLAG_ATTRS, "age", "joined_at", "birthday")
MEASURES = ("count", "paid", "aov", "first_at", "last_at")
MODELS = ("rfm_class", "r_score", "f_score", "m_score", "lifecycle")
ORDER_FILTERS = ("channels", "stores", "brands", "products", "categories", "roles")
_PROP_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Window:
    """``last_days``: the N days up to now; or business days ``start`` … ``end``, both included."""

    last_days: int | None = None
    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True)
class Group:
    kind: str  # all | any | not
    children: tuple


@dataclass(frozen=True)
class Attr:
    name: str
    op: str
    value: Any


@dataclass(frozen=True)
class Tags:
    mode: str  # any | all | none
    codes: tuple[str, ...]


@dataclass(frozen=True)
class Orders:
    window: Window | None
    filters: tuple[tuple[str, tuple[str, ...]], ...]
    measure: str
    op: str
    value: Any


@dataclass(frozen=True)
class Events:
    kind: str
    window: Window | None
    props: tuple[tuple[str, Any], ...]
    op: str
    value: Any


@dataclass(frozen=True)
class ModelValue:
    name: str
    brand: str | None
    op: str
    value: Any


def parse_rule(raw: Any) -> Group | Attr | Tags | Orders | Events | ModelValue:
    """Validate a rule tree; raises :class:`RuleError` (``field`` is the node's path)."""
    return _Parser().node(raw, "", 0)


class _Parser:
    def __init__(self):
        self.count = 0

    def fail(self, path: str, message: str):
        raise RuleError(message, field=path or "rule")

    def node(self, raw: Any, path: str, depth: int):
        self.count += 1
        if self.count > MAX_NODES:
            self.fail(path, _("a rule has at most %(n)d nodes") % {"n": MAX_NODES})
        if depth > MAX_DEPTH:
            self.fail(path, _("groups nest at most %(n)d deep") % {"n": MAX_DEPTH})
        if not isinstance(raw, dict) or not raw:
            self.fail(path, _("expected an object such as {\"all\": [...]} or {\"attr\": ...}"))
        for kind in ("all", "any"):
            if kind in raw:
                self.only(raw, path, {kind})
                items = raw[kind]
                if not isinstance(items, list) or not items:
                    self.fail(_join(path, kind), _("expected a non-empty list of rules"))
                return Group(kind, tuple(self.node(item, f"{_join(path, kind)}[{i}]", depth + 1)
                                         for i, item in enumerate(items)))
        if "not" in raw:
            self.only(raw, path, {"not"})
            return Group("not", (self.node(raw["not"], _join(path, "not"), depth + 1),))
        for key, parse in (("attr", self.attr), ("tags", self.tags), ("orders", self.orders),
                           ("events", self.events), ("model", self.model)):
            if key in raw:
                return parse(raw, path)
        self.fail(path, _("unknown rule: use all, any, not, attr, tags, orders, events or model"))

    def only(self, raw: dict, path: str, allowed: set[str]) -> None:
        extra = sorted(set(raw) - allowed)
        if extra:
            self.fail(_join(path, extra[0]), _("unexpected key %(key)s") % {"key": extra[0]})

    def op(self, raw: dict, path: str, allowed: tuple[str, ...]) -> str:
        op = raw.get("op")
        if op not in allowed:
            self.fail(_join(path, "op"), _("op must be one of: %(ops)s") % {"ops": ", ".join(allowed)})
        return op

    # -- conditions ---------------------------------------------------------------------------
    def attr(self, raw: dict, path: str) -> Attr:
        self.only(raw, path, {"attr", "op", "value"})
        name = raw["attr"]
        if name not in ATTRS:
            self.fail(_join(path, "attr"), _("unknown attribute %(name)s; one of: %(names)s")
                      % {"name": name, "names": ", ".join(ATTRS)})
        value_path = _join(path, "value")
        if name in FLAG_ATTRS:
            self.op(raw, path, ("eq",))
            if not isinstance(raw.get("value"), bool):
                self.fail(value_path, _("expected true or false"))
            return Attr(name, "eq", raw["value"])
        if name in TEXT_ATTRS:
            ops = tuple(o for o in TEXT_OPS if not (name in CODE_ATTRS and o == "contains"))
            op = self.op(raw, path, ops)
            if op == "empty":
                if not isinstance(raw.get("value"), bool):
                    self.fail(value_path, _("expected true or false"))
                return Attr(name, op, raw["value"])
            if op in ("in", "not_in"):
                return Attr(name, op, self.texts(raw.get("value"), value_path))
            return Attr(name, op, self.text(raw.get("value"), value_path))
        if name == "age":
            op = self.op(raw, path, ORDERED_OPS)
            return Attr(name, op, self.ordered(raw.get("value"), value_path, op, self.whole))
        ops = (*ORDERED_OPS, "last_days") if name == "joined_at" else ORDERED_OPS
        op = self.op(raw, path, ops)
        if op == "last_days":
            return Attr(name, op, self.whole(raw.get("value"), value_path))
        return Attr(name, op, self.ordered(raw.get("value"), value_path, op, self.date))

    def tags(self, raw: dict, path: str) -> Tags:
        self.only(raw, path, {"tags", "value"})
        mode = raw["tags"]
        if mode not in ("any", "all", "none"):
            self.fail(_join(path, "tags"), _("tags must be any, all or none"))
        return Tags(mode, self.texts(raw.get("value"), _join(path, "value")))

    def orders(self, raw: dict, path: str) -> Orders:
        self.only(raw, path, {"orders", "measure", "op", "value"})
        spec = raw["orders"]
        spec_path = _join(path, "orders")
        if not isinstance(spec, dict):
            self.fail(spec_path, _("expected an object (window and filters; {} for all orders)"))
        self.only(spec, spec_path, {"window", *ORDER_FILTERS})
        window = self.window(spec.get("window"), _join(spec_path, "window"))
        filters = tuple((key, self.texts(spec[key], _join(spec_path, key))) for key in ORDER_FILTERS if key in spec)
        measure = raw.get("measure", "count")
        if measure not in MEASURES:
            self.fail(_join(path, "measure"), _("measure must be one of: %(m)s") % {"m": ", ".join(MEASURES)})
        op = self.op(raw, path, ORDERED_OPS)
        parse = {"count": self.whole, "paid": self.money, "aov": self.money}.get(measure, self.date)
        return Orders(window, filters, measure, op, self.ordered(raw.get("value"), _join(path, "value"), op, parse))

    def events(self, raw: dict, path: str) -> Events:
        from siyu.events.models import EventKind

        self.only(raw, path, {"events", "op", "value"})
        spec = raw["events"]
        spec_path = _join(path, "events")
        if not isinstance(spec, dict):
            self.fail(spec_path, _("expected an object with kind, window and props"))
        self.only(spec, spec_path, {"kind", "window", "props"})
        kind = spec.get("kind")
        if kind not in EventKind.values:
            self.fail(_join(spec_path, "kind"), _("kind must be one of: %(k)s") % {"k": ", ".join(EventKind.values)})
        props = spec.get("props") or {}
        if not isinstance(props, dict):
            self.fail(_join(spec_path, "props"), _("expected an object of property: value"))
        for key, value in props.items():
            if not _PROP_KEY.match(str(key)):
                self.fail(_join(spec_path, f"props.{key}"), _("a property name is letters, digits and _"))
            if not isinstance(value, (str, int, bool)) or isinstance(value, float):
                self.fail(_join(spec_path, f"props.{key}"), _("a property value is text, a whole number or a flag"))
        window = self.window(spec.get("window"), _join(spec_path, "window"))
        op = self.op(raw, path, ORDERED_OPS)
        value = self.ordered(raw.get("value", 1), _join(path, "value"), op, self.whole)
        return Events(kind, window, tuple(sorted(props.items())), op, value)

    def model(self, raw: dict, path: str) -> ModelValue:
        from siyu.analytics.models import LifecycleStage, RfmClass

        self.only(raw, path, {"model", "brand", "op", "value"})
        name = raw["model"]
        if name not in MODELS:
            self.fail(_join(path, "model"), _("model must be one of: %(m)s") % {"m": ", ".join(MODELS)})
        brand = raw.get("brand")
        if brand is not None:
            brand = self.text(brand, _join(path, "brand"))
        value_path = _join(path, "value")
        if name in ("rfm_class", "lifecycle"):
            op = self.op(raw, path, ("eq", "ne", "in", "not_in"))
            choices = RfmClass.values if name == "rfm_class" else LifecycleStage.values
            values = self.texts(raw.get("value"), value_path) if op in ("in", "not_in") else (
                self.text(raw.get("value"), value_path),)
            for v in values:
                if v not in choices:
                    self.fail(value_path, _("%(v)s is not one of: %(c)s") % {"v": v, "c": ", ".join(choices)})
            return ModelValue(name, brand, op, values if op in ("in", "not_in") else values[0])
        op = self.op(raw, path, ORDERED_OPS)
        value = self.ordered(raw.get("value"), value_path, op, self.whole)
        for v in value if op == "between" else (value,):
            if not 1 <= v <= 5:
                self.fail(value_path, _("a score is from 1 to 5"))
        return ModelValue(name, brand, op, value)

    # -- values -------------------------------------------------------------------------------
    def window(self, raw: Any, path: str) -> Window | None:
        if raw is None:
            return None
        if not isinstance(raw, dict) or not raw:
            self.fail(path, _("expected {\"last_days\": N} or {\"from\": date, \"to\": date}"))
        if "last_days" in raw:
            self.only(raw, path, {"last_days"})
            return Window(last_days=self.whole(raw["last_days"], _join(path, "last_days"), minimum=1))
        self.only(raw, path, {"from", "to"})
        start = self.date(raw["from"], _join(path, "from")) if raw.get("from") is not None else None
        end = self.date(raw["to"], _join(path, "to")) if raw.get("to") is not None else None
        if start and end and start > end:
            self.fail(_join(path, "to"), _("the window ends before it starts"))
        return Window(start=start, end=end)

    def ordered(self, raw: Any, path: str, op: str, parse):
        if op == "between":
            if not isinstance(raw, list) or len(raw) != 2:
                self.fail(path, _("between takes a list of two values [low, high]"))
            low, high = parse(raw[0], f"{path}[0]"), parse(raw[1], f"{path}[1]")
            if low > high:
                self.fail(path, _("between needs low ≤ high"))
            return (low, high)
        return parse(raw, path)

    def whole(self, raw: Any, path: str, minimum: int = 0) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.fail(path, _("expected a whole number"))
        if raw < minimum:
            self.fail(path, _("must be at least %(min)d") % {"min": minimum})
        if raw > 10**9:
            self.fail(path, _("the number is too large"))
        return raw

    def money(self, raw: Any, path: str) -> Decimal:
        if isinstance(raw, bool) or raw is None or isinstance(raw, (list, dict)):
            self.fail(path, _("expected an amount"))
        try:
            amount = to_money(raw)
        except ValueError:
            self.fail(path, _("not an amount: %(v)s") % {"v": raw})
        if amount < 0 or amount >= Decimal("1e12"):
            self.fail(path, _("the amount is out of range"))
        return amount

    def date(self, raw: Any, path: str) -> dt.date:
        """A business day, ``2026-03-31``: comparisons and windows work in whole days."""
        day = None
        if isinstance(raw, str) and len(raw.strip()) <= 10:
            try:
                day = dt.date.fromisoformat(raw.strip().replace("/", "-"))
            except ValueError:
                day = None
        if day is None or not 1900 <= day.year <= 2200:
            self.fail(path, _("not a date (YYYY-MM-DD): %(v)s") % {"v": raw})
        return day

    def text(self, raw: Any, path: str) -> str:
        if not isinstance(raw, (str, int)) or isinstance(raw, bool):
            self.fail(path, _("expected text"))
        text = str(raw).strip()
        if not text or len(text) > 200:
            self.fail(path, _("expected text of 1 to 200 characters"))
        return text

    def texts(self, raw: Any, path: str) -> tuple[str, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail(path, _("expected a non-empty list"))
        if len(raw) > 1000:
            self.fail(path, _("at most 1,000 values"))
        return tuple(sorted({self.text(v, f"{path}[{i}]") for i, v in enumerate(raw)}))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
