"""Member stats and the sales rollups maintained by ingestion always equal a recomputation from
the orders."""

from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.commerce.models import COUNTED_STATUSES, DailySales, MemberMonth, MemberStats, Order
from siyu.commerce.rollups import rebuild_rollups
from siyu.commerce.services import record_orders
from siyu.commerce.stats import refresh_all_member_stats
from siyu.core.time import business_date
from siyu.members.merge import merge_members
from siyu.members.models import Member, MemberStatus
from siyu.members.services import upsert_members
from tests.factories import make_channel

NICKS = [f"tb_{i}" for i in range(5)]
amounts = st.decimals(min_value=0, max_value=500, places=2)

order = st.fixed_dictionaries({
    "external_id": st.sampled_from([f"O{i}" for i in range(8)]),
    "channel": st.sampled_from(["tmall", "jd"]),
    "buyer": st.sampled_from(NICKS).map(lambda n: f"nick:{n}"),
    "status": st.sampled_from(["pending", "paid", "shipped", "completed", "closed"]),
    "paid_amount": amounts,
    "item_count": st.integers(0, 5),
    # business-day and month boundaries (Asia/Shanghai wall time; 08:00 is midnight UTC)
    "ordered_at": st.tuples(st.sampled_from(["2026-01-31", "2026-02-01", "2026-02-14", "2026-03-01"]),
                            st.sampled_from(["00:00:00", "07:59:59", "08:00:00", "23:59:59"])).map(" ".join),
    "refund": st.one_of(st.none(), st.integers(1, 100)),
})

step = st.one_of(
    st.tuples(st.just("orders"), st.lists(order, min_size=1, max_size=6)),
    st.tuples(st.just("member"), st.lists(st.sampled_from(NICKS), min_size=1, max_size=2, unique=True)),
    st.tuples(st.just("merge"), st.tuples(st.integers(0, 4), st.integers(0, 4))),
)


def _as_row(spec: dict) -> dict:
    row = {k: v for k, v in spec.items() if k != "refund"}
    row["paid_amount"] = str(spec["paid_amount"])
    if spec["refund"] is not None:
        refund = (spec["paid_amount"] * spec["refund"] / 100).quantize(Decimal("0.01"))
        if refund > 0:
            row["refunds"] = [{"external_id": "R1", "amount": str(refund)}]
    return row


def _stats_snapshot() -> dict:
    return {s.member_id: (s.order_count, s.item_count, s.total_paid, s.total_refunded,
                          s.first_order_at, s.last_order_at)
            for s in MemberStats.objects.all()}


def _reference_from_orders() -> dict:
    """The same aggregates computed in Python straight from the order rows."""
    ref = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0), None, None])
    for o in Order.objects.filter(member__isnull=False):
        r = ref[o.member_id]
        if o.status in COUNTED_STATUSES:
            r[0] += 1
            r[1] += o.item_count
            r[2] += o.paid_amount - o.refunded_amount
            r[3] += o.refunded_amount
            r[4] = min(filter(None, [r[4], o.ordered_at]))
            r[5] = max(filter(None, [r[5], o.ordered_at]))
    return {m: tuple(v) for m, v in ref.items() if v[0]}


def _rollups_snapshot() -> tuple[dict, dict]:
    daily = {(r.day, r.channel_id, r.store_key): (r.orders, r.member_orders, r.amount, r.member_amount, r.items,
                                                   r.member_items) for r in DailySales.objects.all()}
    # a row every order has left holds zeros only, and counts as no row
    assert all(not any(v) for v in daily.values() if not v[0])
    months = {(r.member_id, r.month): (r.orders, r.amount) for r in MemberMonth.objects.all()}
    return {k: v for k, v in daily.items() if v[0]}, months


def _rollups_from_orders() -> tuple[dict, dict]:
    """Daily sales and member months computed in Python from the order rows."""
    daily = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0), 0, 0])
    months = defaultdict(lambda: [0, Decimal(0)])
    for o in Order.objects.filter(is_counted=True):
        day, net, member = business_date(o.ordered_at), o.paid_amount - o.refunded_amount, o.member_id is not None
        r = daily[(day, o.channel_id, o.store_id or 0)]
        r[0] += 1
        r[2] += net
        r[4] += o.item_count
        if member:
            r[1] += 1
            r[3] += net
            r[5] += o.item_count
            m = months[(o.member_id, day.replace(day=1))]
            m[0] += 1
            m[1] += net
    return {k: tuple(v) for k, v in daily.items()}, {k: tuple(v) for k, v in months.items()}


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=8))
def test_maintained_stats_equal_a_recomputation(steps):
    with transaction.atomic():
        make_channel("tmall", kind="marketplace")
        make_channel("jd", kind="marketplace")
        for kind, payload in steps:
            if kind == "orders":
                record_orders(rows=[_as_row(o) for o in payload], source="prop")
            elif kind == "member":
                upsert_members(rows=[{"identities": [f"nick:{n}" for n in payload]}], source="prop")
            else:
                live = list(Member.objects.filter(status=MemberStatus.ACTIVE).order_by("pk"))
                a, b = payload
                if len(live) > max(a, b) and a != b:
                    merge_members(survivor_id=live[a].pk, merged_id=live[b].pk, actor="prop")

        maintained = {m: v for m, v in _stats_snapshot().items() if v[0]}
        assert maintained == _reference_from_orders()
        before = _stats_snapshot()
        refresh_all_member_stats()
        after = _stats_snapshot()
        assert {m: v for m, v in after.items() if m in before} == before

        assert _rollups_snapshot() == _rollups_from_orders()
        rebuild_rollups()
        assert _rollups_snapshot() == _rollups_from_orders()
        transaction.set_rollback(True)
