"""Which program a fact belongs to, and the program's arithmetic: business days, member day,
points for an amount, when a lot expires."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

from django.db import connection

from siyu.loyalty.models import (
    Benefit,
    BenefitKind,
    ConfigurationStamp,
    EventEarnRule,
    ExpiryPolicy,
    LoyaltyProgram,
    MemberDayKind,
    ProgramScope,
    PurchaseExclusion,
    Rounding,
    Tier,
)

#: By the stored value (a choice compares and hashes as its value: no enum lookup per order).
_ROUNDING = {Rounding.DOWN: ROUND_DOWN, Rounding.HALF_UP: ROUND_HALF_UP, Rounding.UP: ROUND_UP}


@dataclass
class ProgramIndex:
    """The active programs, found by brand: the brand's own program, else its group's group-wide one,
    with what earning reads of them: ``tiers`` (by rank), points ``multipliers`` (``(tier_id,
    paid_plan_id, factor)`` of the active multiplier benefits), purchase ``exclusions``
    (``(product ids, categories)``) and the active event ``rules`` (by program and event kind), each
    by program id.

    A fact with no brand (an order without a store, an event with no store, channel or owning
    store) belongs to the group-wide program when exactly one is active.

    Shared between the batches of a process (see :func:`active_programs`): read it, never change it
    (``days`` only grows).
    """

    programs: dict[int, LoyaltyProgram] = field(default_factory=dict)
    by_brand: dict[int, LoyaltyProgram] = field(default_factory=dict)
    by_group: dict[int, LoyaltyProgram] = field(default_factory=dict)
    tiers: dict[int, list[Tier]] = field(default_factory=dict)
    multipliers: dict[int, list[tuple[int | None, int | None, Decimal]]] = field(default_factory=dict)
    exclusions: dict[int, tuple[frozenset[int], frozenset[str]]] = field(default_factory=dict)
    rules: dict[tuple[int, str], list[EventEarnRule]] = field(default_factory=dict)
    #: ``{(program id, business day): (member-day multiplier, expiry of the points earned that day)}``,
    #: filled in as batches meet the days (both follow from the day and the program alone).
    days: dict[tuple[int, dt.date], tuple[Decimal, dt.datetime | None]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.programs)

    def for_brand(self, brand_id: int | None, group_id: int | None) -> LoyaltyProgram | None:
        if brand_id is not None:
            return self.by_brand.get(brand_id) or self.by_group.get(group_id)
        return self.fallback

    @property
    def fallback(self) -> LoyaltyProgram | None:
        return next(iter(self.by_group.values())) if len(self.by_group) == 1 else None


#: ``{database alias: (configuration token, index)}``: the last index read, per database.
_kept: dict[str, tuple[str, ProgramIndex]] = {}


def active_programs() -> ProgramIndex:
    """The active programs and what earning reads of them: one query while the configuration is
    unchanged, the index being kept per process; with no program configured, the only cost of earning.

    The configuration stamp (``models.ConfigurationStamp``) says whether it changed: triggers give
    it a new random token with every write to the tables read here, in the writer's transaction. The
    token is read before the configuration, so what is kept under a token is never older than the
    token. A database without the stamp row (emptied by a test flush) is read every time.
    """
    stamp = connection.ops.quote_name(ConfigurationStamp._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT token FROM {stamp} WHERE id = 1")  # noqa: S608
        row = cursor.fetchone()
    kept = _kept.get(connection.alias)
    if row is not None and kept is not None and kept[0] == row[0]:
        return kept[1]
    index = _read_programs()
    if row is not None:
        _kept[connection.alias] = (row[0], index)
    return index


def _read_programs() -> ProgramIndex:
    index = ProgramIndex()
    # Oldest first: if two active programs ever claim one brand, the first one keeps it.
    for program in LoyaltyProgram.objects.filter(is_active=True).order_by("-pk"):
        index.programs[program.pk] = program
        if program.scope == ProgramScope.GROUP:
            index.by_group[program.group_id] = program
        else:
            index.by_brand[program.brand_id] = program
    if not index.programs:
        return index
    active = list(index.programs)
    index.tiers = program_tiers(active)
    for program_id, tier_id, plan_id, factor in Benefit.objects.filter(
            program_id__in=active, kind=BenefitKind.POINTS_MULTIPLIER, is_active=True,
            multiplier__isnull=False).order_by("pk").values_list("program_id", "tier_id", "paid_plan_id", "multiplier"):
        index.multipliers.setdefault(program_id, []).append((tier_id, plan_id, Decimal(factor)))
    products, categories = {}, {}
    for program_id, product_id, category in PurchaseExclusion.objects.filter(program_id__in=active).values_list(
            "program_id", "product_id", "category"):
        if product_id:
            products.setdefault(program_id, set()).add(product_id)
        else:
            categories.setdefault(program_id, set()).add(category)
    index.exclusions = {p: (frozenset(products.get(p, ())), frozenset(categories.get(p, ())))
                        for p in {*products, *categories}}
    for rule in EventEarnRule.objects.filter(program_id__in=active, is_active=True).order_by("pk"):
        index.rules.setdefault((rule.program_id, rule.event_kind), []).append(rule)
    return index


def program_tiers(program_ids: Iterable[int]) -> dict[int, list[Tier]]:
    """``{program_id: its tiers by rank}`` (programs without tiers left out)."""
    tiers: dict[int, list[Tier]] = {}
    for tier in Tier.objects.filter(program_id__in=set(program_ids)).order_by("program_id", "rank"):
        tiers.setdefault(tier.program_id, []).append(tier)
    return tiers


def business_date(program: LoyaltyProgram, moment: dt.datetime) -> dt.date:
    """The calendar day of ``moment`` (aware) in the program's zone."""
    if moment.tzinfo is None:  # astimezone() would take it for the server's local time
        raise ValueError("business_date() needs an aware datetime")
    return moment.astimezone(program.zone).date()


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


def lot_expiry(program: LoyaltyProgram, earned_at: dt.datetime, day: dt.date | None = None) -> dt.datetime | None:
    """When points earned at ``earned_at`` (on business ``day``, if the caller knows it) expire (the
    first instant they are gone), or None.

    ``year_end``: at the end of the Nth year after the year of earning (N = 1: points of 2026
    expire when 2027 ends). ``days``: at the end of the Nth business day after earning.
    """
    if program.expiry_policy not in (ExpiryPolicy.YEAR_END, ExpiryPolicy.DAYS):
        return None
    day = day or business_date(program, earned_at)
    if program.expiry_policy == ExpiryPolicy.YEAR_END:
        return dt.datetime(day.year + program.expiry_n + 1, 1, 1, tzinfo=program.zone)
    return start_of_day(program, day + dt.timedelta(days=program.expiry_n + 1))
