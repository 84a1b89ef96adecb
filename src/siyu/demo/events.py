"""Demo behaviour events: mini-program views, check-in streaks, shares, store visits, group
joins, livestream views and coupons, in proportion to each member's engagement."""

from __future__ import annotations

import datetime as dt
import random

from siyu.demo.calendar import Calendar
from siyu.demo.org import APPAREL, Org
from siyu.demo.people import Persona
from siyu.demo.vocab import CONTENT, COUPONS

PAGES = ["pages/index/index", "pages/goods/detail", "pages/goods/list", "pages/member/center",
         "pages/points/mall", "pages/coupon/list", "pages/activity/detail", "pages/live/room"]
SHARE_TARGETS = [("moments", 5), ("friend", 8), ("group", 4)]
GROUP_NAMES = {APPAREL: ["悦衣{city}福利群{n}", "悦衣穿搭交流群{n}", "悦衣会员日秒杀群{n}"],
               "he-baby": ["禾宝{city}宝妈群{n}", "禾宝新手妈妈训练营第{n}期", "禾宝辅食打卡群{n}"]}


class Events:
    def __init__(self, rng: random.Random, org: Org, calendar: Calendar):
        self.rng = rng
        self.org = org
        self.calendar = calendar
        self.skus = {brand: [item[0] for item in items] for brand, items in org.products.items()}

    def for_persona(self, p: Persona) -> list[tuple[dt.datetime, dict]]:
        rng, cal = self.rng, self.calendar
        e = p.engagement
        start = max(p.joined_day, cal.window_index)
        end = max(p.active_until, start)
        mp = "yw-mp" if p.brand == APPAREL else "hb-mp"
        live = "yw-live" if p.brand == APPAREL else "hb-live"
        ref = {"member": f"openid:{p.openid}"} if p.openid and rng.random() < 0.5 else {"member_code": p.code}
        out: list[tuple[dt.datetime, dict]] = []

        def add(kind: str, day: int, hours: str = "online", **extra) -> None:
            at = cal.moment(rng, day, hours)
            out.append((at, {**ref, "kind": kind, "occurred_at": at,
                             "idempotency_key": f"demo:{p.code}:{len(out)}", **extra}))

        def some(mean: float) -> int:
            return int(rng.expovariate(1 / mean)) if mean > 0 else 0

        row = p.row
        if row.get("follows_oa"):
            add("follow", p.joined_day if p.joined_day >= cal.window_index else start,
                properties={"scene": rng.choice(("qr_code", "article", "store_poster", "live_code"))})
        joined_group = row.get("in_group") or rng.random() < 0.1
        if joined_group:
            day = cal.sample(rng, start, end)
            name = rng.choice(GROUP_NAMES[p.brand]).format(city=row.get("city") or "线上", n=rng.randint(1, 12))
            add("group_join", day, properties={"group": name, "inviter": p.guide or "self"})
            for _ in range(some(3 * e)):
                add("group_message", cal.sample(rng, day, end), properties={"group": name})
            if not row.get("in_group"):
                add("group_leave", cal.sample(rng, day, end), properties={"group": name})
        if p.openid:
            for _ in range(some(5 * e)):
                add("page_view", cal.sample(rng, start, end), channel=mp,
                    properties={"page": rng.choice(PAGES), "sku": rng.choice(self.skus[p.brand]),
                                "seconds": rng.randint(3, 240)})
            for _ in range(some(2 * e)):
                add("add_to_cart", cal.sample(rng, start, end), channel=mp,
                    properties={"sku": rng.choice(self.skus[p.brand])})
        for _ in range(some(1.5 * e)):
            add("content_view", cal.sample(rng, start, end), properties={"content": rng.choice(CONTENT)})
        if e > 0.4 and rng.random() < 0.4:  # a daily check-in streak (签到)
            first = cal.sample(rng, start, end)
            for offset in range(rng.randint(2, 10)):
                if first + offset > cal.last_index:
                    break
                add("check_in", first + offset, properties={"streak": offset + 1})
        for _ in range(some(1.5 * e)):
            add("share", cal.sample(rng, start, end),
                properties={"target": rng.choices([t for t, _w in SHARE_TARGETS],
                                                  weights=[w for _t, w in SHARE_TARGETS])[0],
                            "content": rng.choice(CONTENT)})
        if not p.online:
            for _ in range(1 + some(2 * e)):
                add("store_visit", cal.sample(rng, start, end), "store", store=p.home_store,
                    properties={"minutes": rng.randint(5, 60), "source": rng.choice(("walk_in", "invited", "event"))})
        if rng.random() < 0.1 + e / 2:
            for _ in range(1 + some(2 * e)):
                add("live_view", cal.sample(rng, start, end), "live", channel=live,
                    properties={"seconds": rng.randint(30, 3600), "session": f"live-{rng.randint(1, 200):03d}"})
        if rng.random() < 0.5:
            coupon = rng.choice(COUPONS)
            day = cal.sample(rng, start, end)
            add("coupon_receive", day, properties={"coupon": coupon})
            if rng.random() < 0.4:
                add("coupon_redeem", min(day + rng.randint(0, 10), cal.last_index), properties={"coupon": coupon})
        if rng.random() < 0.1 + e / 3:
            add("sign_up", cal.sample(rng, start, end),
                properties={"activity": rng.choice(("会员日抢购", "新品试穿会", "宝妈训练营", "门店亲子活动"))})
        if rng.random() < 0.05:
            add("form_submit", cal.sample(rng, start, end), properties={"form": "会员偏好问卷"})
        return out
