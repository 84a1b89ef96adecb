"""Programs: one active program per brand, the program's zone, and the console pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from siyu.loyalty.models import ExpiryPolicy, LoyaltyProgram, MemberDayKind, ProgramScope
from siyu.loyalty.programs import active_programs, lot_expiry
from siyu.loyalty.selectors import program_for_brand
from tests.factories import make_brand, make_program
from tests.loyalty.conftest import buy

pytestmark = pytest.mark.django_db


def test_a_brand_belongs_to_its_own_program_else_to_the_group_wide_one(db):
    own, shared = make_brand("brand-a"), make_brand("brand-b")
    brand_program = make_program("a", brand=own)
    group_program = make_program("group", group_wide=True, is_active=False)
    group_program.is_active = True
    group_program.save()

    assert program_for_brand(own) == brand_program
    assert program_for_brand(shared) == group_program
    assert active_programs().fallback == group_program


def test_a_second_active_program_for_a_brand_is_refused(db):
    brand = make_brand()
    make_program("a", brand=brand)
    second = LoyaltyProgram(code="b", name="b", group=brand.group, scope=ProgramScope.BRAND, brand=brand)
    group_wide = LoyaltyProgram(code="g", name="g", group=brand.group, scope=ProgramScope.GROUP)

    for program in (second, group_wide):
        with pytest.raises(ValidationError):
            program.full_clean()
    second.is_active = False
    second.full_clean()


@pytest.mark.parametrize(("fields", "field"), [
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"member_day_kind": MemberDayKind.WEEKLY, "member_day_days": [8]}, "member_day_days"),
    ({"member_day_kind": MemberDayKind.MONTHLY, "member_day_days": []}, "member_day_days"),
])
def test_program_settings_are_validated(db, fields, field):
    brand = make_brand()
    program = LoyaltyProgram(code="a", name="a", group=brand.group, brand=brand, **fields)

    with pytest.raises(ValidationError) as error:
        program.full_clean()

    assert field in error.value.message_dict


def test_year_end_expiry_is_the_end_of_the_nth_year_in_the_programs_zone(db):
    program = make_program(expiry_policy=ExpiryPolicy.YEAR_END, expiry_n=2, time_zone="Asia/Shanghai")
    new_years_eve_utc = dt.datetime(2025, 12, 31, 17, 0, tzinfo=dt.UTC)  # already 2026 in Shanghai

    assert lot_expiry(program, new_years_eve_utc) == dt.datetime(2028, 12, 31, 16, 0, tzinfo=dt.UTC)


# Console ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", ["loyaltyprogram", "tier", "benefit", "paidmembershipplan", "eventearnrule",
                                  "purchaseexclusion", "pointsaccount", "pointsentry",
                                  "pointsallocation", "membertier", "tierchange", "paidmembership"])
def test_every_loyalty_page_opens_in_the_console(client, superuser, program, member, page):
    buy(member, "10.00")
    client.force_login(superuser)

    response = client.get(f"/console/loyalty/{page}/")

    assert response.status_code == 200


def test_the_ledger_cannot_be_edited_in_the_console(client, superuser, program, member):
    from siyu.loyalty.models import PointsEntry

    buy(member, "10.00")
    client.force_login(superuser)

    assert client.get("/console/loyalty/pointsentry/add/").status_code == 403
    entry = PointsEntry.objects.get()
    client.post(f"/console/loyalty/pointsentry/{entry.pk}/change/", {"amount": "999"})
    entry.refresh_from_db()
    assert entry.amount == 10
