"""A plain-Python reference evaluator of segment rules, written from the rule documentation.

It loads every row into memory and decides member by member; the compiled SQL must select
exactly the same members.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from siyu.analytics.models import MemberLifecycle, MemberRfm
from siyu.commerce.models import Order, OrderLine
from siyu.core.time import business_date
from siyu.events.models import Event
from siyu.members.models import Member
from siyu.segments.rules import Attr, Events, Group, ModelValue, Orders, Tags
from siyu.tags.models import MemberTag


def _holds(op, actual, value):
    if actual is None:
        return False
    if op == "between":
        return value[0] <= actual <= value[1]
    return {"eq": actual == value, "ne": actual != value, "gt": actual > value, "gte": actual >= value,
            "lt": actual < value, "lte": actual <= value}[op]


def _in_window(window, moment, now):
    if window is None:
        return True
    if window.last_days is not None:
        return moment >= now - dt.timedelta(days=window.last_days)
    day = business_date(moment)
    return (window.start is None or day >= window.start) and (window.end is None or day <= window.end)


class Reference:
    def __init__(self, now: dt.datetime):
        self.now = now
        self.today = business_date(now)
        self.members = list(Member.objects.select_related("store__brand", "guide"))
        self.orders = defaultdict(list)
        lines = defaultdict(list)
        for line in OrderLine.objects.select_related("product"):
            lines[line.order_id].append(line)
        for order in Order.objects.select_related("channel", "store__brand").filter(member__isnull=False):
            order.the_lines = lines[order.pk]
            self.orders[order.member_id].append(order)
        self.events = defaultdict(list)
        for event in Event.objects.all():
            self.events[event.member_id].append(event)
        self.tags = defaultdict(set)
        for held in MemberTag.objects.select_related("tag"):
            if held.expires_at is None or held.expires_at > now:
                self.tags[held.member_id].add(held.tag.code)
        self.rfm = defaultdict(list)
        for row in MemberRfm.objects.select_related("brand"):
            self.rfm[row.member_id].append(row)
        self.lifecycle = defaultdict(list)
        for row in MemberLifecycle.objects.select_related("brand"):
            self.lifecycle[row.member_id].append(row)

    def select(self, node) -> set[int]:
        return {m.pk for m in self.members if self.matches(node, m)}

    def matches(self, node, m) -> bool:
        if isinstance(node, Group):
            results = [self.matches(c, m) for c in node.children]
            return {"all": all, "any": any}[node.kind](results) if node.kind != "not" else not results[0]
        if isinstance(node, Attr):
            return self.attr(node, m)
        if isinstance(node, Tags):
            held = self.tags[m.pk]
            return {"any": bool(held & set(node.codes)), "all": set(node.codes) <= held,
                    "none": not (held & set(node.codes))}[node.mode]
        if isinstance(node, Orders):
            return self.orders_match(node, m)
        if isinstance(node, Events):
            n = sum(1 for e in self.events[m.pk]
                    if e.kind == node.kind and _in_window(node.window, e.occurred_at, self.now)
                    and all(e.properties.get(k) == v for k, v in node.props))
            return _holds(node.op, n, node.value)
        if isinstance(node, ModelValue):
            return self.model(node, m)
        raise AssertionError(node)

    def attr(self, node, m) -> bool:
        name, op, value = node.name, node.op, node.value
        if name == "age":
            b = m.birthday
            if b is None:
                return False
            age = self.today.year - b.year - ((self.today.month, self.today.day) < (b.month, b.day))
            return _holds(op, age, value)
        if name == "birthday":
            return _holds(op, m.birthday, value)
        if name == "joined_at":
            if op == "last_days":
                return m.joined_at >= self.now - dt.timedelta(days=value)
            return _holds(op, business_date(m.joined_at), value)
        if name in ("brand", "store", "guide"):
            actual = {"brand": m.store.brand.code if m.store else None, "store": m.store.code if m.store else None,
                      "guide": m.guide.code if m.guide else None}[name]
        else:
            actual = getattr(m, name)
        if op == "empty":
            return (actual in (None, "")) == value
        if op == "eq":
            return actual == value
        if op == "ne":
            return actual != value
        if op == "in":
            return actual in value
        if op == "not_in":
            return actual not in value
        if op == "contains":
            return value.lower() in (actual or "").lower()
        if name in (
            "is_wecom_friend", "in_group", "follows_oa", "mini_program_authorized", "sms_consent", "marketing_consent"
        ):
            return actual == value
        raise AssertionError(node)

    def orders_match(self, node, m) -> bool:
        filters = dict(node.filters)
        chosen = []
        for o in self.orders[m.pk]:
            if not o.is_counted or not _in_window(node.window, o.ordered_at, self.now):
                continue
            if "channels" in filters and o.channel.code not in filters["channels"]:
                continue
            if "stores" in filters and (o.store is None or o.store.code not in filters["stores"]):
                continue
            if "brands" in filters and (o.store is None or o.store.brand.code not in filters["brands"]):
                continue
            line_keys = [k for k in ("products", "categories", "roles") if k in filters]
            if line_keys and not any(
                all(self.line_value(line, k) in filters[k] for k in line_keys) for line in o.the_lines
            ):
                continue
            chosen.append(o)
        net = sum((o.paid_amount - o.refunded_amount for o in chosen), Decimal(0))
        if node.measure == "count":
            actual = len(chosen)
        elif node.measure == "paid":
            actual = net
        elif node.measure == "aov":
            actual = net / len(chosen) if chosen else None
        elif node.measure == "first_at":
            actual = business_date(min(o.ordered_at for o in chosen)) if chosen else None
        else:
            actual = business_date(max(o.ordered_at for o in chosen)) if chosen else None
        return _holds(node.op, actual, node.value)

    @staticmethod
    def line_value(line, key):
        if key == "products":
            return line.sku
        if line.product is None:
            return None
        return line.product.category if key == "categories" else line.product.role

    def model(self, node, m) -> bool:
        rows = self.lifecycle[m.pk] if node.name == "lifecycle" else self.rfm[m.pk]
        field = "stage" if node.name == "lifecycle" else node.name
        for row in rows:
            if node.brand and row.brand.code != node.brand:
                continue
            actual = getattr(row, field)
            if node.op in ("in", "not_in") and (actual in node.value) == (node.op == "in"):
                return True
            if node.op not in ("in", "not_in") and _holds(node.op, actual, node.value):
                return True
        return False

