"""The demo's retail calendar: a weight per day (双11, 618, 年货节, 38 节, member day, weekends)
and per hour, so sampled orders and visits fall where a real brand's would."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random

from siyu.core.time import business_date, business_zone

#: Spring Festival (春节) dates; 年货节 runs in the weeks before it, and shops slow down during it.
SPRING_FESTIVAL = {
    2022: dt.date(2022, 2, 1), 2023: dt.date(2023, 1, 22), 2024: dt.date(2024, 2, 10),
    2025: dt.date(2025, 1, 29), 2026: dt.date(2026, 2, 17), 2027: dt.date(2027, 2, 6),
    2028: dt.date(2028, 1, 26), 2029: dt.date(2029, 2, 13), 2030: dt.date(2030, 2, 3),
}

#: Hour-of-day weights 0–23 by kind of moment.
HOURS = {
    "store": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 5, 6, 6, 6, 7, 8, 8, 8, 9, 9, 7, 3, 0],
    "online": [3, 2, 1, 1, 0, 0, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 5, 5, 6, 7, 9, 10, 10, 7],
    "live": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 6, 10, 12, 10, 4],
}
_CUM_HOURS = {kind: list(itertools.accumulate(w)) for kind, w in HOURS.items()}


def day_weight(day: dt.date) -> float:
    """Relative sales weight of a calendar day."""
    weight = 1.0
    weekday = day.weekday()
    if weekday >= 5:
        weight *= 1.35
    elif weekday == 4:
        weight *= 1.1
    month, dom = day.month, day.day
    if month == 11:  # 双11: pre-sale from late October, the peak on the 11th
        weight *= {11: 9.0, 12: 1.6}.get(dom, 2.0 if dom < 11 else 1.0)
    elif month == 10 and dom >= 24:
        weight *= 1.5
    elif month == 12 and dom == 12:  # 双12
        weight *= 2.5
    elif month == 6 and dom <= 18:  # 618
        weight *= 5.0 if dom == 18 else 1.6
    elif month == 3 and 3 <= dom <= 8:  # 38 女王节
        weight *= 2.5 if dom == 8 else 1.4
    if dom == 18 and month not in (6, 11):  # monthly member day (会员日)
        weight *= 1.5
    for spring in (SPRING_FESTIVAL.get(day.year), SPRING_FESTIVAL.get(day.year + 1)):
        if spring is None:
            continue
        offset = (day - spring).days
        if -25 <= offset <= -8:  # 年货节
            weight *= 1.8
        elif -3 <= offset <= 6:  # the holiday: logistics stop, many stores close
            weight *= 0.45
    return weight


def is_promo_day(day: dt.date) -> bool:
    return (day.month == 11 and day.day <= 12) or (day.month == 6 and day.day <= 18) or \
        (day.month == 12 and day.day == 12) or (day.month == 3 and 3 <= day.day <= 8)


class Calendar:
    """Days from ``start`` to yesterday with cumulative weights, for fast windowed sampling."""

    def __init__(self, *, years: float = 2.0, history_years: float = 1.0, today: dt.date | None = None):
        self.today = today or business_date()
        self.zone = business_zone()
        self.window_start = self.today - dt.timedelta(days=round(365 * years))
        self.first = self.window_start - dt.timedelta(days=round(365 * history_years))
        span = (self.today - self.first).days
        self.days = [self.first + dt.timedelta(days=i) for i in range(span)]
        growth = [0.6 + 0.8 * i / span for i in range(span)]  # the business grows over time
        self.cum = list(itertools.accumulate(day_weight(d) * g for d, g in zip(self.days, growth, strict=True)))
        self.promo = [is_promo_day(d) for d in self.days]

    def index(self, day: dt.date) -> int:
        return min(max((day - self.first).days, 0), len(self.days) - 1)

    @property
    def window_index(self) -> int:
        return self.index(self.window_start)

    @property
    def last_index(self) -> int:
        return len(self.days) - 1

    def sample(self, rng: random.Random, lo: int, hi: int) -> int:
        """A day index in ``[lo, hi]`` drawn by the calendar weights."""
        if hi <= lo:
            return lo
        low = self.cum[lo - 1] if lo else 0.0
        return min(bisect.bisect_left(self.cum, rng.uniform(low, self.cum[hi])), hi)

    def moment(self, rng: random.Random, day_index: int, kind: str = "online") -> dt.datetime:
        hour = bisect.bisect_left(_CUM_HOURS[kind], rng.random() * _CUM_HOURS[kind][-1])
        day = self.days[day_index]
        return dt.datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60),
                           tzinfo=self.zone)
