"""Spending, adjusting and expiring points; the ledger explains every balance; the check command."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import translation

from siyu.core.errors import Conflict, ValidationError
from siyu.core.models import AuditEntry
from siyu.loyalty.ledger import adjust_points, expire_points, spend_points, verify_ledger
from siyu.loyalty.models import EntryKind, ExpiryPolicy, PointsAccount, PointsAllocation, PointsEntry
from siyu.loyalty.selectors import expiring_points
from siyu.members.merge import merge_members
from tests.factories import make_brand, make_member, make_program
from tests.loyalty.conftest import NOW, balance, buy

pytestmark = pytest.mark.django_db


def spend(member, program, amount, key="s-1", **extra):
    return spend_points(member=member, program=program, amount=amount, reason="积分兑换", source=("redemption", key),
                        idempotency_key=key, **extra)


def lots(member, program) -> list[tuple[int, int]]:
    return list(PointsEntry.objects.filter(account__member=member, account__program=program, remaining__isnull=False)
                .order_by("occurred_at").values_list("amount", "remaining"))


# Spending --------------------------------------------------------------------------------------------

def test_spending_takes_the_lots_closest_to_expiry_first(program, member):
    program.expiry_policy, program.expiry_n = ExpiryPolicy.DAYS, 90
    program.save()
    buy(member, "30.00", when=NOW - dt.timedelta(days=60))  # expires first
    buy(member, "50.00", when=NOW - dt.timedelta(days=10))

    entry = spend(member, program, 40)

    assert balance(member, program) == (40, 0)
    assert lots(member, program) == [(30, 0), (50, 40)]
    assert sorted(entry.allocations.values_list("amount", flat=True)) == [10, 30]
    assert (entry.kind, entry.amount, entry.source_type, entry.source_id) == ("redeem", -40, "redemption", "s-1")


def test_lots_that_never_expire_are_spent_last(program, member):
    buy(member, "30.00", when=NOW - dt.timedelta(days=60))  # no expiry
    program.expiry_policy, program.expiry_n = ExpiryPolicy.DAYS, 90
    program.save()
    buy(member, "50.00", when=NOW - dt.timedelta(days=10))

    spend(member, program, 60)

    assert lots(member, program) == [(30, 20), (50, 0)]


def test_spending_more_than_the_balance_fails_and_changes_nothing(program, member):
    buy(member, "30.00")

    with pytest.raises(Conflict) as error:
        spend(member, program, 31)

    assert error.value.code == "insufficient_points"
    assert balance(member, program) == (30, 0)
    assert PointsEntry.objects.filter(kind=EntryKind.REDEEM).count() == 0


def test_a_repeated_spend_returns_the_first_entry_and_spends_once(program, member):
    buy(member, "30.00")

    first = spend(member, program, 20)
    second = spend(member, program, 20)

    assert first.pk == second.pk
    assert balance(member, program) == (10, 0)


def test_an_idempotency_key_cannot_be_reused_for_another_amount(program, member):
    buy(member, "30.00")
    spend(member, program, 20)

    with pytest.raises(Conflict) as error:
        spend(member, program, 5)

    assert error.value.code == "idempotency_key_reused"
    assert balance(member, program) == (10, 0)


@pytest.mark.parametrize("amount", [0, -5, 2.5, True])
def test_only_positive_whole_points_can_be_spent(program, member, amount):
    with pytest.raises(ValidationError) as error:
        spend(member, program, amount)
    assert error.value.code == "invalid_amount"


# Adjusting -------------------------------------------------------------------------------------------

def test_an_adjustment_is_audited_with_its_reason(program, member):
    entry = adjust_points(member=member, program=program, amount=50, reason="客诉补偿", actor="运营小李",
                          idempotency_key="adj-1")
    adjust_points(member=member, program=program, amount=50, reason="客诉补偿", actor="运营小李",
                  idempotency_key="adj-1")

    assert balance(member, program) == (50, 0)
    assert (entry.kind, entry.reason, entry.actor, entry.source_type) == ("adjust", "客诉补偿", "运营小李", "operator")
    audit = AuditEntry.objects.get(action="loyalty.adjust_points")
    assert (audit.actor, audit.data["amount"], audit.data["reason"]) == ("运营小李", 50, "客诉补偿")


def test_a_negative_adjustment_cannot_take_more_than_the_balance(program, member):
    buy(member, "10.00")

    with pytest.raises(Conflict):
        adjust_points(member=member, program=program, amount=-11, reason="纠错", actor="ops", idempotency_key="a")
    adjust_points(member=member, program=program, amount=-10, reason="纠错", actor="ops", idempotency_key="b")

    assert balance(member, program) == (0, 0)
    assert AuditEntry.objects.filter(action="loyalty.adjust_points").count() == 1


def test_an_adjustment_needs_a_reason(program, member):
    with pytest.raises(ValidationError) as error:
        adjust_points(member=member, program=program, amount=5, reason=" ", actor="ops", idempotency_key="a")
    assert error.value.code == "reason_required"


# Expiry ----------------------------------------------------------------------------------------------

def test_points_expire_at_the_end_of_the_nth_year_after_earning(program, member):
    program.expiry_policy, program.expiry_n = ExpiryPolicy.YEAR_END, 1
    program.save()
    buy(member, "100.00", when=dt.datetime(2025, 3, 1, 4, tzinfo=dt.UTC))
    buy(member, "40.00", when=dt.datetime(2026, 3, 1, 4, tzinfo=dt.UTC))
    spend(member, program, 30)  # from the 2025 lot
    new_year_2027_shanghai = dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC)

    before = expire_points(now=new_year_2027_shanghai - dt.timedelta(seconds=1))
    expired = expire_points(now=new_year_2027_shanghai)
    again = expire_points(now=new_year_2027_shanghai + dt.timedelta(days=30))

    assert (before, expired, again) == (0, 70, 0)
    assert balance(member, program) == (40, 0)
    entry = PointsEntry.objects.get(kind=EntryKind.EXPIRE)
    assert (entry.amount, entry.occurred_at, entry.business_date) == (-70, new_year_2027_shanghai,
                                                                      dt.date(2027, 1, 1))


def test_points_expire_n_days_after_the_business_day_they_were_earned(program, member):
    program.expiry_policy, program.expiry_n = ExpiryPolicy.DAYS, 30
    program.save()
    buy(member, "10.00", when=dt.datetime(2026, 5, 1, 15, 0, tzinfo=dt.UTC))  # 23:00 on 1 May in Shanghai

    assert PointsEntry.objects.get().expires_at == dt.datetime(2026, 5, 31, 16, 0, tzinfo=dt.UTC)  # 1 June 00:00


def test_the_points_expiring_first_are_listed_first_and_spent_lots_not_at_all(program, member):
    program.expiry_policy, program.expiry_n = ExpiryPolicy.DAYS, 30
    program.save()
    buy(member, "50.00", when=NOW - dt.timedelta(days=3))  # expires first: spent below
    buy(member, "30.00", when=NOW - dt.timedelta(days=1))
    program.expiry_policy = ExpiryPolicy.NONE
    program.save()
    buy(member, "20.00", when=NOW - dt.timedelta(days=2))  # earned earlier, but never expires
    spend(member, program, 50)

    listed = expiring_points(member.pk, program)

    assert [(e.amount, e.remaining, e.expires_at is None) for e in listed] == [(30, 30, False), (20, 20, True)]


def test_expiring_every_lot_keeps_the_ledger_exact(program, member):
    program.expiry_policy, program.expiry_n = ExpiryPolicy.DAYS, 1
    program.save()
    others = [make_member(store=member.store) for _ in range(5)]
    for i, someone in enumerate([member, *others]):
        buy(someone, f"{10 + i}.00", when=NOW - dt.timedelta(days=5))

    expired = expire_points(now=NOW, chunk=2)

    assert expired == sum(10 + i for i in range(6))
    assert set(PointsAccount.objects.values_list("balance", flat=True)) == {0}
    assert verify_ledger() == (6, [])


# The check command -----------------------------------------------------------------------------------

def test_the_check_command_passes_on_a_consistent_ledger(program, member, capsys):
    buy(member, "10.00")
    spend(member, program, 5)

    with translation.override("en"):  # the command speaks the configured language (zh-hans)
        call_command("loyalty_check")

    assert "1 accounts checked, 0 mismatches" in capsys.readouterr().out


def test_the_check_command_reports_a_tampered_balance_and_fails(program, member, capsys):
    buy(member, "10.00")
    PointsAccount.objects.update(balance=12)

    with pytest.raises(CommandError) as error, translation.override("en"):
        call_command("loyalty_check")

    out = capsys.readouterr().out
    assert "balance ≠ Σ entries: 12 vs 10" in out
    assert "1 accounts checked" in str(error.value)


def test_the_check_finds_an_entry_whose_program_is_not_its_accounts(program, member):
    # An entry's program is a copy of its account's, without a constraint of its own.
    buy(member, "10.00")
    mine = PointsAccount.objects.get(member=member)
    entry = PointsEntry.objects.get(account=mine)
    PointsEntry.objects.filter(pk=entry.pk).update(program=make_program("other", brand=make_brand("brand-b")))

    _checked, found = verify_ledger()

    assert (mine.pk, f"entry {entry.pk}: program ≠ the account's") in {(m.account_id, m.problem) for m in found}
    assert (mine.pk, f"entry {entry.pk}: program ≠ the account's") in {
        (m.account_id, m.problem) for m in verify_ledger(program=program)[1]}


def test_the_check_finds_entries_without_their_account(program, member):
    # The key has no database constraint (it would cost a check per ledger row at commit).
    other = make_member(store=member.store)
    buy(member, "10.00")
    buy(other, "20.00")
    gone = PointsAccount.objects.get(member=other)
    orphan = PointsEntry.objects.get(account=gone)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM loyalty_pointsaccount WHERE id = %s", [gone.pk])

    _checked, found = verify_ledger()

    assert [(m.account_id, m.problem, m.cached, m.ledger) for m in found] == [
        (gone.pk, f"entry {orphan.pk}: no such account", 0, 20)]
    assert [m.problem for m in verify_ledger(program=program)[1]] == [f"entry {orphan.pk}: no such account"]


def test_the_check_finds_a_lot_whose_remaining_points_disagree_with_what_was_drawn(program, member):
    buy(member, "30.00")
    spend(member, program, 10)
    lot = PointsEntry.objects.get(kind=EntryKind.EARN)
    PointsAllocation.objects.update(amount=4)

    _checked, found = verify_ledger(program=program)

    assert [(m.problem, m.cached, m.ledger) for m in found] == [
        (f"lot {lot.pk}: amount − remaining ≠ Σ allocations", 10, 4)]


# Member merges ---------------------------------------------------------------------------------------

def test_merging_members_joins_their_accounts(program, member):
    twin = make_member(store=member.store)
    buy(member, "30.00")
    buy(twin, "20.00")

    merge_members(survivor_id=member.pk, merged_id=twin.pk, actor="ops")

    assert balance(member, program) == (50, 0)
    assert PointsAccount.objects.count() == 1
    assert verify_ledger() == (1, [])


def test_a_merged_debt_is_settled_from_the_survivors_balance(program, member):
    from siyu.commerce.services import record_orders

    twin = make_member(store=member.store)
    row = buy(twin, "50.00")
    spend(twin, program, 50)
    record_orders(rows=[{**row, "refunds": [{"external_id": "R1", "amount": "50.00"}]}], source="test")
    buy(member, "80.00")
    assert balance(twin, program) == (0, 50)

    merge_members(survivor_id=member.pk, merged_id=twin.pk, actor="ops")

    assert balance(member, program) == (30, 0)
    assert verify_ledger() == (1, [])
