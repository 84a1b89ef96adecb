"""Compile a parsed segment rule into one ``Q`` over members: the database does all filtering.

A row count compared with a threshold ("at least k orders in 180 days", "fewer than 3 check-ins",
"never") becomes ``EXISTS (SELECT … the member's rows … LIMIT 1 OFFSET k − 1)``, negated for the
"fewer than" forms: a probe of the member's ``(member, time)`` index that stops at the k-th row,
run only for members the cheaper conditions left, instead of counting every member's rows.

Other aggregate conditions (sums, averages, first/last times, exact counts and ranges) become
``id IN (SELECT member_id … GROUP BY member_id HAVING …)``. When a member with no matching rows
satisfies the condition too (``paid lt 100``), the compiler inverts it: ``id NOT IN (members whose
aggregate fails)``, so members without rows are kept without scanning them.

Conditions that are "the member's id is in this set" (tags held, at least one order or event,
an aggregate, a modelled value) are kept as sets until their group is combined: under ``all``,
several of them become one ``id IN (set₁ INTERSECT set₂ …)``, so the database meets the sets
before it looks members up, instead of fetching every member of the largest set by primary key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, Sum, Value
from django.utils import timezone

from siyu.core.time import business_date, start_of_day
from siyu.segments.rules import CODE_ATTRS, Attr, Events, Group, ModelValue, Orders, Tags, Window

_ATTR_FIELDS = {"brand": "store__brand__code", "store": "store__code", "guide": "guide__code"}
_ORDER_FILTERS = {"channels": "channel__code__in", "stores": "store__code__in", "brands": "store__brand__code__in"}
_LINE_FILTERS = {"products": "sku__in", "categories": "product__category__in", "roles": "product__role__in"}


def compile_rule(node, *, now: dt.datetime | None = None) -> Q:
    """The ``Q`` selecting the members that satisfy ``node`` (from :func:`parse_rule`) at ``now``."""
    return _Compiler(now or timezone.now()).node(node)


def holds(op: str, actual: Any, value: Any) -> bool:
    """``actual op value`` in Python; ``None`` (no value) satisfies nothing. Shared with tests."""
    if actual is None:
        return False
    if op == "between":
        return value[0] <= actual <= value[1]
    return {"eq": actual == value, "ne": actual != value, "gt": actual > value, "gte": actual >= value,
            "lt": actual < value, "lte": actual <= value}[op]


def window_bounds(window: Window | None, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[start, end)`` instants of a window (``None``: open)."""
    if window is None:
        return None, None
    if window.last_days is not None:
        return now - dt.timedelta(days=window.last_days), None
    return (start_of_day(window.start) if window.start else None,
            start_of_day(window.end + dt.timedelta(days=1)) if window.end else None)


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` earlier (29 February → 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


@dataclass(frozen=True)
class _Ids:
    """The member's id is in every one of ``sets`` (querysets of ``member_id`` values)."""

    sets: tuple

    def q(self) -> Q:
        first, *rest = self.sets
        return Q(pk__in=first.intersection(*rest) if rest else first)


def _q(part: Q | _Ids) -> Q:
    return part.q() if isinstance(part, _Ids) else part


class _Compiler:
    def __init__(self, now: dt.datetime):
        self.now = now
        self.today = business_date(now)

    def node(self, node) -> Q:
        return _q(self.part(node))

    def part(self, node) -> Q | _Ids:
        if not isinstance(node, Group):
            return getattr(self, type(node).__name__.lower())(node)
        parts = [self.part(child) for child in node.children]
        if node.kind == "not":
            return ~_q(parts[0])
        if node.kind == "any":
            combined = _q(parts[0])
            for part in parts[1:]:
                combined |= _q(part)
            return combined
        # all: the id sets intersected first (a nested all of sets joins its parent's), then the rest
        ids = _Ids(tuple(s for part in parts if isinstance(part, _Ids) for s in part.sets))
        rest = [part for part in parts if not isinstance(part, _Ids)]
        if not rest:
            return ids
        combined = ids.q() if ids.sets else rest.pop(0)
        for part in rest:
            combined &= part
        return combined

    # -- member attributes --------------------------------------------------------------------
    def attr(self, node: Attr) -> Q:
        name, op, value = node.name, node.op, node.value
        if name == "age":
            return self.age(op, value)
        if name == "birthday":
            return Q(birthday__isnull=False) & self.compare("birthday", op, value, days=False)
        if name == "joined_at":
            if op == "last_days":
                return Q(joined_at__gte=self.now - dt.timedelta(days=value))
            return self.compare("joined_at", op, value, days=True)
        field = _ATTR_FIELDS.get(name, name)
        if op == "empty":
            blank = Q(**{f"{name}__isnull": True}) if name in CODE_ATTRS else Q(**{name: ""})
            return blank if value else ~blank
        if op in ("eq", "in", "ne", "not_in"):
            q = Q(**{field if op in ("eq", "ne") else f"{field}__in": value})
            if name not in CODE_ATTRS:
                return ~q if op in ("ne", "not_in") else q
            # A member without a store or guide has no code: NULL, which a NOT higher up the rule
            # keeps NULL (false). Django's IS NOT NULL guards miss it when an OR or a NOT reuses
            # the LEFT JOIN, so the missing code is said outright: matches only when present,
            # differs when absent.
            has = Q(**{f"{field.rsplit('__', 1)[0]}__isnull": False})
            return (~q | ~has) if op in ("ne", "not_in") else (q & has)
        return Q(**{f"{field}__icontains": value})  # contains

    def age(self, op: str, value) -> Q:
        def born_by(years: int) -> dt.date:  # on or before this day ⇔ at least ``years`` old
            return years_before(self.today, years)

        low, high = value if op == "between" else (value, value)
        ranges = {
            "gte": Q(birthday__lte=born_by(low)), "gt": Q(birthday__lte=born_by(low + 1)),
            "lte": Q(birthday__gt=born_by(high + 1)), "lt": Q(birthday__gt=born_by(high)),
        }
        if op in ranges:
            return Q(birthday__isnull=False) & ranges[op]
        exact = Q(birthday__lte=born_by(low), birthday__gt=born_by(high + 1))
        return Q(birthday__isnull=False) & (~exact if op == "ne" else exact)

    def compare(self, field: str, op: str, value, *, days: bool) -> Q:
        """``field op value``; with ``days`` the field is an instant and the value a business day."""
        if not days:
            if op == "between":
                return Q(**{f"{field}__gte": value[0], f"{field}__lte": value[1]})
            if op == "ne":
                return ~Q(**{field: value})
            return Q(**{field if op == "eq" else f"{field}__{op}": value})
        low, high = value if op == "between" else (value, value)
        start, after = start_of_day(low), start_of_day(high + dt.timedelta(days=1))
        if op in ("eq", "between"):
            return Q(**{f"{field}__gte": start, f"{field}__lt": after})
        return {
            "ne": ~Q(**{f"{field}__gte": start, f"{field}__lt": after}) & Q(**{f"{field}__isnull": False}),
            "gt": Q(**{f"{field}__gte": after}), "gte": Q(**{f"{field}__gte": start}),
            "lt": Q(**{f"{field}__lt": start}), "lte": Q(**{f"{field}__lt": after}),
        }[op]

    # -- tags ---------------------------------------------------------------------------------
    def tags(self, node: Tags) -> Q | _Ids:
        from siyu.tags.models import MemberTag

        held = MemberTag.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=self.now))
        if node.mode == "all":
            return _Ids(tuple(held.filter(tag__code=code).values("member_id") for code in node.codes))
        holders = _Ids((held.filter(tag__code__in=node.codes).values("member_id"),))
        return holders if node.mode == "any" else ~holders.q()

    # -- aggregates ---------------------------------------------------------------------------
    def orders(self, node: Orders) -> Q | _Ids:
        from siyu.commerce.models import Order, OrderLine

        rows = Order.objects.filter(is_counted=True, member__isnull=False).order_by()
        start, end = window_bounds(node.window, self.now)
        if start:
            rows = rows.filter(ordered_at__gte=start)
        if end:
            rows = rows.filter(ordered_at__lt=end)
        line_filters = {}
        for key, values in node.filters:
            if key in _ORDER_FILTERS:
                rows = rows.filter(**{_ORDER_FILTERS[key]: values})
            else:
                line_filters[_LINE_FILTERS[key]] = values
        if line_filters:
            rows = rows.filter(Exists(OrderLine.objects.filter(order=OuterRef("pk"), **line_filters)))
        if node.measure == "count" and (probe := self.count_probe(rows, node.op, node.value)) is not None:
            return probe
        net = Sum(F("paid_amount") - F("refunded_amount"))
        aggregate = {"count": Count("pk"), "paid": net, "aov": net,
                     "first_at": Min("ordered_at"), "last_at": Max("ordered_at")}[node.measure]
        nothing = {"count": 0, "paid": Decimal(0)}.get(node.measure)
        grouped = rows.values("member_id").annotate(v=aggregate)
        if node.measure == "aov":  # paid / count op value ⇔ paid op value × count: no division
            grouped = grouped.annotate(n=Count("pk"))
            having = self.having_scaled(node.op, node.value)
        else:
            having = self.having(node.op, node.value, days=node.measure in ("first_at", "last_at"))
        return self.members_where(grouped, having, holds(node.op, nothing, node.value))

    def events(self, node: Events) -> Q | _Ids:
        from siyu.events.models import Event

        rows = Event.objects.filter(kind=node.kind).order_by()
        start, end = window_bounds(node.window, self.now)
        if start:
            rows = rows.filter(occurred_at__gte=start)
        if end:
            rows = rows.filter(occurred_at__lt=end)
        for key, value in node.props:
            rows = rows.filter(**{f"properties__{key}": value})
        if (probe := self.count_probe(rows, node.op, node.value)) is not None:
            return probe
        grouped = rows.values("member_id").annotate(v=Count("pk"))
        return self.members_where(grouped, self.having(node.op, node.value, days=False), holds(node.op, 0, node.value))

    @staticmethod
    def count_probe(rows, op: str, value) -> Q | _Ids | None:
        """``count(rows) op value`` as "the member has at least k rows", or its negation, when the
        comparison is one (``None`` otherwise: exact counts, ranges, and the trivial ``gte 0`` and
        ``lt 0``). Django keeps the slice inside ``Exists``: ``LIMIT 1 OFFSET k − 1``. At least one
        row is the set of members with rows."""
        if op in ("gte", "gt", "lt", "lte"):
            at_least, negated = value + (op in ("gt", "lte")), op in ("lt", "lte")
        elif op in ("eq", "ne") and value == 0:  # never / ever
            at_least, negated = 1, op == "eq"
        else:
            return None
        if at_least == 0:  # gte 0: everyone; lt 0: no one
            return None
        if at_least == 1 and not negated:
            return _Ids((rows.values("member_id"),))
        probe = Exists(rows.filter(member_id=OuterRef("pk"))[at_least - 1:at_least])
        return Q(~probe if negated else probe)

    def having(self, op: str, value, *, days: bool) -> Q:
        return self.compare("v", op, value, days=days)

    def having_scaled(self, op: str, value) -> Q:
        def scaled(amount):
            return Value(amount) * F("n")

        if op == "between":
            return Q(v__gte=scaled(value[0]), v__lte=scaled(value[1]))
        if op == "ne":
            return ~Q(v=scaled(value))
        return Q(**{"v" if op == "eq" else f"v__{op}": scaled(value)})

    @staticmethod
    def members_where(grouped, having: Q, nothing_holds: bool) -> Q | _Ids:
        if nothing_holds:  # members without rows qualify: exclude those whose aggregate fails
            return ~Q(pk__in=grouped.filter(~having).values("member_id"))
        return _Ids((grouped.filter(having).values("member_id"),))

    # -- modelled values ----------------------------------------------------------------------
    def modelvalue(self, node: ModelValue) -> _Ids:
        from siyu.analytics.models import MemberLifecycle, MemberRfm

        model, field = (MemberLifecycle, "stage") if node.name == "lifecycle" else (MemberRfm, node.name)
        rows = model.objects.all()
        if node.brand:
            rows = rows.filter(brand__code=node.brand)
        if node.op in ("in", "not_in"):
            cond = Q(**{f"{field}__in": node.value})
            cond = ~cond if node.op == "not_in" else cond
        else:
            cond = self.compare(field, node.op, node.value, days=False)
        return _Ids((rows.filter(cond).values("member_id"),))

