"""Demo orders: where, when and what each customer buys, with refunds and unpaid orders.

Rows are the raw mappings ``record_orders`` takes; buyers are named the way each channel knows
them (POS card or phone in stores, openid in the mini-program, buyer nick on Tmall …) so the
service's identity resolution binds them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
from decimal import Decimal

from siyu.demo.calendar import Calendar
from siyu.demo.org import APPAREL, BABY, Org
from siyu.demo.people import PHYSICAL, Persona

CENT = Decimal("0.01")
YUAN = Decimal("1")
CONSUMABLES = {"奶粉", "纸尿裤", "湿巾", "辅食"}
ROLE_WEIGHT = {"hot": 4.0, "main": 2.5, "traffic": 2.0, "trial": 0.3, "member_benefit": 0.8,
               "clearance": 1.0, "flash_sale": 0.6, "bundle": 0.6}
CATEGORY_WEIGHT = {"奶粉": 3.0, "纸尿裤": 3.0, "湿巾": 1.5}
BASKET_SIZES = list(itertools.accumulate([50, 27, 13, 6, 3, 1]))
REFUND_REASONS = ["尺码不合适", "七天无理由退货", "质量问题", "价保退差价", "不想要了", "颜色与图片不符", "发错货"]
#: Share of orders refunded, by channel kind (livestream impulse buys come back most).
REFUND_RATE = {"store": 0.03, "mini_program": 0.06, "brand_mall": 0.06, "distribution": 0.07,
               "livestream": 0.13, "marketplace": 0.09, "points_mall": 0.0}


def _kind(channel: str) -> str:
    if channel.startswith("pos-"):
        return "store"
    return {"yw-mp": "mini_program", "hb-mp": "mini_program", "yw-mall": "brand_mall", "yw-dist": "distribution",
            "yw-live": "livestream", "hb-live": "livestream", "yw-tmall": "marketplace", "hb-tmall": "marketplace",
            "yw-jd": "marketplace", "points": "points_mall"}[channel]


class Orders:
    def __init__(self, rng: random.Random, org: Org, calendar: Calendar):
        self.rng = rng
        self.org = org
        self.calendar = calendar
        self.sequence = itertools.count(1)
        self.catalog = {}
        for brand in (APPAREL, BABY, "points"):
            items = org.products[brand]
            normal = [ROLE_WEIGHT[role] * CATEGORY_WEIGHT.get(category, 1.0) for _s, category, _p, role in items]
            promo = [w * (4 if item[3] == "flash_sale" else 1) for w, item in zip(normal, items, strict=True)]
            self.catalog[brand] = (items, list(itertools.accumulate(normal)), list(itertools.accumulate(promo)))
        self.brand_of_channel = {channel: org.stores[store].brand.code if store != "points" else "points"
                                 for store, channel in org.channel_of_store.items()}
        self.store_in_city = {}
        for code, (brand, city) in PHYSICAL.items():
            self.store_in_city.setdefault((brand, city), code)
        self.now = calendar.moment(rng, calendar.last_index, "store").replace(hour=23, minute=59)

    # -- where ------------------------------------------------------------------------------
    def preferences(self, p: Persona) -> tuple[list[str], list[int]]:
        ch = self.org.channel_of_store
        prefs: dict[str, int] = {}
        mp, live, tmall = ("yw-mp", "yw-live", "yw-tmall") if p.brand == APPAREL else ("hb-mp", "hb-live", "hb-tmall")
        if not p.online:
            prefs[ch[p.home_store]] = 70 if p.brand == APPAREL else 60
            prefs[mp] = 14 if p.brand == APPAREL else 25
            prefs[live] = 5
        else:
            prefs[ch[p.home_store]] = 55
            prefs[mp] = prefs.get(mp, 0) + 15
            prefs[live] = prefs.get(live, 0) + 10
            city_store = self.store_in_city.get((p.brand, p.row.get("city")))
            if city_store:
                prefs[ch[city_store]] = 5
        if p.brand == APPAREL:
            prefs["yw-mall"] = prefs.get("yw-mall", 0) + (5 if p.online else 2)
            prefs["yw-dist"] = prefs.get("yw-dist", 0) + (5 if p.online else 3)
            if p.phone:
                prefs["yw-jd"] = prefs.get("yw-jd", 0) + (6 if p.online else 2)
        if p.nick:
            prefs[tmall] = prefs.get(tmall, 0) + (10 if p.online else 4)
        if p.cross_brand:
            other_mp, other_tmall = ("hb-mp", "hb-tmall") if p.brand == APPAREL else ("yw-mp", "yw-tmall")
            prefs[other_mp] = prefs.get(other_mp, 0) + 8
            if p.nick:
                prefs[other_tmall] = prefs.get(other_tmall, 0) + 5
        if p.order_count >= 4:
            prefs["points"] = 3
        if not p.nick:  # marketplaces know their buyers by nick only
            prefs.pop("yw-tmall", None)
            prefs.pop("hb-tmall", None)
        channels = list(prefs)
        return channels, list(itertools.accumulate(prefs[c] for c in channels))

    def buyer(self, p: Persona, channel: str) -> dict:
        """How the channel names its buyer: the identity it has, else the member code."""
        kind = _kind(channel)
        own_mp = channel == ("yw-mp" if p.brand == APPAREL else "hb-mp")
        if kind == "store":
            order = (("pos_card", p.pos_card), ("phone", p.phone))
        elif kind == "marketplace":
            order = (("nick", p.nick),) if channel.endswith("tmall") else (("phone", p.phone),)
        elif channel == "hb-live":
            order = (("phone", p.phone), ("unionid", p.unionid))
        elif kind in ("mini_program", "points_mall"):
            order = (("openid", p.openid if own_mp or kind == "points_mall" else ""), ("unionid", p.unionid),
                     ("phone", p.phone))
        elif kind == "brand_mall":
            order = (("phone", p.phone), ("unionid", p.unionid))
        else:  # distribution mall, WeChat Channels livestream
            order = (("unionid", p.unionid), ("openid", p.openid), ("phone", p.phone))
        for identity, value in order:
            if value:
                return {"buyer": f"{identity}:{value}"}
        return {"member_code": p.code}

    # -- when and what ----------------------------------------------------------------------
    def for_persona(self, p: Persona) -> list[tuple[dt.datetime, int, dict]]:
        rng, cal = self.rng, self.calendar
        if p.order_count == 0:
            return []
        start = max(p.joined_day, cal.window_index)
        end = max(p.active_until, start)
        months = (end - start) / 30 + 1
        count = max(1, min(p.order_count, int(months * 3)))
        channels, cum = self.preferences(p)
        # most store members join at the till, with their first purchase
        first = min(start + int(rng.expovariate(1 / 20)), end) if p.online or rng.random() < 0.3 else start
        days = [first] + [cal.sample(rng, first, end) for _ in range(count - 1)]
        days.sort()
        rows = []
        for number, day in enumerate(days):
            channel = channels[0] if number == 0 and not p.online else \
                channels[_pick(cum, rng.random() * cum[-1])]
            rows.append(self.order(p, channel, day, first_order=number == 0))
        return rows

    def order(self, p: Persona, channel: str, day: int, *, first_order: bool = False,
              buyer: dict | None = None) -> tuple[dt.datetime, int, dict]:
        rng, cal = self.rng, self.calendar
        kind = _kind(channel)
        brand = self.brand_of_channel[channel]
        hours = "store" if kind == "store" else ("live" if kind == "livestream" else "online")
        ordered_at = min(cal.moment(rng, day, hours), self.now)
        seq = next(self.sequence)
        promo = cal.promo[day]
        lines = self.basket(brand, promo=promo, trial=first_order and rng.random() < 0.25)
        total = sum((line["amount"] for line in lines), Decimal(0))
        discount = Decimal(0)
        if kind != "points_mall" and total >= 199 and rng.random() < (0.35 if promo else 0.15):
            discount = Decimal(80 if total >= 500 else 50 if total >= 299 else 30)
        row = {
            "channel": channel,
            "external_id": self.external_id(channel, ordered_at, seq),
            **(buyer or self.buyer(p, channel)),
            "ordered_at": ordered_at,
            "total_amount": total,
            "lines": lines,
        }
        age = cal.last_index - day
        paid = total - discount
        if kind == "store":
            row["status"] = "completed"
            guides = self.org.guides_of_store.get(channel[4:], [])
            if p.guide and guides and p.guide in guides:
                row["guide"] = p.guide
            elif guides and rng.random() < 0.6:
                row["guide"] = rng.choice(guides)
        elif kind != "points_mall" and (rng.random() < 0.035 or (age == 0 and rng.random() < 0.2)):
            row["status"] = "closed" if age > 0 else "pending"
            paid = Decimal(0)
        else:
            row["status"] = "paid" if age == 0 else ("shipped" if age <= 3 else "completed")
            if p.guide and kind in ("mini_program", "distribution") and rng.random() < 0.3:
                row["guide"] = p.guide  # sold through the guide's shared link (导购分享)
        row["paid_amount"] = paid
        if row["status"] not in ("closed", "pending"):
            row["paid_at"] = ordered_at + dt.timedelta(seconds=rng.randint(5, 600) if kind != "store" else 0)
            if paid > 0 and age > 3 and rng.random() < REFUND_RATE[kind]:
                row["refunds"] = self.refunds(lines, paid, ordered_at, seq)
        return ordered_at, seq, row

    def basket(self, brand: str, *, promo: bool, trial: bool) -> list[dict]:
        rng = self.rng
        items, normal, promo_cum = self.catalog[brand]
        cum = promo_cum if promo else normal
        size = 1 if brand == "points" else _pick(BASKET_SIZES, rng.random() * BASKET_SIZES[-1]) + 1
        chosen: list[int] = []
        if trial:
            trials = [i for i, item in enumerate(items) if item[3] == "trial"]
            if trials:
                chosen.append(rng.choice(trials))
        for _attempt in range(size * 3):
            if len(chosen) >= size:
                break
            index = _pick(cum, rng.random() * cum[-1])
            if index not in chosen:
                chosen.append(index)
        lines = []
        for line_no, index in enumerate(chosen, start=1):
            sku, category, price, role = items[index]
            quantity = (rng.choices((1, 2, 3, 4), cum_weights=(50, 75, 90, 100))[0] if category in CONSUMABLES
                        else (1 if rng.random() < 0.92 else 2))
            unit = price
            if role in ("main", "hot", "bundle") and price > 50:
                factor = rng.choice((0.75, 0.8, 0.85)) if promo else (1.0 if rng.random() < 0.7 else 0.9)
                unit = (price * Decimal(str(factor))).quantize(YUAN)
            lines.append({"line_no": line_no, "sku": sku, "quantity": quantity, "unit_price": unit,
                          "amount": unit * quantity})
        return lines

    def refunds(self, lines: list[dict], paid: Decimal, ordered_at: dt.datetime, seq: int) -> list[dict]:
        rng = self.rng
        refunded_at = min(ordered_at + dt.timedelta(days=rng.uniform(1, 15)), self.now)
        pick = rng.random()
        if pick < 0.6:
            amount = paid
        elif len(lines) > 1:
            amount = min(rng.choice(lines)["amount"], paid)
        else:
            amount = (paid * Decimal(str(rng.choice((0.1, 0.2, 0.3))))).quantize(CENT)
        if amount <= 0:
            return []
        reason = "价保退差价" if pick >= 0.6 and len(lines) == 1 else rng.choice(REFUND_REASONS)
        return [{"external_id": f"RF{seq:08d}", "amount": amount, "refunded_at": refunded_at, "reason": reason}]

    def external_id(self, channel: str, at: dt.datetime, seq: int) -> str:
        kind = _kind(channel)
        if kind == "store":
            return f"{channel[4:].upper()}-{at:%Y%m%d}-{seq:07d}"
        if channel.endswith("tmall"):
            return f"{at:%y%m}{seq:07d}{self.rng.randrange(10**8):08d}"
        if channel == "yw-jd":
            return f"3{seq:07d}{self.rng.randrange(10**4):04d}"
        return f"{channel.split('-')[-1].upper()}{at:%Y%m%d%H%M%S}{seq:07d}"

    def for_guest(self, g: Persona) -> list[tuple[dt.datetime, int, dict]]:
        cal = self.calendar
        days = sorted([g.joined_day] + [cal.sample(self.rng, g.joined_day, cal.last_index)
                                        for _ in range(g.order_count - 1)])
        return [self.order(g, g.home_store, day, first_order=i == 0, buyer={"buyer": f"nick:{g.nick}"})
                for i, day in enumerate(days)]


def _pick(cum: list, value: float) -> int:
    """Index of the first cumulative weight above ``value``."""
    return min(bisect.bisect_right(cum, value), len(cum) - 1)
