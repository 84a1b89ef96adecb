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
