"""Plain factory functions for tests: explicit arguments, sensible defaults."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

from siyu.commerce.models import Channel, ChannelKind, Product
from siyu.members.models import Member
from siyu.members.services import new_member_code
from siyu.org.models import Brand, Group, Region, Role, Staff, Store, StoreKind

_seq = itertools.count(1)


def make_group(code: str = "grp") -> Group:
    return Group.objects.get_or_create(code=code, defaults={"name": "示例集团"})[0]


def make_brand(code: str = "brand-a", group: Group | None = None) -> Brand:
    return Brand.objects.get_or_create(code=code, defaults={"group": group or make_group(), "name": code})[0]


def make_region(code: str = "east") -> Region:
    return Region.objects.get_or_create(code=code, defaults={"group": make_group(), "name": "华东"})[0]


def make_store(code: str = "sh-01", *, brand: Brand | None = None, region: Region | None = None,
               kind: str = StoreKind.PHYSICAL, city: str = "上海") -> Store:
    return Store.objects.get_or_create(code=code, defaults={
        "brand": brand or make_brand(), "region": region, "name": f"门店 {code}", "kind": kind, "city": city,
    })[0]


def make_channel(code: str = "pos-sh-01", *, kind: str = ChannelKind.STORE, store: Store | None = None) -> Channel:
    return Channel.objects.get_or_create(code=code, defaults={"name": code, "kind": kind, "store": store})[0]


def make_staff(code: str | None = None, *, role: str = Role.GUIDE, store: Store | None = None,
               region: Region | None = None, username: str | None = None) -> Staff:
    user = None
    if username:
        user = get_user_model().objects.create_user(username=username, password="pw-123456", is_staff=True)
    return Staff.objects.create(group=make_group(), code=code or f"staff-{next(_seq)}", name="导购",
                                role=role, store=store, region=region, user=user)


def make_product(sku: str = "SKU-1", **fields) -> Product:
    return Product.objects.get_or_create(sku=sku, defaults={"name": sku, "price": "10.00", **fields})[0]


def make_member(**fields) -> Member:
    from django.utils import timezone

    fields.setdefault("joined_at", timezone.now())
    fields.setdefault("code", new_member_code())
    return Member.objects.create(**fields)


def make_token(name: str = "integration", *scopes: str) -> str:
    """Create an API token with ``scopes`` (default: every scope) and return its plain text."""
    from siyu.core.tokens import ALL_SCOPES, create_token

    return create_token(name=name, scopes=scopes or ALL_SCOPES, actor="test").plain


def make_user(username: str = "operator", *permissions: str, is_staff: bool = True):
    """A console user with the given ``app_label.codename`` permissions; password ``pw-123456``."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username=username, password="pw-123456", is_staff=is_staff)
    for perm in permissions:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def make_program(code: str = "vip", *, brand: Brand | None = None, group_wide: bool = False, **fields):
    """A loyalty program of ``brand`` (default ``brand-a``), or group-wide; 1 point per yuan."""
    from siyu.loyalty.models import LoyaltyProgram, ProgramScope

    if group_wide:
        fields.update(scope=ProgramScope.GROUP, brand=None, group=make_group())
    else:
        brand = brand or make_brand()
        fields.update(scope=ProgramScope.BRAND, brand=brand, group=brand.group)
    fields.setdefault("time_zone", "Asia/Shanghai")
    return LoyaltyProgram.objects.create(code=code, name=f"会员计划 {code}", **fields)


def make_tier(program, code: str, rank: int, **fields):
    from siyu.loyalty.models import Tier

    return Tier.objects.create(program=program, code=code, name=code, rank=rank, **fields)


def make_event_rule(program, code: str, event_kind: str, points: int, **fields):
    from siyu.loyalty.models import EventEarnRule

    return EventEarnRule.objects.create(program=program, code=code, name=code, event_kind=event_kind,
                                        points=points, **fields)
