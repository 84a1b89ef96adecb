"""Demo customers: members (with several identities each) and marketplace buyers who are not
members yet, plus how much and where each of them buys."""

from __future__ import annotations

import base64
import datetime as dt
import random
from dataclasses import dataclass, field

from siyu.demo.calendar import Calendar
from siyu.demo.org import APPAREL, BABY, STORES, Org
from siyu.demo.vocab import (
    COMMUNITIES,
    FEMALE_GIVEN,
    MALE_GIVEN,
    NICK_WORDS,
    OCCUPATIONS,
    ONLINE_CITIES,
    PHONE_PREFIXES,
    SURNAMES,
)
from siyu.org.models import StoreKind

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SURNAME_WEIGHTS = [s[2] for s in SURNAMES]
_CITY_WEIGHTS = [c[1] for c in ONLINE_CITIES]
_OCCUPATION_WEIGHTS = [o[1] for o in OCCUPATIONS]
PHYSICAL = {code: (brand, city) for code, brand, kind, _r, city, *_ in STORES if kind == StoreKind.PHYSICAL}

#: Purchase behaviour segments: (share of members, min orders, max orders) — a long tail:
#: many never buy or buy once, a loyal core buys often.
SEGMENTS = [(0.18, 0, 0), (0.32, 1, 1), (0.20, 2, 3), (0.17, 4, 14), (0.13, 15, 80)]


@dataclass(slots=True)
class Persona:
    """One customer as the generator sees them (not a database row)."""

    code: str
    brand: str
    cross_brand: bool
    home_store: str
    online: bool
    joined_day: int
    order_count: int
    active_until: int
    phone: str = ""
    unionid: str = ""
    openid: str = ""
    nick: str = ""
    pos_card: str = ""
    external_userid: str = ""
    guide: str = ""
    engagement: float = 0.0
    row: dict = field(default_factory=dict)


class People:
    """Generates unique identities and profiles from one ``random.Random``."""

    def __init__(self, rng: random.Random, org: Org, calendar: Calendar):
        self.rng = rng
        self.org = org
        self.calendar = calendar
        self.codes: set[str] = set()
        self.phones: set[str] = set()
        self.nicks: set[str] = set()
        self.sequence = 0
        self.physical_by_brand = {
            brand: [code for code, (b, _c) in PHYSICAL.items() if b == brand] for brand in (APPAREL, BABY)}

    # -- identities -----------------------------------------------------------------------
    def member_code(self) -> str:
        while True:
            bits = self.rng.getrandbits(55)
            code = "M" + "".join(_CROCKFORD[(bits >> (5 * i)) & 31] for i in range(11))
            if code not in self.codes:
                self.codes.add(code)
                return code

    def phone(self) -> str:
        while True:
            phone = self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    def token(self, prefix: str, length: int) -> str:
        raw = self.rng.getrandbits(8 * 24).to_bytes(24, "big")
        return prefix + base64.urlsafe_b64encode(raw).decode()[: length - len(prefix)]

    def nick(self, pinyin: str) -> str:
        rng = self.rng
        while True:
            style = rng.random()
            if style < 0.4:
                nick = f"{pinyin}{rng.randrange(1970, 2010)}"
            elif style < 0.7:
                nick = f"{pinyin}{rng.choice(NICK_WORDS)}"
            elif style < 0.85:
                nick = f"tb{rng.randrange(10**9, 10**10)}"
            else:
                nick = f"{rng.choice(NICK_WORDS)}{pinyin}_{rng.randrange(100)}"
            if nick not in self.nicks:
                self.nicks.add(nick)
                return nick

    def name(self, female: bool) -> tuple[str, str]:
        rng = self.rng
        surname, surname_py, _w = rng.choices(SURNAMES, weights=_SURNAME_WEIGHTS)[0]
        pool = FEMALE_GIVEN if female else MALE_GIVEN
        given = [rng.choice(pool)] if rng.random() < 0.3 else rng.sample(pool, 2)
        return surname + "".join(g[0] for g in given), surname_py + "".join(g[1] for g in given)

    # -- members --------------------------------------------------------------------------
    def order_count(self, brand: str) -> int:
        rng = self.rng
        pick = rng.random()
        if brand == BABY:  # consumables (奶粉, 纸尿裤) bring mothers back more often
            pick = min(pick + 0.06, 0.9999)
        for share, low, high in SEGMENTS:
            if pick < share:
                if high > 20:
                    return min(low + int(rng.paretovariate(1.3) * 4) - 4, high)
                return rng.randint(low, high)
            pick -= share
        return 0

    def member(self) -> Persona:
        rng, cal = self.rng, self.calendar
        brand = APPAREL if rng.random() < 0.68 else BABY
        online = rng.random() < 0.42
        female = rng.random() < (0.9 if brand == APPAREL else 0.82)
        name, pinyin = self.name(female)
        # members keep joining as the private domain grows; ~1/3 joined before the order window
        joined_day = cal.sample(rng, 0, cal.last_index)
        count = self.order_count(brand)
        active_until = cal.last_index
        if count >= 2 and rng.random() < 0.35:  # bought for a while, then went quiet
            active_until = rng.randint(max(joined_day, cal.window_index), cal.last_index)
        if online:
            city = rng.choices(ONLINE_CITIES, weights=_CITY_WEIGHTS)[0][0]
            store = rng.choices(
                ["yw-mp", "yw-tmall", "yw-live", "yw-mall", "yw-dist"] if brand == APPAREL
                else ["hb-mp", "hb-tmall", "hb-live"],
                weights=[40, 25, 20, 8, 7] if brand == APPAREL else [50, 30, 20])[0]
            source = {"yw-mp": "mini_program", "hb-mp": "mini_program", "yw-tmall": "tmall",
                      "hb-tmall": "tmall", "yw-live": "livestream", "hb-live": "livestream",
                      "yw-mall": "brand_mall", "yw-dist": "distribution"}[store]
        else:
            store = rng.choice(self.physical_by_brand[brand])
            city = PHYSICAL[store][1]
            source = rng.choices(["store", "live-code", "referral"], weights=[70, 20, 10])[0]
        self.sequence += 1
        persona = Persona(
            code=self.member_code(), brand=brand, cross_brand=rng.random() < 0.08, home_store=store,
            online=online, joined_day=joined_day, order_count=count, active_until=active_until,
            engagement=rng.betavariate(1.2, 3.0) * (1.5 if count >= 4 else 1.0),
        )
        guides = self.org.guides_of_store.get(store, [])
        if guides and (not online or rng.random() < 0.5):
            persona.guide = rng.choice(guides)
        if rng.random() < 0.95:
            persona.phone = self.phone()
        if rng.random() < (0.75 if online else 0.6):
            persona.unionid = self.token("o6_bm", 28)
        if rng.random() < (0.8 if store.endswith("-mp") else 0.55):
            persona.openid = self.token("oX4", 28)
        if store.endswith("tmall") or rng.random() < (0.35 if online else 0.15):
            persona.nick = self.nick(pinyin)
        if not online and rng.random() < 0.6:
            persona.pos_card = f"{'YW' if brand == APPAREL else 'HB'}{rng.randrange(10**10):010d}"
        if persona.guide and rng.random() < 0.7:
            persona.external_userid = self.token("wmqPc", 32)
        if not (persona.phone or persona.unionid or persona.openid or persona.nick):
            persona.phone = self.phone()
        persona.row = self._profile(persona, name, pinyin, female, brand, city, source)
        return persona

    def _profile(self, p: Persona, name: str, pinyin: str, female: bool, brand: str, city: str,
                 source: str) -> dict:
        rng, cal = self.rng, self.calendar
        row: dict = {
            "member_code": p.code, "name": name, "city": city, "source_channel": source,
            "joined_at": cal.moment(rng, p.joined_day, "online" if p.online else "store"),
            "store": p.home_store,
        }
        for key in ("phone", "unionid", "openid", "nick", "pos_card", "external_userid"):
            value = getattr(p, key)
            if value:
                row[key] = value
        if p.guide:
            row["guide"] = p.guide
        if rng.random() < 0.05:
            row["email"] = f"{pinyin}{self.sequence}@{rng.choice(('qq.com', '163.com', '126.com', 'foxmail.com'))}"
        row["gender"] = "unknown" if rng.random() < 0.04 else ("female" if female else "male")
        if rng.random() < 0.82:
            mean_age = 33 if brand == APPAREL else 30
            age = min(max(rng.gauss(mean_age, 6.5), 19), 62)
            row["birthday"] = cal.today - dt.timedelta(days=int(age * 365.25) + rng.randrange(365))
        if city in COMMUNITIES and rng.random() < (0.75 if not p.online else 0.35):
            row["community"] = rng.choice(COMMUNITIES[city])
            if rng.random() < 0.85:
                row["house_number"] = (f"{rng.randint(1, 30)}栋{rng.randint(1, 4)}单元{rng.randint(2, 33)}"
                                       f"{rng.randint(1, 4):02d}" if rng.random() < 0.6 else
                                       f"{rng.randint(1, 60)}号{rng.randint(1, 25)}{rng.randint(1, 6):02d}室")
        if rng.random() < 0.55:
            row["occupation"] = rng.choices(OCCUPATIONS, weights=_OCCUPATION_WEIGHTS)[0][0]
        row["in_group"] = rng.random() < min(0.15 + p.engagement, 0.9)
        row["follows_oa"] = rng.random() < 0.45
        row["mini_program_authorized"] = bool(p.openid)
        row["sms_consent"] = bool(p.phone) and rng.random() < 0.6
        row["marketing_consent"] = rng.random() < 0.5
        return row

    def contact(self, p: Persona) -> dict | None:
        """The WeCom contact (好友) relation between a member and their guide, if any."""
        if not (p.guide and p.external_userid):
            return None
        rng, cal = self.rng, self.calendar
        added = cal.moment(rng, min(p.joined_day + int(rng.expovariate(1 / 10)), cal.last_index), "store")
        row = {"staff": p.guide, "external_userid": p.external_userid, "added_at": added,
               "add_way": rng.choices(("scan", "search", "group", "share"), weights=(70, 15, 10, 5))[0],
               "state": f"store-{p.home_store}" if rng.random() < 0.6 else "",
               "remark": p.row.get("name", "")}
        if p.unionid:
            row["unionid"] = p.unionid
        if rng.random() < 0.06:  # some customers delete their guide again
            row["status"] = "deleted_by_customer"
            row["status_changed_at"] = min(added + dt.timedelta(days=rng.randint(1, 300)),
                                           cal.moment(rng, cal.last_index))
        return row

    # -- marketplace buyers who are not members (yet) -------------------------------------
    def guest(self) -> Persona:
        rng, cal = self.rng, self.calendar
        brand = APPAREL if rng.random() < 0.65 else BABY
        _name, pinyin = self.name(rng.random() < 0.85)
        pick = rng.random()
        count = 1 if pick < 0.75 else (2 if pick < 0.93 else rng.randint(3, 5))
        return Persona(
            code="", brand=brand, cross_brand=False, home_store="yw-tmall" if brand == APPAREL else "hb-tmall",
            online=True, joined_day=cal.sample(rng, cal.window_index, cal.last_index), order_count=count,
            active_until=cal.last_index, nick=self.nick(pinyin),
        )

    def sign_up(self, guest: Persona) -> dict:
        """A marketplace buyer joins as a member (their earlier orders bind to them)."""
        guest.code = self.member_code()
        guest.phone = self.phone()
        name, _pinyin = self.name(True)
        return {"member_code": guest.code, "name": name, "phone": guest.phone, "nick": guest.nick,
                "source_channel": "tmall", "store": guest.home_store,
                "city": self.rng.choices(ONLINE_CITIES, weights=_CITY_WEIGHTS)[0][0],
                "joined_at": self.calendar.moment(self.rng, self.calendar.last_index, "online")}
