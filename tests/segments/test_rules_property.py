"""Compiled segment SQL selects exactly the members a plain-Python reference evaluator selects."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.analytics.models import MemberLifecycle, MemberRfm
from siyu.commerce.models import Order, OrderLine
from siyu.events.models import Event
from siyu.members.models import Member
from siyu.segments.compiler import compile_rule
from siyu.segments.rules import parse_rule
from siyu.tags.models import MemberTag, Tag, TagGroup
from tests.factories import make_brand, make_channel, make_member, make_product, make_staff, make_store
from tests.segments.reference import Reference

NOW = dt.datetime(2026, 6, 15, 4, 30, tzinfo=dt.UTC)  # 12:30 in Shanghai
TODAY = dt.date(2026, 6, 15)
DAYS = st.integers(-400, 0).map(lambda d: TODAY + dt.timedelta(days=d))
MOMENTS = st.integers(-400 * 24, 0).map(lambda h: NOW + dt.timedelta(hours=h, minutes=7))
MONEY = st.integers(0, 400).map(lambda n: Decimal(n) / 4)  # 0.25 steps: sums stay exact
CODES = {"brand": ["brand-a", "brand-b"], "store": ["s1", "s2", "s3"], "guide": ["g1", "g2"]}
TAGS = ["t1", "t2", "t3"]

member_spec = st.fixed_dictionaries({
    "city": st.sampled_from(["上海", "杭州", ""]),
    "gender": st.sampled_from(["male", "female", "unknown"]),
    "birthday": st.one_of(st.none(), st.integers(0, 60 * 365).map(lambda d: dt.date(1966, 6, 14) + dt.timedelta(d))),
    "joined_at": MOMENTS,
    "store": st.sampled_from([None, "s1", "s2", "s3"]),
    "guide": st.sampled_from([None, "g1", "g2"]),
    "is_wecom_friend": st.booleans(),
    "sms_consent": st.booleans(),
    "tags": st.lists(st.tuples(st.sampled_from(TAGS), st.sampled_from([None, -5, 5])), max_size=3,
                     unique_by=lambda t: t[0]),
    "orders": st.lists(st.fixed_dictionaries({
        "channel": st.sampled_from(["c1", "c2", "c3"]), "counted": st.booleans(), "paid": MONEY,
        "refund": st.sampled_from([0, 0, 50, 100]), "at": MOMENTS,
        "skus": st.lists(st.sampled_from(["p1", "p2", "p3"]), min_size=1, max_size=2, unique=True),
    }), max_size=4),
    "events": st.lists(st.tuples(st.sampled_from(["check_in", "share"]), MOMENTS,
                                 st.sampled_from(["camp", "run"]), st.integers(1, 3)), max_size=3),
    "rfm": st.lists(st.tuples(st.sampled_from(["brand-a", "brand-b"]), st.integers(1, 5),
                              st.sampled_from(["important_value", "general_retain", "important_keep"])),
                    max_size=2, unique_by=lambda t: t[0]),
    "stage": st.sampled_from([None, "new", "active", "churned"]),
})

window = st.one_of(
    st.none(),
    st.integers(1, 400).map(lambda n: {"last_days": n}),
    st.tuples(DAYS, DAYS).map(lambda ab: {"from": min(ab).isoformat(), "to": max(ab).isoformat()}),
    DAYS.map(lambda d: {"from": d.isoformat()}),
)
op_ordered = st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "between"])


def _sort_key(value):
    """Numbers (money comes as text) by value, dates (ISO text) as text."""
    return Decimal(value) if isinstance(value, str) and "-" not in value else value


def _ordered(op, values):
    if op == "between":
        return st.tuples(values, values).map(lambda ab: sorted(ab, key=_sort_key))
    return values


attr = st.one_of(
    st.fixed_dictionaries({"attr": st.sampled_from(["city", "gender"]), "op": st.sampled_from(["eq", "ne"]),
                           "value": st.sampled_from(["上海", "杭州", "male", "female"])}),
    st.fixed_dictionaries({"attr": st.just("city"), "op": st.sampled_from(["in", "not_in"]),
                           "value": st.lists(st.sampled_from(["上海", "杭州"]), min_size=1, max_size=2)}),
    st.fixed_dictionaries({"attr": st.just("city"), "op": st.just("contains"), "value": st.just("海")}),
    st.fixed_dictionaries({"attr": st.sampled_from(["city", "store", "guide"]), "op": st.just("empty"),
                           "value": st.booleans()}),
    st.sampled_from(["brand", "store", "guide"]).flatmap(lambda a: st.fixed_dictionaries({
        "attr": st.just(a), "op": st.sampled_from(["eq", "ne", "in", "not_in"]),
        "value": st.sampled_from(CODES[a])})).map(
        lambda r: {**r, "value": [r["value"]]} if r["op"] in ("in", "not_in") else r),
    st.fixed_dictionaries({"attr": st.sampled_from(["is_wecom_friend", "sms_consent"]), "op": st.just("eq"),
                           "value": st.booleans()}),
    op_ordered.flatmap(lambda op: st.fixed_dictionaries({
        "attr": st.just("age"), "op": st.just(op), "value": _ordered(op, st.integers(0, 70))})),
    op_ordered.flatmap(lambda op: st.fixed_dictionaries({
        "attr": st.sampled_from(["joined_at", "birthday"]), "op": st.just(op),
        "value": _ordered(op, DAYS.map(lambda d: d.isoformat()))})),
    st.fixed_dictionaries({"attr": st.just("joined_at"), "op": st.just("last_days"), "value": st.integers(1, 400)}),
)
order_filters = st.fixed_dictionaries({}, optional={
    "window": window.filter(lambda w: w is not None),
    "channels": st.lists(st.sampled_from(["c1", "c2", "c3"]), min_size=1, max_size=2),
    "brands": st.lists(st.sampled_from(["brand-a", "brand-b"]), min_size=1, max_size=1),
    "products": st.lists(st.sampled_from(["p1", "p2", "p3"]), min_size=1, max_size=2),
    "categories": st.lists(st.sampled_from(["milk", "toy"]), min_size=1, max_size=1),
})
measure_values = {"count": st.integers(0, 4), "paid": MONEY.map(str), "aov": MONEY.map(str),
                  "first_at": DAYS.map(lambda d: d.isoformat()), "last_at": DAYS.map(lambda d: d.isoformat())}
orders = st.tuples(st.sampled_from(list(measure_values)), op_ordered).flatmap(lambda mo: st.fixed_dictionaries({
    "orders": order_filters, "measure": st.just(mo[0]), "op": st.just(mo[1]),
    "value": _ordered(mo[1], measure_values[mo[0]]),
}))
events = op_ordered.flatmap(lambda op: st.fixed_dictionaries({
    "events": st.fixed_dictionaries({"kind": st.sampled_from(["check_in", "share"])}, optional={
        "window": window.filter(lambda w: w is not None),
        "props": st.sampled_from([{"activity": "camp"}, {"day": 2}, {"activity": "run", "day": 1}])}),
    "op": st.just(op), "value": _ordered(op, st.integers(0, 3)),
}))
tags = st.fixed_dictionaries({"tags": st.sampled_from(["any", "all", "none"]),
                              "value": st.lists(st.sampled_from(TAGS), min_size=1, max_size=2)})
model = st.one_of(
    st.fixed_dictionaries({"model": st.just("rfm_class"), "op": st.sampled_from(["in", "not_in"]),
                           "value": st.lists(st.sampled_from(["important_value", "general_retain"]), min_size=1)},
                          optional={"brand": st.sampled_from(["brand-a", "brand-b"])}),
    op_ordered.flatmap(lambda op: st.fixed_dictionaries({
        "model": st.sampled_from(["r_score", "f_score"]), "op": st.just(op),
        "value": _ordered(op, st.integers(1, 5))})),
    st.fixed_dictionaries({"model": st.just("lifecycle"), "op": st.sampled_from(["eq", "ne"]),
                           "value": st.sampled_from(["new", "active", "churned"])}),
)
condition = st.one_of(attr, orders, events, tags, model)
rule = st.recursive(condition, lambda children: st.one_of(
    st.lists(children, min_size=1, max_size=3).map(lambda c: {"all": c}),
    st.lists(children, min_size=1, max_size=3).map(lambda c: {"any": c}),
    children.map(lambda c: {"not": c}),
), max_leaves=6)


def _world(specs):
    brands = {code: make_brand(code) for code in CODES["brand"]}
    stores = {"s1": make_store("s1", brand=brands["brand-a"]), "s2": make_store("s2", brand=brands["brand-a"]),
              "s3": make_store("s3", brand=brands["brand-b"])}
    channels = {f"c{i}": make_channel(f"c{i}", store=stores[f"s{i}"]) for i in (1, 2, 3)}
    guides = {code: make_staff(code) for code in CODES["guide"]}
    products = {"p1": make_product("p1", category="milk", role="main"),
                "p2": make_product("p2", category="toy", role="gift"), "p3": make_product("p3", category="milk")}
    group = TagGroup.objects.create(code="interest", name="兴趣")
    tag_objs = {code: Tag.objects.create(group=group, code=code, name=code) for code in TAGS}
    n = 0
    for i, spec in enumerate(specs):
        m = make_member(city=spec["city"], gender=spec["gender"], birthday=spec["birthday"],
                        joined_at=spec["joined_at"], store=stores.get(spec["store"]), guide=guides.get(spec["guide"]),
                        is_wecom_friend=spec["is_wecom_friend"], sms_consent=spec["sms_consent"])
        for code, expiry in spec["tags"]:
            MemberTag.objects.create(member=m, tag=tag_objs[code], source="manual", applied_at=NOW,
                                     expires_at=None if expiry is None else NOW + dt.timedelta(days=expiry))
        for o in spec["orders"]:
            n += 1
            refunded = (o["paid"] * o["refund"] / 100).quantize(Decimal("0.01"))
            order = Order.objects.create(channel=channels[o["channel"]], external_id=f"O{n}", member=m,
                                         is_counted=o["counted"], paid_amount=o["paid"], refunded_amount=refunded,
                                         ordered_at=o["at"], store=channels[o["channel"]].store)
            for line_no, sku in enumerate(o["skus"], start=1):
                OrderLine.objects.create(order=order, line_no=line_no, product=products[sku], sku=sku, quantity=1,
                                         amount=Decimal(1))
        for k, (kind, at, activity, day) in enumerate(spec["events"]):
            Event.objects.create(member=m, kind=kind, occurred_at=at, properties={"activity": activity, "day": day},
                                 idempotency_key=f"{i}-{k}")
        for brand, score, cls in spec["rfm"]:
            MemberRfm.objects.create(member=m, brand=brands[brand], recency_days=1, frequency=1, monetary=1,
                                     r_score=score, f_score=6 - score, m_score=3, rfm_class=cls, computed_at=NOW)
        if spec["stage"]:
            MemberLifecycle.objects.create(member=m, brand=brands["brand-a"], stage=spec["stage"], since=NOW,
                                           computed_at=NOW)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(specs=st.lists(member_spec, min_size=1, max_size=10), rules=st.lists(rule, min_size=5, max_size=15))
def test_compiled_rules_select_exactly_the_reference_members(specs, rules):
    sid = transaction.savepoint()
    try:
        _world(specs)
        reference = Reference(NOW)
        for raw in rules:
            node = parse_rule(raw)
            compiled = set(Member.objects.filter(compile_rule(node, now=NOW)).values_list("pk", flat=True))
            assert compiled == reference.select(node), raw
    finally:
        transaction.savepoint_rollback(sid)

