"""Points earned in the ingestion transaction: purchases, refunds, closed orders, behaviour events."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from siyu.commerce.models import Order, Refund
from siyu.commerce.services import record_orders
from siyu.events.models import Event, EventKind
from siyu.events.services import record_events
from siyu.loyalty.earning import NewOrder, earn_for_events, earn_for_orders, reverse_for_refunds
from siyu.loyalty.ledger import spend_points, verify_ledger
from siyu.loyalty.models import (
    Benefit,
    BenefitCategory,
    BenefitKind,
    EntryKind,
    MemberDayKind,
    PointsEntry,
    PurchaseExclusion,
    Rounding,
)
from tests.factories import make_brand, make_channel, make_event_rule, make_member, make_product, make_store, make_tier
from tests.loyalty.conftest import NOW, at, balance, buy, event, order_row

pytestmark = pytest.mark.django_db


# Purchases ---------------------------------------------------------------------------------------

def test_a_purchase_earns_points_per_yuan_rounded_down(program, member):
    buy(member, "128.90")

    assert balance(member, program) == (128, 0)
    entry = PointsEntry.objects.get()
    key = f"order:{Order.objects.get().pk}"
    assert (entry.kind, entry.amount, entry.idempotency_key, entry.source_type) == ("earn", 128, key, "order")


def test_rate_and_rounding_are_the_programs(program, member):
    program.points_per_yuan, program.rounding = Decimal("1.50"), Rounding.HALF_UP
    program.save()

    buy(member, "9.99")  # 14.985 points

    assert balance(member, program) == (15, 0)


def test_resending_a_batch_earns_nothing_more(program, member):
    row = buy(member, "100.00")

    again = record_orders(rows=[row], source="test")
    earn_for_orders(order_ids=list(Order.objects.values_list("pk", flat=True)))

    assert again.duplicates == 1
    assert balance(member, program) == (100, 0)
    assert PointsEntry.objects.count() == 1


def test_new_orders_earn_without_looking_the_ledger_up_and_earn_once(shop, program, member):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def order(external_id):
        return Order.objects.create(channel=shop, store=shop.store, external_id=external_id, member=member,
                                    paid_amount=10, ordered_at=NOW)

    earn_for_orders(new_orders=[NewOrder.of(order("N0"))])  # the account exists from here on
    first, fresh, old_and_new = order("N1"), order("N2"), order("N3")
    with CaptureQueriesContext(connection) as as_known:
        earn_for_orders(order_ids=[first.pk])
    with CaptureQueriesContext(connection) as as_new:
        earn_for_orders(new_orders=[NewOrder.of(fresh)])
    earn_for_orders(order_ids=[old_and_new.pk], new_orders=[NewOrder.of(old_and_new)])  # in both: looked up
    earn_for_orders(order_ids=[first.pk, fresh.pk, old_and_new.pk])  # resent: nothing more

    # The ledger lookup is spared; the order is not read back, its store's brand is read instead.
    assert len(as_new.captured_queries) == len(as_known.captured_queries) - 1
    assert balance(member, program) == (40, 0)
    assert PointsEntry.objects.count() == 4
    assert verify_ledger(program=program) == (1, [])


def test_an_order_paid_later_earns_when_it_becomes_paid(program, member):
    row = buy(member, "50.00", status="pending")
    assert balance(member, program) == (0, 0)

    record_orders(rows=[{**row, "status": "paid"}], source="test")

    assert balance(member, program) == (50, 0)


def test_a_buyer_who_is_not_a_member_earns_nothing(program, db):
    result = record_orders(rows=[{"channel": "pos-sh-01", "external_id": "X1", "buyer": "nick:路人",
                                  "paid_amount": "80.00", "ordered_at": NOW.isoformat()}], source="test")

    assert result.created == 1
    assert PointsEntry.objects.count() == 0


def test_orders_of_a_brand_without_a_program_earn_nothing(program, member):
    other = make_channel("pos-b-01", store=make_store("b-01", brand=make_brand("brand-b")))

    buy(member, "80.00", channel=other.code)

    assert PointsEntry.objects.count() == 0


def test_a_group_wide_program_earns_for_every_brand_of_the_group(shop, member):
    from tests.factories import make_program

    group_program = make_program("group", group_wide=True)
    other = make_channel("pos-b-01", store=make_store("b-01", brand=make_brand("brand-b")))

    buy(member, "80.00")
    buy(member, "20.00", channel=other.code)

    assert balance(member, group_program) == (100, 0)


def test_orders_before_the_program_starts_earn_nothing(program, member):
    program.earn_from = NOW
    program.save()

    buy(member, "80.00", when=at(1))
    buy(member, "20.00", when=at(0))

    assert balance(member, program) == (20, 0)


def test_member_day_multiplies_purchase_points_on_that_business_day(program, member):
    program.member_day_kind, program.member_day_days = MemberDayKind.WEEKLY, [3]  # Wednesdays
    program.member_day_multiplier = Decimal("2")
    program.save()
    wednesday_night = dt.datetime(2026, 7, 1, 15, 59, tzinfo=dt.UTC)  # 23:59 Wednesday in Shanghai
    thursday_early = dt.datetime(2026, 7, 1, 16, 0, tzinfo=dt.UTC)  # 00:00 Thursday in Shanghai

    buy(member, "100.00", when=wednesday_night)
    buy(member, "100.00", when=thursday_early)

    assert balance(member, program) == (300, 0)


def test_a_monthly_member_day_is_a_day_of_the_month(program, member):
    program.member_day_kind, program.member_day_days = MemberDayKind.MONTHLY, [8]
    program.member_day_multiplier = Decimal("3")
    program.save()

    buy(member, "10.00", when=dt.datetime(2026, 8, 8, 2, 0, tzinfo=dt.UTC))
    buy(member, "10.00", when=dt.datetime(2026, 8, 9, 2, 0, tzinfo=dt.UTC))

    assert balance(member, program) == (40, 0)


def test_the_tier_multiplier_and_the_member_day_multiply(program, member):
    gold = make_tier(program, "gold", 1, min_paid_amount=Decimal("1000"))
    Benefit.objects.create(program=program, tier=gold, category=BenefitCategory.WELFARE,
                           kind=BenefitKind.POINTS_MULTIPLIER, name="1.5 倍积分", multiplier=Decimal("1.5"))
    program.member_day_kind, program.member_day_days = MemberDayKind.MONTHLY, [8]
    program.member_day_multiplier = Decimal("2")
    program.save()
    from siyu.loyalty.models import MemberTier

    MemberTier.objects.create(program=program, member=member, tier=gold, achieved_at=NOW, retained_until=NOW)

    buy(member, "100.00", when=dt.datetime(2026, 8, 8, 2, 0, tzinfo=dt.UTC))

    assert balance(member, program) == (300, 0)


def test_excluded_products_and_categories_take_their_share_out(program, member):
    tobacco = make_product("SKU-T", category="烟草")
    gift_card = make_product("SKU-G")
    make_product("SKU-OK")
    PurchaseExclusion.objects.create(program=program, category="烟草")
    PurchaseExclusion.objects.create(program=program, product=gift_card)

    # lines total 200 but 10 % was discounted: 180 paid, the eligible line is 50/200 of it
    buy(member, "180.00", lines=[{"sku": "SKU-T", "amount": "100.00"}, {"sku": "SKU-G", "amount": "50.00"},
                                 {"sku": "SKU-OK", "amount": "50.00"}])
    assert tobacco.category == "烟草"

    assert balance(member, program) == (45, 0)


def test_a_batch_reads_the_products_of_excluded_categories_once(program, member):
    make_product("SKU-T", category="烟草")
    PurchaseExclusion.objects.create(program=program, category="烟草")
    lines = [{"sku": "SKU-T", "amount": "40.00"}, {"sku": "SKU-OK", "amount": "60.00"}]
    rows = [order_row(member, "100.00", lines=lines) for _ in range(5)]

    with CaptureQueriesContext(connection) as captured:
        assert not record_orders(rows=rows, source="test").rejected

    by_category = f"{connection.ops.quote_name('category')} IN"
    assert sum(by_category in q["sql"] for q in captured.captured_queries) == 1
    assert balance(member, program) == (5 * 60, 0)


def test_exclusions_take_the_same_share_of_an_order_read_back_from_the_database(program, member):
    make_product("SKU-T", category="烟草")
    gift_card = make_product("SKU-G")
    PurchaseExclusion.objects.create(program=program, category="烟草")
    PurchaseExclusion.objects.create(program=program, product=gift_card)
    program.is_active = False
    program.save()
    row = buy(member, "180.00", lines=[{"sku": "SKU-T", "amount": "100.00"}, {"sku": "SKU-G", "amount": "50.00"},
                                       {"sku": "SKU-OK", "amount": "50.00"}])  # SKU-OK unknown: no product
    program.is_active = True
    program.save()

    earn_for_orders(order_ids=[Order.objects.get(external_id=row["external_id"]).pk])

    assert balance(member, program) == (45, 0)


# Refunds and closed orders ------------------------------------------------------------------------------

def test_a_partial_refund_takes_back_its_share_of_the_points(program, member):
    row = buy(member, "200.00")

    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "50.00"}]}], source="test")

    assert balance(member, program) == (150, 0)
    reversal = PointsEntry.objects.get(kind=EntryKind.REVERSE)
    assert (reversal.amount, reversal.debt_delta, reversal.source_type) == (-50, 0, "refund")


def test_refunds_together_take_back_exactly_what_the_order_earned(program, member):
    program.points_per_yuan = Decimal("1.00")
    program.save()
    row = buy(member, "100.00")  # 100 points
    refunds = [{"external_id": f"R{i}", "amount": "33.33"} for i in range(3)] + [{"external_id": "R3",
                                                                                  "amount": "0.01"}]

    record_orders(rows=[{**row, "refunds": refunds}], source="test")

    # cumulative shares 33.33 → 33, 66.66 → 67, 99.99 → 100, 100 → 100 points
    assert balance(member, program) == (0, 0)
    assert list(PointsEntry.objects.filter(kind="reverse").order_by("pk").values_list("amount", flat=True)) == [
        -33, -34, -33]


def test_an_order_arriving_with_its_refund_earns_and_reverses_in_one_batch(program, member):
    buy(member, "100.00", refunds=[{"external_id": "R1", "amount": "40.00"}])

    assert balance(member, program) == (60, 0)


def test_reversing_points_already_spent_records_the_shortfall_as_debt(program, member):
    row = buy(member, "100.00")
    spend_points(member=member, program=program, amount=80, reason="兑换", source="redemption:1",
                 idempotency_key="redeem-1")

    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "100.00"}]}], source="test")

    assert balance(member, program) == (0, 80)
    reversal = PointsEntry.objects.get(kind=EntryKind.REVERSE)
    assert (reversal.amount, reversal.debt_delta) == (-20, 80)


def test_a_debt_is_settled_by_the_next_earnings_first(program, member):
    row = buy(member, "100.00")
    spend_points(member=member, program=program, amount=100, reason="兑换", source="redemption:1",
                 idempotency_key="redeem-1")
    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "100.00"}]}], source="test")
    assert balance(member, program) == (0, 100)

    buy(member, "60.00")
    assert balance(member, program) == (0, 40)
    buy(member, "70.00")

    assert balance(member, program) == (30, 0)
    settled = list(PointsEntry.objects.filter(kind=EntryKind.SETTLE).order_by("pk").values_list("amount", "debt_delta"))
    assert settled == [(-60, -60), (-40, -40)]


def test_a_refund_takes_back_the_orders_own_points_before_older_ones(program, member):
    program.expiry_policy = "days"
    program.expiry_n = 30
    program.save()
    buy(member, "10.00", when=at(10))  # expires first
    row = buy(member, "50.00", when=at(1))

    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "50.00"}]}], source="test")

    reversal = PointsEntry.objects.get(kind=EntryKind.REVERSE)
    assert [(a.lot.idempotency_key, a.amount) for a in reversal.allocations.all()] == [
        (f"order:{Order.objects.get(external_id=row['external_id']).pk}", 50)]
    assert balance(member, program) == (10, 0)


def test_a_paid_order_later_closed_gives_its_points_back(program, member):
    row = buy(member, "100.00", refunds=[{"external_id": "R1", "amount": "30.00"}])

    record_orders(rows=[{**row, "status": "closed"}], source="test")
    record_orders(rows=[{**row, "status": "closed"}], source="test")

    assert balance(member, program) == (0, 0)
    assert PointsEntry.objects.filter(kind=EntryKind.REVERSE).count() == 2


def test_reversing_the_same_refunds_again_changes_nothing(program, member):
    row = buy(member, "100.00", refunds=[{"external_id": "R1", "amount": "30.00"}])
    order = Order.objects.get(external_id=row["external_id"])

    again = reverse_for_refunds(refund_ids=list(order.refunds.values_list("pk", flat=True)))

    assert (again.entries, again.duplicates) == (0, 0)
    assert balance(member, program) == (70, 0)


def _refund_keys(order_external_id: str) -> list[tuple[str, int, int]]:
    """The reversal entries as ``(key, amount, debt)``, the refund's id in the key written ``R``
    (``refund:<id>:2`` → ``refund:R:2``: only the id's own part, which may equal the ``2``)."""
    refund = Refund.objects.get(order__external_id=order_external_id)
    return [(":".join("R" if n == 1 and part == str(refund.pk) else part for n, part in enumerate(key.split(":"))),
             amount, debt) for key, amount, debt in PointsEntry.objects.filter(
        kind=EntryKind.REVERSE).order_by("pk").values_list("idempotency_key", "amount", "debt_delta")]


def test_a_refund_amended_upwards_takes_back_the_difference(program, member):
    row = buy(member, "200.00")
    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "50.00"}]}], source="test")

    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "80.00"}]}], source="test")

    assert balance(member, program) == (120, 0)
    assert _refund_keys(row["external_id"]) == [("refund:R", -50, 0), ("refund:R:2", -30, 0)]


def test_a_refund_amended_downwards_gives_the_difference_back(program, member):
    row = buy(member, "200.00")
    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "80.00"}]}], source="test")

    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "20.00"}]}], source="test")

    assert balance(member, program) == (180, 0)
    assert _refund_keys(row["external_id"]) == [("refund:R", -80, 0), ("refund:R:2", 60, 0)]
    assert verify_ledger() == (1, [])


def test_each_amendment_follows_the_refunded_amount_and_resending_changes_nothing(program, member):
    row = buy(member, "100.00")
    for amount in ("10.00", "70.00", "40.00", "40.00", "100.00", "100.00"):
        record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": amount}]}], source="test")
        earned_back = 100 - round(Decimal(amount))
        assert balance(member, program) == (earned_back, 0)

    assert [amount for _key, amount, _debt in _refund_keys(row["external_id"])] == [-10, -60, 30, -60]
    assert reverse_for_refunds(order_ids=[Order.objects.get().pk]).entries == 0
    assert verify_ledger() == (1, [])


def test_an_amended_refund_of_points_already_spent_settles_the_debt_it_left(program, member):
    row = buy(member, "100.00")
    spend_points(member=member, program=program, amount=90, reason="兑换", source="redemption:1",
                 idempotency_key="redeem-1")
    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "50.00"}]}], source="test")
    assert balance(member, program) == (0, 40)

    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "10.00"}]}], source="test")

    # 100 earned − 10 refunded − 90 spent: nothing left, nothing owed.
    assert balance(member, program) == (0, 0)
    assert verify_ledger() == (1, [])


# Cost ----------------------------------------------------------------------------------------------

def test_without_a_program_earning_costs_one_query(shop, member, django_assert_num_queries):
    order = Order.objects.create(channel=shop, external_id="Q1", member=member, paid_amount=10, ordered_at=NOW)
    earn_for_orders(order_ids=[order.pk])  # reads the configuration once; later batches only check its stamp
    with django_assert_num_queries(1):
        earn_for_orders(order_ids=[order.pk])
    with django_assert_num_queries(1):
        earn_for_events(event_keys=["k1"])


def test_earning_takes_the_same_number_of_queries_for_1_or_50_orders(shop, program,
                                                                     django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_tier(program, "gold", 1, min_paid_amount=Decimal("1000"))
    members = [make_member() for _ in range(50)]

    def orders(prefix, buyers):
        return [Order.objects.create(channel=shop, store=shop.store, external_id=f"{prefix}{i}", member=m,
                                     paid_amount=10, ordered_at=NOW).pk for i, m in enumerate(buyers)]

    first, rest = orders("A", members[:1]), orders("B", members)
    with CaptureQueriesContext(connection) as single:
        earn_for_orders(order_ids=first)
    with django_assert_max_num_queries(len(single.captured_queries)):
        earn_for_orders(order_ids=rest)

    assert PointsEntry.objects.count() == 51


# Events --------------------------------------------------------------------------------------------

def test_a_daily_check_in_earns_once_per_business_day(program, member):
    make_event_rule(program, "check-in", EventKind.CHECK_IN, 5, max_per_day=1)
    late = dt.datetime(2026, 6, 30, 15, 30, tzinfo=dt.UTC)  # 23:30 in Shanghai
    event(member, EventKind.CHECK_IN, at(0))
    event(member, EventKind.CHECK_IN, late)
    event(member, EventKind.CHECK_IN, late + dt.timedelta(minutes=40))  # the next day in Shanghai

    assert balance(member, program) == (10, 0)


def test_following_earns_once_ever(program, member):
    make_event_rule(program, "follow", EventKind.FOLLOW, 20, once_per_member=True)

    event(member, EventKind.FOLLOW, at(3))
    event(member, EventKind.UNFOLLOW, at(2))
    event(member, EventKind.FOLLOW, at(1))

    assert balance(member, program) == (20, 0)


def test_shares_earn_up_to_the_rules_daily_count(program, member):
    make_event_rule(program, "share", EventKind.SHARE, 2, max_per_day=3)
    rows = [{"member_id": member.pk, "kind": "share", "occurred_at": (NOW + dt.timedelta(minutes=i)).isoformat(),
             "idempotency_key": f"S{i}"} for i in range(5)]

    record_events(rows=rows[:2], source="test")
    record_events(rows=rows, source="test")

    assert balance(member, program) == (6, 0)


def test_profile_completion_is_a_form_with_matching_properties(program, member):
    make_event_rule(program, "profile", EventKind.FORM_SUBMIT, 30, once_per_member=True,
                    match_properties={"form": "profile"})

    event(member, EventKind.FORM_SUBMIT, at(1), properties={"form": "survey"})
    event(member, EventKind.FORM_SUBMIT, at(0), properties={"form": "profile"})

    assert balance(member, program) == (30, 0)


def test_event_points_stop_at_the_daily_and_monthly_caps(program, member):
    program.event_daily_cap, program.event_monthly_cap = 25, 40
    program.save()
    make_event_rule(program, "share", EventKind.SHARE, 10)
    day_one = dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.UTC)
    rows = [{"member_id": member.pk, "kind": "share", "occurred_at": (day_one + dt.timedelta(minutes=i)).isoformat(),
             "idempotency_key": f"D1-{i}"} for i in range(4)]
    rows += [{"member_id": member.pk, "kind": "share",
              "occurred_at": (day_one + dt.timedelta(days=1, minutes=i)).isoformat(),
              "idempotency_key": f"D2-{i}"} for i in range(4)]

    record_events(rows=rows, source="test")

    assert balance(member, program) == (40, 0)  # 25 on the first day (10 + 10 + 5), 15 left for the month
    amounts = list(PointsEntry.objects.order_by("occurred_at").values_list("business_date", "amount"))
    assert amounts == [(dt.date(2026, 7, 1), 10), (dt.date(2026, 7, 1), 10), (dt.date(2026, 7, 1), 5),
                       (dt.date(2026, 7, 2), 10), (dt.date(2026, 7, 2), 5)]


def test_events_earn_in_the_program_of_their_store_else_of_the_members_store(program):
    make_event_rule(program, "check-in", EventKind.CHECK_IN, 5, max_per_day=1)
    brand_b = make_brand("brand-b")
    make_store("b-01", brand=brand_b)
    stranger = make_member(store=make_store("b-02", brand=brand_b))
    regular = make_member(store=make_store("sh-01"))

    nowhere = make_member()

    event(stranger, EventKind.CHECK_IN)
    event(regular, EventKind.CHECK_IN)
    event(stranger, EventKind.CHECK_IN, at(1), store="sh-01")
    event(nowhere, EventKind.CHECK_IN)

    assert balance(regular, program) == (5, 0)
    assert balance(stranger, program) == (5, 0)
    assert balance(nowhere, program) == (0, 0)  # no store anywhere and no group-wide program


def test_earning_events_again_changes_nothing(program, member):
    make_event_rule(program, "share", EventKind.SHARE, 3)
    event(member, EventKind.SHARE)

    again = earn_for_events(event_ids=list(Event.objects.values_list("pk", flat=True)))

    assert (again.entries, balance(member, program)) == (0, (3, 0))


# In steps ---------------------------------------------------------------------------------------------

def test_a_batch_decides_points_entries_and_upgrades_with_no_query_and_writes_them_last(shop, program, member):
    """What ingestion does around its kept totals: ``start_earning`` reads and locks, ``work()``
    (here under ``alone``, which refuses any query) decides, ``finish()`` writes."""
    from siyu.core.db import alone
    from siyu.loyalty.earning import start_earning
    from siyu.loyalty.models import MemberTier

    make_tier(program, "silver", 1, min_paid_amount=Decimal("100"))
    buy(member, "60.00")  # an account, and a member's tier figures under silver
    order = Order.objects.create(channel=shop, store=shop.store, external_id="S1", member=member,
                                 paid_amount=Decimal("50.00"), ordered_at=NOW)

    earning = start_earning(new_orders=[NewOrder.of(order)], now=NOW)
    assert balance(member, program) == (60, 0)  # nothing written yet
    alone(earning.work)
    assert PointsEntry.objects.count() == 1
    result = earning.finish()

    assert (result.entries, result.points, result.upgrades) == (1, 50, 1)
    assert balance(member, program) == (110, 0)
    assert MemberTier.objects.get(member=member).tier.code == "silver"
    earning.finish()  # finished: a second call writes nothing
    assert PointsEntry.objects.count() == 2
    assert verify_ledger(program=program) == (1, [])


def test_only_credits_without_debt_are_staged(program, member):
    from siyu.loyalty.ledger import Posting, lock_accounts, post

    buy(member, "100.00")
    spend_points(member=member, program=program, amount=30, reason="兑换", source="redemption:1",
                 idempotency_key="redeem-1")
    account = lock_accounts([(program.pk, member.pk)])[(program.pk, member.pk)]
    debit = Posting(account.pk, EntryKind.ADJUST, -10, "adjust:1", "调整", "operator", "ops", NOW, NOW.date())

    with pytest.raises(ValueError, match="stages"):
        post([debit], {account.pk: account}, now=NOW, existing=set(), defer=True, stage=True)
    assert balance(member, program) == (70, 0)


def test_finishing_without_the_work_step_still_earns(shop, program, member):
    from siyu.loyalty.earning import start_earning

    order = Order.objects.create(channel=shop, store=shop.store, external_id="W1", member=member,
                                 paid_amount=Decimal("80.00"), ordered_at=NOW)

    result = start_earning(new_orders=[NewOrder.of(order)], now=NOW).finish()

    assert (result.entries, result.points) == (1, 80)
    assert balance(member, program) == (80, 0)
