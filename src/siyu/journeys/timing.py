"""When a wait ends and when a send window next opens, in the business time zone."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.utils import timezone

from siyu.core.time import business_zone


def _hhmm(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def at_or_after(moment: dt.datetime, time_of_day: str) -> dt.datetime:
    """The first instant at or after ``moment`` whose business-zone wall clock reads ``time_of_day``."""
    zone = business_zone()
    local = timezone.localtime(moment, zone)
    target = dt.datetime.combine(local.date(), _hhmm(time_of_day), tzinfo=zone)
    if target < local:
        target = dt.datetime.combine(local.date() + dt.timedelta(days=1), _hhmm(time_of_day), tzinfo=zone)
    return target


def wait_until(step: dict, *, since: dt.datetime, anchor: dt.datetime) -> dt.datetime | None:
    """When a wait step that started at ``since`` ends (None for waits on a condition)."""
    mode = step["mode"]
    if mode == "duration":
        end = since + dt.timedelta(days=step["days"], hours=step["hours"], minutes=step["minutes"])
        return at_or_after(end, step["at"]) if step.get("at") else end
    if mode == "time_of_day":
        return at_or_after(since, step["at"])
    if mode == "date":
        return dt.datetime.fromisoformat(step["until"]) if dt.datetime.fromisoformat(step["until"]).tzinfo else \
            dt.datetime.fromisoformat(step["until"]).replace(tzinfo=business_zone())
    if mode == "days_after_entry":
        if not step.get("at"):
            return anchor + dt.timedelta(days=step["days"])
        zone = business_zone()
        day = timezone.localtime(anchor, zone).date() + dt.timedelta(days=step["days"])
        return dt.datetime.combine(day, _hhmm(step["at"]), tzinfo=zone)
    return None


def window_opening(window: dict | None, moment: dt.datetime) -> dt.datetime:
    """``moment`` if it lies inside ``window`` (hours [start, end) on ISO weekdays, business zone),
    else the next instant the window opens."""
    if not window:
        return moment
    zone = business_zone()
    local = timezone.localtime(moment, zone)
    start, end = window["hours"]
    days = window["weekdays"]
    if local.isoweekday() in days and start <= local.hour < end:
        return moment
    for ahead in range(0, 8):
        day = local.date() + dt.timedelta(days=ahead)
        if day.isoweekday() not in days:
            continue
        opening = dt.datetime.combine(day, dt.time(start), tzinfo=zone)
        if ahead == 0 and local.hour >= end:
            continue
        if opening >= local:
            return opening
    return moment  # unreachable for a valid window


def combine(*windows: dict | None) -> list[dict]:
    return [w for w in windows if w]


def next_opening(windows: list[dict], moment: dt.datetime) -> dt.datetime:
    """The first instant at or after ``moment`` inside every window of ``windows``."""
    for _round in range(16):
        moved = moment
        for window in windows:
            moved = window_opening(window, moved)
        if moved == moment:
            return moment
        moment = moved
    return moment


def bucket(salt: str, member_id: int) -> int:
    """A member's stable bucket 0–99 for ``salt`` (control group, A/B split): the same on every
    database, process and run."""
    digest = hashlib.blake2b(f"{salt}:{member_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100
