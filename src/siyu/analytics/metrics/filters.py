"""What every metric is narrowed by: a period of business days, brand, region, store, channel,
segment, and the reader's data scope.

A period is half-open, ``[start, end)``, in business days of the configured zone
(``SIYU_TIME_ZONE``, default Asia/Shanghai): ``start=2026-05-01, end=2026-06-01`` is May, from
00:00 Shanghai time on 1 May (16:00 UTC on 30 April) up to but excluding 00:00 on 1 June.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    CharField,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Value,
)
from django.utils.translation import gettext as _

from siyu.commerce.models import Channel, DailySales, Order
from siyu.core.errors import NotFound, ValidationError
from siyu.core.time import business_date, business_zone, start_of_day
from siyu.members.models import Member, MemberStatus
from siyu.org.models import Brand, Region, Staff, Store
from siyu.org.selectors import member_scope_q

#: The longest period one request may ask for (about three years of days).
MAX_PERIOD_DAYS = 1100
#: Members that are people we count: merged and erased records are not.
COUNTED_MEMBER_STATUSES = (MemberStatus.ACTIVE, MemberStatus.FROZEN)

RATE = Decimal("0.0001")
CENT = Decimal("0.01")
TWO = Decimal("0.01")


def ratio(part, whole, places: Decimal = RATE) -> Decimal | None:
    """``part / whole`` rounded half-up to ``places`` (4 decimals: 0.1234 is 12.34 %); ``None``
    when ``whole`` is zero (an empty period has no rate, not a rate of 0)."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(places, rounding=ROUND_HALF_UP)


def money(value) -> Decimal:
    return Decimal(value or 0).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Period:
    """Business days ``[start, end)``."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """The aware instants the period starts and ends (the end excluded)."""
        return start_of_day(self.start), start_of_day(self.end)

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        return Period(self.start - dt.timedelta(days=self.days), self.start)

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "days": self.days,
                "time_zone": business_zone().key}


def default_period(today: dt.date | None = None, days: int = 30) -> Period:
    """The last ``days`` whole business days up to and including today."""
    today = today or business_date()
    return Period(today - dt.timedelta(days=days - 1), today + dt.timedelta(days=1))


@dataclass(frozen=True)
class Filters:
    """What to measure: a period and optional narrowing; ``staff`` + ``everyone=False`` narrows
    to that staff member's data scope (an API token or a superuser sees everything)."""

    period: Period
    brand: Brand | None = None
    region: Region | None = None
    store: Store | None = None
    channel: Channel | None = None
    segment: object | None = None  # siyu.segments.models.Segment
    staff: Staff | None = None
    everyone: bool = True
    _segment_ids: object = field(default=None, compare=False, repr=False)

    def with_period(self, period: Period) -> Filters:
        return replace(self, period=period)

    def applied(self) -> dict:
        """The filters as codes, echoed with every figure so a reader knows what it covers."""
        return {
            "period": self.period.as_dict(),
            "brand": self.brand.code if self.brand else None,
            "region": self.region.code if self.region else None,
            "store": self.store.code if self.store else None,
            "channel": self.channel.code if self.channel else None,
            "segment": self.segment.code if self.segment else None,
            "scope": "all" if self.everyone else (self.staff.data_scope if self.staff else "none"),
        }

    def query_string(self) -> str:
        """The filters as console query parameters (for links that keep them)."""
        from urllib.parse import urlencode

        params = {"start": self.period.start.isoformat(),
                  "end": (self.period.end - dt.timedelta(days=1)).isoformat()}
        for name in ("brand", "region", "store", "channel", "segment"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value.code
        return urlencode(params)

    # --- the rows ---------------------------------------------------------------------------

    def segment_member_ids(self) -> QuerySet | None:
        if self.segment is None:
            return None
        from siyu.segments.selectors import segment_members

        return segment_members(self.segment).order_by().values("pk")

    def orders(self, period: Period | None = None, *, timed: bool = True) -> QuerySet[Order]:
        """Counted orders (paid, shipped, completed) placed in the period, narrowed by store,
        brand and region (of the store the order was placed in), channel, segment and scope.
        ``timed=False`` leaves the period out (orders of any time)."""
        orders = Order.objects.filter(is_counted=True).order_by()
        if timed:
            start, end = (period or self.period).bounds()
            orders = orders.filter(ordered_at__gte=start, ordered_at__lt=end)
        if self.store is not None:
            orders = orders.filter(store_id=self.store.pk)
        if self.brand is not None:
            orders = orders.filter(store__brand_id=self.brand.pk)
        if self.region is not None:
            orders = orders.filter(store__region_id=self.region.pk)
        if self.channel is not None:
            orders = orders.filter(channel_id=self.channel.pk)
        segment_ids = self.segment_member_ids()
        if segment_ids is not None:
            orders = orders.filter(member_id__in=segment_ids)
        if not self.everyone:
            orders = orders.filter(member_scope_q(self.staff, prefix="member__"))
        return orders

    @property
    def by_order_attributes(self) -> bool:
        """Whether a store, brand, region or channel narrows the orders."""
        return any(getattr(self, name) is not None for name in ("store", "brand", "region", "channel"))

    def daily(self, period: Period | None = None) -> QuerySet[DailySales] | None:
        """The daily sales rows of the period (whole business days) under these filters, or
        ``None`` when a segment or a data scope narrows by member (then only the orders can say)."""
        if self.segment is not None or not self.everyone:
            return None
        period = period or self.period
        rows = DailySales.objects.filter(day__gte=period.start, day__lt=period.end).order_by()
        if self.store is not None:
            rows = rows.filter(store_key=self.store.pk)
        if self.brand is not None:
            rows = rows.filter(store_key__in=Store.objects.filter(brand_id=self.brand.pk).values("pk"))
        if self.region is not None:
            rows = rows.filter(store_key__in=Store.objects.filter(region_id=self.region.pk).values("pk"))
        if self.channel is not None:
            rows = rows.filter(channel_id=self.channel.pk)
        return rows

    def members(self) -> QuerySet[Member]:
        """Members (merged and erased records left out) owned by the store, brand or region, who
        have bought in the channel (at any time), in the segment and in scope."""
        members = Member.objects.filter(status__in=COUNTED_MEMBER_STATUSES).order_by()
        if self.store is not None:
            members = members.filter(store_id=self.store.pk)
        if self.brand is not None:
            members = members.filter(store__brand_id=self.brand.pk)
        if self.region is not None:
            members = members.filter(store__region_id=self.region.pk)
        if self.channel is not None:
            members = members.filter(Exists(Order.objects.filter(
                member_id=OuterRef("pk"), channel_id=self.channel.pk, is_counted=True)))
        segment_ids = self.segment_member_ids()
        if segment_ids is not None:
            members = members.filter(pk__in=segment_ids)
        if not self.everyone:
            members = members.filter(member_scope_q(self.staff))
        return members


def local(field_name: str):
    """``field_name`` shifted to business-zone wall time, to truncate to days, months or hours
    with ``tzinfo=UTC`` on every database (MariaDB often lacks time zone tables).

    The zone's offset is taken as fixed (Asia/Shanghai has had no daylight saving since 1991).
    """
    offset = business_zone().utcoffset(dt.datetime(2000, 1, 1)) or dt.timedelta(0)
    if not offset:
        return F(field_name)
    return ExpressionWrapper(F(field_name) + Value(offset, output_field=DurationField()),
                             output_field=DateTimeField())


def _by_code(model, code: str | None, field: str):
    if code in (None, ""):
        return None
    found = model.objects.filter(code=code).first()
    if found is None:
        raise NotFound(_("no %(what)s with code %(code)s") % {"what": field, "code": code}, field=field)
    return found


def resolve_filters(*, start: dt.date | None = None, end: dt.date | None = None, brand: str | None = None,
                    region: str | None = None, store: str | None = None, channel: str | None = None,
                    segment: str | None = None, staff: Staff | None = None, everyone: bool = True,
                    today: dt.date | None = None) -> Filters:
    """Filters from codes and *inclusive* first and last days (what people type: 1–31 May).

    No dates: the last 30 days. Raises ``ValidationError`` (field ``end``) when the last day is
    before the first or the period is longer than :data:`MAX_PERIOD_DAYS`, ``NotFound`` naming
    the field for an unknown code.
    """
    if start is None and end is None:
        period = default_period(today)
    else:
        last = end or business_date()
        first = start or (last - dt.timedelta(days=29))
        if last < first:
            raise ValidationError(_("the last day must not be before the first day"), field="end")
        period = Period(first, last + dt.timedelta(days=1))
        if period.days > MAX_PERIOD_DAYS:
            raise ValidationError(_("a period may cover at most %(n)s days") % {"n": MAX_PERIOD_DAYS},
                                  field="end")
    segment_obj = None
    if segment not in (None, ""):
        from siyu.segments.models import Segment

        segment_obj = _by_code(Segment, segment, "segment")
    return Filters(period=period, brand=_by_code(Brand, brand, "brand"), region=_by_code(Region, region, "region"),
                   store=_by_code(Store, store, "store"), channel=_by_code(Channel, channel, "channel"),
                   segment=segment_obj, staff=staff, everyone=everyone)


class _LocalPart(Func):
    """A part of a stored instant in business time, computed natively by each database:
    ``day`` ('YYYY-MM-DD'), ``month`` ('YYYY-MM'), ``hour`` (0–23) or ``weekday`` (ISO, 1 = Monday).

    PostgreSQL converts with the zone's rules; SQLite and MariaDB shift by the zone's offset
    (fixed for Asia/Shanghai; MariaDB often has no time zone tables, and SQLite none at all).
    """

    #: ``{e}`` the column, ``{s}`` the offset in seconds, ``{z}`` the zone; ``%%`` is a literal
    #: ``%`` for every driver (the query is %-formatted with its parameters).
    PATTERNS = {
        "sqlite": {"day": "date({e}, '{s} seconds')", "month": "strftime('%%Y-%%m', {e}, '{s} seconds')",
                   "hour": "CAST(strftime('%%H', {e}, '{s} seconds') AS INTEGER)",
                   "weekday": "((CAST(strftime('%%w', {e}, '{s} seconds') AS INTEGER) + 6) %% 7 + 1)"},
        "postgresql": {"day": "to_char({e} AT TIME ZONE '{z}', 'YYYY-MM-DD')",
                       "month": "to_char({e} AT TIME ZONE '{z}', 'YYYY-MM')",
                       "hour": "CAST(EXTRACT(HOUR FROM {e} AT TIME ZONE '{z}') AS INTEGER)",
                       "weekday": "CAST(EXTRACT(ISODOW FROM {e} AT TIME ZONE '{z}') AS INTEGER)"},
        "mysql": {"day": "DATE_FORMAT({e} + INTERVAL {s} SECOND, '%%Y-%%m-%%d')",
                  "month": "DATE_FORMAT({e} + INTERVAL {s} SECOND, '%%Y-%%m')",
                  "hour": "HOUR({e} + INTERVAL {s} SECOND)",
                  "weekday": "(WEEKDAY({e} + INTERVAL {s} SECOND) + 1)"},
    }

    def __init__(self, part: str, field_name: str):
        if part not in ("day", "month", "hour", "weekday"):
            raise ValueError(part)
        self.part = part
        output = IntegerField() if part in ("hour", "weekday") else CharField()
        super().__init__(F(field_name), output_field=output)

    def as_sql(self, compiler, connection, **extra):
        inner, params = compiler.compile(self.source_expressions[0])
        zone = business_zone()
        seconds = int((zone.utcoffset(dt.datetime(2000, 1, 1)) or dt.timedelta(0)).total_seconds())
        pattern = self.PATTERNS.get(connection.vendor)
        if pattern is None:
            raise NotImplementedError(connection.vendor)
        sql = (pattern[self.part].replace("{e}", inner).replace("{s}", f"{seconds:+d}")
               .replace("{z}", zone.key.replace("'", "")))
        return sql, params


def local_day(field_name: str) -> Func:
    return _LocalPart("day", field_name)


def local_month(field_name: str) -> Func:
    return _LocalPart("month", field_name)


def local_hour(field_name: str) -> Func:
    return _LocalPart("hour", field_name)


def local_weekday(field_name: str) -> Func:
    return _LocalPart("weekday", field_name)
