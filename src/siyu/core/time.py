"""Business time: store UTC, reason about days in the configured zone (``SIYU_TIME_ZONE``)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.utils import timezone


def business_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def business_date(moment: dt.datetime | None = None) -> dt.date:
    """The calendar day of ``moment`` (default: now) in the business zone."""
    return timezone.localtime(moment or timezone.now(), business_zone()).date()


def start_of_day(day: dt.date) -> dt.datetime:
    """The aware instant a business day starts."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=business_zone())


def make_aware(value: dt.datetime) -> dt.datetime:
    """Naive datetimes from files and POS systems are business-zone wall time."""
    if timezone.is_naive(value):
        return value.replace(tzinfo=business_zone())
    return value


def business_day_sql(column: str, vendor: str, *, month: bool = False) -> str:
    """SQL for the business day (or the first day of its month) of the stored instant ``column``,
    as a DATE, for statements written by hand (rollups kept in step with the orders).

    PostgreSQL converts with the zone's rules; SQLite and MySQL/MariaDB shift by the zone's
    offset, taken as fixed (Asia/Shanghai has had no daylight saving since 1991; MariaDB often
    lacks time zone tables and SQLite has none). ``%`` comes out doubled: the statements are
    %-formatted with their parameters.
    """
    zone = business_zone()
    seconds = int((zone.utcoffset(dt.datetime(2000, 1, 1)) or dt.timedelta(0)).total_seconds())
    if vendor == "postgresql":
        local = f"({column} AT TIME ZONE '{zone.key.replace(chr(39), '')}')"
        return f"CAST(date_trunc('month', {local}) AS DATE)" if month else f"CAST({local} AS DATE)"
    if vendor == "mysql":
        local = f"({column} + INTERVAL {seconds} SECOND)"
        return f"CAST(DATE_FORMAT({local}, '%%Y-%%m-01') AS DATE)" if month else f"DATE({local})"
    if vendor == "sqlite":
        start = ", 'start of month'" if month else ""
        return f"date({column}, '{seconds:+d} seconds'{start})"
    raise NotImplementedError(vendor)
