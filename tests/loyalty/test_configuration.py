"""Earning keeps the configuration it read while the configuration stamp is unchanged: every write
to the configuration, however it is made, changes the stamp (database triggers)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction

from siyu.loyalty.models import (
    Benefit,
    BenefitCategory,
    BenefitKind,
    ConfigurationStamp,
    LoyaltyProgram,
    PurchaseExclusion,
)
from siyu.loyalty.programs import active_programs
from tests.factories import make_product, make_tier
from tests.loyalty.conftest import balance, buy

pytestmark = pytest.mark.django_db


def test_a_rate_changed_by_a_bulk_update_applies_to_the_next_order(program, member):
    buy(member, "100.00")  # the configuration is read and kept

    LoyaltyProgram.objects.filter(pk=program.pk).update(points_per_yuan=Decimal("2"))  # no signals, no save()
    buy(member, "100.00")

    assert balance(member, program) == (100 + 200, 0)


def test_an_exclusion_bulk_created_applies_to_the_next_order(program, member):
    wine, _tea = make_product("WINE-1"), make_product("TEA-1")
    lines = [{"sku": "WINE-1", "amount": "60.00"}, {"sku": "TEA-1", "amount": "40.00"}]
    buy(member, "100.00", lines=lines)

    PurchaseExclusion.objects.bulk_create([PurchaseExclusion(program=program, product=wine)])
    buy(member, "100.00", lines=lines)

    assert balance(member, program) == (100 + 40, 0)


def test_a_multiplier_deleted_in_raw_sql_no_longer_applies(program, member):
    silver = make_tier(program, "silver", 0)
    benefit = Benefit.objects.create(program=program, tier=silver, category=BenefitCategory.PRODUCT,
                                     kind=BenefitKind.POINTS_MULTIPLIER, name="×2", multiplier=Decimal("2"))
    buy(member, "10.00")

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Benefit._meta.db_table} WHERE id = %s", [benefit.pk])  # noqa: S608
    buy(member, "10.00")

    assert balance(member, program) == (20 + 10, 0)


def test_a_change_rolled_back_is_not_kept(program, member):
    buy(member, "100.00")

    with pytest.raises(RuntimeError), transaction.atomic():
        LoyaltyProgram.objects.filter(pk=program.pk).update(points_per_yuan=Decimal("3"))
        assert active_programs().programs[program.pk].points_per_yuan == Decimal("3")  # read and kept inside
        raise RuntimeError("rolled back")
    buy(member, "100.00")

    assert balance(member, program) == (200, 0)


def test_unchanged_configuration_is_read_once(program, member, django_assert_num_queries):
    first = active_programs()

    with django_assert_num_queries(1):  # the stamp only
        again = active_programs()

    assert again is first and list(again.programs) == [program.pk]


def test_without_the_stamp_row_the_configuration_is_read_every_time(program, member):
    ConfigurationStamp.objects.all().delete()
    buy(member, "100.00")

    LoyaltyProgram.objects.filter(pk=program.pk).update(points_per_yuan=Decimal("2"))
    buy(member, "100.00")

    assert active_programs() is not active_programs()
    assert balance(member, program) == (300, 0)
