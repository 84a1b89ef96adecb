"""Demo organisation: the group, its brands, regions, stores, channels, staff and products.

There is no organisation service yet, so these reference rows are written with the ORM here, in
a demo-only function; members, orders and events go through the services (see ``generate``).
Every row is keyed by its code, so running the demo twice updates rather than duplicates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from siyu.commerce.models import Channel, ChannelKind, Product, ProductRole
from siyu.demo.vocab import FEMALE_GIVEN, MALE_GIVEN, SURNAMES
from siyu.org.models import Brand, Group, Region, Role, Staff, Store, StoreKind

GROUP = ("yuehe", "悦禾集团")
APPAREL, BABY = "yue-wear", "he-baby"
BRANDS = [
    (APPAREL, "悦衣 YUE WEAR", "女装零售"),
    (BABY, "禾宝 HEBAO", "母婴零售"),
]
REGIONS = [
    ("east", "华东大区"), ("north", "华北大区"), ("south", "华南大区"), ("southwest", "西南大区"),
    ("central", "华中大区"),
]

#: code, brand, kind, region, city, name, address (each store also gets a sales channel, see CHANNELS)
STORES = [
    ("sh-njxl", APPAREL, StoreKind.PHYSICAL, "east", "上海", "悦衣 上海南京西路店", "静安区南京西路1266号恒隆广场B1"),
    ("sh-qibao", APPAREL, StoreKind.PHYSICAL, "east", "上海", "悦衣 上海七宝万科店", "闵行区漕宝路3366号万科广场L2"),
    ("hz-hubin", APPAREL, StoreKind.PHYSICAL, "east", "杭州", "悦衣 杭州湖滨银泰店", "上城区延安路258号湖滨银泰in77"),
    ("nj-xjk", APPAREL, StoreKind.PHYSICAL, "east", "南京", "悦衣 南京新街口店", "秦淮区中山南路1号德基广场"),
    ("bj-sanlitun", APPAREL, StoreKind.PHYSICAL, "north", "北京", "悦衣 北京三里屯店", "朝阳区三里屯路19号太古里南区"),
    ("gz-tianhe", APPAREL, StoreKind.PHYSICAL, "south", "广州", "悦衣 广州天河城店", "天河区天河路208号天河城3楼"),
    ("sz-mixc", APPAREL, StoreKind.PHYSICAL, "south", "深圳", "悦衣 深圳万象城店", "罗湖区宝安南路1881号万象城L2"),
    ("cd-taikoo", APPAREL, StoreKind.PHYSICAL, "southwest", "成都", "悦衣 成都太古里店", "锦江区中纱帽街8号远洋太古里"),
    ("sh-joycity", BABY, StoreKind.PHYSICAL, "east", "上海", "禾宝 上海大悦城店", "静安区西藏北路166号大悦城北座4楼"),
    ("sz-yuanqu", BABY, StoreKind.PHYSICAL, "east", "苏州", "禾宝 苏州园区店", "工业园区苏州大道东288号圆融时代广场"),
    ("wh-optics", BABY, StoreKind.PHYSICAL, "central", "武汉", "禾宝 武汉光谷店", "洪山区珞喻路766号光谷步行街"),
    ("yw-mall", APPAREL, StoreKind.BRAND_MALL, None, "", "悦衣品牌官网商城", ""),
    ("yw-mp", APPAREL, StoreKind.MINI_PROGRAM_MALL, None, "", "悦衣小程序商城", ""),
    ("yw-live", APPAREL, StoreKind.LIVESTREAM, None, "", "悦衣视频号直播间", ""),
    ("yw-tmall", APPAREL, StoreKind.MARKETPLACE, None, "", "悦衣天猫旗舰店", ""),
    ("yw-jd", APPAREL, StoreKind.MARKETPLACE, None, "", "悦衣京东旗舰店", ""),
    ("yw-dist", APPAREL, StoreKind.DISTRIBUTION_MALL, None, "", "悦衣分销商城", ""),
    ("hb-mp", BABY, StoreKind.MINI_PROGRAM_MALL, None, "", "禾宝小程序商城", ""),
    ("hb-live", BABY, StoreKind.LIVESTREAM, None, "", "禾宝抖音直播间", ""),
    ("hb-tmall", BABY, StoreKind.MARKETPLACE, None, "", "禾宝天猫旗舰店", ""),
    ("points", APPAREL, StoreKind.POINTS_MALL, None, "", "悦禾集团积分商城", ""),
]

#: store code → (channel code, channel kind, platform)
CHANNELS = {
    "yw-mall": ("yw-mall", ChannelKind.BRAND_MALL, "youzan"),
    "yw-mp": ("yw-mp", ChannelKind.MINI_PROGRAM, "wechat"),
    "yw-live": ("yw-live", ChannelKind.LIVESTREAM, "wechat_channels"),
    "yw-tmall": ("yw-tmall", ChannelKind.MARKETPLACE, "tmall"),
    "yw-jd": ("yw-jd", ChannelKind.MARKETPLACE, "jd"),
    "yw-dist": ("yw-dist", ChannelKind.DISTRIBUTION, "wechat"),
    "hb-mp": ("hb-mp", ChannelKind.MINI_PROGRAM, "wechat"),
    "hb-live": ("hb-live", ChannelKind.LIVESTREAM, "douyin"),
    "hb-tmall": ("hb-tmall", ChannelKind.MARKETPLACE, "tmall"),
    "points": ("points", ChannelKind.POINTS_MALL, "wechat"),
}

#: Guides per store code (3 per physical store, online customer service on some virtual ones).
GUIDES_PER_STORE = {code: 3 for code, _b, kind, *_ in STORES if kind == StoreKind.PHYSICAL}
GUIDES_PER_STORE.update({"yw-mp": 2, "yw-live": 2, "yw-dist": 1})

#: brand → category → (sku prefix, [(name, price, role)])
R = ProductRole
CATALOG = {
    APPAREL: {
        "连衣裙": ("DR", [("真丝印花连衣裙", 899, R.MAIN), ("法式碎花连衣裙", 599, R.HOT), ("针织吊带裙", 399, R.MAIN),
                         ("通勤西装连衣裙", 799, R.MAIN), ("过季雪纺长裙", 199, R.CLEARANCE), ("小黑裙", 699, R.HOT)]),
        "上衣": ("TP", [("纯棉基础T恤", 99, R.TRAFFIC), ("桑蚕丝衬衫", 599, R.MAIN), ("泡泡袖雪纺衫", 299, R.HOT),
                       ("条纹海魂衫", 199, R.MAIN), ("会员专享针织开衫", 259, R.MEMBER_BENEFIT),
                       ("秒杀款印花T恤", 59, R.FLASH_SALE)]),
        "外套": ("OT", [("双面羊绒大衣", 1599, R.MAIN), ("经典风衣", 1199, R.HOT), ("短款羽绒服", 999, R.MAIN),
                       ("小香风外套", 899, R.MAIN), ("过季西装外套", 399, R.CLEARANCE)]),
        "裤装": ("PT", [("高腰阔腿裤", 399, R.HOT), ("烟管九分裤", 359, R.MAIN), ("直筒牛仔裤", 329, R.MAIN),
                       ("半身百褶裙", 299, R.MAIN)]),
        "针织": ("KN", [("羊毛圆领毛衣", 499, R.MAIN), ("马海毛开衫", 599, R.MAIN), ("羊绒围巾", 299, R.HOT)]),
        "配饰": ("AC", [("真丝小方巾", 129, R.TRAFFIC), ("珍珠耳饰", 159, R.MAIN), ("编织腰带", 99, R.TRAFFIC),
                       ("新客体验丝袜三双装", 9.9, R.TRIAL)]),
        "套装": ("SE", [("通勤西装套装", 1399, R.BUNDLE), ("针织两件套", 699, R.BUNDLE)]),
    },
    BABY: {
        "奶粉": ("MF", [("有机婴儿配方奶粉1段", 368, R.MAIN), ("有机婴儿配方奶粉2段", 358, R.HOT),
                       ("有机幼儿配方奶粉3段", 328, R.HOT), ("奶粉试用装", 19.9, R.TRIAL)]),
        "纸尿裤": ("DP", [("超薄纸尿裤NB码", 139, R.HOT), ("超薄纸尿裤M码", 149, R.HOT), ("拉拉裤L码", 159, R.MAIN),
                         ("纸尿裤体验装", 9.9, R.TRIAL), ("会员专享纸尿裤箱装", 399, R.MEMBER_BENEFIT)]),
        "湿巾": ("WP", [("婴儿手口湿巾", 39, R.TRAFFIC), ("湿巾十包装", 89, R.BUNDLE)]),
        "辅食": ("FD", [("有机米粉", 69, R.MAIN), ("果泥组合", 59, R.MAIN), ("秒杀婴儿面条", 19.9, R.FLASH_SALE)]),
        "童装": ("CL", [("纯棉连体衣", 129, R.MAIN), ("婴儿睡袋", 199, R.HOT), ("过季童装外套", 99, R.CLEARANCE),
                       ("新生儿礼盒", 399, R.BUNDLE)]),
        "洗护": ("SK", [("婴儿润肤霜", 89, R.MAIN), ("婴儿洗发沐浴露", 79, R.MAIN)]),
        "玩具": ("TY", [("安抚玩偶", 99, R.MAIN), ("早教绘本套装", 168, R.BUNDLE), ("积木桶", 129, R.MAIN)]),
    },
}
POINTS_CATALOG = [("积分兑换 帆布袋", 0), ("积分兑换 保温杯", 9.9), ("积分兑换 20元无门槛券", 0),
                  ("积分兑换 香薰蜡烛", 19.9), ("积分兑换 婴儿湿巾", 0), ("积分兑换 丝巾", 29.9)]


@dataclass
class Org:
    """What the generator needs to know about the demo organisation (codes, not rows)."""

    stores: dict[str, Store]
    channel_of_store: dict[str, str]
    guides_of_store: dict[str, list[str]]
    hq_admin: Staff
    products: dict[str, list[tuple[str, str, Decimal, str]]] = field(default_factory=dict)
    """brand (or ``points``) → [(sku, category, price, role)]"""


def _pinyin_name(rng: random.Random, taken: set[str]) -> tuple[str, str]:
    surname, surname_py, _w = rng.choices(SURNAMES, weights=[s[2] for s in SURNAMES])[0]
    pool = FEMALE_GIVEN if rng.random() < 0.7 else MALE_GIVEN
    given = rng.sample(pool, rng.choice((1, 2)))
    name = surname + "".join(g[0] for g in given)
    userid = (surname_py + "".join(g[1] for g in given)).lower()
    base, n = userid, 1
    while userid in taken:
        n += 1
        userid = f"{base}{n}"
    taken.add(userid)
    return name, userid


def _mobile(rng: random.Random) -> str:
    return rng.choice(("138", "139", "186", "150", "177")) + f"{rng.randrange(10**8):08d}"


def setup_org(rng: random.Random) -> Org:
    """Create or update the demo group, brands, regions, stores, channels, staff and products."""
    group, _c = Group.objects.update_or_create(code=GROUP[0], defaults={"name": GROUP[1], "shared_membership": True})
    brands = {}
    for code, name, line in BRANDS:
        brands[code] = Brand.objects.update_or_create(
            code=code, defaults={"group": group, "name": name, "business_line": line})[0]
    regions = {}
    for code, name in REGIONS:
        regions[code] = Region.objects.update_or_create(code=code, defaults={"group": group, "name": name})[0]
    stores: dict[str, Store] = {}
    channel_of_store: dict[str, str] = {}
    for code, brand, kind, region, city, name, address in STORES:
        store = Store.objects.update_or_create(code=code, defaults={
            "brand": brands[brand], "region": regions.get(region), "kind": kind, "city": city,
            "name": name, "address": address, "is_active": True,
        })[0]
        stores[code] = store
        channel_code, channel_kind, platform = CHANNELS.get(code, (f"pos-{code}", ChannelKind.STORE, "pos"))
        Channel.objects.update_or_create(code=channel_code, defaults={
            "name": name if kind != StoreKind.PHYSICAL else f"{name} POS", "kind": channel_kind,
            "store": store, "platform": platform, "is_active": True,
        })
        channel_of_store[code] = channel_code

    taken: set[str] = set()
    staff_rows: list[dict] = []

    def add(role: str, *, region: str | None = None, store: str | None = None) -> None:
        name, userid = _pinyin_name(rng, taken)
        staff_rows.append({"code": userid, "name": name, "role": role, "mobile": _mobile(rng),
                           "region": regions.get(region) if region else None,
                           "store": stores.get(store) if store else None})

    for _i in range(2):
        add(Role.HQ_ADMIN)
    for _i in range(4):
        add(Role.HQ_OPERATOR)
    for code, _name in REGIONS:
        add(Role.REGION_MANAGER, region=code)
    guides_of_store: dict[str, list[str]] = {}
    for code, _b, kind, region, *_rest in STORES:
        if kind == StoreKind.PHYSICAL:
            add(Role.STORE_MANAGER, region=region, store=code)
        for _i in range(GUIDES_PER_STORE.get(code, 0)):
            add(Role.GUIDE, region=region, store=code)
            guides_of_store.setdefault(code, []).append(staff_rows[-1]["code"])
    admin_code = staff_rows[0]["code"]
    staff = {}
    for row in staff_rows:
        code = row.pop("code")
        staff[code] = Staff.objects.update_or_create(code=code, defaults={"group": group, **row})[0]
    hq_admin = staff[admin_code]

    products: dict[str, list[tuple[str, str, Decimal, str]]] = {}
    for brand, categories in CATALOG.items():
        for category, (prefix, items) in categories.items():
            for number, (name, price, role) in enumerate(items, start=1):
                sku = f"{'YW' if brand == APPAREL else 'HB'}-{prefix}-{number:03d}"
                amount = Decimal(str(price)).quantize(Decimal("0.01"))
                Product.objects.update_or_create(sku=sku, defaults={
                    "name": name, "category": category, "price": amount, "role": role, "is_active": True})
                products.setdefault(brand, []).append((sku, category, amount, role))
    for number, (name, price) in enumerate(POINTS_CATALOG, start=1):
        sku = f"PT-{number:03d}"
        amount = Decimal(str(price)).quantize(Decimal("0.01"))
        Product.objects.update_or_create(sku=sku, defaults={
            "name": name, "category": "积分兑换", "price": amount, "role": ProductRole.MEMBER_BENEFIT,
            "is_active": True})
        products.setdefault("points", []).append((sku, "积分兑换", amount, ProductRole.MEMBER_BENEFIT))
    return Org(stores=stores, channel_of_store=channel_of_store, guides_of_store=guides_of_store,
               hq_admin=hq_admin, products=products)
