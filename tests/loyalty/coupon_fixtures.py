"""Coupon and points mall fixtures: templates, rewards, orders placed and closed through ingestion,
points granted through the ledger."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from siyu.commerce.models import Order
from siyu.commerce.services import record_orders
from siyu.loyalty.coupon_models import Coupon, CouponKind, CouponTemplate, Reward, RewardKind, Validity
from siyu.loyalty.ledger import adjust_points
from siyu.loyalty.models import PointsAccount

#: Noon in Shanghai, a Tuesday (as tests/loyalty/conftest.py).
NOW = dt.datetime(2026, 6, 30, 4, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

_numbers = itertools.count(1)


def make_template(code: str = "ten-off", *, program=None, brand=None, kind: str = CouponKind.AMOUNT_OFF,
                  channels=(), stores=(), products=(), categories=(), **fields) -> CouponTemplate:
    """A template of ``program`` (or ``brand``); by default 10.00 off, valid 30 days around NOW."""
    if kind in (CouponKind.AMOUNT_OFF, CouponKind.THRESHOLD):
        fields.setdefault("amount_off", Decimal("10.00"))
    if fields.get("validity", Validity.FIXED) == Validity.FIXED:
        fields.setdefault("valid_from", NOW - 30 * DAY)
        fields.setdefault("valid_until", NOW + 30 * DAY)
    template = CouponTemplate.objects.create(code=code, name=f"券 {code}", program=program, brand=brand, kind=kind,
                                             **fields)
    template.channels.set(channels)
    template.stores.set(stores)
    template.products.set(products)
    for category in categories:
        template.categories.create(category=category)
    return template


def make_reward(program, code: str = "mug", *, points: int = 100, kind: str = RewardKind.GOODS, **fields) -> Reward:
    return Reward.objects.create(program=program, code=code, name=f"礼品 {code}", kind=kind, points_price=points,
                                 **fields)


def order_row(member, paid: str, *, external_id: str | None = None, channel: str = "pos-sh-01",
              status: str = "pending", when: dt.datetime = NOW, **extra) -> dict:
    return {"channel": channel, "external_id": external_id or f"C{next(_numbers)}",
            "member_id": member.pk if member is not None else None, "paid_amount": paid,
            "ordered_at": when.isoformat(), "status": status, **extra}


def place_order(member, paid: str, **kwargs) -> Order:
    """An order of ``member`` (awaiting payment by default) recorded through ingestion."""
    row = order_row(member, paid, **kwargs)
    result = record_orders(rows=[row], source="test")
    assert not result.rejected, result.rejected
    order = Order.objects.get(channel__code=row["channel"], external_id=row["external_id"])
    order.row = row
    return order


def set_status(order: Order, status: str) -> Order:
    """Re-send ``order`` through ingestion with another status (e.g. closed)."""
    result = record_orders(rows=[dict(order.row, status=status)], source="test")
    assert not result.rejected, result.rejected
    order.refresh_from_db()
    return order


def grant(member, program, points: int) -> None:
    adjust_points(member=member, program=program, amount=points, reason="测试发放", actor="test",
                  idempotency_key=f"grant-{next(_numbers)}")


def points(member, program) -> int:
    account = PointsAccount.objects.filter(program=program, member=member).first()
    return account.balance if account else 0


def coupon_of(member, template) -> Coupon:
    return Coupon.objects.get(member=member, template=template)
