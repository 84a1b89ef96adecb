"""Member stats maintained by ingestion always equal a recomputation from the orders."""

from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.commerce.models import COUNTED_STATUSES, MemberStats, Order
from siyu.commerce.services import record_orders
from siyu.commerce.stats import refresh_all_member_stats
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
    "ordered_at": st.integers(1, 28).map(lambda d: f"2026-02-{d:02d} 10:00:00"),
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
        transaction.set_rollback(True)
