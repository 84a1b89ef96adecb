"""Messaging policy settings: quiet hours and the marketing frequency cap.

Read from Django settings when present (``SIYU_QUIET_HOURS``, ``SIYU_MARKETING_CAP``), else from
the environment, else the defaults ``22:00-08:00`` and ``2/7d``. ``off`` (or empty) switches
either rule off. Local time is the business zone (``settings.TIME_ZONE``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from siyu.core.env import env_str
from siyu.core.time import business_zone

DEFAULT_QUIET_HOURS = "22:00-08:00"
DEFAULT_MARKETING_CAP = "2/7d"
_OFF = {"", "off", "none", "0"}


def _setting(name: str, default: str) -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = env_str(name, default)
    return str(value).strip()


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time

    def contains(self, moment: dt.datetime) -> bool:
        local = timezone.localtime(moment, business_zone()).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def end_after(self, moment: dt.datetime) -> dt.datetime:
        """The first end of quiet hours after ``moment`` (an aware instant)."""
        zone = business_zone()
        local = timezone.localtime(moment, zone)
        end = dt.datetime.combine(local.date(), self.end, tzinfo=zone)
        if end <= local:
            end = dt.datetime.combine(local.date() + dt.timedelta(days=1), self.end, tzinfo=zone)
        return end


@dataclass(frozen=True)
class Cap:
    count: int
    window: dt.timedelta


def _clock(text: str, name: str) -> dt.time:
    try:
        hours, minutes = text.strip().split(":")
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must look like 22:00-08:00, got {text!r}") from None


def quiet_hours() -> QuietHours | None:
    raw = _setting("SIYU_QUIET_HOURS", DEFAULT_QUIET_HOURS)
    if raw.lower() in _OFF:
        return None
    start, sep, end = raw.partition("-")
    if not sep:
        raise ImproperlyConfigured(f"SIYU_QUIET_HOURS must look like 22:00-08:00, got {raw!r}")
    hours = QuietHours(_clock(start, "SIYU_QUIET_HOURS"), _clock(end, "SIYU_QUIET_HOURS"))
    return None if hours.start == hours.end else hours


_CAP = re.compile(r"^(\d+)\s*/\s*(\d+)\s*([dh])$")


def marketing_cap() -> Cap | None:
    raw = _setting("SIYU_MARKETING_CAP", DEFAULT_MARKETING_CAP)
    if raw.lower() in _OFF:
        return None
    match = _CAP.match(raw.lower())
    if not match:
        raise ImproperlyConfigured(f"SIYU_MARKETING_CAP must look like 2/7d or 3/24h, got {raw!r}")
    count, amount, unit = int(match[1]), int(match[2]), match[3]
    if amount == 0:
        return None
    window = dt.timedelta(days=amount) if unit == "d" else dt.timedelta(hours=amount)
    return Cap(count, window)
