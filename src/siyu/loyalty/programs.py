"""Which program a fact belongs to, and the program's arithmetic: business days, member day,
points for an amount, when a lot expires."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

from django.utils import timezone

from siyu.loyalty.models import ExpiryPolicy, LoyaltyProgram, MemberDayKind, ProgramScope, Rounding

#: By the stored value (a choice compares and hashes as its value: no enum lookup per order).
_ROUNDING = {Rounding.DOWN: ROUND_DOWN, Rounding.HALF_UP: ROUND_HALF_UP, Rounding.UP: ROUND_UP}


@dataclass
class ProgramIndex:
    """The active programs, found by brand: the brand's own program, else its group's group-wide one.

    A fact with no brand (an order without a store, an event with no store, channel or owning
    store) belongs to the group-wide program when exactly one is active.
    """

    programs: dict[int, LoyaltyProgram] = field(default_factory=dict)
    by_brand: dict[int, LoyaltyProgram] = field(default_factory=dict)
    by_group: dict[int, LoyaltyProgram] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.programs)

    def for_brand(self, brand_id: int | None, group_id: int | None) -> LoyaltyProgram | None:
        if brand_id is not None:
            return self.by_brand.get(brand_id) or self.by_group.get(group_id)
        return self.fallback

    @property
    def fallback(self) -> LoyaltyProgram | None:
        return next(iter(self.by_group.values())) if len(self.by_group) == 1 else None


def active_programs() -> ProgramIndex:
    """The active programs (one query; with no program configured, the only cost of earning)."""
    index = ProgramIndex()
    # Oldest first: if two active programs ever claim one brand, the first one keeps it.
    for program in LoyaltyProgram.objects.filter(is_active=True).order_by("-pk"):
        index.programs[program.pk] = program
        if program.scope == ProgramScope.GROUP:
            index.by_group[program.group_id] = program
        else:
            index.by_brand[program.brand_id] = program
    return index


def business_date(program: LoyaltyProgram, moment: dt.datetime) -> dt.date:
    """The calendar day of ``moment`` in the program's zone."""
    return timezone.localtime(moment, program.zone).date()


def start_of_day(program: LoyaltyProgram, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=program.zone)


def is_member_day(program: LoyaltyProgram, day: dt.date) -> bool:
    days = program.member_day_days or []
    if program.member_day_kind == MemberDayKind.MONTHLY:
        return day.day in days
    if program.member_day_kind == MemberDayKind.WEEKLY:
        return day.isoweekday() in days
    return False


def member_day_multiplier(program: LoyaltyProgram, day: dt.date) -> Decimal:
    return Decimal(program.member_day_multiplier) if is_member_day(program, day) else Decimal(1)


def points_for(program: LoyaltyProgram, amount: Decimal, multiplier: Decimal = Decimal(1)) -> int:
    """Points for ``amount`` yuan at the program's rate, times ``multiplier``, rounded its way."""
    if amount <= 0:
        return 0
    exact = Decimal(amount) * Decimal(program.points_per_yuan) * Decimal(multiplier)
    return int(exact.quantize(Decimal(1), rounding=_ROUNDING[program.rounding]))


def lot_expiry(program: LoyaltyProgram, earned_at: dt.datetime) -> dt.datetime | None:
    """When points earned at ``earned_at`` expire (the first instant they are gone), or None.

    ``year_end``: at the end of the Nth year after the year of earning (N = 1: points of 2026
    expire when 2027 ends). ``days``: at the end of the Nth business day after earning.
    """
    if program.expiry_policy == ExpiryPolicy.YEAR_END:
        year = business_date(program, earned_at).year + program.expiry_n + 1
        return dt.datetime(year, 1, 1, tzinfo=program.zone)
    if program.expiry_policy == ExpiryPolicy.DAYS:
        day = business_date(program, earned_at) + dt.timedelta(days=program.expiry_n + 1)
        return start_of_day(program, day)
    return None
