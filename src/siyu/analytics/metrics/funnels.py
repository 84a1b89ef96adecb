"""Funnels: ordered steps (joining, a kind of event, an order) within a conversion window.

A member enters the funnel at their first step-1 moment in the period; step k counts when it
happens after step k−1's moment and before the entry moment + the window. Per step: members
reaching it, conversion from the step before and from the entry, and the median time from the
step before. The moments are read per step (one query each, members × first moments); the walk
is done in Python, so the funnel suits periods of up to some hundred thousand entries.
"""

from __future__ import annotations

import bisect
import datetime as dt
import statistics
from collections import defaultdict
from decimal import Decimal

from django.utils.translation import gettext as _

from siyu.analytics.metrics.filters import Filters, Period, ratio
from siyu.core.errors import ValidationError
from siyu.events.models import Event, EventKind

MAX_STEPS = 8


def parse_steps(text: str) -> list[tuple[str, str]]:
    """``"join,event:store_visit,order"`` → ``[("join", ""), ("event", "store_visit"), ("order", "")]``;
    ``ValidationError`` (field ``steps``) naming the bad step."""
    steps = []
    for raw in [part.strip() for part in (text or "").split(",") if part.strip()]:
        kind, _sep, detail = raw.partition(":")
        if kind in ("join", "order") and not detail:
            steps.append((kind, ""))
        elif kind == "event" and detail in EventKind.values:
            steps.append((kind, detail))
        else:
            raise ValidationError(_("unknown funnel step %(step)s: use join, order or event:<kind> (%(kinds)s)")
                                  % {"step": raw, "kinds": ", ".join(EventKind.values)}, field="steps")
    if not 2 <= len(steps) <= MAX_STEPS:
        raise ValidationError(_("a funnel has 2 to %(n)s steps") % {"n": MAX_STEPS}, field="steps")
    return steps


def _moments(filters: Filters, step: tuple[str, str], lo: dt.datetime, hi: dt.datetime) -> dict[int, list]:
    kind, detail = step
    if kind == "join":
        rows = filters.members().filter(joined_at__gte=lo, joined_at__lt=hi).values_list("pk", "joined_at")
    elif kind == "order":
        rows = (filters.orders(timed=False).filter(member_id__isnull=False, ordered_at__gte=lo, ordered_at__lt=hi)
                .values_list("member_id", "ordered_at"))
    else:
        rows = (Event.objects.filter(kind=detail, occurred_at__gte=lo, occurred_at__lt=hi,
                                     member_id__in=filters.members().values("pk")).order_by()
                .values_list("member_id", "occurred_at"))
    found: dict[int, list] = defaultdict(list)
    for member, at in rows.iterator(chunk_size=5000):
        found[member].append(at)
    for times in found.values():
        times.sort()
    return found


def _hours(wait: dt.timedelta) -> Decimal:
    return (Decimal(wait // dt.timedelta(microseconds=1)) / 3_600_000_000).quantize(Decimal("0.01"))


def funnel(filters: Filters, steps: list[tuple[str, str]], *, window_days: int = 30,
           period: Period | None = None) -> dict:
    """The funnel of ``steps`` for members entering in the period (see the module's docstring)."""
    lo, hi = (period or filters.period).bounds()
    window = dt.timedelta(days=window_days)
    moments = [_moments(filters, step, lo, hi if n == 0 else hi + window) for n, step in enumerate(steps)]
    reached = [0] * len(steps)
    waits: list[list[dt.timedelta]] = [[] for _step in steps]
    for member, times in moments[0].items():
        entry = times[0]
        previous = entry
        reached[0] += 1
        for n in range(1, len(steps)):
            later = moments[n].get(member, [])
            i = bisect.bisect_right(later, previous)
            if i == len(later) or later[i] >= entry + window:
                break
            waits[n].append(later[i] - previous)
            previous = later[i]
            reached[n] += 1
    rows = []
    for n, (kind, detail) in enumerate(steps):
        rows.append({
            "step": f"{kind}:{detail}" if detail else kind, "members": reached[n],
            "from_previous": ratio(reached[n], reached[n - 1]) if n else None,
            "from_entry": ratio(reached[n], reached[0]),
            "median_hours_from_previous": _hours(statistics.median(waits[n])) if waits[n] else None,
        })
    return {"window_days": window_days, "steps": rows}
