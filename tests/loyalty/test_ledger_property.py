"""Random histories of orders, refunds, check-ins, spends and expiries keep the ledger's invariants:
balance = Σ ledger ≥ 0, a reversal larger than the balance leaves a recorded debt, replaying any
step changes nothing, and the tier is the tier rule applied to the history."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from siyu.commerce.models import Order
from siyu.commerce.services import record_orders
from siyu.core.errors import Conflict
from siyu.events.services import record_events
from siyu.loyalty.ledger import expire_points, spend_points, verify_ledger
from siyu.loyalty.models import EntryKind, ExpiryPolicy, PointsAccount, PointsEntry, Tier
from siyu.loyalty.selectors import current_tier
from siyu.loyalty.tiers import evaluate_tiers
from tests.factories import make_channel, make_event_rule, make_member, make_program, make_store, make_tier

MEMBERS = 2
#: (order, member, yuan, day) · (refund, order, percent) · (amend, order, percent: the order's last
#: refund changes its amount) · (check_in, member, day) · (spend, member, points) · (expire, day) ·
#: (replay, earlier step); days count from 60 days ago.
step = st.one_of(
    st.tuples(st.just("order"), st.integers(0, MEMBERS - 1), st.integers(1, 300), st.integers(0, 59)),
    st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 100)),
    st.tuples(st.just("amend"), st.integers(0, 20), st.integers(1, 100)),
    st.tuples(st.just("check_in"), st.integers(0, MEMBERS - 1), st.integers(0, 59)),
    st.tuples(st.just("spend"), st.integers(0, MEMBERS - 1), st.integers(1, 60)),
    st.tuples(st.just("expire"), st.integers(0, 120)),
    st.tuples(st.just("replay"), st.integers(0, 30)),
)


def _state() -> tuple:
    return (list(PointsEntry.objects.order_by("pk").values_list("pk", "amount", "debt_delta")),
            list(PointsAccount.objects.order_by("pk").values_list("pk", "balance", "debt")))


def _reference_rank(program, tiers: list[Tier], member, now) -> int:
    """The tier rule applied to the history: orders and ledger inside the window, in Python."""
    since = now - dt.timedelta(days=program.tier_window_days)
    paid, orders = Decimal(0), 0
    for o in Order.objects.filter(member=member, is_counted=True):
        if since <= o.ordered_at <= now:
            paid += o.paid_amount - o.refunded_amount
            orders += o.refunded_amount < o.paid_amount
    points = sum(e.amount - e.debt_delta for e in PointsEntry.objects.filter(
        account__member=member, kind__in=[EntryKind.EARN, EntryKind.REVERSE]) if since <= e.occurred_at <= now)
    best = -1
    for tier in tiers:
        met = [v for v in (tier.min_paid_amount is not None and paid >= tier.min_paid_amount,
                           tier.min_order_count is not None and orders >= tier.min_order_count,
                           tier.min_points_earned is not None and points >= tier.min_points_earned)]
        has = [tier.min_paid_amount, tier.min_order_count, tier.min_points_earned]
        if all(h is None for h in has) or any(m for m, h in zip(met, has, strict=True) if h is not None):
            best = tier.rank
    return best


def _check_invariants(program) -> None:
    assert verify_ledger()[1] == []
    for account in PointsAccount.objects.all():
        assert account.balance >= 0 and account.debt >= 0
        running = 0
        for entry in account.entries.order_by("pk"):
            running += entry.amount
            assert running >= 0
            if entry.kind == EntryKind.REVERSE and entry.debt_delta > 0:
                assert running == 0  # took all there was; the rest is recorded as debt
    earned = dict(PointsEntry.objects.filter(kind=EntryKind.EARN, source_type="order").values_list(
        "source_id", "amount"))
    reversed_by = defaultdict(int)  # (source type, source id) -> points taken back, credits back counted off
    for source_type, source_id, amount, debt in PointsEntry.objects.filter(kind=EntryKind.REVERSE).values_list(
            "source_type", "source_id", "amount", "debt_delta"):
        reversed_by[(source_type, source_id)] += debt - amount
    for order in Order.objects.prefetch_related("refunds"):
        taken = reversed_by[("order", str(order.pk))] + sum(reversed_by[("refund", str(r.pk))]
                                                            for r in order.refunds.all())
        points = earned.get(str(order.pk), 0)
        # The reversals follow the refunded amount exactly, whatever amendments came in between.
        refunded = sum((r.amount for r in order.refunds.all()), Decimal(0))
        share = points if refunded >= order.paid_amount else int(
            (Decimal(points) * refunded / order.paid_amount).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert taken == share


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=3, max_size=15))
@example(steps=[('check_in', 0, 2), ('amend', 9, 29), ('order', 1, 227, 3), ('spend', 1, 40), ('amend', 9, 95),
                ('expire', 98), ('refund', 16, 60), ('amend', 18, 100), ('expire', 117), ('order', 1, 207, 2),
                ('amend', 11, 52), ('refund', 16, 60), ('order', 0, 264, 8), ('check_in', 1, 50), ('spend', 0, 16)])
def test_the_ledger_keeps_its_invariants_through_any_history(steps):
    with transaction.atomic():
        channel = make_channel("pos-sh-01", store=make_store("sh-01"))
        program = make_program(expiry_policy=ExpiryPolicy.DAYS, expiry_n=30)
        tiers = [make_tier(program, "normal", 0),
                 make_tier(program, "silver", 1, min_paid_amount=Decimal("300"), min_order_count=3, retention_days=0),
                 make_tier(program, "gold", 2, min_points_earned=800, retention_days=0)]
        make_event_rule(program, "check-in", "check_in", 5, max_per_day=1)
        members = [make_member(store=channel.store) for _ in range(MEMBERS)]
        base = timezone.now() - dt.timedelta(days=60)
        orders: list[dict] = []
        done: list = []  # replayable calls

        for n, (kind, *args) in enumerate(steps):
            call = None
            if kind == "order":
                who, paid, day = args
                row = {"channel": channel.code, "external_id": f"O{n}", "member_id": members[who].pk,
                       "paid_amount": f"{paid}.00", "ordered_at": (base + dt.timedelta(days=day)).isoformat(),
                       "refunds": []}
                orders.append(row)
                call = (record_orders, {"rows": [dict(row, refunds=list(row["refunds"]))], "source": "prop"})
            elif kind == "refund" and orders:
                row = orders[args[0] % len(orders)]
                left = Decimal(row["paid_amount"]) - sum(Decimal(r["amount"]) for r in row["refunds"])
                amount = min(left, (Decimal(row["paid_amount"]) * args[1] / 100).quantize(Decimal("0.01")))
                if amount > 0:
                    row["refunds"].append({"external_id": f"R{n}", "amount": str(amount)})
                    call = (record_orders, {"rows": [dict(row, refunds=list(row["refunds"]))], "source": "prop"})
            elif kind == "amend" and any(row["refunds"] for row in orders):
                row = [row for row in orders if row["refunds"]][args[0] % sum(1 for row in orders if row["refunds"])]
                others = sum(Decimal(r["amount"]) for r in row["refunds"][:-1])
                amount = min(Decimal(row["paid_amount"]) - others,
                             (Decimal(row["paid_amount"]) * args[1] / 100).quantize(Decimal("0.01")))
                if amount > 0:
                    row["refunds"][-1] = {**row["refunds"][-1], "amount": str(amount)}
                    call = (record_orders, {"rows": [dict(row, refunds=list(row["refunds"]))], "source": "prop"})
            elif kind == "check_in":
                who, day = args
                when = base + dt.timedelta(days=day, hours=n % 5)
                call = (record_events, {"rows": [{"member_id": members[who].pk, "kind": "check_in",
                                                  "occurred_at": when.isoformat(), "idempotency_key": f"E{n}"}],
                                        "source": "prop"})
            elif kind == "spend":
                who, amount = args
                call = (spend_points, {"member": members[who], "program": program, "amount": amount,
                                       "reason": "兑换", "source": f"redemption:{n}", "idempotency_key": f"S{n}"})
            elif kind == "expire":
                call = (expire_points, {"now": base + dt.timedelta(days=args[0])})
            elif kind == "replay" and done:
                function, kwargs = done[args[0] % len(done)]
                if function is expire_points:  # time-based: a late lot may have fallen due since
                    function(**kwargs)
                if function is record_orders:  # the order as it stands now (an older row would amend it back)
                    row = next(r for r in orders if r["external_id"] == kwargs["rows"][0]["external_id"])
                    kwargs = {**kwargs, "rows": [dict(row, refunds=list(row["refunds"]))]}
                before = _state()
                function(**kwargs)
                assert _state() == before
            if call is not None:
                before = _state()
                try:
                    call[0](**call[1])
                except Conflict as error:
                    assert error.code == "insufficient_points"
                    assert _state() == before
                else:
                    done.append(call)
            _check_invariants(program)
            now = timezone.now()
            for member in members:
                tier = current_tier(member.pk, program)
                assert tier.rank >= _reference_rank(program, tiers, member, now)  # upgraded at once

        if PointsEntry.objects.filter(kind="reverse", amount__gt=0).exists():
            event("gave points back for a refund amended downwards")
        for kind in ("reverse", "settle", "expire", "redeem"):
            if PointsEntry.objects.filter(kind=kind).exists():
                event(f"wrote a {kind} entry")
        if PointsEntry.objects.filter(debt_delta__gt=0).exists():
            event("recorded a debt")
        now = timezone.now()
        evaluate_tiers(program=program, now=now)
        for member in members:
            assert current_tier(member.pk, program).rank == _reference_rank(program, tiers, member, now)
        transaction.set_rollback(True)
